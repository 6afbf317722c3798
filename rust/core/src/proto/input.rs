//! Trainer -> Unity: `UnityMessageProto{header, unity_input}` (docs/protocol.md, "Handshake").
//!
//! The trainer encodes the initialization input, step/reset inputs with the
//! actions of every behavior, and the status-400 close message; the
//! Unity-side host decodes them.

use super::fields::{HEADER_STATUS, MESSAGE_HEADER, MESSAGE_INPUT};
use super::limits::Budget;
use super::wire::{Reader, Writer};
use super::{decode_header_status, Capabilities, DecodeLimits, ProtoError};

pub const COMMAND_STEP: i32 = 0;
pub const COMMAND_RESET: i32 = 1;
pub const COMMAND_QUIT: i32 = 2;

/// `UnityRLInitializationInputProto`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InitInput {
    pub seed: i32,
    pub communication_version: String,
    pub package_version: String,
    pub capabilities: Capabilities,
    pub num_areas: i32,
}

/// Actions of one behavior: one row per agent that asked for a decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BehaviorActions {
    pub name: String,
    pub n_agents: usize,
    /// `n_agents * continuous_size`, row-major.
    pub continuous: Vec<f32>,
    pub continuous_size: usize,
    /// `n_agents * discrete_size`, row-major.
    pub discrete: Vec<i32>,
    pub discrete_size: usize,
}

/// `UnityRLInputProto`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RlInput {
    pub command: i32,
    pub side_channel: Vec<u8>,
    pub actions: Vec<BehaviorActions>,
}

/// A decoded `UnityMessageProto` from the trainer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedInput {
    pub status: i32,
    pub init_input: Option<InitInput>,
    pub rl_input: Option<RlInput>,
}

fn header(writer: &mut Writer, status: i32) {
    writer.message(MESSAGE_HEADER, |h| h.int32(HEADER_STATUS, status));
}

/// The first message the trainer sends (status 200, initialization input only).
pub fn encode_init_input(init: &InitInput) -> Vec<u8> {
    let mut message = Writer::new();
    header(&mut message, 200);
    message.message(MESSAGE_INPUT, |input| {
        input.message(2, |w| {
            w.int32(1, init.seed);
            w.string(2, &init.communication_version);
            w.string(3, &init.package_version);
            w.message(4, |c| init.capabilities.encode(c));
            w.int32(5, init.num_areas);
        });
    });
    message.buf
}

/// A step or reset input (status 200) with the actions of each behavior.
/// Each `AgentActionProto` carries continuous, discrete and the deprecated
/// vector (continuous then discrete, as floats), as ML-Agents 1.1.0 sends.
pub fn encode_rl_input(rl: &RlInput) -> Result<Vec<u8>, ProtoError> {
    for actions in &rl.actions {
        if actions.continuous.len() != actions.n_agents * actions.continuous_size
            || actions.discrete.len() != actions.n_agents * actions.discrete_size
        {
            return Err(ProtoError::Decode(format!(
                "actions of {:?}: array sizes do not match {} agents",
                actions.name, actions.n_agents
            )));
        }
    }
    let mut message = Writer::new();
    header(&mut message, 200);
    message.message(MESSAGE_INPUT, |input| {
        input.message(1, |w| {
            for actions in rl.actions.iter().filter(|a| a.n_agents > 0) {
                w.message(1, |entry| {
                    entry.string(1, &actions.name);
                    entry.message(2, |list| {
                        let mut deprecated =
                            Vec::with_capacity(actions.continuous_size + actions.discrete_size);
                        for agent in 0..actions.n_agents {
                            let continuous = &actions.continuous[agent * actions.continuous_size
                                ..(agent + 1) * actions.continuous_size];
                            let discrete = &actions.discrete[agent * actions.discrete_size
                                ..(agent + 1) * actions.discrete_size];
                            deprecated.clear();
                            deprecated.extend_from_slice(continuous);
                            deprecated.extend(discrete.iter().map(|&d| d as f32));
                            list.message(1, |action| {
                                action.packed_floats(1, &deprecated);
                                action.packed_floats(6, continuous);
                                action.packed_int32s(7, discrete);
                            });
                        }
                    });
                });
            }
            w.int32(4, rl.command);
            w.bytes(5, &rl.side_channel);
        });
    });
    Ok(message.buf)
}

/// The close message: `header{status: 400}` and nothing else.
pub fn encode_close() -> Vec<u8> {
    let mut message = Writer::new();
    header(&mut message, 400);
    message.buf
}

fn decode_init_input(bytes: &[u8]) -> Result<InitInput, ProtoError> {
    const CTX: &str = "UnityRLInitializationInputProto";
    let mut init = InitInput::default();
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => init.seed = value.as_int32(CTX, field)?,
            2 => init.communication_version = value.as_string(CTX, field)?,
            3 => init.package_version = value.as_string(CTX, field)?,
            4 => init.capabilities = Capabilities::decode(value.as_bytes(CTX, field)?)?,
            5 => init.num_areas = value.as_int32(CTX, field)?,
            _ => {}
        }
    }
    Ok(init)
}

/// Bytes one decoded action value takes (f32 or i32), charged to the message budget.
const ACTION_VALUE_BYTES: usize = 4;

fn decode_actions(
    name: String,
    bytes: &[u8],
    limits: &DecodeLimits,
    budget: &mut Budget,
) -> Result<BehaviorActions, ProtoError> {
    const CTX: &str = "AgentActionProto";
    let mut actions = BehaviorActions {
        name,
        ..BehaviorActions::default()
    };
    // The deprecated vector of every agent, flat, kept only while no agent has continuous
    // or discrete actions (pre-1.3 trainers); None once rows of different widths came.
    let mut deprecated_flat: Option<Vec<f32>> = Some(Vec::new());
    let mut deprecated_width = 0usize;
    let mut list = Reader::new(bytes, "ListAgentActionProto");
    while let Some((field, value)) = list.next_field()? {
        if field != 1 {
            continue;
        }
        DecodeLimits::check(
            actions.n_agents.checked_add(1),
            limits.max_agents,
            "max_agents",
            || format!("the agent count of the actions of {:?}", actions.name),
        )?;
        let mut continuous = Vec::new();
        let mut discrete = Vec::new();
        let mut deprecated = Vec::new();
        let mut reader = Reader::new(value.as_bytes("ListAgentActionProto", field)?, CTX);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => value.push_floats(&mut deprecated, CTX, field)?,
                6 => value.push_floats(&mut continuous, CTX, field)?,
                7 => value.push_int32s(&mut discrete, CTX, field)?,
                _ => {}
            }
        }
        if actions.n_agents == 0 {
            let what = || format!("the actions of {:?}", actions.name);
            DecodeLimits::check(
                Some(continuous.len()),
                limits.max_action_size,
                "max_action_size",
                || format!("the continuous action count of {}", what()),
            )?;
            DecodeLimits::check(
                Some(discrete.len()),
                limits.max_discrete_branches,
                "max_discrete_branches",
                || format!("the discrete branch count of {}", what()),
            )?;
            if continuous.is_empty() && discrete.is_empty() {
                // Only then is the deprecated vector kept (as continuous actions).
                DecodeLimits::check(
                    Some(deprecated.len()),
                    limits.max_action_size,
                    "max_action_size",
                    || format!("the deprecated action vector of {}", what()),
                )?;
            }
            actions.continuous_size = continuous.len();
            actions.discrete_size = discrete.len();
            deprecated_width = deprecated.len();
        } else if continuous.len() != actions.continuous_size
            || discrete.len() != actions.discrete_size
        {
            return Err(ProtoError::Decode(format!(
                "actions of {:?}: agent {} has {} continuous and {} discrete actions, agent 0 had {} and {}",
                actions.name,
                actions.n_agents,
                continuous.len(),
                discrete.len(),
                actions.continuous_size,
                actions.discrete_size
            )));
        }
        let keep_deprecated = actions.continuous_size == 0
            && actions.discrete_size == 0
            && deprecated.len() == deprecated_width;
        let kept = if keep_deprecated { deprecated.len() } else { 0 };
        budget.charge(
            continuous.len() + discrete.len() + kept,
            ACTION_VALUE_BYTES,
            || format!("the actions of {:?}", actions.name),
        )?;
        actions.continuous.extend(continuous);
        actions.discrete.extend(discrete);
        deprecated_flat = match deprecated_flat {
            Some(mut flat) if keep_deprecated => {
                flat.extend(deprecated);
                Some(flat)
            }
            _ => None,
        };
        actions.n_agents += 1;
    }
    // Pre-1.3 trainers only fill the deprecated vector: treat it as continuous.
    if let Some(flat) = deprecated_flat {
        if actions.n_agents > 0 && actions.continuous_size == 0 && actions.discrete_size == 0 {
            actions.continuous_size = deprecated_width;
            actions.continuous = flat;
        }
    }
    Ok(actions)
}

fn decode_rl_input(
    bytes: &[u8],
    limits: &DecodeLimits,
    budget: &mut Budget,
) -> Result<RlInput, ProtoError> {
    const CTX: &str = "UnityRLInputProto";
    let mut rl = RlInput::default();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => {
                let mut name = String::new();
                let mut list: &[u8] = &[];
                let mut entry = Reader::new(value.as_bytes(CTX, field)?, "AgentActionsEntry");
                while let Some((entry_field, entry_value)) = entry.next_field()? {
                    match entry_field {
                        1 => name = entry_value.as_string("AgentActionsEntry", entry_field)?,
                        2 => list = entry_value.as_bytes("AgentActionsEntry", entry_field)?,
                        _ => {}
                    }
                }
                // Map semantics: a later entry for a name replaces the earlier one (by hash,
                // so many entries cost linear time).
                let actions = decode_actions(name, list, limits, budget)?;
                match index.get(&actions.name) {
                    Some(&at) => rl.actions[at] = actions,
                    None => {
                        index.insert(actions.name.clone(), rl.actions.len());
                        rl.actions.push(actions);
                    }
                }
            }
            4 => rl.command = value.as_int32(CTX, field)?,
            5 => rl.side_channel = value.as_bytes(CTX, field)?.to_vec(),
            _ => {}
        }
    }
    Ok(rl)
}

/// [`decode_unity_input_limited`] with the default [`DecodeLimits`].
pub fn decode_unity_input(data: &[u8]) -> Result<DecodedInput, ProtoError> {
    decode_unity_input_limited(data, &DecodeLimits::DEFAULT)
}

/// Decodes a message from the trainer (used by the Unity-side host). Like the decoder of
/// messages from Unity, it never panics or allocates more than the bytes present allow:
/// agent counts, action sizes and the decoded size are checked against `limits`
/// (`max_agents`, `max_action_size`, `max_discrete_branches`, `max_message_bytes`).
pub fn decode_unity_input_limited(
    data: &[u8],
    limits: &DecodeLimits,
) -> Result<DecodedInput, ProtoError> {
    const CTX: &str = "UnityMessageProto";
    let mut budget = Budget::new(limits);
    let mut decoded = DecodedInput::default();
    let mut reader = Reader::new(data, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            MESSAGE_HEADER => decoded.status = decode_header_status(value.as_bytes(CTX, field)?)?,
            MESSAGE_INPUT => {
                let mut input = Reader::new(value.as_bytes(CTX, field)?, "UnityInputProto");
                while let Some((input_field, input_value)) = input.next_field()? {
                    match input_field {
                        1 => {
                            decoded.rl_input = Some(decode_rl_input(
                                input_value.as_bytes("UnityInputProto", input_field)?,
                                limits,
                                &mut budget,
                            )?)
                        }
                        2 => {
                            decoded.init_input = Some(decode_init_input(
                                input_value.as_bytes("UnityInputProto", input_field)?,
                            )?)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn init_input_matches_protocol_bytes() {
        let init = InitInput {
            seed: 42,
            communication_version: "1.5.0".into(),
            package_version: "1.1.0".into(),
            capabilities: Capabilities::all(),
            num_areas: 1,
        };
        let expected = [
            hex("0a0308c801 1a24 1222 082a 1205"),
            b"1.5.0".to_vec(),
            hex("1a05"),
            b"1.1.0".to_vec(),
            hex("220e 0801100118012001280130013801 2801"),
        ]
        .concat();
        let bytes = encode_init_input(&init);
        assert_eq!(bytes, expected);
        assert_eq!(decode_unity_input(&bytes).unwrap().init_input, Some(init));
    }

    #[test]
    fn rl_input_round_trip_with_deprecated_vector() {
        let rl = RlInput {
            command: COMMAND_STEP,
            side_channel: vec![1, 2, 3],
            actions: vec![
                BehaviorActions {
                    name: "A".into(),
                    n_agents: 2,
                    continuous: vec![0.25, -1.0],
                    continuous_size: 1,
                    discrete: vec![2, 0],
                    discrete_size: 1,
                },
                BehaviorActions {
                    name: "empty".into(),
                    ..BehaviorActions::default()
                },
            ],
        };
        let bytes = encode_rl_input(&rl).unwrap();
        // First AgentActionProto: vector_actions_deprecated [0.25, 2.0], continuous [0.25], discrete [2].
        let first_action = [
            hex("0a08 0000803e 00000040"),
            hex("3204 0000803e"),
            hex("3a01 02"),
        ]
        .concat();
        assert!(bytes.windows(first_action.len()).any(|w| w == first_action));
        let decoded = decode_unity_input(&bytes).unwrap();
        assert_eq!(decoded.status, 200);
        let decoded_rl = decoded.rl_input.unwrap();
        assert_eq!(decoded_rl.actions, vec![rl.actions[0].clone()]);
        assert_eq!(decoded_rl.side_channel, vec![1, 2, 3]);
        assert_eq!(decoded_rl.command, COMMAND_STEP);
    }

    #[test]
    fn close_and_reset_bytes() {
        assert_eq!(encode_close(), hex("0a03089003"));
        let reset = encode_rl_input(&RlInput {
            command: COMMAND_RESET,
            ..RlInput::default()
        })
        .unwrap();
        assert_eq!(reset, hex("0a0308c801 1a04 0a02 2001"));
        let step = encode_rl_input(&RlInput::default()).unwrap();
        assert_eq!(step, hex("0a0308c801 1a02 0a00"));
    }

    #[test]
    fn mismatched_action_sizes_rejected() {
        let rl = RlInput {
            actions: vec![BehaviorActions {
                name: "A".into(),
                n_agents: 2,
                continuous: vec![0.0],
                continuous_size: 1,
                ..BehaviorActions::default()
            }],
            ..RlInput::default()
        };
        assert!(encode_rl_input(&rl).is_err());
    }

    fn step_with(n_agents: usize, continuous_size: usize, discrete_size: usize) -> Vec<u8> {
        encode_rl_input(&RlInput {
            actions: vec![BehaviorActions {
                name: "A".into(),
                n_agents,
                continuous: vec![0.5; n_agents * continuous_size],
                continuous_size,
                discrete: vec![1; n_agents * discrete_size],
                discrete_size,
            }],
            ..RlInput::default()
        })
        .unwrap()
    }

    fn limit_error(bytes: &[u8], limits: &DecodeLimits) -> String {
        match decode_unity_input_limited(bytes, limits) {
            Err(ProtoError::Limit(message)) => message,
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn sizes_from_the_trainer_are_checked_against_the_limits() {
        let bytes = step_with(4, 3, 2);
        let roomy = DecodeLimits {
            max_agents: 4,
            max_action_size: 3,
            max_discrete_branches: 2,
            max_message_bytes: 4 * (3 + 2) * 4,
            ..DecodeLimits::DEFAULT
        };
        let decoded = decode_unity_input_limited(&bytes, &roomy).unwrap();
        assert_eq!(decoded.rl_input.unwrap().actions[0].n_agents, 4);
        for (tight, limit) in [
            (
                DecodeLimits {
                    max_agents: 3,
                    ..roomy
                },
                "max_agents",
            ),
            (
                DecodeLimits {
                    max_action_size: 2,
                    ..roomy
                },
                "max_action_size",
            ),
            (
                DecodeLimits {
                    max_discrete_branches: 1,
                    ..roomy
                },
                "max_discrete_branches",
            ),
            (
                DecodeLimits {
                    max_message_bytes: roomy.max_message_bytes - 1,
                    ..roomy
                },
                "max_message_bytes",
            ),
        ] {
            let message = limit_error(&bytes, &tight);
            assert!(
                message.contains(limit) && message.contains("\"A\""),
                "{message}"
            );
        }
    }

    #[test]
    fn many_empty_agents_stop_at_max_agents() {
        // 2 bytes per agent: a small message may not make a long list of empty rows.
        let mut list = Writer::new();
        for _ in 0..10_000 {
            list.message(1, |_| {});
        }
        let mut message = Writer::new();
        message.message(MESSAGE_INPUT, |input| {
            input.message(1, |rl| {
                rl.message(1, |entry| {
                    entry.string(1, "A");
                    entry.len_field(2, &list.buf);
                })
            })
        });
        let limits = DecodeLimits {
            max_agents: 100,
            ..DecodeLimits::DEFAULT
        };
        assert!(limit_error(&message.buf, &limits).contains("max_agents"));
        let decoded = decode_unity_input(&message.buf).unwrap();
        assert_eq!(decoded.rl_input.unwrap().actions[0].n_agents, 10_000);
    }

    #[test]
    fn deprecated_vectors_of_different_widths_are_not_actions() {
        let mut list = Writer::new();
        for width in [2, 3] {
            list.message(1, |action| action.packed_floats(1, &vec![1.0; width]));
        }
        let mut message = Writer::new();
        message.message(MESSAGE_INPUT, |input| {
            input.message(1, |rl| {
                rl.message(1, |entry| {
                    entry.string(1, "A");
                    entry.len_field(2, &list.buf);
                })
            })
        });
        let actions = &decode_unity_input(&message.buf)
            .unwrap()
            .rl_input
            .unwrap()
            .actions[0];
        assert_eq!((actions.n_agents, actions.continuous_size), (2, 0));
        assert!(actions.continuous.is_empty());
    }
}
