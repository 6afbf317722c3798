//! Unity -> trainer: `UnityMessageProto{header, unity_output}` (docs/protocol.md,
//! "Handshake" and "From messages to steps").
//!
//! [`decode_unity_message`] parses the envelope once, borrowing every payload
//! from the input bytes, and builds per-behavior batches directly: agent ids,
//! rewards, group ids and rewards, interrupted flags, one flat float array per
//! observation and the flattened action mask, exactly as
//! `mlagents_envs.rpc_utils.steps_from_proto` does. PNG observations are
//! decoded in parallel across agents.
//!
//! Every declared size (agents, shapes, branches, PNG images) is checked against
//! the bytes present and the [`DecodeLimits`] before anything sized by it is
//! allocated; the decoded arrays of one message are charged to one [`Budget`].
//!
//! [`encode_unity_output`] is the other side, used by the Unity-side host.

use std::collections::HashMap;

use rayon::prelude::*;

use super::fields::{HEADER_STATUS, MESSAGE_HEADER, MESSAGE_OUTPUT};
use super::limits::{try_zeroed, Budget, DecodeLimits};
use super::png_obs::decode_png_observation;
use super::wire::{FieldValue, Reader, Writer};
use super::{decode_header_status, Capabilities, ProtoError};

const COMPRESSION_NONE: i32 = 0;
const SPACE_TYPE_CONTINUOUS: i32 = 1;

/// An observation as declared by an agent: what ML-Agents' `ObservationSpec` holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservationInfo {
    pub shape: Vec<i32>,
    pub dimension_properties: Vec<i32>,
    pub observation_type: i32,
    pub name: String,
}

/// `BrainParametersProto` with the action spec resolved (deprecated fields as fallback).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrainParameters {
    pub brain_name: String,
    pub is_training: bool,
    pub continuous_size: i32,
    pub discrete_branches: Vec<i32>,
    pub action_descriptions: Vec<String>,
}

/// `UnityRLInitializationOutputProto`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InitOutput {
    pub name: String,
    pub communication_version: String,
    pub log_path: String,
    pub package_version: String,
    pub capabilities: Capabilities,
    pub brain_parameters: Vec<BrainParameters>,
}

/// What the trainer already knows about a behavior: the shapes to decode
/// observations into and the discrete branches that size the action mask.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownSpec {
    pub name: String,
    pub observation_shapes: Vec<Vec<usize>>,
    pub discrete_branches: Vec<usize>,
}

/// A behavior announced in this message (brain parameters plus its first agent).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSpec {
    pub observations: Vec<ObservationInfo>,
    pub continuous_size: usize,
    pub discrete_branches: Vec<usize>,
}

/// Agents of one behavior in one group (deciding or terminal), in message order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepBatch {
    pub agent_id: Vec<i32>,
    pub reward: Vec<f32>,
    pub group_id: Vec<i32>,
    pub group_reward: Vec<f32>,
    /// `max_step_reached`; meaningful for terminal agents.
    pub interrupted: Vec<bool>,
    /// One array per observation, `len = n_agents * prod(shape)`, row-major.
    pub observations: Vec<Vec<f32>>,
}

impl StepBatch {
    pub fn len(&self) -> usize {
        self.agent_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agent_id.is_empty()
    }
}

/// Decoded state of one behavior.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviorSteps {
    pub name: String,
    /// Set when this message announced the behavior (the trainer stores it).
    pub new_spec: Option<NewSpec>,
    pub observation_shapes: Vec<Vec<usize>>,
    pub decision: StepBatch,
    pub terminal: StepBatch,
    /// `(n_decision, sum(discrete_branches))`, true = masked. None for continuous-only
    /// behaviors and when no agent asks for a decision.
    pub action_mask: Option<Vec<bool>>,
    pub discrete_branches: Vec<usize>,
}

/// A decoded `UnityMessageProto` from Unity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedOutput {
    pub status: i32,
    /// Whether the message had a `unity_output` at all.
    pub has_output: bool,
    pub side_channel: Vec<u8>,
    /// Known or newly announced behaviors present in `agentInfos`, in message order.
    pub behaviors: Vec<BehaviorSteps>,
    pub init_output: Option<InitOutput>,
}

/// A repeated varint field (int32 or bool), kept as its packed bytes while parsing so
/// that the common case (one packed run) costs no allocation.
#[derive(Default)]
enum Repeated<'a> {
    #[default]
    Empty,
    Packed(&'a [u8]),
    Owned(Vec<i32>),
}

impl<'a> Repeated<'a> {
    fn push(&mut self, value: FieldValue<'a>, ctx: &str, field: u32) -> Result<(), ProtoError> {
        if let (Repeated::Empty, FieldValue::Len(bytes)) = (&*self, value) {
            *self = Repeated::Packed(bytes);
            return Ok(());
        }
        // Taken, not cloned: a field repeated unpacked n times costs O(n), not O(n^2).
        let mut owned = match std::mem::take(self) {
            Repeated::Owned(values) => values,
            other => other.to_vec()?,
        };
        value.push_int32s(&mut owned, ctx, field)?;
        *self = Repeated::Owned(owned);
        Ok(())
    }

    /// The number of values, without decoding them (each varint ends on a byte < 0x80).
    fn len(&self) -> usize {
        match self {
            Repeated::Empty => 0,
            Repeated::Packed(bytes) => bytes.iter().filter(|&&b| b < 0x80).count(),
            Repeated::Owned(values) => values.len(),
        }
    }

    fn to_vec(&self) -> Result<Vec<i32>, ProtoError> {
        match self {
            Repeated::Empty => Ok(Vec::new()),
            Repeated::Packed(bytes) => {
                let mut out = Vec::with_capacity(bytes.len());
                FieldValue::Len(bytes).push_int32s(&mut out, "packed int32", 0)?;
                Ok(out)
            }
            Repeated::Owned(values) => Ok(values.clone()),
        }
    }

    /// Decodes the values as bools into `out` (cleared first).
    fn bools_into(&self, out: &mut Vec<bool>) -> Result<(), ProtoError> {
        out.clear();
        match self {
            Repeated::Empty => {}
            Repeated::Packed(bytes) => {
                FieldValue::Len(bytes).push_bools(out, "packed bool", 0)?;
            }
            Repeated::Owned(values) => out.extend(values.iter().map(|&v| v != 0)),
        }
        Ok(())
    }
}

struct RawObservation<'a> {
    shape: Repeated<'a>,
    compression_type: i32,
    compressed_data: &'a [u8],
    float_data: Option<&'a [u8]>,
    channel_mapping: Repeated<'a>,
    dimension_properties: Repeated<'a>,
    observation_type: i32,
    name: &'a [u8],
}

pub(crate) struct RawAgentInfo<'a> {
    pub(crate) reward: f32,
    pub(crate) done: bool,
    pub(crate) max_step_reached: bool,
    pub(crate) id: i32,
    action_mask: Repeated<'a>,
    /// The first observation inline, the others in `more_observations` (no allocation
    /// for the usual single sensor).
    first_observation: Option<RawObservation<'a>>,
    more_observations: Vec<RawObservation<'a>>,
    group_id: i32,
    group_reward: f32,
}

impl<'a> RawAgentInfo<'a> {
    fn observation_count(&self) -> usize {
        usize::from(self.first_observation.is_some()) + self.more_observations.len()
    }

    fn observation(&self, index: usize) -> Option<&RawObservation<'a>> {
        match index {
            0 => self.first_observation.as_ref(),
            _ => self.more_observations.get(index - 1),
        }
    }

    fn observations(&self) -> impl Iterator<Item = &RawObservation<'a>> {
        self.first_observation.iter().chain(&self.more_observations)
    }

    /// The agent's action mask as sent (true = masked), into `out` (cleared first).
    pub(crate) fn action_mask_into(&self, out: &mut Vec<bool>) -> Result<(), ProtoError> {
        self.action_mask.bools_into(out)
    }
}

fn parse_observation(bytes: &[u8]) -> Result<RawObservation<'_>, ProtoError> {
    const CTX: &str = "ObservationProto";
    let mut obs = RawObservation {
        shape: Repeated::Empty,
        compression_type: 0,
        compressed_data: &[],
        float_data: None,
        channel_mapping: Repeated::Empty,
        dimension_properties: Repeated::Empty,
        observation_type: 0,
        name: &[],
    };
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => obs.shape.push(value, CTX, field)?,
            2 => obs.compression_type = value.as_int32(CTX, field)?,
            // oneof observation_data: the last one set wins.
            3 => {
                obs.compressed_data = value.as_bytes(CTX, field)?;
                obs.float_data = None;
            }
            4 => {
                obs.float_data = Some(value.as_bytes(CTX, field)?);
                obs.compressed_data = &[];
            }
            5 => obs.channel_mapping.push(value, CTX, field)?,
            6 => obs.dimension_properties.push(value, CTX, field)?,
            7 => obs.observation_type = value.as_int32(CTX, field)?,
            8 => obs.name = value.as_bytes(CTX, field)?,
            _ => {}
        }
    }
    Ok(obs)
}

pub(crate) fn parse_agent_info<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
    behavior: &str,
) -> Result<RawAgentInfo<'a>, ProtoError> {
    const CTX: &str = "AgentInfoProto";
    let mut info = RawAgentInfo {
        reward: 0.0,
        done: false,
        max_step_reached: false,
        id: 0,
        action_mask: Repeated::Empty,
        first_observation: None,
        more_observations: Vec::new(),
        group_id: 0,
        group_reward: 0.0,
    };
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            7 => info.reward = value.as_float(CTX, field)?,
            8 => info.done = value.as_bool(CTX, field)?,
            9 => info.max_step_reached = value.as_bool(CTX, field)?,
            10 => info.id = value.as_int32(CTX, field)?,
            11 => info.action_mask.push(value, CTX, field)?,
            13 => {
                let obs = parse_observation(value.as_bytes(CTX, field)?)?;
                if info.first_observation.is_none() {
                    info.first_observation = Some(obs);
                } else {
                    DecodeLimits::check(
                        Some(info.more_observations.len() + 2),
                        limits.max_observations,
                        "max_observations",
                        || format!("the observation count of an agent of behavior {behavior:?}"),
                    )?;
                    info.more_observations.push(obs);
                }
            }
            14 => info.group_id = value.as_int32(CTX, field)?,
            15 => info.group_reward = value.as_float(CTX, field)?,
            _ => {}
        }
    }
    Ok(info)
}

fn parse_agent_info_list<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
    behavior: &str,
) -> Result<Vec<RawAgentInfo<'a>>, ProtoError> {
    const CTX: &str = "ListAgentInfoProto";
    // Collect the agents' byte ranges first: sizing the vector once avoids moving the
    // (large) parsed records on every growth.
    let mut agent_bytes = Vec::new();
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        if field == 1 {
            agent_bytes.push(value.as_bytes(CTX, field)?);
        }
    }
    DecodeLimits::check(
        Some(agent_bytes.len()),
        limits.max_agents,
        "max_agents",
        || format!("the agent count of behavior {behavior:?}"),
    )?;
    let mut agents = Vec::with_capacity(agent_bytes.len());
    for bytes in agent_bytes {
        agents.push(parse_agent_info(bytes, limits, behavior)?);
    }
    Ok(agents)
}

/// A map entry `{1: key string, 2: value message}`.
fn parse_map_entry<'a>(
    bytes: &'a [u8],
    ctx: &'static str,
) -> Result<(String, &'a [u8]), ProtoError> {
    let mut key = String::new();
    let mut entry_value: &[u8] = &[];
    let mut reader = Reader::new(bytes, ctx);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => key = value.as_string(ctx, field)?,
            2 => entry_value = value.as_bytes(ctx, field)?,
            _ => {}
        }
    }
    Ok((key, entry_value))
}

fn parse_action_spec(bytes: &[u8]) -> Result<(i32, i32, Vec<i32>, Vec<String>), ProtoError> {
    const CTX: &str = "ActionSpecProto";
    let (mut continuous, mut num_discrete) = (0, 0);
    let mut branches = Vec::new();
    let mut descriptions = Vec::new();
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => continuous = value.as_int32(CTX, field)?,
            2 => num_discrete = value.as_int32(CTX, field)?,
            3 => value.push_int32s(&mut branches, CTX, field)?,
            4 => descriptions.push(value.as_string(CTX, field)?),
            _ => {}
        }
    }
    Ok((continuous, num_discrete, branches, descriptions))
}

pub(crate) fn parse_brain_parameters(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<BrainParameters, ProtoError> {
    const CTX: &str = "BrainParametersProto";
    let mut brain = BrainParameters::default();
    let mut deprecated_sizes = Vec::new();
    let mut deprecated_space_type = 0;
    let mut action_spec = (0, 0, Vec::new(), Vec::new());
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            3 => value.push_int32s(&mut deprecated_sizes, CTX, field)?,
            6 => deprecated_space_type = value.as_int32(CTX, field)?,
            7 => brain.brain_name = value.as_string(CTX, field)?,
            8 => brain.is_training = value.as_bool(CTX, field)?,
            9 => action_spec = parse_action_spec(value.as_bytes(CTX, field)?)?,
            _ => {}
        }
    }
    let (continuous, num_discrete, branches, descriptions) = action_spec;
    if continuous == 0 && num_discrete == 0 {
        // Senders older than communicator 1.3 only fill the deprecated fields.
        if deprecated_space_type == SPACE_TYPE_CONTINUOUS {
            brain.continuous_size = *deprecated_sizes.first().ok_or_else(|| {
                ProtoError::Decode(format!(
                    "BrainParametersProto for {:?}: continuous action space without a size",
                    brain.brain_name
                ))
            })?;
        } else {
            brain.discrete_branches = deprecated_sizes;
        }
    } else {
        brain.continuous_size = continuous;
        brain.discrete_branches = branches;
        brain.action_descriptions = descriptions;
    }
    let branches: Vec<i64> = brain
        .discrete_branches
        .iter()
        .map(|&b| i64::from(b))
        .collect();
    limits.action_spec(i64::from(brain.continuous_size), &branches, || {
        format!("BrainParametersProto for {:?}", brain.brain_name)
    })?;
    Ok(brain)
}

/// Parses `UnityRLInitializationOutputProto` with the default [`DecodeLimits`].
pub fn parse_init_output(bytes: &[u8]) -> Result<InitOutput, ProtoError> {
    parse_init_output_limited(bytes, &DecodeLimits::default())
}

/// Parses `UnityRLInitializationOutputProto`, action specs checked against `limits`.
pub fn parse_init_output_limited(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<InitOutput, ProtoError> {
    const CTX: &str = "UnityRLInitializationOutputProto";
    let mut init = InitOutput::default();
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => init.name = value.as_string(CTX, field)?,
            2 => init.communication_version = value.as_string(CTX, field)?,
            3 => init.log_path = value.as_string(CTX, field)?,
            5 => init
                .brain_parameters
                .push(parse_brain_parameters(value.as_bytes(CTX, field)?, limits)?),
            7 => init.package_version = value.as_string(CTX, field)?,
            8 => init.capabilities = Capabilities::decode(value.as_bytes(CTX, field)?)?,
            _ => {}
        }
    }
    Ok(init)
}

fn check_finite(values: &[f32], source: &str) -> Result<(), ProtoError> {
    if values.iter().any(|v| v.is_nan()) {
        return Err(ProtoError::NonFinite(format!(
            "The {source} provided had NaN values."
        )));
    }
    if values.iter().any(|v| v.is_infinite()) {
        return Err(ProtoError::NonFinite(format!(
            "The {source} provided had Infinite values."
        )));
    }
    Ok(())
}

fn observation_at<'r, 'a>(
    agent: &'r RawAgentInfo<'a>,
    obs_index: usize,
) -> Result<&'r RawObservation<'a>, ProtoError> {
    agent.observation(obs_index).ok_or_else(|| {
        ProtoError::Observation(format!(
            "agent with id={} sent {} observations but the behavior has an observation at index={obs_index}",
            agent.id,
            agent.observation_count()
        ))
    })
}

/// Appends the floats of `obs.float_data` to `out`, checking there are `expected` of them.
fn copy_float_observation(
    obs: &RawObservation<'_>,
    obs_index: usize,
    agent_id: i32,
    shape: &[usize],
    expected: usize,
    out: &mut Vec<f32>,
) -> Result<(), ProtoError> {
    let before = out.len();
    if let Some(float_data) = obs.float_data {
        let mut reader = Reader::new(float_data, "ObservationProto.FloatData");
        while let Some((field, value)) = reader.next_field()? {
            if field == 1 {
                value.push_floats(out, "ObservationProto.FloatData", field)?;
            }
        }
    }
    let got = out.len() - before;
    if got != expected {
        out.truncate(before);
        return Err(ProtoError::Observation(format!(
            "Observation at index={obs_index} for agent with id={agent_id} didn't match the \
             ObservationSpec. Expected shape {shape:?} but got {:?} ({got} floats instead of {expected}).",
            obs.shape.to_vec().unwrap_or_default()
        )));
    }
    Ok(())
}

/// What decoding one message needs besides its bytes: the limits, the budget they
/// leave, and the input size (no float batch can hold more values than it has bytes / 4).
pub(crate) struct DecodeContext<'l> {
    limits: &'l DecodeLimits,
    budget: Budget,
    input_floats: usize,
}

impl<'l> DecodeContext<'l> {
    /// A context for decoding `input_len` bytes under `limits`.
    pub(crate) fn new(limits: &'l DecodeLimits, input_len: usize) -> Self {
        DecodeContext {
            limits,
            budget: Budget::new(limits),
            input_floats: input_len / 4,
        }
    }
}

/// `count * per_item`, or a limit error naming `what` if it overflows.
fn checked_count(count: usize, per_item: usize, what: &str) -> Result<usize, ProtoError> {
    count.checked_mul(per_item).ok_or_else(|| {
        ProtoError::Limit(format!(
            "{what}: {count} x {per_item} values overflows 64 bits"
        ))
    })
}

/// The number of elements of a validated shape.
fn shape_elements(shape: &[usize]) -> Result<usize, ProtoError> {
    shape.iter().try_fold(1usize, |product, &d| {
        checked_count(product, d, "observation shape")
    })
}

/// Observation `obs_index` of every agent in `agents`, as one `(n, *shape)` array.
fn batch_observation(
    agents: &[&RawAgentInfo<'_>],
    obs_index: usize,
    shape: &[usize],
    ctx: &mut DecodeContext<'_>,
) -> Result<Vec<f32>, ProtoError> {
    let per_agent = shape_elements(shape)?;
    let total = checked_count(agents.len(), per_agent, "observation batch")?;
    ctx.budget.charge(total, 4, || {
        format!(
            "{} agents x observation {obs_index} of shape {shape:?}",
            agents.len()
        )
    })?;
    if shape.len() != 3 {
        // Every float must be in the message: never reserve more than it could hold.
        let mut out = Vec::with_capacity(total.min(ctx.input_floats));
        for agent in agents {
            let obs = observation_at(agent, obs_index)?;
            copy_float_observation(obs, obs_index, agent.id, shape, per_agent, &mut out)?;
        }
        check_finite(&out, "observations")?;
        return Ok(out);
    }
    // Visual observations: the declared shape must match, then floats or PNG. PNG
    // decoding is charged too: at most (mapping length, or channels + 3 padding)
    // planes of height x width bytes per agent.
    let plane = checked_count(shape[1], shape[2], "PNG observation")?;
    for agent in agents {
        if let Some(obs) = agent.observation(obs_index) {
            if obs.compression_type != COMPRESSION_NONE {
                let planes = match obs.channel_mapping.len() {
                    0 => shape[0].saturating_add(3),
                    mapped => mapped,
                };
                let samples = checked_count(planes, plane, "PNG observation")?;
                ctx.budget.charge(samples, 1, || {
                    format!(
                        "the PNG samples of observation {obs_index} of agent {}",
                        agent.id
                    )
                })?;
            }
        }
    }
    let mut out = try_zeroed::<f32>(total, "a visual observation batch")?;
    let limits = ctx.limits;
    let decode_one = |agent: &RawAgentInfo<'_>, slot: &mut [f32]| -> Result<(), ProtoError> {
        let obs = observation_at(agent, obs_index)?;
        let declared = obs.shape.to_vec()?;
        let matches = declared.len() == shape.len()
            && declared
                .iter()
                .zip(shape)
                .all(|(&d, &s)| usize::try_from(d).is_ok_and(|d| d == s));
        if !matches {
            return Err(ProtoError::Observation(format!(
                "Observation did not have the expected shape - got {declared:?} but expected {shape:?}"
            )));
        }
        if obs.compression_type == COMPRESSION_NONE {
            let float_bytes = obs.float_data.map_or(0, <[u8]>::len);
            let mut floats = Vec::with_capacity(per_agent.min(float_bytes / 4));
            copy_float_observation(obs, obs_index, agent.id, shape, per_agent, &mut floats)?;
            slot.copy_from_slice(&floats);
            Ok(())
        } else {
            decode_png_observation(
                obs.compressed_data,
                shape,
                &obs.channel_mapping.to_vec()?,
                slot,
                limits,
            )
        }
    };
    let any_compressed = agents.iter().any(|agent| {
        agent
            .observation(obs_index)
            .is_some_and(|obs| obs.compression_type != COMPRESSION_NONE)
    });
    if per_agent == 0 {
        for agent in agents {
            decode_one(agent, &mut [])?;
        }
    } else if any_compressed && agents.len() > 1 && crate::parallel::enabled() {
        out.par_chunks_mut(per_agent)
            .zip(agents.par_iter())
            .try_for_each(|(slot, agent)| decode_one(agent, slot))?;
    } else {
        for (slot, agent) in out.chunks_mut(per_agent).zip(agents) {
            decode_one(agent, slot)?;
        }
    }
    Ok(out)
}

/// Bytes of the per-agent values of a batch: id, reward, group id, group reward, interrupted.
const PER_AGENT_BYTES: usize = 4 + 4 + 4 + 4 + 1;

pub(crate) fn build_batch(
    agents: &[&RawAgentInfo<'_>],
    shapes: &[Vec<usize>],
    ctx: &mut DecodeContext<'_>,
) -> Result<StepBatch, ProtoError> {
    ctx.budget.charge(agents.len(), PER_AGENT_BYTES, || {
        format!("{} agents", agents.len())
    })?;
    let mut observations = Vec::with_capacity(shapes.len());
    for (obs_index, shape) in shapes.iter().enumerate() {
        observations.push(batch_observation(agents, obs_index, shape, ctx)?);
    }
    let batch = StepBatch {
        agent_id: agents.iter().map(|a| a.id).collect(),
        reward: agents.iter().map(|a| a.reward).collect(),
        group_id: agents.iter().map(|a| a.group_id).collect(),
        group_reward: agents.iter().map(|a| a.group_reward).collect(),
        interrupted: agents.iter().map(|a| a.max_step_reached).collect(),
        observations,
    };
    check_finite(&batch.reward, "rewards")?;
    check_finite(&batch.group_reward, "group_rewards")?;
    Ok(batch)
}

fn build_behavior(
    name: String,
    agents: &[RawAgentInfo<'_>],
    shapes: Vec<Vec<usize>>,
    discrete_branches: Vec<usize>,
    new_spec: Option<NewSpec>,
    ctx: &mut DecodeContext<'_>,
) -> Result<BehaviorSteps, ProtoError> {
    let decision_agents: Vec<&RawAgentInfo<'_>> = agents.iter().filter(|a| !a.done).collect();
    let terminal_agents: Vec<&RawAgentInfo<'_>> = agents.iter().filter(|a| a.done).collect();
    let decision = build_batch(&decision_agents, &shapes, ctx)?;
    let terminal = build_batch(&terminal_agents, &shapes, ctx)?;
    // Branch sizes were checked against max_action_size: the sum cannot overflow.
    let mask_width: usize = discrete_branches.iter().sum();
    // A mask is used only if its length is the sum of the branch sizes; others mask nothing.
    let mut action_mask = None;
    if !discrete_branches.is_empty() && !decision_agents.is_empty() {
        let mask_len = checked_count(decision_agents.len(), mask_width, "action mask")?;
        ctx.budget.charge(mask_len, 1, || {
            format!(
                "an action mask of {} agents x {mask_width} actions",
                decision_agents.len()
            )
        })?;
        let mut mask = try_zeroed::<bool>(mask_len, "an action mask")?;
        let mut agent_mask = Vec::with_capacity(mask_width.min(64));
        // chunks_exact_mut(0) would panic; zero-width branches have nothing to mask.
        for (row, agent) in mask
            .chunks_exact_mut(mask_width.max(1))
            .zip(&decision_agents)
        {
            agent.action_mask.bools_into(&mut agent_mask)?;
            if mask_width > 0 && agent_mask.len() == mask_width {
                row.copy_from_slice(&agent_mask);
            }
        }
        action_mask = Some(mask);
    }
    Ok(BehaviorSteps {
        name,
        new_spec,
        observation_shapes: shapes,
        decision,
        terminal,
        action_mask,
        discrete_branches,
    })
}

/// The spec of a behavior announced in this message, and its validated observation shapes.
pub(crate) fn new_spec_from(
    brain: &BrainParameters,
    first_agent: &RawAgentInfo<'_>,
    limits: &DecodeLimits,
) -> Result<(NewSpec, Vec<Vec<usize>>), ProtoError> {
    let mut observations = Vec::with_capacity(first_agent.observation_count());
    let mut shapes = Vec::with_capacity(first_agent.observation_count());
    for (index, obs) in first_agent.observations().enumerate() {
        let shape = obs.shape.to_vec()?;
        shapes.push(limits.observation_shape(&shape, || {
            format!(
                "observation {index} of agent {} of behavior {:?}",
                first_agent.id, brain.brain_name
            )
        })?);
        observations.push(ObservationInfo {
            shape,
            dimension_properties: obs.dimension_properties.to_vec()?,
            observation_type: obs.observation_type,
            name: String::from_utf8_lossy(obs.name).into_owned(),
        });
    }
    // parse_brain_parameters checked the sizes: none is negative.
    let to_usize = |v: i32| usize::try_from(v).unwrap_or(0);
    let spec = NewSpec {
        observations,
        continuous_size: to_usize(brain.continuous_size),
        discrete_branches: brain
            .discrete_branches
            .iter()
            .map(|&b| to_usize(b))
            .collect(),
    };
    Ok((spec, shapes))
}

/// Checks a spec the caller already knows (it came from an earlier message, but
/// the caller may be anything): shapes and branches within `limits`.
fn check_known_spec(spec: &KnownSpec, limits: &DecodeLimits) -> Result<(), ProtoError> {
    for (index, shape) in spec.observation_shapes.iter().enumerate() {
        limits.check_dims(shape, || {
            format!("known observation {index} of behavior {:?}", spec.name)
        })?;
    }
    let branches: Vec<i64> = spec
        .discrete_branches
        .iter()
        .map(|&b| i64::try_from(b).unwrap_or(i64::MAX))
        .collect();
    limits.action_spec(0, &branches, || format!("known behavior {:?}", spec.name))
}

/// [`decode_unity_message_limited`] with the default [`DecodeLimits`].
pub fn decode_unity_message(data: &[u8], known: &[KnownSpec]) -> Result<DecodedOutput, ProtoError> {
    decode_unity_message_limited(data, known, &DecodeLimits::default())
}

/// Decodes a message from Unity. `known` lists the behaviors announced earlier;
/// brain parameters in this message (for behaviors with at least one agent in
/// it) announce new ones or replace known ones, as ML-Agents does. Agents of
/// behaviors never announced are ignored. Sizes are checked against `limits`.
pub fn decode_unity_message_limited(
    data: &[u8],
    known: &[KnownSpec],
    limits: &DecodeLimits,
) -> Result<DecodedOutput, ProtoError> {
    const CTX: &str = "UnityMessageProto";
    let mut decoded = DecodedOutput::default();
    let mut output_bytes: Option<&[u8]> = None;
    let mut reader = Reader::new(data, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            MESSAGE_HEADER => decoded.status = decode_header_status(value.as_bytes(CTX, field)?)?,
            MESSAGE_OUTPUT => output_bytes = Some(value.as_bytes(CTX, field)?),
            _ => {}
        }
    }
    let Some(output_bytes) = output_bytes else {
        return Ok(decoded);
    };
    decoded.has_output = true;

    let mut rl_output: &[u8] = &[];
    let mut reader = Reader::new(output_bytes, "UnityOutputProto");
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => rl_output = value.as_bytes("UnityOutputProto", field)?,
            2 => {
                decoded.init_output = Some(parse_init_output_limited(
                    value.as_bytes("UnityOutputProto", field)?,
                    limits,
                )?)
            }
            _ => {}
        }
    }

    // agentInfos map entries, the last entry for a key winning (protobuf map semantics).
    // Looked up by hash: a message with many entries costs linear time.
    let mut entries: Vec<(String, &[u8])> = Vec::new();
    let mut entry_index: HashMap<String, usize> = HashMap::new();
    let mut reader = Reader::new(rl_output, "UnityRLOutputProto");
    while let Some((field, value)) = reader.next_field()? {
        match field {
            2 => {
                let (name, list) = parse_map_entry(
                    value.as_bytes("UnityRLOutputProto", field)?,
                    "AgentInfosEntry",
                )?;
                match entry_index.get(&name) {
                    Some(&index) => entries[index].1 = list,
                    None => {
                        entry_index.insert(name.clone(), entries.len());
                        entries.push((name, list));
                    }
                }
            }
            3 => decoded.side_channel = value.as_bytes("UnityRLOutputProto", field)?.to_vec(),
            _ => {}
        }
    }

    // The last brain announced for a name wins.
    let brains: HashMap<&str, &BrainParameters> = decoded
        .init_output
        .as_ref()
        .map_or(&[][..], |init| init.brain_parameters.as_slice())
        .iter()
        .map(|brain| (brain.brain_name.as_str(), brain))
        .collect();
    let known: HashMap<&str, &KnownSpec> = known.iter().map(|k| (k.name.as_str(), k)).collect();
    let mut ctx = DecodeContext::new(limits, data.len());
    let mut behaviors = Vec::with_capacity(entries.len());
    for (name, list_bytes) in entries {
        let agents = parse_agent_info_list(list_bytes, limits, &name)?;
        let (shapes, branches, new_spec) = match (brains.get(name.as_str()), agents.first()) {
            (Some(brain), Some(first)) => {
                let (spec, shapes) = new_spec_from(brain, first, limits)?;
                (shapes, spec.discrete_branches.clone(), Some(spec))
            }
            _ => match known.get(name.as_str()) {
                Some(spec) => {
                    check_known_spec(spec, limits)?;
                    (
                        spec.observation_shapes.clone(),
                        spec.discrete_branches.clone(),
                        None,
                    )
                }
                None => continue,
            },
        };
        behaviors.push(build_behavior(
            name, &agents, shapes, branches, new_spec, &mut ctx,
        )?);
    }
    decoded.behaviors = behaviors;
    Ok(decoded)
}

/// One observation of a batch, for encoding by the host.
pub struct ObservationBatch<'a> {
    pub shape: &'a [i32],
    pub dimension_properties: &'a [i32],
    pub observation_type: i32,
    pub name: &'a str,
    /// `n_agents * prod(shape)` floats, row-major.
    pub data: &'a [f32],
}

/// Agents of one behavior, for encoding by the host (deciding and terminal mixed).
pub struct AgentBatch<'a> {
    pub name: &'a str,
    pub agent_id: &'a [i32],
    pub reward: &'a [f32],
    pub done: &'a [bool],
    pub max_step_reached: &'a [bool],
    pub group_id: &'a [i32],
    pub group_reward: &'a [f32],
    pub observations: Vec<ObservationBatch<'a>>,
    /// `n_agents * mask_width` flags (true = masked), or empty for no masks.
    pub action_mask: &'a [bool],
    pub mask_width: usize,
}

fn encode_brain_parameters(writer: &mut Writer, brain: &BrainParameters) {
    writer.message(5, |w| write_brain_parameters(w, brain));
}

/// The fields of a `BrainParametersProto` (also the second record of a `.demo` file).
pub(crate) fn write_brain_parameters(w: &mut Writer, brain: &BrainParameters) {
    // The deprecated fields too, so pre-1.3 trainers can read them.
    if brain.discrete_branches.is_empty() {
        w.packed_int32s(3, &[brain.continuous_size]);
        w.int32(6, SPACE_TYPE_CONTINUOUS);
    } else if brain.continuous_size == 0 {
        w.packed_int32s(3, &brain.discrete_branches);
    }
    w.string(7, &brain.brain_name);
    w.bool(8, brain.is_training);
    w.message(9, |spec| {
        spec.int32(1, brain.continuous_size);
        spec.int32(2, brain.discrete_branches.len() as i32);
        spec.packed_int32s(3, &brain.discrete_branches);
        for description in &brain.action_descriptions {
            spec.len_field(4, description.as_bytes());
        }
    });
}

/// Encodes a message from the Unity side: header status, and an output with the
/// given init output (message 1 or brain announcements) and agent batches.
/// `with_output` false gives the empty-output message 2 of the handshake.
pub fn encode_unity_output(
    status: i32,
    with_output: bool,
    init_output: Option<&InitOutput>,
    batches: &[AgentBatch<'_>],
    side_channel: &[u8],
) -> Result<Vec<u8>, ProtoError> {
    for batch in batches {
        check_agent_batch(batch)?;
    }
    let mut message = Writer::new();
    message.message(MESSAGE_HEADER, |h| h.int32(HEADER_STATUS, status));
    if with_output {
        message.message(MESSAGE_OUTPUT, |out| {
            if !batches.is_empty() || !side_channel.is_empty() {
                out.message(1, |rl| {
                    for batch in batches {
                        rl.message(2, |entry| {
                            entry.string(1, batch.name);
                            entry.message(2, |list| encode_agents(list, batch));
                        });
                    }
                    rl.bytes(3, side_channel);
                });
            }
            if let Some(init) = init_output {
                out.message(2, |w| {
                    w.string(1, &init.name);
                    w.string(2, &init.communication_version);
                    w.string(3, &init.log_path);
                    for brain in &init.brain_parameters {
                        encode_brain_parameters(w, brain);
                    }
                    w.string(7, &init.package_version);
                    w.message(8, |c| init.capabilities.encode(c));
                });
            }
        });
    }
    Ok(message.buf)
}

/// Checks that every per-agent array of `batch` has one row per agent.
pub(crate) fn check_agent_batch(batch: &AgentBatch<'_>) -> Result<(), ProtoError> {
    let n = batch.agent_id.len();
    let lengths_ok = [
        batch.reward.len(),
        batch.done.len(),
        batch.max_step_reached.len(),
    ]
    .iter()
    .all(|&len| len == n)
        && batch.group_id.len() == n
        && batch.group_reward.len() == n
        && (batch.action_mask.is_empty() || batch.action_mask.len() == n * batch.mask_width);
    let obs_ok = batch.observations.iter().all(|obs| {
        let elements = obs.shape.iter().try_fold(n, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        });
        elements == Some(obs.data.len())
    });
    if !lengths_ok || !obs_ok {
        return Err(ProtoError::Decode(format!(
            "agent batch {:?}: per-agent arrays do not all have {n} rows",
            batch.name
        )));
    }
    Ok(())
}

fn encode_agents(list: &mut Writer, batch: &AgentBatch<'_>) {
    for agent in 0..batch.agent_id.len() {
        list.message(1, |info| write_agent_info(info, batch, agent));
    }
}

/// The fields of the `AgentInfoProto` of agent `agent` of a checked batch.
pub(crate) fn write_agent_info(info: &mut Writer, batch: &AgentBatch<'_>, agent: usize) {
    info.float(7, batch.reward[agent]);
    info.bool(8, batch.done[agent]);
    info.bool(9, batch.max_step_reached[agent]);
    info.int32(10, batch.agent_id[agent]);
    if !batch.action_mask.is_empty() {
        let row = &batch.action_mask[agent * batch.mask_width..(agent + 1) * batch.mask_width];
        // Unity sends no mask for an agent that masks nothing.
        if row.iter().any(|&m| m) {
            info.packed_bools(11, row);
        }
    }
    for obs in &batch.observations {
        let per_agent = obs.data.len() / batch.agent_id.len().max(1);
        let values = &obs.data[agent * per_agent..(agent + 1) * per_agent];
        info.message(13, |o| {
            o.packed_int32s(1, obs.shape);
            o.message(4, |floats| floats.packed_floats(1, values));
            o.packed_int32s(6, obs.dimension_properties);
            o.int32(7, obs.observation_type);
            o.string(8, obs.name);
        });
    }
    info.int32(14, batch.group_id[agent]);
    info.float(15, batch.group_reward[agent]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_batch<'a>(
        ids: &'a [i32],
        rewards: &'a [f32],
        done: &'a [bool],
        obs: &'a [f32],
        mask: &'a [bool],
    ) -> AgentBatch<'a> {
        AgentBatch {
            name: "Ball?team=0",
            agent_id: ids,
            reward: rewards,
            done,
            max_step_reached: done,
            group_id: &[0, 0, 0][..ids.len()],
            group_reward: &[0.0, 0.0, 0.0][..ids.len()],
            observations: vec![ObservationBatch {
                shape: &[2],
                dimension_properties: &[1],
                observation_type: 0,
                name: "VectorSensor_size2",
                data: obs,
            }],
            action_mask: mask,
            mask_width: 3,
        }
    }

    fn brain(continuous: i32, branches: Vec<i32>) -> InitOutput {
        InitOutput {
            brain_parameters: vec![BrainParameters {
                brain_name: "Ball?team=0".into(),
                is_training: true,
                continuous_size: continuous,
                discrete_branches: branches,
                action_descriptions: vec![],
            }],
            ..InitOutput::default()
        }
    }

    #[test]
    fn round_trip_announces_and_splits_decision_terminal() {
        let init = brain(1, vec![3]);
        let batch = vector_batch(
            &[7, 8, 9],
            &[0.5, 1.0, -1.0],
            &[false, true, false],
            &[0.5, -0.5, 1.0, 2.0, 3.0, 4.0],
            &[false, true, false, false, false, false, true, true, false],
        );
        let bytes = encode_unity_output(200, true, Some(&init), &[batch], b"sc").unwrap();
        let decoded = decode_unity_message(&bytes, &[]).unwrap();
        assert_eq!(decoded.status, 200);
        assert_eq!(decoded.side_channel, b"sc");
        let behavior = &decoded.behaviors[0];
        let spec = behavior.new_spec.as_ref().unwrap();
        assert_eq!(spec.continuous_size, 1);
        assert_eq!(spec.discrete_branches, vec![3]);
        assert_eq!(spec.observations[0].shape, vec![2]);
        assert_eq!(spec.observations[0].name, "VectorSensor_size2");
        assert_eq!(behavior.decision.agent_id, vec![7, 9]);
        assert_eq!(behavior.decision.observations[0], vec![0.5, -0.5, 3.0, 4.0]);
        assert_eq!(behavior.terminal.agent_id, vec![8]);
        assert_eq!(behavior.terminal.reward, vec![1.0]);
        assert_eq!(behavior.terminal.interrupted, vec![true]);
        assert_eq!(
            behavior.action_mask.as_deref(),
            Some(&[false, true, false, true, true, false][..])
        );
    }

    #[test]
    fn unknown_behaviors_are_ignored_and_known_shapes_used() {
        let batch = vector_batch(&[1], &[0.0], &[false], &[1.0, 2.0], &[]);
        let bytes = encode_unity_output(200, true, None, &[batch], b"").unwrap();
        assert!(decode_unity_message(&bytes, &[])
            .unwrap()
            .behaviors
            .is_empty());
        let known = KnownSpec {
            name: "Ball?team=0".into(),
            observation_shapes: vec![vec![2]],
            discrete_branches: vec![2, 1],
        };
        let decoded = decode_unity_message(&bytes, std::slice::from_ref(&known)).unwrap();
        // No mask sent: nothing masked.
        assert_eq!(
            decoded.behaviors[0].action_mask.as_deref(),
            Some(&[false; 3][..])
        );
        let wrong = KnownSpec {
            observation_shapes: vec![vec![3]],
            ..known
        };
        let err = decode_unity_message(&bytes, &[wrong]).unwrap_err();
        assert!(matches!(err, ProtoError::Observation(m) if m.contains("agent with id=1")));
    }

    #[test]
    fn nan_observation_and_reward_rejected() {
        let init = brain(1, vec![]);
        let batch = vector_batch(&[1], &[0.0], &[false], &[f32::NAN, 0.0], &[]);
        let bytes = encode_unity_output(200, true, Some(&init), &[batch], b"").unwrap();
        let err = decode_unity_message(&bytes, &[]).unwrap_err();
        assert_eq!(
            err,
            ProtoError::NonFinite("The observations provided had NaN values.".into())
        );
        let batch = vector_batch(&[1], &[f32::INFINITY], &[true], &[0.0, 0.0], &[]);
        let bytes = encode_unity_output(200, true, Some(&init), &[batch], b"").unwrap();
        let err = decode_unity_message(&bytes, &[]).unwrap_err();
        assert_eq!(
            err,
            ProtoError::NonFinite("The rewards provided had Infinite values.".into())
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let init = brain(2, vec![]);
        let batch = vector_batch(&[1, 2], &[0.0, 1.0], &[false, false], &[1.0; 4], &[]);
        let bytes = encode_unity_output(200, true, Some(&init), &[batch], b"xyz").unwrap();
        for cut in 0..bytes.len() {
            // Either an error or a shorter valid message; never a panic.
            let _ = decode_unity_message(&bytes[..cut], &[]);
        }
        let mut garbage = bytes.clone();
        for byte in garbage.iter_mut().step_by(3) {
            *byte = byte.wrapping_mul(77).wrapping_add(13);
        }
        let _ = decode_unity_message(&garbage, &[]);
        assert!(decode_unity_message(&bytes[..bytes.len() - 1], &[]).is_err());
    }

    #[test]
    fn empty_output_and_close_status() {
        let bytes = encode_unity_output(200, false, None, &[], b"").unwrap();
        assert_eq!(bytes, [0x0a, 0x03, 0x08, 0xc8, 0x01]);
        let decoded = decode_unity_message(&bytes, &[]).unwrap();
        assert!(!decoded.has_output);
        let decoded = decode_unity_message(&[0x0a, 0x03, 0x08, 0x90, 0x03], &[]).unwrap();
        assert_eq!(decoded.status, 400);
    }

    // --- hostile messages: every declared size is checked before allocating -------------

    /// A message announcing behavior "H" (continuous 1 + `branches`) whose agents each
    /// carry the given raw ObservationProto bytes.
    fn hostile_message(branches: &[i32], agents: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut message = Writer::new();
        message.message(MESSAGE_HEADER, |h| h.int32(HEADER_STATUS, 200));
        message.message(MESSAGE_OUTPUT, |out| {
            out.message(1, |rl| {
                rl.message(2, |entry| {
                    entry.string(1, "H");
                    entry.message(2, |list| {
                        for (id, observations) in agents.iter().enumerate() {
                            list.message(1, |info| {
                                info.int32(10, id as i32);
                                for obs in observations {
                                    info.len_field(13, obs);
                                }
                            });
                        }
                    });
                });
            });
            out.message(2, |init| {
                init.message(5, |brain| {
                    brain.string(7, "H");
                    brain.message(9, |spec| {
                        spec.int32(1, 1);
                        spec.int32(2, branches.len() as i32);
                        spec.packed_int32s(3, branches);
                    });
                });
            });
        });
        message.buf
    }

    fn raw_observation(shape: &[i32], floats: &[f32], png: Option<&[u8]>) -> Vec<u8> {
        let mut obs = Writer::new();
        obs.packed_int32s(1, shape);
        match png {
            Some(bytes) => {
                obs.int32(2, 1);
                obs.len_field(3, bytes);
            }
            None => obs.message(4, |f| f.packed_floats(1, floats)),
        }
        obs.buf
    }

    fn limit_error(bytes: &[u8], limits: &DecodeLimits) -> String {
        match decode_unity_message_limited(bytes, &[], limits) {
            Err(ProtoError::Limit(message)) => message,
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn huge_zero_and_overflowing_shapes_are_limit_errors() {
        let limits = DecodeLimits::DEFAULT;
        for shape in [
            &[1 << 20, 1 << 20][..],
            &[0, i32::MAX, i32::MAX],
            &[i32::MAX, i32::MAX],
            &[3, 100_000, 100_000],
        ] {
            let bytes = hostile_message(&[], &[vec![raw_observation(shape, &[0.0], None)]]);
            assert!(bytes.len() < 100);
            let message = limit_error(&bytes, &limits);
            assert!(message.contains("max_observation_elements"), "{message}");
        }
        let deep = hostile_message(&[], &[vec![raw_observation(&[1; 20], &[0.0], None)]]);
        assert!(limit_error(&deep, &limits).contains("rank 20"));
        // A zero dimension next to small ones is a legal empty observation.
        let empty = hostile_message(&[], &[vec![raw_observation(&[0, 4], &[], None)]]);
        let decoded = decode_unity_message(&empty, &[]).unwrap();
        assert_eq!(decoded.behaviors[0].observation_shapes, vec![vec![0, 4]]);
    }

    #[test]
    fn huge_branches_and_known_specs_are_limit_errors() {
        let obs = vec![raw_observation(&[1], &[0.5], None)];
        let bytes = hostile_message(&[i32::MAX; 8], &[obs]);
        assert!(limit_error(&bytes, &DecodeLimits::DEFAULT).contains("max_action_size"));
        // A caller's known spec is checked too.
        let batch = vector_batch(&[1], &[0.0], &[false], &[1.0, 2.0], &[]);
        let bytes = encode_unity_output(200, true, None, &[batch], b"").unwrap();
        for (shape, branches) in [(vec![usize::MAX, 2], vec![]), (vec![2], vec![usize::MAX])] {
            let known = KnownSpec {
                name: "Ball?team=0".into(),
                observation_shapes: vec![shape],
                discrete_branches: branches,
            };
            let err = decode_unity_message(&bytes, &[known]).unwrap_err();
            assert!(matches!(err, ProtoError::Limit(_)), "{err:?}");
        }
    }

    #[test]
    fn png_header_is_checked_before_decoding() {
        let png = crate::proto::png_obs::tests_support::png_with_header(100_000, 100_000);
        let bytes = hostile_message(&[], &[vec![raw_observation(&[3, 8, 8], &[], Some(&png))]]);
        let err = decode_unity_message(&bytes, &[]).unwrap_err();
        assert!(
            matches!(&err, ProtoError::Limit(m) if m.contains("max_png_pixels")),
            "{err:?}"
        );
        // Within the pixel limit but not the declared size: a shape error, nothing decoded.
        let png = crate::proto::png_obs::tests_support::png_with_header(4000, 4000);
        let bytes = hostile_message(&[], &[vec![raw_observation(&[3, 8, 8], &[], Some(&png))]]);
        let err = decode_unity_message(&bytes, &[]).unwrap_err();
        assert!(
            matches!(&err, ProtoError::Observation(m) if m.contains("(3, 4000, 4000)")),
            "{err:?}"
        );
    }

    #[test]
    fn message_budget_bounds_the_decoded_size() {
        let agents: Vec<Vec<Vec<u8>>> = (0..10)
            .map(|_| vec![raw_observation(&[100], &[0.25; 100], None)])
            .collect();
        let bytes = hostile_message(&[2], &agents);
        let roomy = DecodeLimits {
            max_message_bytes: 10 * (400 + 17) + 10 * 2,
            ..DecodeLimits::DEFAULT
        };
        assert!(decode_unity_message_limited(&bytes, &[], &roomy).is_ok());
        let tight = DecodeLimits {
            max_message_bytes: roomy.max_message_bytes - 1,
            ..DecodeLimits::DEFAULT
        };
        assert!(limit_error(&bytes, &tight).contains("max_message_bytes"));
        let few_agents = DecodeLimits {
            max_agents: 9,
            ..DecodeLimits::DEFAULT
        };
        assert!(limit_error(&bytes, &few_agents).contains("max_agents"));
        let one_obs = hostile_message(&[], &[vec![raw_observation(&[1], &[0.0], None); 3]]);
        let few_observations = DecodeLimits {
            max_observations: 2,
            ..DecodeLimits::DEFAULT
        };
        assert!(limit_error(&one_obs, &few_observations).contains("max_observations"));
    }

    #[test]
    fn many_unpacked_values_and_map_entries_decode_in_linear_time() {
        // 200k unpacked shape values and 20k map entries: quadratic code would take minutes.
        let mut obs = Writer::new();
        for _ in 0..200_000 {
            obs.int32(1, 1);
        }
        let mut message = Writer::new();
        message.message(MESSAGE_OUTPUT, |out| {
            out.message(1, |rl| {
                for i in 0..20_000 {
                    rl.message(2, |entry| entry.string(1, &format!("B{i}")));
                }
                rl.message(2, |entry| {
                    entry.string(1, "H");
                    entry.message(2, |list| {
                        list.message(1, |info| info.len_field(13, &obs.buf))
                    });
                });
            });
        });
        let start = std::time::Instant::now();
        let err = decode_unity_message(
            &message.buf,
            &[KnownSpec {
                name: "H".into(),
                observation_shapes: vec![vec![1]],
                discrete_branches: vec![],
            }],
        );
        assert!(matches!(err, Err(ProtoError::Observation(_))));
        assert!(start.elapsed().as_secs() < 5);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    #[test]
    #[ignore]
    fn time_vector_decode() {
        let n = 1000;
        let ids: Vec<i32> = (0..n as i32).collect();
        let zeros_f = vec![0.1f32; n];
        let flags = vec![false; n];
        let zeros_i = vec![0i32; n];
        let obs: Vec<f32> = (0..n * 8).map(|i| i as f32 * 0.001).collect();
        let batch = AgentBatch {
            name: "B",
            agent_id: &ids,
            reward: &zeros_f,
            done: &flags,
            max_step_reached: &flags,
            group_id: &zeros_i,
            group_reward: &zeros_f,
            observations: vec![ObservationBatch {
                shape: &[8],
                dimension_properties: &[1],
                observation_type: 0,
                name: "VectorSensor_size8",
                data: &obs,
            }],
            action_mask: &[],
            mask_width: 0,
        };
        let bytes = encode_unity_output(200, true, None, &[batch], b"").unwrap();
        let known = vec![KnownSpec {
            name: "B".into(),
            observation_shapes: vec![vec![8]],
            discrete_branches: vec![],
        }];
        let mut best = f64::MAX;
        for _ in 0..3000 {
            let start = std::time::Instant::now();
            let decoded = decode_unity_message(&bytes, &known).unwrap();
            std::hint::black_box(decoded);
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!("{} bytes: best {:.1} us", bytes.len(), best * 1e6);
    }
}
