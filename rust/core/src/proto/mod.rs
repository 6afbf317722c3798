//! The Unity communicator wire format (communicator API 1.5.0, see
//! `docs/protocol.md`), decoded straight into flat per-behavior arrays and
//! encoded from them, without an intermediate message tree.
//!
//! - [`wire`]: protobuf varint / length-delimited reader and writer.
//! - [`output`]: Unity -> trainer messages (`UnityOutputProto`) decoded into
//!   [`output::DecodedOutput`] (what `rpc_utils.steps_from_proto` builds), and
//!   encoded from arrays by the Unity-side host.
//! - [`input`]: trainer -> Unity messages (`UnityInputProto`): initialization,
//!   actions and commands, encoded by the trainer and decoded by the host.
//! - [`png_obs`]: PNG observations (single, concatenated, channel mapping).
//! - [`limits`]: the bounds every size in a message is checked against before
//!   anything is allocated.
//!
//! No input makes these functions panic, abort or allocate more than the
//! limits allow: every failure is a [`ProtoError`].

pub mod input;
pub mod limits;
pub mod output;
pub mod png_obs;
pub mod wire;

use crate::CoreError;

pub use limits::DecodeLimits;

/// Why a message could not be turned into arrays. The binding maps each kind
/// to the exception ML-Agents raises in the same situation.
#[derive(Debug, Clone, PartialEq)]
pub enum ProtoError {
    /// The bytes are not a valid protobuf message of the expected type.
    Decode(String),
    /// An observation does not match its declared shape or cannot be decompressed
    /// (`UnityObservationException` in ML-Agents).
    Observation(String),
    /// A reward or vector observation is NaN or infinite (`RuntimeError` in ML-Agents).
    NonFinite(String),
    /// A declared size is above a [`DecodeLimits`] bound (the message names the limit).
    Limit(String),
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtoError::Decode(m) => write!(f, "malformed message: {m}"),
            ProtoError::Observation(m) | ProtoError::NonFinite(m) => f.write_str(m),
            ProtoError::Limit(m) => write!(f, "message too large: {m}"),
        }
    }
}

impl std::error::Error for ProtoError {}

impl From<ProtoError> for CoreError {
    fn from(err: ProtoError) -> Self {
        match err {
            ProtoError::Decode(m) => CoreError::Decode(m),
            other => CoreError::Decode(other.to_string()),
        }
    }
}

/// Field numbers shared by both directions.
pub(crate) mod fields {
    pub const MESSAGE_HEADER: u32 = 1;
    pub const MESSAGE_OUTPUT: u32 = 2;
    pub const MESSAGE_INPUT: u32 = 3;
    pub const HEADER_STATUS: u32 = 1;
}

/// `UnityRLCapabilitiesProto`: which protocol features a side supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub base_rl_capabilities: bool,
    pub concatenated_png_observations: bool,
    pub compressed_channel_mapping: bool,
    pub hybrid_actions: bool,
    pub training_analytics: bool,
    pub variable_length_observation: bool,
    pub multi_agent_groups: bool,
}

impl Capabilities {
    /// Every capability on, as ML-Agents 1.1.0 and the C# package 3.x send.
    pub fn all() -> Self {
        Capabilities {
            base_rl_capabilities: true,
            concatenated_png_observations: true,
            compressed_channel_mapping: true,
            hybrid_actions: true,
            training_analytics: true,
            variable_length_observation: true,
            multi_agent_groups: true,
        }
    }

    pub fn as_array(&self) -> [bool; 7] {
        [
            self.base_rl_capabilities,
            self.concatenated_png_observations,
            self.compressed_channel_mapping,
            self.hybrid_actions,
            self.training_analytics,
            self.variable_length_observation,
            self.multi_agent_groups,
        ]
    }

    pub fn from_array(flags: [bool; 7]) -> Self {
        Capabilities {
            base_rl_capabilities: flags[0],
            concatenated_png_observations: flags[1],
            compressed_channel_mapping: flags[2],
            hybrid_actions: flags[3],
            training_analytics: flags[4],
            variable_length_observation: flags[5],
            multi_agent_groups: flags[6],
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        let mut flags = [false; 7];
        let mut reader = wire::Reader::new(bytes, "UnityRLCapabilitiesProto");
        while let Some((field, value)) = reader.next_field()? {
            if (1..=7).contains(&field) {
                flags[field as usize - 1] = value.as_bool("UnityRLCapabilitiesProto", field)?;
            }
        }
        Ok(Self::from_array(flags))
    }

    pub(crate) fn encode(&self, writer: &mut wire::Writer) {
        for (index, flag) in self.as_array().into_iter().enumerate() {
            writer.bool(index as u32 + 1, flag);
        }
    }
}

/// Reads `HeaderProto.status` (0 when absent).
pub(crate) fn decode_header_status(bytes: &[u8]) -> Result<i32, ProtoError> {
    let mut status = 0;
    let mut reader = wire::Reader::new(bytes, "HeaderProto");
    while let Some((field, value)) = reader.next_field()? {
        if field == fields::HEADER_STATUS {
            status = value.as_int32("HeaderProto", field)?;
        }
    }
    Ok(status)
}
