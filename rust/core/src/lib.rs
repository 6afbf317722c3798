//! Pure-Rust core of mlagents-fast. Nothing here knows about Python: every
//! function works on slices and returns owned data or a [`CoreError`].
//!
//! Modules:
//! - [`advantages`]: discounted returns, GAE and lambda returns.
//! - [`agent_buffer`]: columnar trajectory storage (the AgentBuffer equivalent).
//! - [`replay`]: fixed-capacity replay ring for off-policy trainers.
//! - [`proto`]: Unity communicator messages decoded into flat arrays.
//! - [`demo`]: `.demo` demonstration files, read and written.
//! - [`envs`]: built-in vectorized environments that need no Unity.
//! - [`parallel`]: the process-wide switch for the rayon pool (off after fork).

pub mod advantages;
pub mod agent_buffer;
pub mod demo;
pub mod envs;
pub mod error;
pub mod parallel;
pub mod proto;
pub mod replay;
pub mod storage;

pub use error::{CoreError, CoreResult};
