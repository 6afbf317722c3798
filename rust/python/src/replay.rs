//! Bindings of the field-file format (`mlagents_fast_core::storage`) and the
//! replay ring (`mlagents_fast_core::replay`). Arrays are checked (dtype,
//! C-contiguity, shape) before any work, file I/O runs with the interpreter
//! released, and loaded or sampled data is handed to numpy without a copy.

use std::path::PathBuf;

use mlagents_fast_core::storage::{self, FieldRef, FieldSlice, FieldValues};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{invalid_argument, IntoPyResult};

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
/// Saves `fields` (name -> numpy array whose first axis is the row axis) to
/// `path` as a field file of `kind`, atomically (temporary file, fsync, rename).
#[pyfunction]
fn save_fields(
    py: Python<'_>,
    path: PathBuf,
    kind: &str,
    fields: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let mut arrays = Vec::with_capacity(fields.len());
    for (name, array) in fields.iter() {
        let name: String = name
            .extract()
            .map_err(|_| invalid_argument("fields", "keys must be strings"))?;
        let argument = format!("fields[{name:?}]");
        let field = ReadonlyField::extract(&array, &argument)?;
        if field.shape().is_empty() {
            return Err(invalid_argument(
                &argument,
                "expected at least one dimension (the row axis), got a 0-d array",
            ));
        }
        arrays.push((name, field));
    }
    let refs: Vec<FieldRef<'_>> = arrays
        .iter()
        .map(|(name, field)| FieldRef {
            name,
            row_shape: &field.shape()[1..],
            rows: field.shape()[0],
            values: field.values(),
        })
        .collect();
    py.detach(|| storage::save_fields(&path, kind, &refs)).py()
}

/// load_fields(path, kind)
/// --
///
/// Loads a field file of `kind`: returns {name: numpy array of shape (rows, *row_shape)}
/// in file order. Raises CorruptFileError for a truncated, damaged, foreign,
/// newer-version or other-kind file (nothing is loaded).
#[pyfunction]
fn load_fields<'py>(py: Python<'py>, path: PathBuf, kind: &str) -> PyResult<Bound<'py, PyDict>> {
    let fields = py.detach(|| storage::load_fields(&path, kind)).py()?;
    let out = PyDict::new(py);
    for field in fields {
        let mut shape = Vec::with_capacity(field.row_shape.len() + 1);
        shape.push(field.rows);
        shape.extend_from_slice(&field.row_shape);
        let array = values_to_numpy(py, field.values, &shape, &field.name)?;
        out.set_item(field.name, array)?;
    }
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(save_fields, m)?)?;
    m.add_function(wrap_pyfunction!(load_fields, m)?)?;
    Ok(())
}
