//! `mlagents_fast._native`: the private compiled module. Each submodule of this
//! crate converts Python arguments, validates them, releases the interpreter
//! and calls one pure function of `mlagents_fast_core`.

use pyo3::prelude::*;

mod advantages;
mod agent_buffer;
mod decoded;
mod demo;
mod envs;
mod errors;
mod proto;
mod replay;
mod validate;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    advantages::register(m)?;
    agent_buffer::register(m)?;
    replay::register(m)?;
    proto::register(m)?;
    decoded::register(m)?;
    demo::register(m)?;
    envs::register(m)?;
    Ok(())
}
