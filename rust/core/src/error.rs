//! One error enum for the whole core; the binding crate maps each variant to
//! a Python exception class of the `MlagentsFastError` hierarchy.

use thiserror::Error;

pub type CoreResult<T> = Result<T, CoreError>;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// An argument has the wrong shape, length, or value. `argument` names it.
    #[error("{argument}: {message}")]
    InvalidArgument { argument: String, message: String },
    /// A serialized file (replay buffer, checkpoint) is truncated, corrupt or foreign.
    #[error("{path}: {message}")]
    CorruptFile { path: String, message: String },
    /// Bytes from the wire could not be decoded.
    #[error("malformed message: {0}")]
    Decode(String),
    /// Operating-system level I/O failure.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl CoreError {
    pub fn invalid(argument: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            argument: argument.into(),
            message: message.into(),
        }
    }
}
