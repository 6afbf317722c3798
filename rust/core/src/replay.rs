//! Fixed-capacity replay ring for off-policy trainers (SAC).
//!
//! # Model
//!
//! The ring holds up to `capacity` *steps* (rows). Each row has one value per
//! field (a typed array row of a fixed shape: observations, actions, rewards,
//! ...). Trajectories are pushed whole and the oldest rows are overwritten
//! first.
//!
//! # Layout
//!
//! Rows are stored row-major in one arena: a row is an 8-byte trajectory
//! marker followed by each field's values, padded to a stride that is a power
//! of two up to 64 bytes (a multiple of 64 above), and the arena starts on a
//! 64-byte boundary. Sampling is random access, so what matters is cache lines
//! touched per sampled step: a 3DBall SAC row (8 + 2 + 1 floats) is exactly one
//! line, where one array per field costs one miss per field.
//!
//! # Next observations and `done`
//!
//! Fields declared with `has_next` (observations) also come out of
//! [`ReplayRing::sample`] as next values, the value after the row's action:
//!
//! - for a row inside a trajectory, the next row of the same trajectory (the
//!   next slot of the ring, so it is not stored twice);
//! - for the last row of a trajectory, the trajectory's *final next value*,
//!   given to [`ReplayRing::push_trajectory`] (`next_fields`, one row per
//!   `has_next` field): the terminal observation if the episode terminated, or
//!   the observation to bootstrap from if it was cut off (max steps, interrupted).
//!   These final rows live in a small FIFO side store, one row per trajectory.
//!
//! `done` is true only for the last row of a trajectory pushed with
//! `terminated = true`; a truncated trajectory ends with `done = false`, so the
//! learner bootstraps from its final next observation (treating a time-out as
//! a terminal state biases values; see Pardo et al. 2018, "Time Limits in RL").
//!
//! When old rows are overwritten, the oldest trajectory may lose its first rows;
//! its remaining rows keep correct next values because a trajectory's rows are
//! always overwritten oldest first and its last row (holding the final next
//! value) is overwritten last.
//!
//! # Sampling
//!
//! [`ReplayRing::sample`] draws `batch_size` logical indices uniformly (with
//! replacement) from `[0, len)`, index 0 being the oldest row, using its own
//! PCG-64 generator seeded at construction. The generator counts its draws,
//! so its state is saved as (seed, draws) and restored exactly by
//! [`ReplayRing::load`]: a loaded ring samples the same batches as the ring
//! that was saved.
//!
//! # File
//!
//! [`ReplayRing::save`] writes a field file (`storage.rs`) of kind
//! `"replay_buffer"` with the rows in logical order (oldest first):
//! - `__ring__`: int64 `[layout 1, capacity, len, seed, draws]` (seed and draws as u64 bits);
//! - `__end__`: uint8 per row: 0 = the trajectory continues in the next row,
//!   1 = last row of a truncated trajectory, 2 = last row of a terminated one;
//! - `field/<name>`: the field's rows;
//! - `next/<name>`: for each `has_next` field, the final next values of the
//!   trajectories whose last row is in the ring, in order.

use std::collections::HashMap;
use std::path::Path;

use rand::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::{CoreError, CoreResult};
use crate::storage::{self, Dtype, FieldData, FieldRef, FieldSlice, FieldValues};

/// File kind of a saved replay ring.
pub const REPLAY_FILE_KIND: &str = "replay_buffer";
const LAYOUT_VERSION: i64 = 1;
const END_CONTINUES: u8 = 0;
const END_TRUNCATED: u8 = 1;
const END_TERMINATED: u8 = 2;
/// Row marker: 0 = the trajectory continues in the next slot; otherwise the
/// row ends trajectory `seq`, stored as `seq + 1`, with this bit set if it terminated.
const MARKER_TERMINATED: u64 = 1 << 63;
const MARKER_BYTES: usize = 8;
const CACHE_LINE: usize = 64;

/// Name, type and row shape of one field of the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: String,
    pub dtype: Dtype,
    /// Shape of one row (empty for a scalar per step).
    pub row_shape: Vec<usize>,
    /// Whether samples also return this field's next value (observations).
    pub has_next: bool,
}

impl FieldSpec {
    /// Values per row.
    pub fn row_len(&self) -> usize {
        self.row_shape.iter().product()
    }
}

/// A uniform sample from the ring. Values are flat, row-major, one row per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplaySample {
    /// One entry per field, in spec order.
    pub fields: Vec<FieldValues>,
    /// One entry per `has_next` field, in spec order.
    pub next_fields: Vec<FieldValues>,
    /// Whether the sampled step ended its episode by termination.
    pub done: Vec<bool>,
    /// Logical index of each sampled row (0 = oldest row in the ring).
    pub indices: Vec<i64>,
}

/// PCG-64 that counts its 64-bit draws, so its state can be saved as (seed, draws).
#[derive(Clone, Debug)]
struct CountingRng {
    rng: Pcg64,
    seed: u64,
    draws: u64,
}

impl CountingRng {
    fn new(seed: u64) -> Self {
        CountingRng {
            rng: Pcg64::seed_from_u64(seed),
            seed,
            draws: 0,
        }
    }

    fn restore(seed: u64, draws: u64) -> Self {
        let mut rng = Pcg64::seed_from_u64(seed);
        // One LCG step per next_u64 of Lcg128Xsl64.
        rng.advance(draws as u128);
        CountingRng { rng, seed, draws }
    }

    fn next_u64(&mut self) -> u64 {
        self.draws += 1;
        self.rng.next_u64()
    }

    /// Uniform in `[0, n)`, `n > 0`, without bias (Lemire 2019, "Fast Random
    /// Integer Generation in an Interval").
    fn below(&mut self, n: u64) -> u64 {
        let mut product = self.next_u64() as u128 * n as u128;
        if (product as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (product as u64) < threshold {
                product = self.next_u64() as u128 * n as u128;
            }
        }
        (product >> 64) as u64
    }
}

/// One field: where its values sit inside a row.
#[derive(Clone, Debug)]
struct Column {
    spec: FieldSpec,
    /// Byte offset of the field inside a row.
    offset: usize,
    /// Bytes of one row of the field.
    row_bytes: usize,
    /// For `has_next` fields: final next values of trajectories (native bytes,
    /// `row_bytes` each), row `i` belonging to tail sequence number `tail_base_seq + i`.
    tails: Option<Vec<u8>>,
}

/// Fixed-capacity ring of named columns with whole-trajectory pushes and
/// seeded uniform sampling. See the module documentation for semantics.
#[derive(Clone, Debug)]
pub struct ReplayRing {
    capacity: usize,
    columns: Vec<Column>,
    /// Bytes per row.
    stride: usize,
    /// Backing memory (u64 for 8-byte alignment); rows start at byte `arena_start`.
    arena: Vec<u64>,
    arena_start: usize,
    /// Slot of the oldest row.
    start: usize,
    len: usize,
    /// Sequence number of the first row kept in each column's `tails`.
    tail_base_seq: u64,
    /// Oldest tail still referenced by a row in the ring.
    first_live_tail_seq: u64,
    /// Sequence number the next pushed trajectory gets.
    next_tail_seq: u64,
    rng: CountingRng,
}

fn check_specs(specs: &[FieldSpec]) -> CoreResult<()> {
    if specs.is_empty() {
        return Err(CoreError::invalid("fields", "at least one field is needed"));
    }
    let mut seen = std::collections::HashSet::new();
    for spec in specs {
        let argument = format!("fields[{:?}]", spec.name);
        if spec.name.is_empty() || spec.name.contains('/') {
            return Err(CoreError::invalid(
                argument,
                "field names must be non-empty and contain no '/'",
            ));
        }
        if !seen.insert(spec.name.as_str()) {
            return Err(CoreError::invalid(argument, "field name appears twice"));
        }
        let row_bytes = spec
            .row_shape
            .iter()
            .try_fold(spec.dtype.item_size(), |acc, &d| acc.checked_mul(d));
        if row_bytes.is_none_or(|n| n == 0) {
            return Err(CoreError::invalid(
                argument,
                format!("row shape {:?} must have no zero dimension", spec.row_shape),
            ));
        }
    }
    Ok(())
}

impl ReplayRing {
    /// An empty ring of `capacity` rows of `specs`, sampling with a PCG-64 seeded by `seed`.
    pub fn new(specs: Vec<FieldSpec>, capacity: usize, seed: u64) -> CoreResult<Self> {
        if capacity == 0 {
            return Err(CoreError::invalid("capacity", "must be at least 1"));
        }
        check_specs(&specs)?;
        let mut columns = Vec::with_capacity(specs.len());
        let mut offset = MARKER_BYTES;
        for spec in specs {
            let row_bytes = spec.row_len() * spec.dtype.item_size();
            let tails = spec.has_next.then(Vec::new);
            columns.push(Column {
                spec,
                offset,
                row_bytes,
                tails,
            });
            offset = offset
                .checked_add(row_bytes)
                .ok_or_else(|| CoreError::invalid("fields", "row size overflows"))?;
        }
        // Rows never straddle more cache lines than their size requires.
        let stride = if offset <= CACHE_LINE {
            offset.next_power_of_two()
        } else {
            offset.next_multiple_of(CACHE_LINE)
        };
        let arena_words = capacity
            .checked_mul(stride)
            .and_then(|bytes| bytes.checked_add(CACHE_LINE))
            .ok_or_else(|| CoreError::invalid("capacity", "capacity x row size overflows"))?
            / 8;
        let arena = vec![0u64; arena_words];
        advise_huge_pages(&arena);
        let misalignment = arena.as_ptr() as usize % CACHE_LINE;
        let arena_start = (CACHE_LINE - misalignment) % CACHE_LINE;
        Ok(ReplayRing {
            capacity,
            columns,
            stride,
            arena,
            arena_start,
            start: 0,
            len: 0,
            tail_base_seq: 0,
            first_live_tail_seq: 0,
            next_tail_seq: 0,
            rng: CountingRng::new(seed),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows currently stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes per stored row (marker, fields, padding).
    pub fn row_stride(&self) -> usize {
        self.stride
    }

    pub fn specs(&self) -> impl Iterator<Item = &FieldSpec> {
        self.columns.iter().map(|c| &c.spec)
    }

    /// The seed of the sampling generator and how many 64-bit draws it made.
    pub fn rng_state(&self) -> (u64, u64) {
        (self.rng.seed, self.rng.draws)
    }

    /// Restarts the sampling generator from `seed`.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = CountingRng::new(seed);
    }

    /// Removes every row (the generator state is kept).
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
        for column in &mut self.columns {
            if let Some(tails) = &mut column.tails {
                tails.clear();
            }
        }
        self.tail_base_seq = self.next_tail_seq;
        self.first_live_tail_seq = self.next_tail_seq;
    }

    /// The rows' bytes (`capacity * stride`).
    fn rows_bytes(&self) -> &[u8] {
        // SAFETY: viewing initialized u64 words as bytes is always valid.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.arena.as_ptr().cast::<u8>(), self.arena.len() * 8)
        };
        &bytes[self.arena_start..self.arena_start + self.capacity * self.stride]
    }

    fn rows_bytes_mut(&mut self) -> &mut [u8] {
        let (start, len) = (self.arena_start, self.capacity * self.stride);
        // SAFETY: u64 accepts any bit pattern and u8 has alignment 1.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                self.arena.as_mut_ptr().cast::<u8>(),
                self.arena.len() * 8,
            )
        };
        &mut bytes[start..start + len]
    }

    fn marker(&self, slot: usize) -> u64 {
        // The marker is the first 8 bytes of a row, and rows are 8-byte aligned.
        self.arena[(self.arena_start + slot * self.stride) / 8]
    }

    fn set_marker(&mut self, slot: usize, marker: u64) {
        let word = (self.arena_start + slot * self.stride) / 8;
        self.arena[word] = marker;
    }

    fn slot(&self, logical: usize) -> usize {
        let slot = self.start + logical;
        if slot >= self.capacity {
            slot - self.capacity
        } else {
            slot
        }
    }

    /// Drops the `count` oldest rows.
    fn drop_oldest(&mut self, count: usize) {
        let count = count.min(self.len);
        // Tails are freed in order: the newest trajectory end among the dropped
        // rows tells how many. Walking back from the last dropped row finds it
        // within one trajectory.
        for logical in (0..count).rev() {
            let marker = self.marker(self.slot(logical));
            if marker != 0 {
                let seq = (marker & !MARKER_TERMINATED) - 1;
                self.first_live_tail_seq = self.first_live_tail_seq.max(seq + 1);
                break;
            }
        }
        self.start = self.slot(count);
        self.len -= count;
        if self.len == 0 {
            self.start = 0;
        }
        self.compact_tails();
    }

    /// Frees tail rows no longer referenced once they outnumber the live ones,
    /// so the side store stays within twice its live size (amortized O(1)).
    fn compact_tails(&mut self) {
        let dead = (self.first_live_tail_seq - self.tail_base_seq) as usize;
        let live = (self.next_tail_seq - self.first_live_tail_seq) as usize;
        if dead < 1024 || dead < live {
            return;
        }
        for column in &mut self.columns {
            if let Some(tails) = &mut column.tails {
                tails.drain(..dead * column.row_bytes);
            }
        }
        self.tail_base_seq = self.first_live_tail_seq;
    }

    /// Keeps only the newest `max_len` rows (like AgentBuffer.truncate).
    pub fn truncate(&mut self, max_len: usize) {
        if self.len > max_len {
            self.drop_oldest(self.len - max_len);
        }
    }

    /// Appends one whole trajectory. `fields` has every field once, each with
    /// the same number of rows T >= 1; `next_fields` has, for every `has_next`
    /// field, the final next value (one row). `terminated` says whether the
    /// episode ended (true) or was cut off (false). A trajectory longer than
    /// the capacity keeps its last `capacity` rows. Everything is checked
    /// before the ring changes.
    pub fn push_trajectory(
        &mut self,
        fields: &[(&str, FieldSlice<'_>)],
        next_fields: &[(&str, FieldSlice<'_>)],
        terminated: bool,
    ) -> CoreResult<()> {
        let ordered = self.match_fields(fields, next_fields, 1)?;
        self.write_trajectory(&ordered, 0..ordered.steps, 0, terminated);
        Ok(())
    }

    /// Appends several whole trajectories in one call, as if each were given to
    /// [`ReplayRing::push_trajectory`] in order. `fields` holds their rows one
    /// trajectory after another; `lengths[i]` (>= 1) is the row count of
    /// trajectory `i` and the lengths add up to the rows of every field;
    /// `next_fields` holds one final next value per trajectory (`lengths.len()`
    /// rows per `has_next` field); `terminated[i]` says how trajectory `i` ended.
    /// Everything is checked before the ring changes.
    pub fn push_trajectories(
        &mut self,
        fields: &[(&str, FieldSlice<'_>)],
        next_fields: &[(&str, FieldSlice<'_>)],
        lengths: &[usize],
        terminated: &[bool],
    ) -> CoreResult<()> {
        if lengths.is_empty() {
            return Err(CoreError::invalid(
                "lengths",
                "at least one trajectory is needed",
            ));
        }
        if terminated.len() != lengths.len() {
            return Err(CoreError::invalid(
                "terminated",
                format!(
                    "{} flags for {} trajectories",
                    terminated.len(),
                    lengths.len()
                ),
            ));
        }
        if let Some(i) = lengths.iter().position(|&n| n == 0) {
            return Err(CoreError::invalid(
                format!("lengths[{i}]"),
                "a trajectory needs at least one step",
            ));
        }
        let ordered = self.match_fields(fields, next_fields, lengths.len())?;
        let total = lengths
            .iter()
            .try_fold(0usize, |acc, &n| acc.checked_add(n))
            .filter(|&total| total == ordered.steps)
            .ok_or_else(|| {
                CoreError::invalid(
                    "lengths",
                    format!(
                        "the lengths do not add up to the {} rows of the fields",
                        ordered.steps
                    ),
                )
            })?;
        // Trajectories that the later ones of this call overwrite entirely are
        // still written: their ends advance the sequence numbers as one-by-one pushes do.
        let mut start = 0;
        for (index, (&length, &ended)) in lengths.iter().zip(terminated).enumerate() {
            self.write_trajectory(&ordered, start..start + length, index, ended);
            start += length;
        }
        debug_assert_eq!(start, total);
        Ok(())
    }

    /// Writes rows `rows` of `ordered` as one trajectory whose final next values
    /// are row `tail` of its next slices (all checked by `match_fields`).
    fn write_trajectory(
        &mut self,
        ordered: &OrderedTrajectory<'_>,
        rows: std::ops::Range<usize>,
        tail: usize,
        terminated: bool,
    ) {
        let steps = rows.len();
        let skip = steps.saturating_sub(self.capacity);
        let kept = steps - skip;
        let overflow = (self.len + kept).saturating_sub(self.capacity);
        self.drop_oldest(overflow);

        let sources: Vec<&[u8]> = ordered
            .columns
            .iter()
            .map(|(v, _)| v.native_bytes())
            .collect();
        let layout: Vec<(usize, usize)> = self
            .columns
            .iter()
            .map(|c| (c.offset, c.row_bytes))
            .collect();
        let first_logical = self.len;
        let (stride, capacity, start) = (self.stride, self.capacity, self.start);
        let arena = self.rows_bytes_mut();
        for step in 0..kept {
            let mut slot = start + first_logical + step;
            if slot >= capacity {
                slot -= capacity;
            }
            let row = &mut arena[slot * stride..(slot + 1) * stride];
            row[..MARKER_BYTES].fill(0);
            for (source, &(offset, row_bytes)) in sources.iter().zip(&layout) {
                let from = (rows.start + skip + step) * row_bytes;
                row[offset..offset + row_bytes].copy_from_slice(&source[from..from + row_bytes]);
            }
        }
        for (column, (_, next)) in self.columns.iter_mut().zip(&ordered.columns) {
            if let (Some(tails), Some(next)) = (&mut column.tails, next) {
                let bytes = next.native_bytes();
                let row_bytes = column.row_bytes;
                tails.extend_from_slice(&bytes[tail * row_bytes..(tail + 1) * row_bytes]);
            }
        }
        self.len += kept;
        let last = self.slot(self.len - 1);
        let marker = (self.next_tail_seq + 1) | if terminated { MARKER_TERMINATED } else { 0 };
        self.set_marker(last, marker);
        self.next_tail_seq += 1;
    }

    /// Changes the capacity, keeping the newest `min(len, capacity)` rows with
    /// their next values and ends, and the generator state (e.g. a saved buffer
    /// resumed with another `buffer_size`).
    pub fn resize(&mut self, capacity: usize) -> CoreResult<()> {
        let specs: Vec<FieldSpec> = self.specs().cloned().collect();
        let mut resized = ReplayRing::new(specs, capacity, 0)?;
        self.truncate(capacity);
        let stride = self.stride;
        let slots: Vec<usize> = (0..self.len).map(|logical| self.slot(logical)).collect();
        let source = self.rows_bytes();
        let target = resized.rows_bytes_mut();
        // Same specs, so the same row layout: rows (markers included) are copied whole.
        for (logical, slot) in slots.into_iter().enumerate() {
            target[logical * stride..(logical + 1) * stride]
                .copy_from_slice(&source[slot * stride..(slot + 1) * stride]);
        }
        for (new, old) in resized.columns.iter_mut().zip(&self.columns) {
            new.tails = old.tails.clone();
        }
        resized.len = self.len;
        resized.tail_base_seq = self.tail_base_seq;
        resized.first_live_tail_seq = self.first_live_tail_seq;
        resized.next_tail_seq = self.next_tail_seq;
        resized.rng = self.rng.clone();
        *self = resized;
        Ok(())
    }

    /// Puts `fields` and `next_fields` in spec order and checks names, dtypes and sizes.
    /// `next_rows` is the number of final next values expected per `has_next` field.
    fn match_fields<'a>(
        &self,
        fields: &[(&str, FieldSlice<'a>)],
        next_fields: &[(&str, FieldSlice<'a>)],
        next_rows: usize,
    ) -> CoreResult<OrderedTrajectory<'a>> {
        let by_name: HashMap<&str, usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.spec.name.as_str(), i))
            .collect();
        let mut values: Vec<Option<FieldSlice<'a>>> = vec![None; self.columns.len()];
        let mut nexts: Vec<Option<FieldSlice<'a>>> = vec![None; self.columns.len()];
        for (target, given, what) in [
            (&mut values, fields, "fields"),
            (&mut nexts, next_fields, "next_fields"),
        ] {
            for (name, slice) in given {
                let argument = format!("{what}[{name:?}]");
                let index = *by_name.get(name).ok_or_else(|| {
                    CoreError::invalid(&argument, "not a field of this replay buffer")
                })?;
                let spec = &self.columns[index].spec;
                if what == "next_fields" && !spec.has_next {
                    return Err(CoreError::invalid(
                        &argument,
                        "this field was declared without has_next",
                    ));
                }
                if target[index].is_some() {
                    return Err(CoreError::invalid(&argument, "given twice"));
                }
                if slice.dtype() != spec.dtype {
                    return Err(CoreError::invalid(
                        &argument,
                        format!(
                            "expected dtype {}, got {}",
                            spec.dtype.numpy_name(),
                            slice.dtype().numpy_name()
                        ),
                    ));
                }
                target[index] = Some(*slice);
            }
        }
        let mut steps = None;
        let mut columns = Vec::with_capacity(self.columns.len());
        for ((column, value), next) in self.columns.iter().zip(values).zip(nexts) {
            let name = &column.spec.name;
            let row_len = column.spec.row_len();
            let value = value.ok_or_else(|| {
                CoreError::invalid(format!("fields[{name:?}]"), "missing from the trajectory")
            })?;
            if value.len() % row_len != 0 {
                return Err(CoreError::invalid(
                    format!("fields[{name:?}]"),
                    format!(
                        "{} values are not whole rows of shape {:?}",
                        value.len(),
                        column.spec.row_shape
                    ),
                ));
            }
            let rows = value.len() / row_len;
            match steps {
                None => steps = Some((rows, name)),
                Some((expected, first)) if expected != rows => {
                    return Err(CoreError::invalid(
                        format!("fields[{name:?}]"),
                        format!("has {rows} rows but fields[{first:?}] has {expected}"),
                    ));
                }
                Some(_) => {}
            }
            if column.spec.has_next {
                let next = next.ok_or_else(|| {
                    CoreError::invalid(
                        format!("next_fields[{name:?}]"),
                        "missing: the final next value of a has_next field is required",
                    )
                })?;
                if next.len() != row_len * next_rows {
                    let rows = if next_rows == 1 {
                        "one row".to_string()
                    } else {
                        format!("{next_rows} rows (one per trajectory)")
                    };
                    return Err(CoreError::invalid(
                        format!("next_fields[{name:?}]"),
                        format!(
                            "expected {rows} of shape {:?} ({} values), got {} values",
                            column.spec.row_shape,
                            row_len * next_rows,
                            next.len()
                        ),
                    ));
                }
            }
            columns.push((value, next));
        }
        let steps = steps.map_or(0, |(rows, _)| rows);
        if steps == 0 {
            return Err(CoreError::invalid(
                "fields",
                "a trajectory needs at least one step",
            ));
        }
        Ok(OrderedTrajectory { steps, columns })
    }

    /// Draws `batch_size` rows uniformly with replacement. Errors if
    /// `batch_size` exceeds the number of stored rows.
    pub fn sample(&mut self, batch_size: usize) -> CoreResult<ReplaySample> {
        if batch_size > self.len {
            return Err(CoreError::invalid(
                "batch_size",
                format!(
                    "cannot sample {batch_size} steps from a replay buffer holding {}",
                    self.len
                ),
            ));
        }
        // One row is a sequence of one: the same draws as sample_sequences(batch_size, 1).
        self.sample_sequences(batch_size, 1)
    }

    /// Draws `count` sequences of `sequence_length` consecutive rows, uniformly
    /// with replacement among the `len / sequence_length` aligned sequences
    /// (logical rows `k * sequence_length ..`, as ML-Agents'
    /// `AgentBuffer.sample_mini_batch` does), rows of each sequence in order:
    /// `count * sequence_length` rows in all. A partial sequence at the newest
    /// end is never drawn. Errors if `sequence_length` is 0 or the ring holds no
    /// whole sequence (and `count > 0`).
    pub fn sample_sequences(
        &mut self,
        count: usize,
        sequence_length: usize,
    ) -> CoreResult<ReplaySample> {
        if sequence_length == 0 {
            return Err(CoreError::invalid("sequence_length", "must be at least 1"));
        }
        let sequences = self.len / sequence_length;
        if count > 0 && sequences == 0 {
            return Err(CoreError::invalid(
                "sequence_length",
                format!(
                    "cannot sample sequences of {sequence_length} steps from a replay buffer \
                     holding {}",
                    self.len
                ),
            ));
        }
        let rows = count
            .checked_mul(sequence_length)
            .filter(|rows| {
                rows.checked_mul(self.stride)
                    .is_some_and(|bytes| bytes <= isize::MAX as usize)
            })
            .ok_or_else(|| {
                CoreError::invalid("count", "count x sequence_length rows do not fit in memory")
            })?;
        let mut indices = Vec::with_capacity(rows);
        let mut slots = Vec::with_capacity(rows);
        for _ in 0..count {
            let first = self.rng.below(sequences as u64) as usize * sequence_length;
            for logical in first..first + sequence_length {
                indices.push(logical as i64);
                slots.push(self.slot(logical));
            }
        }
        Ok(self.gather(&slots, indices))
    }

    /// The rows at logical indices `indices` (0 = oldest), as a sample.
    pub fn rows(&self, indices: &[usize]) -> CoreResult<ReplaySample> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len) {
            return Err(CoreError::invalid(
                "indices",
                format!("index {bad} out of range for {} rows", self.len),
            ));
        }
        let slots: Vec<usize> = indices.iter().map(|&i| self.slot(i)).collect();
        Ok(self.gather(&slots, indices.iter().map(|&i| i as i64).collect()))
    }

    fn gather(&self, slots: &[usize], indices: Vec<i64>) -> ReplaySample {
        let rows = self.rows_bytes();
        let stride = self.stride;
        let has_next = self.columns.iter().any(|c| c.tails.is_some());
        // Sampled rows are scattered over a large arena: request every needed
        // cache line first so the misses overlap instead of being paid one by one.
        for &slot in slots {
            prefetch_row(rows, slot * stride, stride);
            if has_next {
                let next = if slot + 1 == self.capacity {
                    0
                } else {
                    slot + 1
                };
                prefetch_row(rows, next * stride, stride);
            }
        }
        // Per sample: the row holding its next values, or the tail row.
        let mut next_sources = Vec::with_capacity(if has_next { slots.len() } else { 0 });
        let mut done = Vec::with_capacity(slots.len());
        for &slot in slots {
            let marker = self.marker(slot);
            done.push(marker & MARKER_TERMINATED != 0);
            if has_next {
                next_sources.push(if marker == 0 {
                    NextSource::Row(if slot + 1 == self.capacity {
                        0
                    } else {
                        slot + 1
                    })
                } else {
                    let seq = (marker & !MARKER_TERMINATED) - 1;
                    NextSource::Tail((seq - self.tail_base_seq) as usize)
                });
            }
        }
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut next_fields = Vec::new();
        for column in &self.columns {
            let (offset, row_bytes) = (column.offset, column.row_bytes);
            let mut values =
                FieldValues::zeros(column.spec.dtype, slots.len() * column.spec.row_len());
            // SAFETY: every byte copied comes from a value of this column's dtype.
            let out = unsafe { values.native_bytes_mut() };
            for (target, &slot) in out.chunks_exact_mut(row_bytes).zip(slots) {
                let from = slot * stride + offset;
                target.copy_from_slice(&rows[from..from + row_bytes]);
            }
            fields.push(values);
            if let Some(tails) = &column.tails {
                let mut values =
                    FieldValues::zeros(column.spec.dtype, slots.len() * column.spec.row_len());
                // SAFETY: as above; tails hold bytes of this column's values.
                let out = unsafe { values.native_bytes_mut() };
                for (target, source) in out.chunks_exact_mut(row_bytes).zip(&next_sources) {
                    target.copy_from_slice(match *source {
                        NextSource::Row(slot) => {
                            let from = slot * stride + offset;
                            &rows[from..from + row_bytes]
                        }
                        NextSource::Tail(row) => &tails[row * row_bytes..(row + 1) * row_bytes],
                    });
                }
                next_fields.push(values);
            }
        }
        ReplaySample {
            fields,
            next_fields,
            done,
            indices,
        }
    }

    /// Saves the ring (rows oldest first, final next values, generator state)
    /// to `path` as a field file of kind `"replay_buffer"`, atomically.
    pub fn save(&self, path: &Path) -> CoreResult<()> {
        let ring_state = [
            LAYOUT_VERSION,
            self.capacity as i64,
            self.len as i64,
            self.rng.seed as i64,
            self.rng.draws as i64,
        ];
        let logical: Vec<usize> = (0..self.len).collect();
        let all = self.rows(&logical)?;
        let end_codes: Vec<u8> = logical
            .iter()
            .map(|&l| match self.marker(self.slot(l)) {
                0 => END_CONTINUES,
                m if m & MARKER_TERMINATED != 0 => END_TERMINATED,
                _ => END_TRUNCATED,
            })
            .collect();
        let live_tails = (self.next_tail_seq - self.first_live_tail_seq) as usize;
        let first_tail = (self.first_live_tail_seq - self.tail_base_seq) as usize;
        let mut names = Vec::new();
        let mut tail_values = Vec::new();
        for column in &self.columns {
            names.push(format!("field/{}", column.spec.name));
            names.push(format!("next/{}", column.spec.name));
            if let Some(tails) = &column.tails {
                let bytes = &tails
                    [first_tail * column.row_bytes..(first_tail + live_tails) * column.row_bytes];
                tail_values.push(values_from_bytes(column.spec.dtype, bytes));
            }
        }
        let mut refs = vec![
            FieldRef {
                name: "__ring__",
                row_shape: &[],
                rows: ring_state.len(),
                values: FieldSlice::I64(&ring_state),
                entry_offsets: None,
            },
            FieldRef {
                name: "__end__",
                row_shape: &[],
                rows: self.len,
                values: FieldSlice::U8(&end_codes),
                entry_offsets: None,
            },
        ];
        let mut tail_iter = tail_values.iter();
        for (i, (column, values)) in self.columns.iter().zip(&all.fields).enumerate() {
            refs.push(FieldRef {
                name: &names[2 * i],
                row_shape: &column.spec.row_shape,
                rows: self.len,
                values: values.as_slice(),
                entry_offsets: None,
            });
            if column.tails.is_some() {
                if let Some(tails) = tail_iter.next() {
                    refs.push(FieldRef {
                        name: &names[2 * i + 1],
                        row_shape: &column.spec.row_shape,
                        rows: live_tails,
                        values: tails.as_slice(),
                        entry_offsets: None,
                    });
                }
            }
        }
        storage::save_fields(path, REPLAY_FILE_KIND, &refs)
    }

    /// Loads a ring saved by [`ReplayRing::save`]: same capacity, fields, rows
    /// and generator state. A damaged or inconsistent file gives
    /// [`CoreError::CorruptFile`] and nothing is loaded.
    pub fn load(path: &Path) -> CoreResult<ReplayRing> {
        let fields = storage::load_fields(path, REPLAY_FILE_KIND)?;
        let bad = |message: String| CoreError::CorruptFile {
            path: path.display().to_string(),
            message,
        };
        let mut by_name: HashMap<String, FieldData> = HashMap::with_capacity(fields.len());
        let mut order = Vec::new();
        for field in fields {
            if field.entry_offsets.is_some() {
                return Err(bad(format!(
                    "record {:?} is ragged; replay buffer files hold dense records only",
                    field.name
                )));
            }
            if let Some(name) = field.name.strip_prefix("field/") {
                order.push(name.to_string());
            }
            by_name.insert(field.name.clone(), field);
        }
        let ring_state = match by_name.remove("__ring__") {
            Some(FieldData {
                values: FieldValues::I64(v),
                ..
            }) if v.len() == 5 => v,
            _ => {
                return Err(bad(
                    "replay buffer file lacks a valid __ring__ record".into()
                ))
            }
        };
        if ring_state[0] != LAYOUT_VERSION {
            return Err(bad(format!(
                "replay buffer layout {} is not supported (this build reads {LAYOUT_VERSION})",
                ring_state[0]
            )));
        }
        let capacity = usize::try_from(ring_state[1]).unwrap_or(0);
        let len = usize::try_from(ring_state[2]).unwrap_or(usize::MAX);
        if capacity == 0 || len > capacity {
            return Err(bad(format!(
                "replay buffer holds {} rows for capacity {}",
                ring_state[2], ring_state[1]
            )));
        }
        let end_codes = match by_name.remove("__end__") {
            Some(FieldData {
                values: FieldValues::U8(v),
                ..
            }) if v.len() == len => v,
            _ => {
                return Err(bad(format!(
                    "__end__ record missing or not {len} uint8 rows"
                )))
            }
        };
        if let Some(bad_code) = end_codes.iter().find(|&&c| c > END_TERMINATED) {
            return Err(bad(format!("__end__ holds unknown code {bad_code}")));
        }
        if len > 0 && end_codes[len - 1] == END_CONTINUES {
            return Err(bad("the newest row does not end a trajectory".into()));
        }
        let trajectory_ends = end_codes.iter().filter(|&&c| c != END_CONTINUES).count();
        let mut specs = Vec::with_capacity(order.len());
        let mut loaded = Vec::with_capacity(order.len());
        for name in &order {
            let field = by_name
                .remove(&format!("field/{name}"))
                .ok_or_else(|| bad(format!("field {name:?} appears twice")))?;
            if field.rows != len {
                return Err(bad(format!(
                    "field {name:?} has {} rows, expected {len}",
                    field.rows
                )));
            }
            let next = by_name.remove(&format!("next/{name}"));
            if let Some(next) = &next {
                if next.rows != trajectory_ends
                    || next.row_shape != field.row_shape
                    || next.values.dtype() != field.values.dtype()
                {
                    return Err(bad(format!(
                        "next values of {name:?} do not match its {trajectory_ends} trajectory ends"
                    )));
                }
            }
            specs.push(FieldSpec {
                name: name.clone(),
                dtype: field.values.dtype(),
                row_shape: field.row_shape.clone(),
                has_next: next.is_some(),
            });
            loaded.push((field.values, next.map(|n| n.values)));
        }
        if let Some(extra) = by_name.keys().next() {
            return Err(bad(format!(
                "unexpected record {extra:?} in a replay buffer file"
            )));
        }
        let mut ring = ReplayRing::new(specs, capacity, 0).map_err(|e| bad(e.to_string()))?;
        ring.rng = CountingRng::restore(ring_state[3] as u64, ring_state[4] as u64);
        let layout: Vec<(usize, usize)> = ring
            .columns
            .iter()
            .map(|c| (c.offset, c.row_bytes))
            .collect();
        let stride = ring.stride;
        let rows = ring.rows_bytes_mut();
        for ((values, _), &(offset, row_bytes)) in loaded.iter().zip(&layout) {
            let source = values.as_slice().native_bytes();
            for (slot, row) in source.chunks_exact(row_bytes).enumerate() {
                let at = slot * stride + offset;
                rows[at..at + row_bytes].copy_from_slice(row);
            }
        }
        for (column, (_, next)) in ring.columns.iter_mut().zip(&loaded) {
            if let Some(next) = next {
                column.tails = Some(next.as_slice().native_bytes().to_vec());
            }
        }
        let mut seq = 0;
        for (slot, &code) in end_codes.iter().enumerate() {
            let marker = if code == END_CONTINUES {
                0
            } else {
                seq += 1;
                seq | if code == END_TERMINATED {
                    MARKER_TERMINATED
                } else {
                    0
                }
            };
            ring.set_marker(slot, marker);
        }
        ring.len = len;
        ring.next_tail_seq = seq;
        Ok(ring)
    }
}

/// Where a sample's next values come from.
#[derive(Clone, Copy)]
enum NextSource {
    /// The next slot of the ring (same trajectory).
    Row(usize),
    /// A row of the tail store (the trajectory's final next value).
    Tail(usize),
}

/// The slices of pushed trajectories in spec order: (values, final next values).
struct OrderedTrajectory<'a> {
    steps: usize,
    columns: Vec<(FieldSlice<'a>, Option<FieldSlice<'a>>)>,
}

/// `bytes` (native values of `dtype`, copied from values of that dtype) as owned values.
fn values_from_bytes(dtype: Dtype, bytes: &[u8]) -> FieldValues {
    let mut values = FieldValues::zeros(dtype, bytes.len() / dtype.item_size());
    // SAFETY: the bytes were copied from values of `dtype`.
    unsafe { values.native_bytes_mut() }.copy_from_slice(bytes);
    values
}

/// Asks Linux to back a large array with 2 MiB pages: random sampling over
/// hundreds of MB otherwise pays a page-table walk per row. Advisory only.
fn advise_huge_pages<T>(values: &[T]) {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        const PAGE: usize = 4096;
        let start = values.as_ptr() as usize;
        let end = start + std::mem::size_of_val(values);
        let (first, last) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if last >= first + (2 << 20) {
            // SAFETY: the range lies inside `values`' allocation; MADV_HUGEPAGE only
            // changes how the kernel backs those pages, never their contents.
            unsafe {
                madvise(first as *mut std::ffi::c_void, last - first, MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = values;
}

/// Hints the CPU to load the cache lines of `bytes[at..at + len]` (at most two
/// lines: the start of a row and its last byte); a no-op off x86-64.
#[inline(always)]
fn prefetch_row(bytes: &[u8], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if at + len <= bytes.len() {
        // SAFETY: both pointers are in bounds; prefetching never faults and has no
        // effect on program semantics.
        #[allow(unused_unsafe)]
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let row = bytes.as_ptr().add(at);
            _mm_prefetch::<_MM_HINT_T0>(row.cast::<i8>());
            if len > CACHE_LINE {
                _mm_prefetch::<_MM_HINT_T0>(row.add(len - 1).cast::<i8>());
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    type Named<'a> = Vec<(&'a str, FieldSlice<'a>)>;

    fn specs() -> Vec<FieldSpec> {
        vec![
            FieldSpec {
                name: "obs_0".into(),
                dtype: Dtype::F32,
                row_shape: vec![2],
                has_next: true,
            },
            FieldSpec {
                name: "reward".into(),
                dtype: Dtype::F64,
                row_shape: vec![],
                has_next: false,
            },
        ]
    }

    /// Pushes a trajectory whose step t has obs (base+t, -(base+t)) and reward base+t,
    /// with final next obs (base+steps, -(base+steps)).
    fn push(ring: &mut ReplayRing, base: usize, steps: usize, terminated: bool) {
        let obs: Vec<f32> = (0..steps)
            .flat_map(|t| [(base + t) as f32, -((base + t) as f32)])
            .collect();
        let reward: Vec<f64> = (0..steps).map(|t| (base + t) as f64).collect();
        let next = [(base + steps) as f32, -((base + steps) as f32)];
        ring.push_trajectory(
            &[
                ("obs_0", FieldSlice::F32(&obs)),
                ("reward", FieldSlice::F64(&reward)),
            ],
            &[("obs_0", FieldSlice::F32(&next))],
            terminated,
        )
        .unwrap();
    }

    fn all_rows(ring: &ReplayRing) -> ReplaySample {
        ring.rows(&(0..ring.len()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn next_obs_and_done_follow_trajectories_across_wraparound() {
        let mut ring = ReplayRing::new(specs(), 7, 0).unwrap();
        push(&mut ring, 100, 3, true); // rows 100..103, next 103 terminal
        push(&mut ring, 200, 4, false); // rows 200..204, truncated, bootstrap 204
        push(&mut ring, 300, 2, true); // overwrites 100, 101
        assert_eq!(ring.len(), 7);
        let rows = all_rows(&ring);
        let FieldValues::F64(reward) = &rows.fields[1] else {
            panic!()
        };
        assert_eq!(reward, &[102.0, 200.0, 201.0, 202.0, 203.0, 300.0, 301.0]);
        let FieldValues::F32(next) = &rows.next_fields[0] else {
            panic!()
        };
        let next_first: Vec<f32> = next.chunks(2).map(|r| r[0]).collect();
        assert_eq!(
            next_first,
            [103.0, 201.0, 202.0, 203.0, 204.0, 301.0, 302.0]
        );
        assert_eq!(rows.done, [true, false, false, false, false, false, true]);
    }

    #[test]
    fn trajectory_longer_than_capacity_keeps_its_tail() {
        let mut ring = ReplayRing::new(specs(), 4, 0).unwrap();
        push(&mut ring, 0, 2, true);
        push(&mut ring, 10, 9, true);
        let rows = all_rows(&ring);
        assert_eq!(
            rows.fields[1],
            FieldValues::F64(vec![15.0, 16.0, 17.0, 18.0])
        );
        let FieldValues::F32(next) = &rows.next_fields[0] else {
            panic!()
        };
        assert_eq!(
            next.chunks(2).map(|r| r[0]).collect::<Vec<_>>(),
            [16.0, 17.0, 18.0, 19.0]
        );
    }

    #[test]
    fn truncate_keeps_newest_rows_and_their_next_values() {
        let mut ring = ReplayRing::new(specs(), 10, 0).unwrap();
        for k in 0..5 {
            push(&mut ring, 10 * k, 3, k % 2 == 0);
        }
        ring.truncate(4);
        let rows = all_rows(&ring);
        assert_eq!(
            rows.fields[1],
            FieldValues::F64(vec![32.0, 40.0, 41.0, 42.0])
        );
        assert_eq!(rows.done, [false, false, false, true]);
        let FieldValues::F32(next) = &rows.next_fields[0] else {
            panic!()
        };
        assert_eq!(
            next.chunks(2).map(|r| r[0]).collect::<Vec<_>>(),
            [33.0, 41.0, 42.0, 43.0]
        );
    }

    #[test]
    fn many_short_trajectories_compact_the_tail_store() {
        let mut ring = ReplayRing::new(specs(), 100, 0).unwrap();
        for k in 0..10_000 {
            push(&mut ring, k * 10, 1 + k % 3, k % 5 == 0);
        }
        let tails = ring.columns[0].tails.as_ref().unwrap();
        let tail_rows = tails.len() / 8;
        assert!(tail_rows <= 2 * 100 + 1024, "{tail_rows} tail rows kept");
        let rows = all_rows(&ring);
        let FieldValues::F64(reward) = &rows.fields[1] else {
            panic!()
        };
        let FieldValues::F32(next) = &rows.next_fields[0] else {
            panic!()
        };
        // Every next value is the reward's step + 1 (same trajectory, or its final next).
        for (r, n) in reward.iter().zip(next.chunks(2)) {
            assert_eq!(*r as f32 + 1.0, n[0]);
        }
    }

    #[test]
    fn pushing_many_trajectories_equals_pushing_them_one_by_one() {
        let lengths = [3usize, 1, 5, 2, 4];
        let terminated = [true, false, false, true, false];
        for capacity in [2usize, 6, 9, 40] {
            let mut one_by_one = ReplayRing::new(specs(), capacity, 5).unwrap();
            let mut batched = ReplayRing::new(specs(), capacity, 5).unwrap();
            push(&mut one_by_one, 900, 4, true);
            push(&mut batched, 900, 4, true);
            let (mut obs, mut reward, mut next) = (Vec::new(), Vec::new(), Vec::new());
            for (k, (&steps, &ended)) in lengths.iter().zip(&terminated).enumerate() {
                push(&mut one_by_one, 100 * k, steps, ended);
                for t in 0..steps {
                    let v = (100 * k + t) as f32;
                    obs.extend([v, -v]);
                    reward.push(v as f64);
                }
                let after = (100 * k + steps) as f32;
                next.extend([after, -after]);
            }
            batched
                .push_trajectories(
                    &[
                        ("obs_0", FieldSlice::F32(&obs)),
                        ("reward", FieldSlice::F64(&reward)),
                    ],
                    &[("obs_0", FieldSlice::F32(&next))],
                    &lengths,
                    &terminated,
                )
                .unwrap();
            assert_eq!(
                all_rows(&batched),
                all_rows(&one_by_one),
                "capacity {capacity}"
            );
            let draws = batched.len();
            assert_eq!(
                batched.sample(draws).unwrap(),
                one_by_one.sample(draws).unwrap()
            );
        }
    }

    #[test]
    fn bad_batches_of_trajectories_change_nothing() {
        let mut ring = ReplayRing::new(specs(), 8, 0).unwrap();
        push(&mut ring, 0, 3, true);
        let before = all_rows(&ring);
        let obs = [1.0f32; 6];
        let reward = [1.0f64; 3];
        let next = [0.0f32; 4];
        let fields = [
            ("obs_0", FieldSlice::F32(&obs)),
            ("reward", FieldSlice::F64(&reward)),
        ];
        let next_fields = [("obs_0", FieldSlice::F32(&next))];
        let cases: [(&[usize], &[bool], &str); 5] = [
            (&[], &[], "at least one trajectory"),
            (&[1, 2], &[true], "2 trajectories"),
            (&[3, 0], &[true, true], "lengths[1]"),
            (&[1, 1], &[true, true], "add up to the 3 rows"),
            (
                &[1, 1, 1],
                &[true, true, true],
                "3 rows (one per trajectory)",
            ),
        ];
        for (lengths, terminated, expected) in cases {
            let err = ring
                .push_trajectories(&fields, &next_fields, lengths, terminated)
                .unwrap_err();
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
        assert_eq!(all_rows(&ring), before);
    }

    #[test]
    fn sequences_are_aligned_whole_and_in_order() {
        let mut ring = ReplayRing::new(specs(), 20, 9).unwrap();
        for k in 0..4 {
            push(&mut ring, 100 * k, 4, k % 2 == 1);
        }
        ring.truncate(14); // 14 rows: 4 whole sequences of 3, then 2 rows never drawn
        let sample = ring.sample_sequences(50, 3).unwrap();
        assert_eq!(sample.indices.len(), 150);
        let all = all_rows(&ring);
        let mut seen = std::collections::HashSet::new();
        for sequence in sample.indices.chunks(3) {
            assert_eq!(sequence[0] % 3, 0);
            assert!(
                sequence[0] + 2 < 12,
                "{sequence:?} reaches the partial sequence"
            );
            assert_eq!(sequence, [sequence[0], sequence[0] + 1, sequence[0] + 2]);
            seen.insert(sequence[0]);
        }
        assert_eq!(seen.len(), 4, "every whole sequence is drawn");
        let indices: Vec<usize> = sample.indices.iter().map(|&i| i as usize).collect();
        let expected = ring.rows(&indices).unwrap();
        assert_eq!(sample.fields, expected.fields);
        assert_eq!(sample.next_fields, expected.next_fields);
        assert_eq!(sample.done, expected.done);
        assert_eq!(all.fields[1].as_slice().len(), 14);
    }

    #[test]
    fn sampling_single_rows_is_sampling_sequences_of_one() {
        let mut rows = ReplayRing::new(specs(), 30, 4).unwrap();
        for k in 0..5 {
            push(&mut rows, 10 * k, 5, true);
        }
        let mut sequences = rows.clone();
        for batch in [1usize, 7, 25] {
            assert_eq!(
                rows.sample(batch).unwrap(),
                sequences.sample_sequences(batch, 1).unwrap()
            );
        }
        assert_eq!(rows.rng_state(), sequences.rng_state());
    }

    #[test]
    fn bad_sequence_requests_are_errors() {
        let mut ring = ReplayRing::new(specs(), 10, 0).unwrap();
        push(&mut ring, 0, 2, true);
        let no_length = ring.sample_sequences(1, 0).unwrap_err().to_string();
        assert!(no_length.contains("at least 1"), "{no_length}");
        let too_long = ring.sample_sequences(1, 3).unwrap_err().to_string();
        assert!(too_long.contains("holding 2"), "{too_long}");
        let huge = ring
            .sample_sequences(usize::MAX, 2)
            .unwrap_err()
            .to_string();
        assert!(huge.contains("do not fit"), "{huge}");
        assert_eq!(
            ring.sample_sequences(0, 3).unwrap().indices,
            Vec::<i64>::new()
        );
        // Drawing more rows than the ring holds is sampling with replacement.
        assert_eq!(ring.sample_sequences(5, 2).unwrap().indices.len(), 10);
    }

    #[test]
    fn resize_keeps_the_newest_rows_their_next_values_and_the_generator() {
        let mut ring = ReplayRing::new(specs(), 12, 3).unwrap();
        for k in 0..6 {
            push(&mut ring, 10 * k, 3, k % 2 == 0);
        }
        ring.sample(5).unwrap();
        for capacity in [4usize, 12, 30] {
            let mut resized = ring.clone();
            resized.resize(capacity).unwrap();
            assert_eq!(resized.capacity(), capacity);
            let mut expected = ring.clone();
            expected.truncate(capacity);
            assert_eq!(all_rows(&resized), all_rows(&expected));
            assert_eq!(resized.rng_state(), ring.rng_state());
            // Pushing on wraps around the new capacity like a ring built with it.
            let mut built = ReplayRing::new(specs(), capacity, 3).unwrap();
            let rows = all_rows(&expected);
            let FieldValues::F64(rewards) = &rows.fields[1] else {
                panic!()
            };
            // Rebuild the same content trajectory by trajectory (ends are where done or
            // the next value is not the next row's observation + 1 step).
            let mut start = rewards[0] as usize;
            for (i, &r) in rewards.iter().enumerate() {
                let last = i + 1 == rewards.len() || rewards[i + 1] as usize != r as usize + 1;
                if last {
                    push(&mut built, start, r as usize + 1 - start, rows.done[i]);
                    if i + 1 < rewards.len() {
                        start = rewards[i + 1] as usize;
                    }
                }
            }
            assert_eq!(all_rows(&built), all_rows(&resized));
            push(&mut resized, 500, 7, true);
            push(&mut built, 500, 7, true);
            assert_eq!(all_rows(&built), all_rows(&resized));
        }
        assert!(ring.clone().resize(0).is_err());
    }

    #[test]
    fn sampling_is_seeded_and_survives_save_and_load() {
        let dir = std::env::temp_dir().join(format!("mlagents-fast-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ring.fields");
        let mut ring = ReplayRing::new(specs(), 50, 42).unwrap();
        for k in 0..30 {
            push(&mut ring, 10 * k, 3, k % 3 == 0);
        }
        let mut twin = ring.clone();
        assert_eq!(ring.sample(16).unwrap(), twin.sample(16).unwrap());
        ring.save(&path).unwrap();
        let mut loaded = ReplayRing::load(&path).unwrap();
        assert_eq!(all_rows(&loaded), all_rows(&ring));
        for _ in 0..5 {
            assert_eq!(loaded.sample(32).unwrap(), ring.sample(32).unwrap());
        }
        // Pushing after loading overwrites the same rows in both.
        push(&mut ring, 999, 5, true);
        push(&mut loaded, 999, 5, true);
        assert_eq!(all_rows(&loaded), all_rows(&ring));
        let mut other_seed = ReplayRing::new(specs(), 50, 43).unwrap();
        push(&mut other_seed, 0, 50, true);
        let mut same_data = ReplayRing::new(specs(), 50, 42).unwrap();
        push(&mut same_data, 0, 50, true);
        assert_ne!(
            other_seed.sample(32).unwrap().indices,
            same_data.sample(32).unwrap().indices
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_trajectories_are_rejected_without_changing_the_ring() {
        let mut ring = ReplayRing::new(specs(), 5, 0).unwrap();
        push(&mut ring, 0, 2, true);
        let before = all_rows(&ring);
        let obs = [1.0f32; 4];
        let cases: Vec<(Named<'_>, Named<'_>, &str)> = vec![
            (
                vec![("obs_0", FieldSlice::F32(&obs))],
                vec![("obs_0", FieldSlice::F32(&[0.0, 0.0]))],
                "reward",
            ),
            (
                vec![
                    ("obs_0", FieldSlice::F32(&obs)),
                    ("reward", FieldSlice::F32(&[1.0, 2.0])),
                ],
                vec![("obs_0", FieldSlice::F32(&[0.0, 0.0]))],
                "dtype float64",
            ),
            (
                vec![
                    ("obs_0", FieldSlice::F32(&obs)),
                    ("reward", FieldSlice::F64(&[1.0])),
                ],
                vec![("obs_0", FieldSlice::F32(&[0.0, 0.0]))],
                "rows",
            ),
            (
                vec![
                    ("obs_0", FieldSlice::F32(&obs)),
                    ("reward", FieldSlice::F64(&[1.0, 2.0])),
                ],
                vec![],
                "next_fields[\"obs_0\"]",
            ),
            (
                vec![
                    ("obs_0", FieldSlice::F32(&obs)),
                    ("reward", FieldSlice::F64(&[1.0, 2.0])),
                ],
                vec![("reward", FieldSlice::F64(&[0.0]))],
                "has_next",
            ),
            (
                vec![
                    ("obs_0", FieldSlice::F32(&[])),
                    ("reward", FieldSlice::F64(&[])),
                ],
                vec![("obs_0", FieldSlice::F32(&[0.0, 0.0]))],
                "at least one step",
            ),
        ];
        for (fields, next, expected) in cases {
            let err = ring.push_trajectory(&fields, &next, true).unwrap_err();
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
        assert_eq!(all_rows(&ring), before);
        assert!(ring
            .sample(3)
            .unwrap_err()
            .to_string()
            .contains("holding 2"));
    }
}
