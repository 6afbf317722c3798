//! Bindings of the AgentBuffer row kernels (`mlagents_fast_core::agent_buffer`).
//! Columns arrive as C-contiguous 2-D `uint8` views `(rows, row_bytes)` of the
//! typed numpy storage kept by `mlagents_fast.trainers.buffer`; outputs are
//! preallocated by the caller (so they have numpy's alignment and dtype) and
//! filled with the interpreter released.

use mlagents_fast_core::agent_buffer::{self, BatchPlan};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2, PyReadwriteArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::errors::{invalid_argument, IntoPyResult};
use crate::validate::readonly_array;

/// buffer_shuffle_rows(rows, sequence_length, seed)
/// --
///
/// Row order (int64) permuting the whole sequences of a column of `rows` rows;
/// a trailing partial sequence is dropped.
#[pyfunction]
fn buffer_shuffle_rows(
    py: Python<'_>,
    rows: usize,
    sequence_length: usize,
    seed: u64,
) -> PyResult<Bound<'_, PyArray1<i64>>> {
    let order = py
        .detach(|| agent_buffer::sequence_shuffle_rows(rows, sequence_length, seed))
        .py()?;
    Ok(PyArray1::from_vec(py, order))
}

/// buffer_sample_rows(rows, batch_size, sequence_length, seed)
/// --
///
/// Rows (int64) of `batch_size // sequence_length` whole sequences drawn
/// uniformly with replacement.
#[pyfunction]
fn buffer_sample_rows(
    py: Python<'_>,
    rows: usize,
    batch_size: usize,
    sequence_length: usize,
    seed: u64,
) -> PyResult<Bound<'_, PyArray1<i64>>> {
    let order = py
        .detach(|| agent_buffer::sample_sequence_rows(rows, batch_size, sequence_length, seed))
        .py()?;
    Ok(PyArray1::from_vec(py, order))
}

/// buffer_batch_plan(length, batch_size, training_length, sequential)
/// --
///
/// The rows `AgentBufferField.get_batch` takes: `(start, end, padding_rows, None)`
/// for a contiguous range followed by padding rows, or `(0, 0, 0, rows)` with an
/// int64 array of row indices for overlapping sequences.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn buffer_batch_plan(
    py: Python<'_>,
    length: usize,
    batch_size: Option<usize>,
    training_length: usize,
    sequential: bool,
) -> PyResult<(usize, usize, usize, Option<Bound<'_, PyArray1<i64>>>)> {
    match agent_buffer::batch_plan(length, batch_size, training_length, sequential).py()? {
        BatchPlan::Range {
            start,
            end,
            padding_rows,
        } => Ok((start, end, padding_rows, None)),
        BatchPlan::Rows(rows) => Ok((0, 0, 0, Some(PyArray1::from_vec(py, rows)))),
    }
}

/// buffer_gather_rows(sources, rows, outputs)
/// --
///
/// For each column i: `outputs[i][j] = sources[i][rows[j]]`. `sources[i]` and
/// `outputs[i]` are C-contiguous uint8 arrays of shape (n, row_bytes) with the
/// same row_bytes; `outputs[i]` has len(rows) rows. Every argument is checked
/// before any row is copied.
#[pyfunction]
fn buffer_gather_rows(
    py: Python<'_>,
    sources: &Bound<'_, PyList>,
    rows: &Bound<'_, PyAny>,
    outputs: &Bound<'_, PyList>,
) -> PyResult<()> {
    if sources.len() != outputs.len() {
        return Err(invalid_argument(
            "outputs",
            format!(
                "got {} outputs for {} sources",
                outputs.len(),
                sources.len()
            ),
        ));
    }
    let rows = readonly_array::<i64>(rows, "rows", "int64")?;
    if rows.ndim() != 1 {
        return Err(invalid_argument(
            "rows",
            format!("expected a 1-D array, got shape {:?}", rows.shape()),
        ));
    }
    let mut source_arrays: Vec<PyReadonlyArray2<'_, u8>> = Vec::with_capacity(sources.len());
    let mut output_arrays: Vec<PyReadwriteArray2<'_, u8>> = Vec::with_capacity(outputs.len());
    for (i, (source, output)) in sources.iter().zip(outputs.iter()).enumerate() {
        let source_name = format!("sources[{i}]");
        let output_name = format!("outputs[{i}]");
        let source = source.cast::<PyArray2<u8>>().map_err(|_| {
            invalid_argument(&source_name, "expected a 2-D numpy array of dtype uint8")
        })?;
        let output = output.cast::<PyArray2<u8>>().map_err(|_| {
            invalid_argument(&output_name, "expected a 2-D numpy array of dtype uint8")
        })?;
        let source = source.readonly();
        if !source.is_c_contiguous() {
            return Err(invalid_argument(&source_name, "array must be C-contiguous"));
        }
        let output = output
            .try_readwrite()
            .map_err(|e| invalid_argument(&output_name, format!("not writable: {e}")))?;
        if !output.is_c_contiguous() {
            return Err(invalid_argument(&output_name, "array must be C-contiguous"));
        }
        let (source_shape, output_shape) = (source.shape(), output.shape());
        if output_shape[1] != source_shape[1] || output_shape[0] != rows.len() {
            return Err(invalid_argument(
                &output_name,
                format!(
                    "expected shape ({}, {}), got {:?}",
                    rows.len(),
                    source_shape[1],
                    output_shape
                ),
            ));
        }
        source_arrays.push(source);
        output_arrays.push(output);
    }
    let rows = rows.as_slice()?;
    // Check the indices against every column up front, so an error leaves
    // every output untouched rather than some columns filled.
    let (lowest, highest) = py.detach(|| {
        rows.iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)))
    });
    if !rows.is_empty() {
        for (i, source) in source_arrays.iter().enumerate() {
            let source_rows = source.shape()[0] as i64;
            if lowest < 0 || highest >= source_rows {
                let bad = if lowest < 0 { lowest } else { highest };
                return Err(invalid_argument(
                    "rows",
                    format!(
                        "row index {bad} is out of range for sources[{i}] of {source_rows} rows"
                    ),
                ));
            }
        }
    }
    let mut jobs: Vec<(&[u8], usize, &mut [u8])> = Vec::with_capacity(source_arrays.len());
    for (source, output) in source_arrays.iter().zip(output_arrays.iter_mut()) {
        let row_bytes = source.shape()[1];
        jobs.push((source.as_slice()?, row_bytes, output.as_slice_mut()?));
    }
    py.detach(|| {
        jobs.into_iter()
            .enumerate()
            .try_for_each(|(i, (source, row_bytes, output))| {
                agent_buffer::gather_rows(source, row_bytes, rows, output).map_err(|e| {
                    // Name the column in the message: the index check is per column.
                    mlagents_fast_core::CoreError::invalid(format!("sources[{i}]"), e.to_string())
                })
            })
    })
    .py()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(buffer_shuffle_rows, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_sample_rows, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_batch_plan, m)?)?;
    m.add_function(wrap_pyfunction!(buffer_gather_rows, m)?)?;
    Ok(())
}
