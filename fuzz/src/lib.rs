//! Fuzzing the Unity message decoder (`mlagents_fast_core::proto`) on stable Rust.
//!
//! cargo-fuzz needs a nightly compiler; this crate gets most of its value on stable:
//!
//! - **structure-aware generation**: random bytes are turned by the `arbitrary` crate into a
//!   [`MessageModel`] (behaviors, agents, observations with shapes drawn from interesting
//!   sizes, real or forged PNGs, brain parameters, side-channel records, known specs), which
//!   is encoded with the decoder's own protobuf writer, so most inputs get deep into the
//!   decoder instead of failing on the first byte;
//! - **mutation**: generated messages and the committed corpus (`tests/fuzz_corpus/`) get
//!   byte-level edits (bit flips, interesting varints and int32s, insertions, deletions,
//!   splices, truncations);
//! - **oracles** ([`run_one`]): every decoder entry point (Unity messages, trainer
//!   messages, PNG observations, `.demo` files) must return (no panic: caught and
//!   reported), a successful decode must have arrays of the sizes its shapes say (action
//!   arrays of trainer messages too: a quarter of the generated inputs are trainer
//!   messages, [`TrainerMessageModel`]), and the
//!   `fuzz_decoder` binary adds an allocation cap (any single allocation above it is a
//!   finding: the decoder allocated before checking a size) and a per-input time limit.
//!
//! Input `i` of a campaign with seed `s` depends only on `(s, i)` and the corpus, so a
//! finding is reproduced with `--seed s --start i --iterations 1`.

use arbitrary::{Arbitrary, Unstructured};
use mlagents_fast_core::demo;
use mlagents_fast_core::proto::output::{self, KnownSpec};
use mlagents_fast_core::proto::wire::Writer;
use mlagents_fast_core::proto::{input, png_obs, DecodeLimits, ProtoError};
use rand::{Rng, RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Sizes worth trying: boundaries of the limits, of integer types, and of real scenes.
pub const INTERESTING: [i64; 30] = [
    0,
    1,
    2,
    3,
    4,
    8,
    84,
    255,
    256,
    1000,
    4096,
    65535,
    65536,
    100_000,
    1 << 20,
    (1 << 20) + 1,
    1 << 24,
    1 << 26,
    (1 << 26) + 1,
    (1 << 31) - 1,
    1 << 31,
    (1 << 32) - 1,
    1 << 32,
    i64::MAX,
    -1,
    -2,
    -(1 << 31),
    i64::MIN,
    3 * 84 * 84,
    1 << 16,
];

/// The limits the fuzzer decodes with: small enough that the allocation cap of the
/// `fuzz_decoder` binary catches any allocation made before a size was checked.
pub const FUZZ_LIMITS: DecodeLimits = DecodeLimits {
    max_agents: 4096,
    max_observations: 64,
    max_observation_elements: 1 << 20,
    max_png_pixels: 1 << 20,
    max_discrete_branches: 64,
    max_action_size: 1 << 16,
    max_message_bytes: 64 << 20,
};

const NAMES: [&str; 4] = ["A", "B?team=0", "C?team=1", "D"];

/// A size: mostly small, sometimes interesting.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Size {
    Small(u8),
    Interesting(u8),
}

impl Size {
    pub fn value(self) -> i64 {
        match self {
            Size::Small(v) => i64::from(v % 9),
            Size::Interesting(i) => INTERESTING[usize::from(i) % INTERESTING.len()],
        }
    }

    fn as_i32(self) -> i32 {
        self.value() as i32
    }
}

#[derive(Arbitrary, Debug)]
pub struct PngModel {
    width: Size,
    height: Size,
    color: u8,
    depth: u8,
    data: Vec<u8>,
    good_crc: bool,
}

#[derive(Arbitrary, Debug)]
pub enum Payload {
    /// Exactly as many floats as the shape says (when small), so decodes succeed.
    FloatsForShape(u8),
    Floats(Vec<f32>),
    /// Real PNGs of the shape's height and width, `channels` per image.
    RealPngs(Vec<u8>),
    /// PNG headers and chunks chosen by the fuzzer.
    ForgedPngs(Vec<PngModel>),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub struct ObservationModel {
    shape: Vec<Size>,
    compression: Size,
    payload: Payload,
    mapping: Vec<i8>,
    dimension_properties: Vec<Size>,
    observation_type: Size,
    name: Vec<u8>,
    unpacked_shape: bool,
}

#[derive(Arbitrary, Debug)]
pub struct AgentModel {
    id: i32,
    reward: f32,
    done: bool,
    max_step_reached: bool,
    mask: Vec<bool>,
    observations: Vec<ObservationModel>,
    group_id: i32,
    group_reward: f32,
    repeat: u8,
}

#[derive(Arbitrary, Debug)]
pub struct BrainModel {
    name: u8,
    continuous: Size,
    branches: Vec<Size>,
    deprecated: bool,
    space_type: Size,
}

#[derive(Arbitrary, Debug)]
pub struct SideRecord {
    channel: u8,
    length: Option<Size>,
    payload: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
pub struct KnownModel {
    name: u8,
    shapes: Vec<Vec<Size>>,
    branches: Vec<Size>,
}

/// A message from Unity as the fuzzer sees it, plus what the trainer already knows.
#[derive(Arbitrary, Debug)]
pub struct MessageModel {
    status: Size,
    behaviors: Vec<(u8, Vec<AgentModel>)>,
    brains: Vec<BrainModel>,
    side_channel: Vec<SideRecord>,
    handshake_fields: bool,
    known: Vec<KnownModel>,
}

fn name(index: u8) -> &'static str {
    NAMES[usize::from(index) % NAMES.len()]
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8], good_crc: bool) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    let crc = crc.finalize() ^ u32::from(!good_crc);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib with stored (uncompressed) blocks: no compressor needed.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A valid 8-bit PNG of `width x height` with `channels` (1-4) samples per pixel.
pub fn png_image(width: u32, height: u32, channels: u8, seed: u8) -> Vec<u8> {
    let color_type = match channels {
        1 => 0,
        2 => 4,
        3 => 2,
        _ => 6,
    };
    let samples = usize::from(channels.clamp(1, 4));
    let mut rows = Vec::new();
    for y in 0..height as usize {
        rows.push(0); // filter: none
        for x in 0..width as usize * samples {
            rows.push((x * 31 + y * 7) as u8 ^ seed);
        }
    }
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, color_type, 0, 0, 0]);
    let mut png = png_obs::PNG_SIGNATURE.to_vec();
    chunk(&mut png, b"IHDR", &ihdr, true);
    chunk(&mut png, b"IDAT", &zlib_stored(&rows), true);
    chunk(&mut png, b"IEND", &[], true);
    png
}

fn forged_png(model: &PngModel) -> Vec<u8> {
    let mut ihdr = (model.width.value() as u32).to_be_bytes().to_vec();
    ihdr.extend_from_slice(&(model.height.value() as u32).to_be_bytes());
    ihdr.extend_from_slice(&[model.depth % 17, model.color % 7, 0, 0, 0]);
    let mut png = png_obs::PNG_SIGNATURE.to_vec();
    chunk(&mut png, b"IHDR", &ihdr, model.good_crc);
    chunk(&mut png, b"IDAT", &zlib_stored(&model.data), true);
    chunk(&mut png, b"IEND", &[], true);
    png
}

fn encode_observation(writer: &mut Writer, obs: &ObservationModel) {
    let shape: Vec<i32> = obs.shape.iter().map(|s| s.as_i32()).collect();
    writer.message(13, |o| {
        if obs.unpacked_shape {
            for &dim in &shape {
                o.varint(1 << 3);
                o.varint(i64::from(dim) as u64);
            }
        } else {
            o.packed_int32s(1, &shape);
        }
        o.int32(2, obs.compression.as_i32());
        match &obs.payload {
            Payload::FloatsForShape(seed) => {
                let count = shape
                    .iter()
                    .try_fold(1i64, |p, &d| p.checked_mul(i64::from(d)))
                    .filter(|&c| (0..=4096).contains(&c))
                    .unwrap_or(1);
                let values: Vec<f32> = (0..count).map(|i| (i as f32) * f32::from(*seed)).collect();
                o.message(4, |f| f.packed_floats(1, &values));
            }
            Payload::Floats(values) => o.message(4, |f| f.packed_floats(1, values)),
            Payload::RealPngs(channels) => {
                let h = shape.get(1).copied().unwrap_or(1).clamp(1, 64) as u32;
                let w = shape.get(2).copied().unwrap_or(1).clamp(1, 64) as u32;
                let mut data = Vec::new();
                for (i, &c) in channels.iter().take(4).enumerate() {
                    data.extend(png_image(w, h, c % 4 + 1, i as u8));
                }
                o.len_field(3, &data);
            }
            Payload::ForgedPngs(images) => {
                let data: Vec<u8> = images.iter().take(4).flat_map(forged_png).collect();
                o.len_field(3, &data);
            }
            Payload::Bytes(bytes) => o.len_field(3, bytes),
        }
        let mapping: Vec<i32> = obs.mapping.iter().map(|&m| i32::from(m) % 5).collect();
        o.packed_int32s(5, &mapping);
        let properties: Vec<i32> = obs
            .dimension_properties
            .iter()
            .map(|s| s.as_i32())
            .collect();
        o.packed_int32s(6, &properties);
        o.int32(7, obs.observation_type.as_i32());
        o.bytes(8, &obs.name);
    });
}

fn encode_agent(writer: &mut Writer, agent: &AgentModel) {
    writer.message(1, |info| {
        info.float(7, agent.reward);
        info.bool(8, agent.done);
        info.bool(9, agent.max_step_reached);
        info.int32(10, agent.id);
        info.packed_bools(11, &agent.mask);
        for obs in agent.observations.iter().take(8) {
            encode_observation(info, obs);
        }
        info.int32(14, agent.group_id);
        info.float(15, agent.group_reward);
    });
}

fn encode_brain(writer: &mut Writer, brain: &BrainModel) {
    let branches: Vec<i32> = brain.branches.iter().map(|s| s.as_i32()).collect();
    writer.message(5, |w| {
        w.string(7, name(brain.name));
        w.bool(8, true);
        if brain.deprecated {
            let sizes = if branches.is_empty() {
                vec![brain.continuous.as_i32()]
            } else {
                branches.clone()
            };
            w.packed_int32s(3, &sizes);
            w.int32(6, brain.space_type.as_i32());
        } else {
            w.message(9, |spec| {
                spec.int32(1, brain.continuous.as_i32());
                spec.int32(2, branches.len() as i32);
                spec.packed_int32s(3, &branches);
            });
        }
    });
}

const CHANNEL_IDS: [[u8; 16]; 3] = [
    // Stats, engine configuration (bytes_le order), and an unknown id.
    [
        0xb7, 0xf7, 0xd8, 0xa1, 0xc8, 0xce, 0xf9, 0x50, 0xb7, 0x8b, 0xd3, 0xe1, 0x65, 0xa7, 0x85,
        0x20,
    ],
    [
        0x2c, 0x34, 0x51, 0xe9, 0x7e, 0x4f, 0xea, 0x11, 0xb2, 0x38, 0x78, 0x4f, 0x43, 0x87, 0xd1,
        0xf7,
    ],
    [7; 16],
];

/// The side-channel field of a message: up to 8 records (id, declared length, payload).
fn side_channel_bytes(records: &[SideRecord]) -> Vec<u8> {
    let mut side = Vec::new();
    for record in records.iter().take(8) {
        side.extend_from_slice(&CHANNEL_IDS[usize::from(record.channel) % 3]);
        let length = record
            .length
            .map_or(record.payload.len() as i32, |s| s.as_i32());
        side.extend_from_slice(&length.to_le_bytes());
        side.extend_from_slice(&record.payload);
    }
    side
}

impl MessageModel {
    /// The message bytes and the known specs to decode them with.
    pub fn encode(&self) -> (Vec<u8>, Vec<KnownSpec>) {
        let mut message = Writer::new();
        message.message(1, |h| h.int32(1, self.status.as_i32()));
        message.message(2, |out| {
            out.message(1, |rl| {
                for (name_index, agents) in self.behaviors.iter().take(4) {
                    rl.message(2, |entry| {
                        entry.string(1, name(*name_index));
                        entry.message(2, |list| {
                            for agent in agents.iter().take(16) {
                                for _ in 0..=agent.repeat % 4 {
                                    encode_agent(list, agent);
                                }
                            }
                        });
                    });
                }
                rl.bytes(3, &side_channel_bytes(&self.side_channel));
            });
            if !self.brains.is_empty() || self.handshake_fields {
                out.message(2, |init| {
                    if self.handshake_fields {
                        init.string(1, "AcademySingleton");
                        init.string(2, "1.5.0");
                        init.message(8, |c| {
                            for field in 1..=7 {
                                c.bool(field, true);
                            }
                        });
                    }
                    for brain in self.brains.iter().take(4) {
                        encode_brain(init, brain);
                    }
                });
            }
        });
        let known = self
            .known
            .iter()
            .take(4)
            .map(|k| KnownSpec {
                name: name(k.name).to_string(),
                observation_shapes: k
                    .shapes
                    .iter()
                    .take(4)
                    .map(|s| s.iter().map(|d| d.value().max(0) as usize).collect())
                    .collect(),
                discrete_branches: k
                    .branches
                    .iter()
                    .map(|d| d.value().max(0) as usize)
                    .collect(),
            })
            .collect();
        (message.buf, known)
    }
}

/// One `AgentActionProto` of a trainer message: value counts (continuous, discrete, the
/// deprecated vector), some of them far above the fuzzing limits.
#[derive(Arbitrary, Debug)]
pub struct TrainerAgentModel {
    continuous: Size,
    discrete: Size,
    deprecated: Size,
    unpacked: bool,
    /// Copies of this agent: a few, or (255, small agents) just past `FUZZ_LIMITS.max_agents`.
    repeat: u8,
}

/// A message from the trainer (what the Unity-side host decodes), as the fuzzer sees it.
#[derive(Arbitrary, Debug)]
pub struct TrainerMessageModel {
    status: Size,
    init: Option<(i32, Size, Vec<bool>)>,
    behaviors: Vec<(u8, Vec<TrainerAgentModel>)>,
    command: Size,
    side_channel: Vec<SideRecord>,
}

/// A count for a generated array: the size itself when it is small, else just past the
/// largest action limit (the encoder never writes millions of values).
fn action_count(size: Size) -> usize {
    let wanted = size.value().max(0) as usize;
    wanted.min(FUZZ_LIMITS.max_action_size + 1)
}

/// Writes `agent` (its copies: a few, or just past `FUZZ_LIMITS.max_agents` for small
/// agents), keeping each generated message under a few megabytes.
fn encode_trainer_agent(list: &mut Writer, agent: &TrainerAgentModel) {
    let continuous = vec![0.5f32; action_count(agent.continuous)];
    let discrete = vec![1i32; action_count(agent.discrete).min(4096)];
    let deprecated = vec![0.25f32; action_count(agent.deprecated)];
    let width = continuous.len() + discrete.len() + deprecated.len();
    let copies = match agent.repeat {
        255 if width <= 8 => FUZZ_LIMITS.max_agents + 1,
        _ if width > 4096 => 1,
        r => 1 + usize::from(r % 4),
    };
    for _ in 0..copies {
        encode_action(list, agent, &continuous, &discrete, &deprecated);
    }
}

fn encode_action(
    list: &mut Writer,
    agent: &TrainerAgentModel,
    continuous: &[f32],
    discrete: &[i32],
    deprecated: &[f32],
) {
    list.message(1, |action| {
        if agent.unpacked {
            for &value in deprecated {
                action.float(1, value);
            }
            for &value in discrete {
                action.int32(7, value);
            }
        } else {
            action.packed_floats(1, deprecated);
            action.packed_int32s(7, discrete);
        }
        action.packed_floats(6, continuous);
    });
}

impl TrainerMessageModel {
    pub fn encode(&self) -> Vec<u8> {
        let mut message = Writer::new();
        message.message(1, |h| h.int32(1, self.status.as_i32()));
        message.message(2, |input| {
            input.message(1, |rl| {
                for (name_index, agents) in self.behaviors.iter().take(4) {
                    rl.message(1, |entry| {
                        entry.string(1, name(*name_index));
                        entry.message(2, |list| {
                            for agent in agents.iter().take(8) {
                                encode_trainer_agent(list, agent);
                            }
                        });
                    });
                }
                rl.int32(4, self.command.as_i32());
                rl.bytes(5, &side_channel_bytes(&self.side_channel));
            });
            if let Some((seed, num_areas, capabilities)) = &self.init {
                input.message(2, |init| {
                    init.int32(1, *seed);
                    init.string(2, "1.5.0");
                    init.string(3, "1.1.0");
                    init.message(4, |c| {
                        for (field, &flag) in (1..=7).zip(capabilities.iter()) {
                            c.bool(field, flag);
                        }
                    });
                    init.int32(5, num_areas.as_i32());
                });
            }
        });
        message.buf
    }
}

fn write_varint(out: &mut Vec<u8>, value: u64) {
    let mut writer = Writer::new();
    writer.varint(value);
    out.extend_from_slice(&writer.buf);
}

/// One byte-level edit of `data`; `others` are spliced from.
pub fn mutate_bytes(data: &mut Vec<u8>, rng: &mut impl Rng, others: &[Vec<u8>]) {
    if data.is_empty() {
        data.extend((0..rng.random_range(1..16)).map(|_| rng.random::<u8>()));
        return;
    }
    let at = rng.random_range(0..data.len());
    match rng.random_range(0..9) {
        0 => data[at] ^= 1 << rng.random_range(0..8),
        1 => data[at] = [0, 1, 0x7f, 0x80, 0xff, rng.random()][rng.random_range(0..6)],
        2 => {
            let bytes: Vec<u8> = (0..rng.random_range(1..9)).map(|_| rng.random()).collect();
            data.splice(at..at, bytes);
        }
        3 => {
            let end = (at + rng.random_range(1..17)).min(data.len());
            data.drain(at..end);
        }
        4 => {
            let end = (at + rng.random_range(1..33)).min(data.len());
            let copy = data[at..end].to_vec();
            let to = rng.random_range(0..data.len());
            data.splice(to..to, copy);
        }
        5 => data.truncate(at),
        6 if !others.is_empty() => {
            let other = &others[rng.random_range(0..others.len())];
            let from = rng.random_range(0..=other.len());
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        7 => {
            let value = INTERESTING[rng.random_range(0..INTERESTING.len())] as u32;
            let end = (at + 4).min(data.len());
            data.splice(at..end, value.to_le_bytes());
        }
        _ => {
            let mut varint = Vec::new();
            write_varint(
                &mut varint,
                INTERESTING[rng.random_range(0..INTERESTING.len())] as u64,
            );
            data.splice(at..at, varint);
        }
    }
}

/// Input `index` of the campaign `seed`: a generated message or a corpus entry, mutated.
pub fn generate(seed: u64, index: u64, corpus: &[Vec<u8>]) -> (Vec<u8>, Vec<KnownSpec>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index);
    let (mut data, known) = if corpus.is_empty() || rng.random_bool(0.7) {
        let mut raw = vec![0u8; rng.random_range(16..2048)];
        rng.fill_bytes(&mut raw);
        if rng.random_bool(0.25) {
            // A message from the trainer, for the host-side decoder.
            match TrainerMessageModel::arbitrary(&mut Unstructured::new(&raw)) {
                Ok(model) => (model.encode(), Vec::new()),
                Err(_) => (raw, Vec::new()),
            }
        } else {
            match MessageModel::arbitrary(&mut Unstructured::new(&raw)) {
                Ok(model) => model.encode(),
                Err(_) => (raw, Vec::new()),
            }
        }
    } else {
        (
            corpus[rng.random_range(0..corpus.len())].clone(),
            Vec::new(),
        )
    };
    if rng.random_bool(0.4) {
        for _ in 0..rng.random_range(1..5) {
            mutate_bytes(&mut data, &mut rng, corpus);
        }
    }
    (data, known)
}

/// How one entry point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Decode,
    Observation,
    NonFinite,
    Limit,
}

impl Outcome {
    fn of<T>(result: &Result<T, ProtoError>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(ProtoError::Decode(_)) => Outcome::Decode,
            Err(ProtoError::Observation(_)) => Outcome::Observation,
            Err(ProtoError::NonFinite(_)) => Outcome::NonFinite,
            Err(ProtoError::Limit(_)) => Outcome::Limit,
        }
    }
}

/// Checks what the binding relies on: every array has the size its shape says.
fn check_decoded(decoded: &output::DecodedOutput) {
    for behavior in &decoded.behaviors {
        for batch in [&behavior.decision, &behavior.terminal] {
            let n = batch.len();
            for list in [
                batch.reward.len(),
                batch.group_id.len(),
                batch.interrupted.len(),
            ] {
                assert_eq!(list, n, "per-agent arrays of {:?}", behavior.name);
            }
            assert_eq!(batch.observations.len(), behavior.observation_shapes.len());
            for (values, shape) in batch.observations.iter().zip(&behavior.observation_shapes) {
                let elements: usize = shape.iter().product();
                assert_eq!(values.len(), n * elements, "observation of shape {shape:?}");
            }
        }
        if let Some(mask) = &behavior.action_mask {
            let width: usize = behavior.discrete_branches.iter().sum();
            assert_eq!(mask.len(), behavior.decision.len() * width, "action mask");
        }
    }
}

/// Checks what the binding relies on for a trainer message: every action array has
/// `n_agents` rows of its width.
fn check_decoded_input(decoded: &input::DecodedInput) {
    for actions in decoded.rl_input.iter().flat_map(|rl| &rl.actions) {
        assert_eq!(
            actions.continuous.len(),
            actions.n_agents * actions.continuous_size,
            "continuous actions of {:?}",
            actions.name
        );
        assert_eq!(
            actions.discrete.len(),
            actions.n_agents * actions.discrete_size,
            "discrete actions of {:?}",
            actions.name
        );
    }
}

/// How the two message decoders ended on one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    /// The decoder of messages from Unity (trainer side).
    pub unity_message: Outcome,
    /// The decoder of messages from the trainer (the Unity-side host).
    pub trainer_message: Outcome,
}

/// Runs every decoder entry point on `data`: the message decoder (with `known`), the
/// trainer-message decoder, the PNG decoder (shape from the first bytes) and the `.demo`
/// reader. Panics only if a decoder breaks an invariant (or panics itself).
pub fn run_one(data: &[u8], known: &[KnownSpec], limits: &DecodeLimits) -> Outcomes {
    let result = output::decode_unity_message_limited(data, known, limits);
    if let Ok(decoded) = &result {
        check_decoded(decoded);
    }
    let trainer_result = input::decode_unity_input_limited(data, limits);
    if let Ok(decoded) = &trainer_result {
        check_decoded_input(decoded);
    }
    run_demo_reader(data);
    if let [c, h, w, map, rest @ ..] = data {
        let shape = [usize::from(c % 7), usize::from(h % 65), usize::from(w % 65)];
        let mapping: Vec<i32> = (0..usize::from(map % 8))
            .map(|i| i32::from(map.rotate_left(i as u32) % 4) - 1)
            .collect();
        let mut out = vec![0f32; shape.iter().product()];
        let _ = png_obs::decode_png_observation(rest, &shape, &mapping, &mut out, limits);
    }
    Outcomes {
        unity_message: Outcome::of(&result),
        trainer_message: Outcome::of(&trainer_result),
    }
}

/// The `.demo` reader (which decodes its records with the message decoder's functions):
/// layout, spec from the first record, then every record.
fn run_demo_reader(data: &[u8]) {
    let Ok(layout) = demo::read_layout(data, 0, 0) else {
        return;
    };
    let Some(first) = layout.records.first().and_then(|r| data.get(r.clone())) else {
        return;
    };
    if let Ok(spec) = demo::record_spec(&layout.brain, first) {
        let spec = demo::DemoSpec {
            observation_shapes: spec
                .observations
                .iter()
                .map(|o| o.shape.iter().map(|&d| d.max(0) as usize).collect())
                .collect(),
            continuous_size: spec.continuous_size,
            discrete_branches: spec.discrete_branches,
        };
        let _ = demo::decode_records(data, &layout.records, &spec, 64 << 20);
    }
}

fn files_in(folder: &str, extension: &str, max_bytes: u64) -> Vec<(String, Vec<u8>)> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    std::fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == extension))
        .filter(|entry| entry.metadata().is_ok_and(|m| m.len() <= max_bytes))
        .filter_map(|entry| {
            let bytes = std::fs::read(entry.path()).ok()?;
            Some((entry.file_name().to_string_lossy().into_owned(), bytes))
        })
        .collect()
}

/// The committed corpus of reproducers (`tests/fuzz_corpus/*.bin`) and the small Unity
/// demonstrations of `tests/fixtures/demos` (seeds for the `.demo` reader), sorted by name.
pub fn load_corpus() -> Vec<(String, Vec<u8>)> {
    let mut files = files_in("../tests/fuzz_corpus", "bin", u64::MAX);
    files.extend(files_in("../tests/fixtures/demos", "demo", 100_000));
    files.sort();
    files
}
