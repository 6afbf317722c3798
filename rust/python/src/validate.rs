//! Argument checks shared by every binding: they run before any work and
//! raise `InvalidArgumentError` (a `ValueError`) naming the argument.

use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::invalid_argument;

/// Extracts a C-contiguous numpy array of element type `T`, or explains
/// what is wrong with `obj` (not an array, wrong dtype, not contiguous).
pub fn readonly_array<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    argument: &str,
    expected_dtype: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let array = match obj.cast::<PyArrayDyn<T>>() {
        Ok(array) => array,
        Err(_) => {
            let found = obj
                .getattr("dtype")
                .map(|d| d.to_string())
                .unwrap_or_else(|_| obj.get_type().to_string());
            return Err(invalid_argument(
                argument,
                format!("expected a numpy array of dtype {expected_dtype}, got {found}"),
            ));
        }
    };
    let readonly = array.readonly();
    if !readonly.is_c_contiguous() {
        return Err(invalid_argument(
            argument,
            "array must be C-contiguous (use numpy.ascontiguousarray)",
        ));
    }
    Ok(readonly)
}

/// Checks that `shape` equals `expected`, where `None` in `expected` is a wildcard.
pub fn check_shape(argument: &str, shape: &[usize], expected: &[Option<usize>]) -> PyResult<()> {
    let matches = shape.len() == expected.len()
        && shape
            .iter()
            .zip(expected)
            .all(|(got, want)| want.is_none_or(|w| w == *got));
    if matches {
        return Ok(());
    }
    let want: Vec<String> = expected
        .iter()
        .map(|w| w.map_or_else(|| "*".to_string(), |w| w.to_string()))
        .collect();
    Err(invalid_argument(
        argument,
        format!("expected shape ({}), got {:?}", want.join(", "), shape),
    ))
}
