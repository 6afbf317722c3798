//! Row kernels behind `mlagents_fast.trainers.buffer.AgentBuffer`.
//!
//! An AgentBuffer field is a column: `rows` rows of `row_bytes` bytes each,
//! contiguous, in one typed array owned by the Python side (so that minibatches
//! can be plain numpy views of it). Everything that moves many rows at once
//! goes through this module, on raw bytes so one kernel serves every dtype:
//!
//! - [`sequence_shuffle_rows`]: the row order of `AgentBuffer.shuffle`, which
//!   permutes whole sequences of `sequence_length` rows and drops a trailing
//!   partial sequence, as ML-Agents 1.1.0 does;
//! - [`sample_sequence_rows`]: the rows of `AgentBuffer.sample_mini_batch`,
//!   whole sequences drawn uniformly with replacement;
//! - [`batch_plan`]: which rows `AgentBufferField.get_batch` (and therefore
//!   `resequence_and_append`) takes and how many padding rows it adds;
//! - [`gather_rows`]: copies the chosen rows of one column into a new column.
//!
//! Random draws use PCG-64 seeded by the caller; the Python side draws the seed
//! from `numpy.random`, so `numpy.random.seed` makes shuffles reproducible.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::{CoreError, CoreResult};

/// Row order that shuffles whole sequences: the `rows / sequence_length`
/// complete sequences are permuted, each kept in order, and the rows of a
/// trailing partial sequence are dropped (ML-Agents' `AgentBuffer.shuffle`).
pub fn sequence_shuffle_rows(
    rows: usize,
    sequence_length: usize,
    seed: u64,
) -> CoreResult<Vec<i64>> {
    if sequence_length == 0 {
        return Err(CoreError::invalid("sequence_length", "must be at least 1"));
    }
    let sequences = rows / sequence_length;
    let mut rng = Pcg64::seed_from_u64(seed);
    if sequence_length == 1 {
        // The common (feed-forward) case: the permutation is the row order itself.
        let mut order: Vec<i64> = (0..sequences as i64).collect();
        order.shuffle(&mut rng);
        return Ok(order);
    }
    let mut order: Vec<usize> = (0..sequences).collect();
    order.shuffle(&mut rng);
    Ok(expand_sequences(&order, sequence_length))
}

/// Rows of `batch_size / sequence_length` whole sequences drawn uniformly with
/// replacement among the `rows / sequence_length` complete sequences
/// (ML-Agents' `AgentBuffer.sample_mini_batch`).
pub fn sample_sequence_rows(
    rows: usize,
    batch_size: usize,
    sequence_length: usize,
    seed: u64,
) -> CoreResult<Vec<i64>> {
    if sequence_length == 0 {
        return Err(CoreError::invalid("sequence_length", "must be at least 1"));
    }
    let sequences = rows / sequence_length;
    let draws = batch_size / sequence_length;
    if sequences == 0 && draws > 0 {
        return Err(CoreError::invalid(
            "batch_size",
            format!(
                "cannot sample from a buffer of {rows} rows: it holds no complete sequence \
                 of length {sequence_length}"
            ),
        ));
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    let starts: Vec<usize> = (0..draws).map(|_| rng.random_range(0..sequences)).collect();
    Ok(expand_sequences(&starts, sequence_length))
}

/// Row indices of the given sequence numbers, each expanded to its rows.
fn expand_sequences(sequences: &[usize], sequence_length: usize) -> Vec<i64> {
    let mut rows = Vec::with_capacity(sequences.len() * sequence_length);
    for &sequence in sequences {
        let start = (sequence * sequence_length) as i64;
        rows.extend(start..start + sequence_length as i64);
    }
    rows
}

/// What `AgentBufferField.get_batch` returns, as rows of the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchPlan {
    /// Rows `start..end` in order, then `padding_rows` padding rows
    /// (non-overlapping sequences).
    Range {
        start: usize,
        end: usize,
        padding_rows: usize,
    },
    /// These rows in this order (overlapping sequences, `sequential=False`).
    Rows(Vec<i64>),
}

/// The rows `get_batch(batch_size, training_length, sequential)` takes from a
/// field of `len` rows, following ML-Agents 1.1.0 exactly:
///
/// - sequential: the last `batch_size` non-overlapping sequences. When the
///   field does not divide into whole sequences and more rows are asked for
///   than exist, all rows are returned followed by `training_length - leftover`
///   padding rows at the end (`leftover = len % training_length`).
///   `batch_size = None` asks for every sequence (the partial one included).
/// - overlapping: for each of the last `batch_size` end positions, the
///   `training_length` rows ending there.
///
/// Asking for more sequences than exist is an `InvalidArgument` on `batch_size`.
pub fn batch_plan(
    len: usize,
    batch_size: Option<usize>,
    training_length: usize,
    sequential: bool,
) -> CoreResult<BatchPlan> {
    if training_length == 0 {
        return Err(CoreError::invalid("training_length", "must be at least 1"));
    }
    let too_large = || {
        CoreError::invalid(
            "batch_size",
            format!(
                "the batch size and training length requested ({batch_size:?}, \
                 {training_length}) are too large for a field of {len} rows"
            ),
        )
    };
    if sequential {
        let leftover = len % training_length;
        let available = len / training_length + usize::from(leftover != 0);
        let batch_size = batch_size.unwrap_or(available);
        if batch_size > available {
            return Err(too_large());
        }
        if batch_size * training_length > len {
            Ok(BatchPlan::Range {
                start: 0,
                end: len,
                padding_rows: training_length - leftover,
            })
        } else {
            Ok(BatchPlan::Range {
                start: len - batch_size * training_length,
                end: len,
                padding_rows: 0,
            })
        }
    } else {
        // A field shorter than one sequence has no overlapping sequence; asking for
        // all of them (batch_size None) gives none, as in ML-Agents.
        let batch_size = match batch_size {
            None => (len + 1).saturating_sub(training_length),
            // ML-Agents' check, `len - training_length + 1 < batch_size`, in unsigned form.
            Some(requested) if len + 1 < training_length + requested => return Err(too_large()),
            Some(requested) => requested,
        };
        let mut rows = Vec::with_capacity(batch_size * training_length);
        for end in (len - batch_size + 1)..=len {
            rows.extend((end - training_length) as i64..end as i64);
        }
        Ok(BatchPlan::Rows(rows))
    }
}

/// Copies rows `rows[i]` of `source` (rows of `row_bytes` bytes) to row `i` of
/// `destination`. Every index is checked before any byte is written.
pub fn gather_rows(
    source: &[u8],
    row_bytes: usize,
    rows: &[i64],
    destination: &mut [u8],
) -> CoreResult<()> {
    if destination.len() != rows.len() * row_bytes {
        return Err(CoreError::invalid(
            "destination",
            format!(
                "holds {} bytes, {} rows of {row_bytes} bytes need {}",
                destination.len(),
                rows.len(),
                rows.len() * row_bytes
            ),
        ));
    }
    if row_bytes == 0 {
        // Zero-width rows (e.g. no continuous actions): nothing to copy, but the
        // indices still have to be non-negative.
        return match rows.iter().find(|&&r| r < 0) {
            Some(bad) => Err(CoreError::invalid(
                "rows",
                format!("row index {bad} is negative"),
            )),
            None => Ok(()),
        };
    }
    if source.len() % row_bytes != 0 {
        return Err(CoreError::invalid(
            "source",
            format!(
                "holds {} bytes, not a whole number of {row_bytes}-byte rows",
                source.len()
            ),
        ));
    }
    let source_rows = source.len() / row_bytes;
    if let Some(bad) = rows
        .iter()
        .find(|&&r| r < 0 || r as u64 >= source_rows as u64)
    {
        return Err(CoreError::invalid(
            "rows",
            format!("row index {bad} is out of range for a column of {source_rows} rows"),
        ));
    }
    // Fixed-size copies for the common row widths: a variable-length memcpy per
    // 4-byte row costs more than the copy itself.
    match row_bytes {
        1 => gather_fixed::<1>(source, rows, destination),
        2 => gather_fixed::<2>(source, rows, destination),
        4 => gather_fixed::<4>(source, rows, destination),
        8 => gather_fixed::<8>(source, rows, destination),
        12 => gather_fixed::<12>(source, rows, destination),
        16 => gather_fixed::<16>(source, rows, destination),
        24 => gather_fixed::<24>(source, rows, destination),
        32 => gather_fixed::<32>(source, rows, destination),
        64 => gather_fixed::<64>(source, rows, destination),
        _ => {
            for (out, &row) in destination.chunks_exact_mut(row_bytes).zip(rows) {
                let start = row as usize * row_bytes;
                out.copy_from_slice(&source[start..start + row_bytes]);
            }
        }
    }
    Ok(())
}

/// `gather_rows` for rows of exactly `N` bytes (indices already checked).
fn gather_fixed<const N: usize>(source: &[u8], rows: &[i64], destination: &mut [u8]) {
    // N is a constant here, so each copy compiles to a few moves, not a memcpy call.
    for (out, &row) in destination.chunks_exact_mut(N).zip(rows) {
        let start = row as usize * N;
        out.copy_from_slice(&source[start..start + N]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequences_of(rows: &[i64], sequence_length: usize) -> Vec<Vec<i64>> {
        rows.chunks(sequence_length).map(|c| c.to_vec()).collect()
    }

    #[test]
    fn shuffle_permutes_whole_sequences_and_drops_the_partial_one() {
        let rows = sequence_shuffle_rows(23, 5, 3).unwrap();
        assert_eq!(rows.len(), 20);
        let mut starts = Vec::new();
        for sequence in sequences_of(&rows, 5) {
            assert_eq!(sequence[0] % 5, 0, "sequence starts on a boundary");
            let expected: Vec<i64> = (sequence[0]..sequence[0] + 5).collect();
            assert_eq!(sequence, expected, "rows inside a sequence stay in order");
            starts.push(sequence[0]);
        }
        starts.sort_unstable();
        assert_eq!(starts, vec![0, 5, 10, 15]);
        // Seeded: the same seed gives the same order, another seed (almost surely) not.
        assert_eq!(rows, sequence_shuffle_rows(23, 5, 3).unwrap());
        let long = sequence_shuffle_rows(1000, 1, 1).unwrap();
        assert_ne!(long, sequence_shuffle_rows(1000, 1, 2).unwrap());
        assert_ne!(long, (0..1000).collect::<Vec<i64>>());
        let mut sorted = long.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..1000).collect::<Vec<i64>>(),
            "a permutation of every row"
        );
    }

    #[test]
    fn sample_draws_whole_sequences_in_range() {
        let rows = sample_sequence_rows(50, 64, 8, 11).unwrap();
        assert_eq!(rows.len(), 64);
        for sequence in sequences_of(&rows, 8) {
            assert_eq!(sequence[0] % 8, 0);
            assert!(sequence[7] < 48, "only complete sequences are drawn");
            assert_eq!(sequence, (sequence[0]..sequence[0] + 8).collect::<Vec<_>>());
        }
        // batch_size not a multiple: floor(batch / seq) sequences, as ML-Agents.
        assert_eq!(sample_sequence_rows(50, 20, 8, 0).unwrap().len(), 16);
        assert!(matches!(
            sample_sequence_rows(3, 4, 4, 0),
            Err(CoreError::InvalidArgument { argument, .. }) if argument == "batch_size"
        ));
        assert!(sample_sequence_rows(3, 0, 4, 0).unwrap().is_empty());
        assert!(sample_sequence_rows(3, 1, 0, 0).is_err());
    }

    #[test]
    fn sample_is_roughly_uniform() {
        let rows = sample_sequence_rows(10, 100_000, 1, 5).unwrap();
        let mut counts = [0usize; 10];
        rows.iter().for_each(|&r| counts[r as usize] += 1);
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn batch_plan_follows_mlagents_rules() {
        // [a b c d e], training_length 2: everything plus one padding row at the end.
        assert_eq!(
            batch_plan(5, None, 2, true).unwrap(),
            BatchPlan::Range {
                start: 0,
                end: 5,
                padding_rows: 1
            }
        );
        // The last two whole sequences, no padding.
        assert_eq!(
            batch_plan(5, Some(2), 2, true).unwrap(),
            BatchPlan::Range {
                start: 1,
                end: 5,
                padding_rows: 0
            }
        );
        assert_eq!(
            batch_plan(6, None, 3, true).unwrap(),
            BatchPlan::Range {
                start: 0,
                end: 6,
                padding_rows: 0
            }
        );
        assert_eq!(
            batch_plan(7, None, 1, true).unwrap(),
            BatchPlan::Range {
                start: 0,
                end: 7,
                padding_rows: 0
            }
        );
        assert!(batch_plan(5, Some(4), 2, true).is_err());
        assert_eq!(
            batch_plan(0, None, 4, true).unwrap(),
            BatchPlan::Range {
                start: 0,
                end: 0,
                padding_rows: 0
            }
        );
        // Overlapping: [a b c d e], training_length 2 -> ab bc cd de.
        assert_eq!(
            batch_plan(5, None, 2, false).unwrap(),
            BatchPlan::Rows(vec![0, 1, 1, 2, 2, 3, 3, 4])
        );
        assert_eq!(
            batch_plan(5, Some(2), 3, false).unwrap(),
            BatchPlan::Rows(vec![1, 2, 3, 2, 3, 4])
        );
        assert!(batch_plan(5, Some(4), 3, false).is_err());
        assert_eq!(
            batch_plan(2, None, 3, false).unwrap(),
            BatchPlan::Rows(vec![])
        );
        assert!(batch_plan(2, Some(1), 3, false).is_err());
        assert_eq!(
            batch_plan(0, None, 2, false).unwrap(),
            BatchPlan::Rows(vec![])
        );
        assert!(batch_plan(5, None, 0, true).is_err());
    }

    #[test]
    fn gather_copies_rows_and_checks_indices_first() {
        let source: Vec<u8> = (0..12).collect();
        let mut out = vec![0u8; 9];
        gather_rows(&source, 3, &[3, 0, 3], &mut out).unwrap();
        assert_eq!(out, vec![9, 10, 11, 0, 1, 2, 9, 10, 11]);

        let mut untouched = vec![7u8; 6];
        assert!(gather_rows(&source, 3, &[0, 4], &mut untouched).is_err());
        assert!(gather_rows(&source, 3, &[-1, 0], &mut untouched).is_err());
        assert_eq!(untouched, vec![7u8; 6], "nothing written on error");
        assert!(gather_rows(&source, 5, &[0], &mut [0u8; 5]).is_err());
        assert!(gather_rows(&source, 3, &[0], &mut [0u8; 4]).is_err());
        // Every specialised width and the generic path agree with a plain loop.
        for width in [1usize, 2, 3, 4, 8, 12, 16, 24, 32, 40, 64] {
            let source: Vec<u8> = (0..width * 9).map(|i| (i * 7 % 251) as u8).collect();
            let rows = [8i64, 0, 4, 4, 1];
            let mut out = vec![0u8; width * rows.len()];
            gather_rows(&source, width, &rows, &mut out).unwrap();
            let expected: Vec<u8> = rows
                .iter()
                .flat_map(|&r| source[r as usize * width..(r as usize + 1) * width].to_vec())
                .collect();
            assert_eq!(out, expected, "width {width}");
        }
        // Zero-width rows.
        gather_rows(&[], 0, &[5, 6], &mut []).unwrap();
        assert!(gather_rows(&[], 0, &[-1], &mut []).is_err());
    }
}
