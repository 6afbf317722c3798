//! Bindings of the field-file format (`mlagents_fast_core::storage`) and the
//! replay ring (`mlagents_fast_core::replay`). Arrays are checked (dtype,
//! C-contiguity, shape) before any work, file I/O runs with the interpreter
//! released, and loaded or sampled data is handed to numpy without a copy.

use std::path::PathBuf;

use mlagents_fast_core::replay::{FieldSpec, ReplayRing, ReplaySample};
use mlagents_fast_core::storage::{self, Dtype, FieldRef, FieldSlice, FieldValues};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{invalid_argument, IntoPyResult};
use crate::validate::readonly_array;

/// A C-contiguous numpy array of one of the field dtypes, borrowed read-only.
pub enum ReadonlyField<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
    I32(PyReadonlyArrayDyn<'py, i32>),
    I64(PyReadonlyArrayDyn<'py, i64>),
    U8(PyReadonlyArrayDyn<'py, u8>),
    Bool(PyReadonlyArrayDyn<'py, bool>),
}

impl<'py> ReadonlyField<'py> {
    /// Borrows `obj` if it is a C-contiguous numpy array of a supported dtype,
    /// else raises `InvalidArgumentError` naming `argument`.
    pub fn extract(obj: &Bound<'py, PyAny>, argument: &str) -> PyResult<Self> {
        fn try_as<'py, T: numpy::Element>(
            obj: &Bound<'py, PyAny>,
        ) -> Option<PyReadonlyArrayDyn<'py, T>> {
            obj.cast::<PyArrayDyn<T>>().ok().map(|a| a.readonly())
        }
        let field = if let Some(a) = try_as::<f32>(obj) {
            ReadonlyField::F32(a)
        } else if let Some(a) = try_as::<f64>(obj) {
            ReadonlyField::F64(a)
        } else if let Some(a) = try_as::<i32>(obj) {
            ReadonlyField::I32(a)
        } else if let Some(a) = try_as::<i64>(obj) {
            ReadonlyField::I64(a)
        } else if let Some(a) = try_as::<u8>(obj) {
            ReadonlyField::U8(a)
        } else if let Some(a) = try_as::<bool>(obj) {
            ReadonlyField::Bool(a)
        } else {
            let found = match obj.cast::<PyUntypedArray>() {
                Ok(array) => format!("dtype {}", array.dtype()),
                Err(_) => obj.get_type().to_string(),
            };
            return Err(invalid_argument(
                argument,
                format!(
                    "expected a numpy array of dtype float32, float64, int32, int64, uint8 \
                     or bool, got {found}"
                ),
            ));
        };
        let contiguous = match &field {
            ReadonlyField::F32(a) => a.is_c_contiguous(),
            ReadonlyField::F64(a) => a.is_c_contiguous(),
            ReadonlyField::I32(a) => a.is_c_contiguous(),
            ReadonlyField::I64(a) => a.is_c_contiguous(),
            ReadonlyField::U8(a) => a.is_c_contiguous(),
            ReadonlyField::Bool(a) => a.is_c_contiguous(),
        };
        if !contiguous {
            return Err(invalid_argument(
                argument,
                "array must be C-contiguous (use numpy.ascontiguousarray)",
            ));
        }
        Ok(field)
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            ReadonlyField::F32(a) => a.shape(),
            ReadonlyField::F64(a) => a.shape(),
            ReadonlyField::I32(a) => a.shape(),
            ReadonlyField::I64(a) => a.shape(),
            ReadonlyField::U8(a) => a.shape(),
            ReadonlyField::Bool(a) => a.shape(),
        }
    }

    /// The values, flat in C order (contiguity was checked by `extract`).
    pub fn values(&self) -> FieldSlice<'_> {
        // as_slice only fails for non-contiguous arrays, excluded above; an
        // empty slice can therefore never be returned by mistake.
        match self {
            ReadonlyField::F32(a) => FieldSlice::F32(a.as_slice().unwrap_or(&[])),
            ReadonlyField::F64(a) => FieldSlice::F64(a.as_slice().unwrap_or(&[])),
            ReadonlyField::I32(a) => FieldSlice::I32(a.as_slice().unwrap_or(&[])),
            ReadonlyField::I64(a) => FieldSlice::I64(a.as_slice().unwrap_or(&[])),
            ReadonlyField::U8(a) => FieldSlice::U8(a.as_slice().unwrap_or(&[])),
            ReadonlyField::Bool(a) => FieldSlice::Bool(a.as_slice().unwrap_or(&[])),
        }
    }
}

/// Moves `values` into a numpy array of `shape` without copying.
pub fn values_to_numpy<'py>(
    py: Python<'py>,
    values: FieldValues,
    shape: &[usize],
    argument: &str,
) -> PyResult<Bound<'py, PyAny>> {
    fn build<'py, T: numpy::Element>(
        py: Python<'py>,
        values: Vec<T>,
        shape: &[usize],
        argument: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let array = ArrayD::from_shape_vec(IxDyn(shape), values)
            .map_err(|e| invalid_argument(argument, format!("shape {shape:?}: {e}")))?;
        Ok(array.into_pyarray(py).into_any())
    }
    match values {
        FieldValues::F32(v) => build(py, v, shape, argument),
        FieldValues::F64(v) => build(py, v, shape, argument),
        FieldValues::I32(v) => build(py, v, shape, argument),
        FieldValues::I64(v) => build(py, v, shape, argument),
        FieldValues::U8(v) => build(py, v, shape, argument),
        FieldValues::Bool(v) => build(py, v, shape, argument),
    }
}

/// save_fields(path, kind, fields)
/// --
///
/// Saves `fields` to `path` as a field file of `kind`, atomically (temporary file,
/// fsync, rename). Each value is a numpy array whose first axis is the row axis (a dense
/// field), or a tuple `(offsets, members)` (a ragged field): `offsets` a 1-D int64
/// array of `entries + 1` values (0 first, non-decreasing, `len(members)` last), entry i
/// being `members[offsets[i]:offsets[i+1]]`.
#[pyfunction]
fn save_fields(
    py: Python<'_>,
    path: PathBuf,
    kind: &str,
    fields: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let fields = fields.cast::<PyDict>().map_err(|_| {
        invalid_argument(
            "fields",
            format!(
                "expected a dict of name -> numpy array or (offsets, members), got {}",
                fields.get_type()
            ),
        )
    })?;
    let mut arrays = Vec::with_capacity(fields.len());
    for (name, value) in fields.iter() {
        let name: String = name
            .extract()
            .map_err(|_| invalid_argument("fields", "keys must be strings"))?;
        let argument = format!("fields[{name:?}]");
        let (offsets, array) = match value.cast::<PyTuple>() {
            Ok(pair) if pair.len() == 2 => {
                let offsets = entry_offsets(&pair.get_item(0)?, &argument)?;
                (Some(offsets), pair.get_item(1)?)
            }
            Ok(_) => {
                return Err(invalid_argument(
                    &argument,
                    "a ragged field is a tuple (offsets, members) of two arrays",
                ))
            }
            Err(_) => (None, value),
        };
        let field = ReadonlyField::extract(&array, &argument)?;
        if field.shape().is_empty() {
            return Err(invalid_argument(
                &argument,
                "expected at least one dimension (the row axis), got a 0-d array",
            ));
        }
        arrays.push((name, offsets, field));
    }
    let refs: Vec<FieldRef<'_>> = arrays
        .iter()
        .map(|(name, offsets, field)| FieldRef {
            name,
            row_shape: &field.shape()[1..],
            rows: match offsets {
                Some(offsets) => offsets.len().saturating_sub(1),
                None => field.shape()[0],
            },
            values: field.values(),
            entry_offsets: offsets.as_deref(),
        })
        .collect();
    py.detach(|| storage::save_fields(&path, kind, &refs)).py()
}

/// The offsets of a ragged field: a 1-D int64 array of at least one non-negative value.
fn entry_offsets(array: &Bound<'_, PyAny>, argument: &str) -> PyResult<Vec<u64>> {
    let offsets = readonly_array::<i64>(array, &format!("{argument}[0]"), "int64")?;
    let values = offsets.as_slice().map_err(|_| {
        invalid_argument(
            &format!("{argument}[0]"),
            "offsets must be a C-contiguous array",
        )
    })?;
    if offsets.ndim() != 1 || values.is_empty() {
        return Err(invalid_argument(
            &format!("{argument}[0]"),
            format!(
                "offsets must be a 1-D array of entries + 1 values, got shape {:?}",
                offsets.shape()
            ),
        ));
    }
    values
        .iter()
        .map(|&o| {
            u64::try_from(o).map_err(|_| {
                invalid_argument(&format!("{argument}[0]"), format!("negative offset {o}"))
            })
        })
        .collect()
}

/// load_fields(path, kind)
/// --
///
/// Loads a field file of `kind`: returns {name: numpy array of shape (rows, *row_shape)}
/// for dense fields and {name: (offsets int64, members)} for ragged ones, in file order.
/// Raises CorruptFileError for a truncated, damaged, foreign, newer-version or
/// other-kind file (nothing is loaded).
#[pyfunction]
fn load_fields<'py>(py: Python<'py>, path: PathBuf, kind: &str) -> PyResult<Bound<'py, PyDict>> {
    let fields = py.detach(|| storage::load_fields(&path, kind)).py()?;
    let out = PyDict::new(py);
    for field in fields {
        let value_rows = match &field.entry_offsets {
            Some(offsets) => offsets.last().copied().unwrap_or(0) as usize,
            None => field.rows,
        };
        let mut shape = Vec::with_capacity(field.row_shape.len() + 1);
        shape.push(value_rows);
        shape.extend_from_slice(&field.row_shape);
        let array = values_to_numpy(py, field.values, &shape, &field.name)?;
        match field.entry_offsets {
            Some(offsets) => {
                // Checked on load: every offset is at most the member count, a usize.
                let offsets: Vec<i64> = offsets.into_iter().map(|o| o as i64).collect();
                let offsets = PyArray1::from_vec(py, offsets);
                out.set_item(field.name, PyTuple::new(py, [offsets.into_any(), array])?)?;
            }
            None => out.set_item(field.name, array)?,
        }
    }
    Ok(out)
}

/// verify_fields(path, kind=None)
/// --
///
/// Checks a whole field file as load_fields does (every byte against its checksum) without
/// loading it: memory stays small whatever the file's size. `kind` None accepts any kind.
/// Raises CorruptFileError or StorageIOError naming the file; returns None.
#[pyfunction]
#[pyo3(signature = (path, kind=None))]
fn verify_fields(py: Python<'_>, path: PathBuf, kind: Option<&str>) -> PyResult<()> {
    py.detach(|| storage::verify_fields(&path, kind)).py()?;
    Ok(())
}

/// Extracts `{name: array}` into (name, array) pairs, checking each array.
fn extract_named_arrays<'py>(
    mapping: &Bound<'py, PyDict>,
    what: &str,
) -> PyResult<Vec<(String, ReadonlyField<'py>)>> {
    let mut out = Vec::with_capacity(mapping.len());
    for (name, array) in mapping.iter() {
        let name: String = name
            .extract()
            .map_err(|_| invalid_argument(what, "keys must be strings"))?;
        let field = ReadonlyField::extract(&array, &format!("{what}[{name:?}]"))?;
        out.push((name, field));
    }
    Ok(out)
}

/// The replay ring of `mlagents_fast_core::replay` (wrapped by
/// `mlagents_fast.trainers.replay_buffer.ReplayBuffer`; use that).
#[pyclass(module = "mlagents_fast._native", name = "ReplayRing")]
pub struct PyReplayRing {
    ring: ReplayRing,
}

impl PyReplayRing {
    /// Checks row shapes here so that errors name numpy shapes (the core checks names,
    /// dtypes and row counts). `trajectories`: None for one trajectory, whose next values
    /// may be `row` or `(1, *row)`; Some(n) for n trajectories, next values `(n, *row)`.
    fn check_shapes(
        &self,
        arrays: &[(String, ReadonlyField<'_>)],
        next_arrays: &[(String, ReadonlyField<'_>)],
        trajectories: Option<usize>,
    ) -> PyResult<()> {
        for spec in self.ring.specs() {
            for (what, given) in [("fields", arrays), ("next_fields", next_arrays)] {
                let Some((_, array)) = given.iter().find(|(n, _)| *n == spec.name) else {
                    continue;
                };
                let shape = array.shape();
                let row = &spec.row_shape;
                let leading_then_row = |first: Option<usize>| {
                    shape.len() == row.len() + 1
                        && first.is_none_or(|n| shape[0] == n)
                        && shape[1..] == row[..]
                };
                let (ok, expected) = match (what, trajectories) {
                    ("fields", _) => (leading_then_row(None), tuple_text("steps", row)),
                    (_, None) => (
                        shape == row.as_slice() || leading_then_row(Some(1)),
                        format!("{} or {}", tuple_text("", row), tuple_text("1", row)),
                    ),
                    (_, Some(n)) => (leading_then_row(Some(n)), tuple_text(&n.to_string(), row)),
                };
                if !ok {
                    return Err(invalid_argument(
                        &format!("{what}[{:?}]", spec.name),
                        format!("expected shape {expected}, got {}", tuple_text("", shape)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Arrays of a sample: (fields dict, next_fields dict, done, indices).
    fn sample_to_python<'py>(
        &self,
        py: Python<'py>,
        sample: ReplaySample,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let batch = sample.done.len();
        let fields = PyDict::new(py);
        let next_fields = PyDict::new(py);
        let mut next_values = sample.next_fields.into_iter();
        for (spec, values) in self.ring.specs().zip(sample.fields) {
            let mut shape = Vec::with_capacity(spec.row_shape.len() + 1);
            shape.push(batch);
            shape.extend_from_slice(&spec.row_shape);
            fields.set_item(&spec.name, values_to_numpy(py, values, &shape, &spec.name)?)?;
            if spec.has_next {
                if let Some(next) = next_values.next() {
                    next_fields
                        .set_item(&spec.name, values_to_numpy(py, next, &shape, &spec.name)?)?;
                }
            }
        }
        let done = values_to_numpy(py, FieldValues::Bool(sample.done), &[batch], "done")?;
        let indices = values_to_numpy(py, FieldValues::I64(sample.indices), &[batch], "indices")?;
        PyTuple::new(
            py,
            [fields.into_any(), next_fields.into_any(), done, indices],
        )
    }
}

#[pymethods]
impl PyReplayRing {
    /// ReplayRing(capacity, specs, seed)
    ///
    /// `specs`: list of (name, numpy dtype name, row shape tuple, has_next).
    #[new]
    fn new(
        capacity: usize,
        specs: Vec<(String, String, Vec<usize>, bool)>,
        seed: u64,
    ) -> PyResult<Self> {
        let mut field_specs = Vec::with_capacity(specs.len());
        for (name, dtype, row_shape, has_next) in specs {
            let dtype = Dtype::from_numpy_name(&dtype).ok_or_else(|| {
                invalid_argument(
                    &format!("fields[{name:?}]"),
                    format!(
                        "dtype {dtype} is not supported (float32, float64, int32, int64, uint8, bool)"
                    ),
                )
            })?;
            field_specs.push(FieldSpec {
                name,
                dtype,
                row_shape,
                has_next,
            });
        }
        Ok(PyReplayRing {
            ring: ReplayRing::new(field_specs, capacity, seed).py()?,
        })
    }

    /// push_trajectory(fields, next_fields, terminated)
    fn push_trajectory(
        &mut self,
        py: Python<'_>,
        fields: &Bound<'_, PyDict>,
        next_fields: &Bound<'_, PyDict>,
        terminated: bool,
    ) -> PyResult<()> {
        let arrays = extract_named_arrays(fields, "fields")?;
        let next_arrays = extract_named_arrays(next_fields, "next_fields")?;
        self.check_shapes(&arrays, &next_arrays, None)?;
        let field_slices = named_slices(&arrays);
        let next_slices = named_slices(&next_arrays);
        let ring = &mut self.ring;
        py.detach(|| ring.push_trajectory(&field_slices, &next_slices, terminated))
            .py()
    }

    /// push_trajectories(fields, next_fields, lengths, terminated): several trajectories,
    /// rows one after another, one final next value per trajectory (shape (N, *row)).
    fn push_trajectories(
        &mut self,
        py: Python<'_>,
        fields: &Bound<'_, PyDict>,
        next_fields: &Bound<'_, PyDict>,
        lengths: Vec<usize>,
        terminated: Vec<bool>,
    ) -> PyResult<()> {
        if lengths.is_empty() {
            // Before the shapes, which would ask for (0, *row) next values.
            return Err(invalid_argument(
                "lengths",
                "at least one trajectory is needed",
            ));
        }
        let arrays = extract_named_arrays(fields, "fields")?;
        let next_arrays = extract_named_arrays(next_fields, "next_fields")?;
        self.check_shapes(&arrays, &next_arrays, Some(lengths.len()))?;
        let field_slices = named_slices(&arrays);
        let next_slices = named_slices(&next_arrays);
        let ring = &mut self.ring;
        py.detach(|| ring.push_trajectories(&field_slices, &next_slices, &lengths, &terminated))
            .py()
    }

    /// sample(batch_size) -> (fields, next_fields, done, indices)
    fn sample<'py>(&mut self, py: Python<'py>, batch_size: usize) -> PyResult<Bound<'py, PyTuple>> {
        // Small batches (the SAC case) cost less than releasing the interpreter.
        let sample = if batch_size >= 4096 {
            let ring = &mut self.ring;
            py.detach(|| ring.sample(batch_size)).py()?
        } else {
            self.ring.sample(batch_size).py()?
        };
        self.sample_to_python(py, sample)
    }

    /// sample_sequences(count, sequence_length) -> (fields, next_fields, done, indices):
    /// `count` aligned sequences of consecutive rows, `count * sequence_length` rows.
    fn sample_sequences<'py>(
        &mut self,
        py: Python<'py>,
        count: usize,
        sequence_length: usize,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ring = &mut self.ring;
        let sample = if count.saturating_mul(sequence_length) >= 4096 {
            py.detach(|| ring.sample_sequences(count, sequence_length))
                .py()?
        } else {
            ring.sample_sequences(count, sequence_length).py()?
        };
        self.sample_to_python(py, sample)
    }

    /// rows(indices) -> (fields, next_fields, done, indices): rows by logical index (0 = oldest).
    fn rows<'py>(&self, py: Python<'py>, indices: Vec<usize>) -> PyResult<Bound<'py, PyTuple>> {
        let ring = &self.ring;
        let sample = py.detach(|| ring.rows(&indices)).py()?;
        self.sample_to_python(py, sample)
    }

    fn truncate(&mut self, max_length: usize) {
        self.ring.truncate(max_length)
    }

    /// resize(capacity): keeps the newest min(len, capacity) rows.
    fn resize(&mut self, py: Python<'_>, capacity: usize) -> PyResult<()> {
        let ring = &mut self.ring;
        py.detach(|| ring.resize(capacity)).py()
    }

    fn clear(&mut self) {
        self.ring.clear()
    }

    fn reseed(&mut self, seed: u64) {
        self.ring.reseed(seed)
    }

    fn __len__(&self) -> usize {
        self.ring.len()
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// (seed, draws) of the sampling generator.
    #[getter]
    fn rng_state(&self) -> (u64, u64) {
        self.ring.rng_state()
    }

    /// [(name, dtype name, row shape, has_next)] in field order.
    #[getter]
    fn specs(&self) -> Vec<(String, &'static str, Vec<usize>, bool)> {
        self.ring
            .specs()
            .map(|s| {
                (
                    s.name.clone(),
                    s.dtype.numpy_name(),
                    s.row_shape.clone(),
                    s.has_next,
                )
            })
            .collect()
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let ring = &self.ring;
        py.detach(|| ring.save(&path)).py()
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let ring = py.detach(|| ReplayRing::load(&path)).py()?;
        Ok(PyReplayRing { ring })
    }
}

/// (name, values) pairs of checked arrays, for the core.
fn named_slices<'a>(arrays: &'a [(String, ReadonlyField<'_>)]) -> Vec<(&'a str, FieldSlice<'a>)> {
    arrays
        .iter()
        .map(|(n, a)| (n.as_str(), a.values()))
        .collect()
}

/// Python-style shape text: `tuple_text("steps", &[8])` is "(steps, 8)".
fn tuple_text(first: &str, dims: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(dims.len() + 1);
    if !first.is_empty() {
        parts.push(first.to_string());
    }
    parts.extend(dims.iter().map(|d| d.to_string()));
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyReplayRing>()?;
    m.add_function(wrap_pyfunction!(save_fields, m)?)?;
    m.add_function(wrap_pyfunction!(load_fields, m)?)?;
    m.add_function(wrap_pyfunction!(verify_fields, m)?)?;
    Ok(())
}
