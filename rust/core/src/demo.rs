//! Demonstration files (`.demo`), as Unity's `DemonstrationRecorder` writes
//! them and ML-Agents' `demo_loader` reads them (docs/imitation.md, "The .demo
//! format").
//!
//! A file holds a varint-delimited `DemonstrationMetaProto` at byte 0 that
//! ends by byte 33 (zeros fill the gap), a varint-delimited
//! `BrainParametersProto` at byte 33, then one varint-delimited
//! `AgentInfoActionPairProto` per recorded agent step. Unity appends a stray
//! copy of the meta bytes at the end; readers never reach it because they stop
//! after `number_steps` records.
//!
//! - [`read_layout`] checks the header and finds the records without decoding them.
//! - [`record_spec`] reads the behavior spec (brain parameters + the first
//!   record's observations), as ML-Agents' `behavior_spec_from_proto` does.
//! - [`decode_records`] turns records into flat arrays with the communicator's
//!   own decoding functions, so a demonstration step and a live step decode
//!   identically (raw floats, PNG, channel mappings, NaN checks).
//! - [`encode_meta_area`], [`encode_brain_record`] and [`encode_records`]
//!   write files that ML-Agents and Unity read.
//!
//! No input makes these functions panic: every declared length is checked
//! against the bytes present, and the decoded size against a byte limit
//! before anything sized by it is allocated.

use std::ops::Range;

use crate::proto::output::{
    build_batch, check_agent_batch, new_spec_from, parse_agent_info, parse_brain_parameters,
    write_agent_info, write_brain_parameters, AgentBatch, BrainParameters, DecodeContext, NewSpec,
    RawAgentInfo,
};
use crate::proto::wire::{Reader, Writer};
use crate::proto::{DecodeLimits, ProtoError};

/// Bytes reserved for the delimited meta record (C# `DemonstrationWriter.MetaDataBytes`).
pub const META_DATA_BYTES: usize = 32;
/// Where the brain parameters start (ML-Agents' `INITIAL_POS`).
pub const BRAIN_OFFSET: usize = META_DATA_BYTES + 1;
/// `api_version`s ML-Agents 1.1.0 reads.
pub const SUPPORTED_API_VERSIONS: [i32; 2] = [0, 1];
/// The `api_version` written (Unity's `DemonstrationMetaData.ApiVersion`).
pub const WRITTEN_API_VERSION: i32 = 1;
/// Unity truncates demonstration names to this many characters so the meta fits.
pub const MAX_NAME_CHARS: usize = 16;
/// Default bound on the arrays one decode may produce (as the communicator's decoder).
pub const DEFAULT_MAX_DECODED_BYTES: usize = 1 << 32;

/// Why demonstration bytes could not be read or written.
#[derive(Debug, Clone, PartialEq)]
pub enum DemoError {
    /// The header does not hold a demonstration (no meta record before byte 33).
    NotADemo(String),
    /// `api_version` is not one ML-Agents reads.
    UnsupportedVersion(i32),
    /// The bytes end inside a length prefix or a record.
    Truncated(String),
    /// Record `index` (of this file) is not a valid `AgentInfoActionPairProto` or
    /// disagrees with the behavior spec.
    Record { index: usize, message: String },
    /// The records as a whole cannot be decoded (observations, sizes, limits).
    Invalid(String),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::NotADemo(m) => write!(f, "not a demonstration file: {m}"),
            DemoError::UnsupportedVersion(v) => write!(
                f,
                "Can't load Demonstration data from an unsupported version ({v}); \
                 supported api_version values are 0 and 1"
            ),
            DemoError::Truncated(m) => write!(f, "truncated demonstration file: {m}"),
            DemoError::Record { index, message } => write!(f, "record {index}: {message}"),
            DemoError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DemoError {}

/// `DemonstrationMetaProto`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DemoMeta {
    pub api_version: i32,
    pub demonstration_name: String,
    pub number_steps: i32,
    pub number_episodes: i32,
    pub mean_reward: f32,
}

impl DemoMeta {
    fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        const CTX: &str = "DemonstrationMetaProto";
        let mut meta = DemoMeta::default();
        let mut reader = Reader::new(bytes, CTX);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => meta.api_version = value.as_int32(CTX, field)?,
                2 => meta.demonstration_name = value.as_string(CTX, field)?,
                3 => meta.number_steps = value.as_int32(CTX, field)?,
                4 => meta.number_episodes = value.as_int32(CTX, field)?,
                5 => meta.mean_reward = value.as_float(CTX, field)?,
                _ => {}
            }
        }
        Ok(meta)
    }

    fn encode(&self, writer: &mut Writer) {
        writer.int32(1, self.api_version);
        writer.string(2, &self.demonstration_name);
        writer.int32(3, self.number_steps);
        writer.int32(4, self.number_episodes);
        writer.float(5, self.mean_reward);
    }
}

/// The header of one file and where its records are.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoLayout {
    pub meta: DemoMeta,
    pub brain: BrainParameters,
    /// Byte ranges of the `AgentInfoActionPairProto` records, in file order.
    pub records: Vec<Range<usize>>,
}

/// The length prefix at `at`: where the message starts and its declared length.
fn length_prefix(
    data: &[u8],
    at: usize,
    what: &dyn Fn() -> String,
) -> Result<(usize, u64), DemoError> {
    let rest = data.get(at..).unwrap_or_default();
    let mut reader = Reader::new(rest, "length prefix");
    let length = reader.read_varint().map_err(|_| {
        if rest.len() < 10 {
            DemoError::Truncated(format!(
                "the file ends inside the length prefix of {} at byte {at}",
                what()
            ))
        } else {
            DemoError::Invalid(format!("{} at byte {at}: invalid length prefix", what()))
        }
    })?;
    Ok((at + reader.position(), length))
}

/// The range of the varint-delimited message at `at`; `what` names it in errors.
fn delimited(data: &[u8], at: usize, what: &dyn Fn() -> String) -> Result<Range<usize>, DemoError> {
    let (start, length) = length_prefix(data, at, what)?;
    usize::try_from(length)
        .ok()
        .and_then(|length| start.checked_add(length))
        .filter(|&end| end <= data.len())
        .map(|end| start..end)
        .ok_or_else(|| {
            DemoError::Truncated(format!(
                "{} at byte {at} declares {length} bytes but only {} remain",
                what(),
                data.len() - start
            ))
        })
}

/// Checks the header of a file and finds its records, following ML-Agents'
/// reader: records are read until the end of the file or until the pairs
/// loaded so far (`records_before`, from earlier files of the same load, plus
/// this file's) equal the running total of `number_steps` (`expected_before`
/// plus this file's).
pub fn read_layout(
    data: &[u8],
    records_before: u64,
    expected_before: i64,
) -> Result<DemoLayout, DemoError> {
    if data.is_empty() {
        return Err(DemoError::NotADemo("the file is empty".into()));
    }
    let meta_name = || "the metadata record".to_string();
    let (meta_start, meta_length) = length_prefix(data, 0, &meta_name).map_err(|err| {
        DemoError::NotADemo(format!("no DemonstrationMetaProto at byte 0 ({err})"))
    })?;
    if meta_length > (BRAIN_OFFSET - meta_start) as u64 {
        return Err(DemoError::NotADemo(format!(
            "the metadata record at byte 0 declares {meta_length} bytes and would overlap the \
             brain parameters at byte {BRAIN_OFFSET}"
        )));
    }
    let meta_range = delimited(data, 0, &meta_name)?;
    let meta = DemoMeta::decode(&data[meta_range]).map_err(|err| {
        DemoError::NotADemo(format!("no DemonstrationMetaProto at byte 0 ({err})"))
    })?;
    if !SUPPORTED_API_VERSIONS.contains(&meta.api_version) {
        return Err(DemoError::UnsupportedVersion(meta.api_version));
    }
    if data.len() <= BRAIN_OFFSET {
        return Err(DemoError::Truncated(format!(
            "the file ends at byte {}, before the brain parameters at byte {BRAIN_OFFSET}",
            data.len()
        )));
    }
    let brain_range = delimited(data, BRAIN_OFFSET, &|| "the brain parameters".to_string())?;
    let brain = parse_brain_parameters(&data[brain_range.clone()], &DecodeLimits::DEFAULT)
        .map_err(|err| {
            DemoError::Invalid(format!(
                "the brain parameters at byte {BRAIN_OFFSET} are invalid: {err}"
            ))
        })?;
    let expected_total = expected_before.saturating_add(i64::from(meta.number_steps));
    let mut records = Vec::new();
    let mut pos = brain_range.end;
    while pos < data.len() {
        let index = records.len();
        let range = delimited(data, pos, &|| format!("record {index}"))?;
        pos = range.end;
        records.push(range);
        if i64::try_from(records_before + records.len() as u64).ok() == Some(expected_total) {
            break;
        }
    }
    Ok(DemoLayout {
        meta,
        brain,
        records,
    })
}

/// The fields of one `AgentInfoActionPairProto`: agent info and action bytes.
fn split_pair(bytes: &[u8]) -> Result<(&[u8], &[u8]), ProtoError> {
    const CTX: &str = "AgentInfoActionPairProto";
    let (mut info, mut action): (&[u8], &[u8]) = (&[], &[]);
    let mut reader = Reader::new(bytes, CTX);
    while let Some((field, value)) = reader.next_field()? {
        match field {
            1 => info = value.as_bytes(CTX, field)?,
            2 => action = value.as_bytes(CTX, field)?,
            _ => {}
        }
    }
    Ok((info, action))
}

/// The behavior spec of a demonstration: the brain's actions and the
/// observations of its first record (`record` = that record's bytes).
pub fn record_spec(brain: &BrainParameters, record: &[u8]) -> Result<NewSpec, DemoError> {
    let as_record_error = |err: ProtoError| DemoError::Record {
        index: 0,
        message: err.to_string(),
    };
    let (info_bytes, _) = split_pair(record).map_err(as_record_error)?;
    let info = parse_agent_info(info_bytes, &DecodeLimits::DEFAULT, &brain.brain_name)
        .map_err(as_record_error)?;
    new_spec_from(brain, &info, &DecodeLimits::DEFAULT)
        .map(|(spec, _)| spec)
        .map_err(as_record_error)
}

/// What records are decoded into: observation shapes and the action spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DemoSpec {
    pub observation_shapes: Vec<Vec<usize>>,
    pub continuous_size: usize,
    pub discrete_branches: Vec<usize>,
}

/// Decoded records: one row per record, arrays flat and row-major.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DemoSteps {
    pub len: usize,
    /// One array per observation, `len * prod(shape)` floats.
    pub observations: Vec<Vec<f32>>,
    pub reward: Vec<f32>,
    pub done: Vec<bool>,
    pub max_step_reached: Vec<bool>,
    pub agent_id: Vec<i32>,
    pub group_id: Vec<i32>,
    pub group_reward: Vec<f32>,
    /// `len * sum(discrete_branches)` flags, true = masked; all false for a record
    /// without a mask of that length (as the communicator decodes masks).
    pub action_mask: Vec<bool>,
    /// `len * continuous_size`: `continuous_actions`, or `vector_actions_deprecated`
    /// for records that only carry the deprecated field (as ML-Agents reads them).
    pub continuous_actions: Vec<f32>,
    /// `len * n_branches`: `discrete_actions`, or the deprecated field likewise.
    pub discrete_actions: Vec<i32>,
    /// `len * deprecated_width`: `vector_actions_deprecated` of every record, which
    /// ML-Agents uses as the next row's `prev_action`.
    pub deprecated_actions: Vec<f32>,
    pub deprecated_width: usize,
    /// False for a record that carries no action value at all (Unity writes such a
    /// record when recording stops); its action rows above are zeros.
    pub has_action: Vec<bool>,
}

/// `a * b`, None on overflow.
fn product(values: impl IntoIterator<Item = usize>) -> Option<usize> {
    values
        .into_iter()
        .try_fold(1usize, |acc, v| acc.checked_mul(v))
}

/// Refuses specs whose decoded arrays would exceed `max_decoded_bytes`, or need
/// more raw values than the records' bytes can hold, before anything is allocated.
fn check_decoded_size(
    spec: &DemoSpec,
    records: usize,
    record_bytes: usize,
    max_decoded_bytes: usize,
) -> Result<(), DemoError> {
    let too_large = |what: String| {
        DemoError::Invalid(format!(
            "{what} over {records} records would need more than the \
             {max_decoded_bytes} bytes a demonstration may decode into"
        ))
    };
    let mut total: usize = 0;
    for (index, shape) in spec.observation_shapes.iter().enumerate() {
        let bytes = product(shape.iter().copied().chain([records, 4]))
            .ok_or_else(|| too_large(format!("observation {index} of shape {shape:?}")))?;
        // Raw floats are in the records; only PNG (rank 3) expands.
        if shape.len() != 3 && bytes > record_bytes {
            return Err(DemoError::Invalid(format!(
                "observation {index} of shape {shape:?} needs {bytes} bytes of floats over \
                 {records} records, but the records hold {record_bytes} bytes"
            )));
        }
        total = total
            .checked_add(bytes)
            .ok_or_else(|| too_large("the observations".into()))?;
    }
    let mask_width = spec
        .discrete_branches
        .iter()
        .try_fold(0usize, |acc, &b| acc.checked_add(b));
    let action_bytes = mask_width
        .and_then(|width| {
            let per_record = spec
                .continuous_size
                .checked_add(spec.discrete_branches.len())?
                .checked_mul(4)?
                .checked_add(width)?;
            per_record.checked_mul(records)
        })
        .ok_or_else(|| too_large("the actions and action masks".into()))?;
    let action_values = spec
        .continuous_size
        .checked_add(spec.discrete_branches.len())
        .and_then(|width| width.checked_mul(records));
    if action_values.is_none_or(|values| values > record_bytes) {
        return Err(DemoError::Invalid(format!(
            "the action spec ({} continuous, branches {:?}) needs more action values over \
             {records} records than the records' {record_bytes} bytes can hold",
            spec.continuous_size, spec.discrete_branches
        )));
    }
    total = total
        .checked_add(action_bytes)
        .ok_or_else(|| too_large("the decoded records".into()))?;
    if total > max_decoded_bytes {
        return Err(too_large(format!("{total} bytes of arrays")));
    }
    Ok(())
}

/// The action fields of one record.
#[derive(Default)]
struct ActionRow {
    deprecated: Vec<f32>,
    continuous: Vec<f32>,
    discrete: Vec<i32>,
}

impl ActionRow {
    fn is_empty(&self) -> bool {
        self.deprecated.is_empty() && self.continuous.is_empty() && self.discrete.is_empty()
    }

    fn read(&mut self, bytes: &[u8]) -> Result<(), ProtoError> {
        const CTX: &str = "AgentActionProto";
        self.deprecated.clear();
        self.continuous.clear();
        self.discrete.clear();
        let mut reader = Reader::new(bytes, CTX);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => value.push_floats(&mut self.deprecated, CTX, field)?,
                6 => value.push_floats(&mut self.continuous, CTX, field)?,
                7 => value.push_int32s(&mut self.discrete, CTX, field)?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Appends the continuous and discrete actions of one record, as ML-Agents'
/// `make_demo_buffer` takes them.
fn push_actions(row: &ActionRow, spec: &DemoSpec, steps: &mut DemoSteps) -> Result<(), String> {
    let continuous_size = spec.continuous_size;
    let branches = &spec.discrete_branches;
    let check_len = |got: usize, want: usize, field: &str| {
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{field} has {got} values but the behavior has {want} ({continuous_size} \
                 continuous, branches {branches:?})"
            ))
        }
    };
    let discrete_start = steps.discrete_actions.len();
    if row.is_empty() {
        steps
            .continuous_actions
            .resize(steps.continuous_actions.len() + continuous_size, 0.0);
        steps
            .discrete_actions
            .resize(discrete_start + branches.len(), 0);
        return Ok(());
    }
    if row.continuous.is_empty() && row.discrete.is_empty() {
        // Older recorders only fill the deprecated field.
        if continuous_size > 0 {
            if !branches.is_empty() {
                return Err(format!(
                    "only vector_actions_deprecated is set, which cannot hold hybrid \
                     actions ({continuous_size} continuous, branches {branches:?})"
                ));
            }
            check_len(
                row.deprecated.len(),
                continuous_size,
                "vector_actions_deprecated",
            )?;
            steps.continuous_actions.extend_from_slice(&row.deprecated);
        } else if !branches.is_empty() {
            check_len(
                row.deprecated.len(),
                branches.len(),
                "vector_actions_deprecated",
            )?;
            for &value in &row.deprecated {
                if value.fract() != 0.0 || !(0.0..=i32::MAX as f32).contains(&value) {
                    return Err(format!(
                        "vector_actions_deprecated holds {value}, not a discrete action index"
                    ));
                }
                steps.discrete_actions.push(value as i32);
            }
        }
    } else {
        if continuous_size > 0 {
            check_len(row.continuous.len(), continuous_size, "continuous_actions")?;
            steps.continuous_actions.extend_from_slice(&row.continuous);
        }
        if !branches.is_empty() {
            check_len(row.discrete.len(), branches.len(), "discrete_actions")?;
            steps.discrete_actions.extend_from_slice(&row.discrete);
        }
    }
    if steps
        .continuous_actions
        .iter()
        .rev()
        .take(continuous_size)
        .any(|v| !v.is_finite())
    {
        return Err("a continuous action is NaN or infinite".into());
    }
    for (branch, (&action, &size)) in steps.discrete_actions[discrete_start..]
        .iter()
        .zip(branches)
        .enumerate()
    {
        if usize::try_from(action).map_or(true, |a| a >= size) {
            return Err(format!(
                "discrete action {action} of branch {branch} is outside 0..{size}"
            ));
        }
    }
    Ok(())
}

/// Decodes the records at `records` (byte ranges of `data`) with `spec`.
pub fn decode_records(
    data: &[u8],
    records: &[Range<usize>],
    spec: &DemoSpec,
    max_decoded_bytes: usize,
) -> Result<DemoSteps, DemoError> {
    let n = records.len();
    let mut record_bytes = 0usize;
    let mut slices = Vec::with_capacity(n);
    for (index, range) in records.iter().enumerate() {
        let bytes = data.get(range.clone()).ok_or_else(|| DemoError::Record {
            index,
            message: format!(
                "byte range {range:?} is outside the {} bytes given",
                data.len()
            ),
        })?;
        record_bytes += bytes.len();
        slices.push(bytes);
    }
    check_decoded_size(spec, n, record_bytes, max_decoded_bytes)?;

    let mut steps = DemoSteps {
        len: n,
        continuous_actions: Vec::with_capacity(n * spec.continuous_size),
        discrete_actions: Vec::with_capacity(n * spec.discrete_branches.len()),
        done: Vec::with_capacity(n),
        ..DemoSteps::default()
    };
    let mut infos: Vec<RawAgentInfo<'_>> = Vec::with_capacity(n);
    let mut row = ActionRow::default();
    let mut width_from: Option<usize> = None;
    for (index, bytes) in slices.into_iter().enumerate() {
        let record_error = |message: String| DemoError::Record { index, message };
        let (info_bytes, action_bytes) =
            split_pair(bytes).map_err(|err| record_error(err.to_string()))?;
        let info = parse_agent_info(info_bytes, &DecodeLimits::DEFAULT, "demonstration")
            .map_err(|err| record_error(err.to_string()))?;
        row.read(action_bytes)
            .map_err(|err| record_error(err.to_string()))?;
        push_actions(&row, spec, &mut steps).map_err(record_error)?;
        let has_action = !row.is_empty();
        if has_action {
            match width_from {
                None => {
                    // Records before the first one with an action get zeros of its width.
                    steps.deprecated_width = row.deprecated.len();
                    steps.deprecated_actions = vec![0.0; index * row.deprecated.len()];
                    width_from = Some(index);
                }
                Some(first) if row.deprecated.len() != steps.deprecated_width => {
                    return Err(record_error(format!(
                        "vector_actions_deprecated has {} values, record {first} had {}",
                        row.deprecated.len(),
                        steps.deprecated_width
                    )));
                }
                Some(_) => {}
            }
            steps.deprecated_actions.extend_from_slice(&row.deprecated);
        } else {
            let len = steps.deprecated_actions.len() + steps.deprecated_width;
            steps.deprecated_actions.resize(len, 0.0);
        }
        steps.has_action.push(has_action);
        steps.done.push(info.done);
        infos.push(info);
    }

    let mask_width: usize = spec.discrete_branches.iter().sum();
    if mask_width > 0 {
        steps.action_mask = vec![false; n * mask_width];
        let mut agent_mask = Vec::with_capacity(mask_width);
        for (row, info) in steps.action_mask.chunks_exact_mut(mask_width).zip(&infos) {
            info.action_mask_into(&mut agent_mask)
                .map_err(|err| DemoError::Invalid(err.to_string()))?;
            if agent_mask.len() == mask_width {
                row.copy_from_slice(&agent_mask);
            }
        }
    }

    let refs: Vec<&RawAgentInfo<'_>> = infos.iter().collect();
    // check_decoded_size bounded the decoded size already: no second budget here.
    let unbudgeted = DecodeLimits {
        max_message_bytes: usize::MAX,
        ..DecodeLimits::DEFAULT
    };
    let mut ctx = DecodeContext::new(&unbudgeted, record_bytes);
    let batch = build_batch(&refs, &spec.observation_shapes, &mut ctx)
        .map_err(|err| DemoError::Invalid(err.to_string()))?;
    steps.observations = batch.observations;
    steps.reward = batch.reward;
    steps.max_step_reached = batch.interrupted;
    steps.agent_id = batch.agent_id;
    steps.group_id = batch.group_id;
    steps.group_reward = batch.group_reward;
    Ok(steps)
}

/// The first [`BRAIN_OFFSET`] bytes of a file: the delimited meta record, zero padded.
/// The name is cut to [`MAX_NAME_CHARS`] characters, as Unity does.
pub fn encode_meta_area(meta: &DemoMeta) -> Result<Vec<u8>, DemoError> {
    let mut meta = meta.clone();
    if let Some((cut, _)) = meta.demonstration_name.char_indices().nth(MAX_NAME_CHARS) {
        meta.demonstration_name.truncate(cut);
    }
    let mut body = Writer::new();
    meta.encode(&mut body);
    let mut area = Writer::new();
    area.varint(body.buf.len() as u64);
    area.buf.extend_from_slice(&body.buf);
    if area.buf.len() > BRAIN_OFFSET {
        return Err(DemoError::Invalid(format!(
            "the metadata record takes {} bytes, more than the {BRAIN_OFFSET} the format \
             reserves; use a shorter demonstration name",
            area.buf.len()
        )));
    }
    area.buf.resize(BRAIN_OFFSET, 0);
    Ok(area.buf)
}

/// The delimited `BrainParametersProto` that follows the meta area.
pub fn encode_brain_record(brain: &BrainParameters) -> Vec<u8> {
    let mut body = Writer::new();
    write_brain_parameters(&mut body, brain);
    let mut record = Writer::new();
    record.varint(body.buf.len() as u64);
    record.buf.extend_from_slice(&body.buf);
    record.buf
}

/// Actions of the agents of an [`AgentBatch`], row-major.
pub struct DemoActions<'a> {
    pub continuous: &'a [f32],
    pub continuous_size: usize,
    pub discrete: &'a [i32],
    pub discrete_size: usize,
}

/// One delimited `AgentInfoActionPairProto` per agent of `batch`, in order: its
/// agent info and the action of the same row (continuous and discrete fields).
/// Returns the bytes and the end offset of each record in them.
pub fn encode_records(
    batch: &AgentBatch<'_>,
    actions: &DemoActions<'_>,
) -> Result<(Vec<u8>, Vec<usize>), DemoError> {
    check_agent_batch(batch).map_err(|err| DemoError::Invalid(err.to_string()))?;
    let n = batch.agent_id.len();
    let sizes_ok = Some(actions.continuous.len()) == n.checked_mul(actions.continuous_size)
        && Some(actions.discrete.len()) == n.checked_mul(actions.discrete_size);
    if !sizes_ok {
        return Err(DemoError::Invalid(format!(
            "actions: expected {n} rows of {} continuous and {} discrete values, got {} and {}",
            actions.continuous_size,
            actions.discrete_size,
            actions.continuous.len(),
            actions.discrete.len()
        )));
    }
    let mut out = Writer::new();
    let mut ends = Vec::with_capacity(n);
    let mut pair = Writer::new();
    for agent in 0..n {
        pair.buf.clear();
        pair.message(1, |info| write_agent_info(info, batch, agent));
        pair.message(2, |action| {
            let c = actions.continuous_size;
            let d = actions.discrete_size;
            action.packed_floats(6, &actions.continuous[agent * c..(agent + 1) * c]);
            action.packed_int32s(7, &actions.discrete[agent * d..(agent + 1) * d]);
        });
        out.varint(pair.buf.len() as u64);
        out.buf.extend_from_slice(&pair.buf);
        ends.push(out.buf.len());
    }
    Ok((out.buf, ends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::output::ObservationBatch;

    fn brain(continuous: i32, branches: Vec<i32>) -> BrainParameters {
        BrainParameters {
            brain_name: "Seeker?team=0".into(),
            is_training: false,
            continuous_size: continuous,
            discrete_branches: branches,
            action_descriptions: vec![],
        }
    }

    /// A file of `n` steps of a (2,) observation, 1 continuous + branch of 3.
    fn sample_file(n: usize) -> Vec<u8> {
        let ids = vec![5i32; n];
        let rewards: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        let done: Vec<bool> = (0..n).map(|i| i == n - 1).collect();
        let flags = vec![false; n];
        let zeros_i = vec![0i32; n];
        let zeros_f = vec![0f32; n];
        let obs: Vec<f32> = (0..2 * n).map(|i| i as f32).collect();
        let mask: Vec<bool> = (0..3 * n).map(|i| i % 3 == 2 && i < 3).collect();
        let batch = AgentBatch {
            name: "Seeker?team=0",
            agent_id: &ids,
            reward: &rewards,
            done: &done,
            max_step_reached: &flags,
            group_id: &zeros_i,
            group_reward: &zeros_f,
            observations: vec![ObservationBatch {
                shape: &[2],
                dimension_properties: &[1],
                observation_type: 0,
                name: "VectorSensor_size2",
                data: &obs,
            }],
            action_mask: &mask,
            mask_width: 3,
        };
        let continuous: Vec<f32> = (0..n).map(|i| -(i as f32) / 10.0).collect();
        let discrete: Vec<i32> = (0..n).map(|i| (i % 3) as i32).collect();
        let actions = DemoActions {
            continuous: &continuous,
            continuous_size: 1,
            discrete: &discrete,
            discrete_size: 1,
        };
        let meta = DemoMeta {
            api_version: 1,
            demonstration_name: "a very long demonstration name".into(),
            number_steps: n as i32,
            number_episodes: 1,
            mean_reward: 2.5,
        };
        let mut file = encode_meta_area(&meta).unwrap();
        file.extend(encode_brain_record(&brain(1, vec![3])));
        let (records, ends) = encode_records(&batch, &actions).unwrap();
        assert_eq!((ends.len(), ends.last()), (n, Some(&records.len())));
        file.extend(records);
        file
    }

    fn spec_of(layout: &DemoLayout, data: &[u8]) -> DemoSpec {
        let spec = record_spec(&layout.brain, &data[layout.records[0].clone()]).unwrap();
        DemoSpec {
            observation_shapes: spec
                .observations
                .iter()
                .map(|o| o.shape.iter().map(|&d| d as usize).collect())
                .collect(),
            continuous_size: spec.continuous_size,
            discrete_branches: spec.discrete_branches,
        }
    }

    #[test]
    fn written_file_reads_back() {
        let data = sample_file(4);
        let layout = read_layout(&data, 0, 0).unwrap();
        assert_eq!(layout.meta.demonstration_name, "a very long demo");
        assert_eq!(layout.meta.number_steps, 4);
        assert_eq!(layout.brain.continuous_size, 1);
        assert_eq!(layout.brain.discrete_branches, vec![3]);
        assert_eq!(layout.records.len(), 4);
        let spec = spec_of(&layout, &data);
        assert_eq!(spec.observation_shapes, vec![vec![2]]);
        let steps = decode_records(&data, &layout.records, &spec, usize::MAX).unwrap();
        assert_eq!(steps.len, 4);
        assert_eq!(
            steps.observations[0],
            (0..8).map(|i| i as f32).collect::<Vec<_>>()
        );
        assert_eq!(steps.reward, vec![0.0, 0.5, 1.0, 1.5]);
        assert_eq!(steps.done, vec![false, false, false, true]);
        assert_eq!(steps.continuous_actions, vec![0.0, -0.1, -0.2, -0.3]);
        assert_eq!(steps.discrete_actions, vec![0, 1, 2, 0]);
        assert_eq!(steps.deprecated_width, 0);
        assert_eq!(steps.has_action, vec![true; 4]);
        assert_eq!(&steps.action_mask[..3], &[false, false, true]);
        assert!(steps.action_mask[3..].iter().all(|&m| !m));
        assert_eq!(steps.agent_id, vec![5; 4]);
    }

    #[test]
    fn reading_stops_at_the_running_total() {
        let data = sample_file(4);
        // An earlier file of the same load brought 3 records but expected only 1: this
        // file's 4 make the total 5, reached after 2 of its records.
        let layout = read_layout(&data, 3, 1).unwrap();
        assert_eq!(layout.records.len(), 2);
        // Expecting more than there are: read to the end.
        assert_eq!(read_layout(&data, 3, 4).unwrap().records.len(), 4);
        // Trailing bytes past number_steps are never read (Unity's stray meta copy).
        let mut with_tail = data.clone();
        with_tail.extend_from_slice(&data[1..20]);
        assert_eq!(read_layout(&with_tail, 0, 0).unwrap().records.len(), 4);
    }

    #[test]
    fn header_errors() {
        let data = sample_file(2);
        assert!(matches!(
            read_layout(&[], 0, 0),
            Err(DemoError::NotADemo(_))
        ));
        assert!(matches!(
            read_layout(&data[..20], 0, 0),
            Err(DemoError::Truncated(_))
        ));
        assert!(matches!(
            read_layout(&data[..33], 0, 0),
            Err(DemoError::Truncated(_))
        ));
        let mut version = data.clone();
        version[2] = 7; // api_version field value
        assert_eq!(
            read_layout(&version, 0, 0),
            Err(DemoError::UnsupportedVersion(7))
        );
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
        assert!(matches!(
            read_layout(&png, 0, 0),
            Err(DemoError::NotADemo(_))
        ));
        let mut overlong = data.clone();
        overlong[0] = 40;
        assert!(matches!(
            read_layout(&overlong, 0, 0),
            Err(DemoError::NotADemo(_))
        ));
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let data = sample_file(3);
        let full = read_layout(&data, 0, 0).unwrap();
        for cut in 0..data.len() {
            match read_layout(&data[..cut], 0, 0) {
                // A cut at a record boundary is a shorter valid file (ML-Agents reads it too).
                Ok(layout) => assert!(layout.records.len() < full.records.len()),
                Err(err) => assert!(!err.to_string().is_empty()),
            }
        }
        let mut state = 0x1234_5678u32;
        for _ in 0..300 {
            let mut bytes = data.clone();
            for _ in 0..4 {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let at = (state >> 8) as usize % bytes.len();
                bytes[at] = (state >> 24) as u8;
            }
            if let Ok(layout) = read_layout(&bytes, 0, 0) {
                if let Some(first) = layout.records.first() {
                    if let Ok(spec) = record_spec(&layout.brain, &bytes[first.clone()]) {
                        let spec = DemoSpec {
                            observation_shapes: spec
                                .observations
                                .iter()
                                .map(|o| o.shape.iter().map(|&d| d.max(0) as usize).collect())
                                .collect(),
                            continuous_size: spec.continuous_size,
                            discrete_branches: spec.discrete_branches,
                        };
                        let _ = decode_records(&bytes, &layout.records, &spec, 1 << 24);
                    }
                }
            }
        }
    }

    #[test]
    fn hostile_sizes_are_refused_before_allocating() {
        let data = sample_file(3);
        let layout = read_layout(&data, 0, 0).unwrap();
        let huge = DemoSpec {
            observation_shapes: vec![vec![1 << 20, 1 << 20, 3]],
            continuous_size: 1,
            discrete_branches: vec![3],
        };
        let err = decode_records(&data, &layout.records, &huge, 1 << 30).unwrap_err();
        assert!(
            err.to_string()
                .contains("bytes a demonstration may decode into"),
            "{err}"
        );
        let overflow = DemoSpec {
            observation_shapes: vec![vec![usize::MAX, 2]],
            ..huge.clone()
        };
        assert!(decode_records(&data, &layout.records, &overflow, usize::MAX).is_err());
        let vector = DemoSpec {
            observation_shapes: vec![vec![1 << 24]],
            ..huge.clone()
        };
        let err = decode_records(&data, &layout.records, &vector, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("records hold"), "{err}");
        let actions = DemoSpec {
            observation_shapes: vec![vec![2]],
            continuous_size: 1 << 40,
            discrete_branches: vec![3],
        };
        assert!(decode_records(&data, &layout.records, &actions, usize::MAX).is_err());
    }

    #[test]
    fn spec_mismatches_name_the_record() {
        let data = sample_file(3);
        let layout = read_layout(&data, 0, 0).unwrap();
        let wrong_actions = DemoSpec {
            observation_shapes: vec![vec![2]],
            continuous_size: 2,
            discrete_branches: vec![3],
        };
        let err = decode_records(&data, &layout.records, &wrong_actions, usize::MAX).unwrap_err();
        assert!(
            matches!(&err, DemoError::Record { index: 0, message } if message.contains("continuous_actions has 1 values")),
            "{err}"
        );
        let out_of_range = DemoSpec {
            discrete_branches: vec![2],
            ..wrong_actions.clone()
        };
        let out_of_range = DemoSpec {
            continuous_size: 1,
            ..out_of_range
        };
        let err = decode_records(&data, &layout.records, &out_of_range, usize::MAX).unwrap_err();
        assert!(
            matches!(&err, DemoError::Record { index: 2, message } if message.contains("outside 0..2")),
            "{err}"
        );
        let wrong_obs = DemoSpec {
            observation_shapes: vec![vec![3]],
            continuous_size: 1,
            discrete_branches: vec![3],
        };
        assert!(decode_records(&data, &layout.records, &wrong_obs, usize::MAX).is_err());
    }

    #[test]
    fn deprecated_actions_are_the_fallback() {
        // A pre-1.3 record: only vector_actions_deprecated, discrete behavior of 2 branches.
        let mut action = Writer::new();
        action.packed_floats(1, &[2.0, 1.0]);
        let mut info = Writer::new();
        info.message(13, |o| {
            o.packed_int32s(1, &[1]);
            o.message(4, |f| f.packed_floats(1, &[0.5]));
        });
        let mut pair = Writer::new();
        pair.len_field(1, &info.buf);
        pair.len_field(2, &action.buf);
        let spec = DemoSpec {
            observation_shapes: vec![vec![1]],
            continuous_size: 0,
            discrete_branches: vec![3, 2],
        };
        // Then a record without any action (as Unity writes when recording stops).
        let mut no_action = Writer::new();
        no_action.len_field(1, &info.buf);
        let mut data = no_action.buf.clone();
        data.extend_from_slice(&pair.buf);
        data.extend_from_slice(&no_action.buf);
        let a = no_action.buf.len();
        let b = a + pair.buf.len();
        let ranges = [0..a, a..b, b..data.len()];
        let steps = decode_records(&data, &ranges, &spec, usize::MAX).unwrap();
        assert_eq!(steps.discrete_actions, vec![0, 0, 2, 1, 0, 0]);
        assert_eq!(steps.deprecated_actions, vec![0.0, 0.0, 2.0, 1.0, 0.0, 0.0]);
        assert_eq!(steps.deprecated_width, 2);
        assert_eq!(steps.has_action, vec![false, true, false]);
        let fractional = {
            let mut action = Writer::new();
            action.packed_floats(1, &[0.5, 1.0]);
            let mut pair = Writer::new();
            pair.len_field(1, &info.buf);
            pair.len_field(2, &action.buf);
            pair.buf
        };
        let whole_record = 0..fractional.len();
        let err = decode_records(
            &fractional,
            std::slice::from_ref(&whole_record),
            &spec,
            usize::MAX,
        );
        assert!(err.is_err());
    }
}
