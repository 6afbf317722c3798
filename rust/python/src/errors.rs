//! Maps `CoreError` variants to the Python exception classes defined in
//! `mlagents_fast.exceptions` (the hierarchy rooted at `MlagentsFastError`).
//! The classes live in Python so that users can subclass and document them
//! like any other exception; Rust looks them up once and caches them.

use mlagents_fast_core::CoreError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Python exception classes used by the native module.
#[derive(Clone, Copy, Debug)]
pub enum PyErrorKind {
    InvalidArgument,
    CorruptFile,
    Decode,
    Io,
    Demonstration,
}

impl PyErrorKind {
    fn class_name(self) -> &'static str {
        match self {
            PyErrorKind::InvalidArgument => "InvalidArgumentError",
            PyErrorKind::CorruptFile => "CorruptFileError",
            PyErrorKind::Decode => "MessageDecodeError",
            PyErrorKind::Io => "StorageIOError",
            PyErrorKind::Demonstration => "DemonstrationError",
        }
    }
}

static CLASSES: [PyOnceLock<Py<PyType>>; 5] = [
    PyOnceLock::new(),
    PyOnceLock::new(),
    PyOnceLock::new(),
    PyOnceLock::new(),
    PyOnceLock::new(),
];

fn class(py: Python<'_>, kind: PyErrorKind) -> PyResult<&Bound<'_, PyType>> {
    let cell = &CLASSES[kind as usize];
    let ty = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let module = py.import("mlagents_fast.exceptions")?;
        let cls = module.getattr(kind.class_name())?;
        Ok(cls.cast_into::<PyType>()?.unbind())
    })?;
    Ok(ty.bind(py))
}

/// Builds a Python exception of the given kind with `message`.
pub fn py_error(kind: PyErrorKind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| match class(py, kind) {
        Ok(cls) => PyErr::from_type(cls.clone(), message),
        Err(lookup_failure) => lookup_failure,
    })
}

/// `ValueError` subclass naming the offending argument.
pub fn invalid_argument(argument: &str, message: impl AsRef<str>) -> PyErr {
    py_error(
        PyErrorKind::InvalidArgument,
        format!("{argument}: {}", message.as_ref()),
    )
}

/// Converts a core error into the matching Python exception.
pub fn to_py(err: CoreError) -> PyErr {
    let kind = match &err {
        CoreError::InvalidArgument { .. } => PyErrorKind::InvalidArgument,
        CoreError::CorruptFile { .. } => PyErrorKind::CorruptFile,
        CoreError::Decode(_) => PyErrorKind::Decode,
        CoreError::Io { .. } => PyErrorKind::Io,
    };
    py_error(kind, err.to_string())
}

/// `?`-friendly conversion: `core_fn(...).map_err(to_py)?` or `.py()?`.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, CoreError> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
