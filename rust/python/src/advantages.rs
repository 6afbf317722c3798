//! Bindings of `mlagents_fast_core::advantages`: dtype dispatch (float32 or
//! float64, every array of one dtype), shape checks, then the kernel with the
//! interpreter released. Results are handed to numpy without a copy.
//! The Python-facing drop-ins live in `mlagents_fast.trainers.trainer.trainer_utils`.

use mlagents_fast_core::advantages::{self as core, Real};
use mlagents_fast_core::CoreResult;
use numpy::{
    Element, PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::{invalid_argument, IntoPyResult};
use crate::validate::{check_shape, readonly_array};

/// The two element types every kernel comes in.
#[derive(Clone, Copy)]
enum Precision {
    F32,
    F64,
}

/// Picks the kernel from the dtype of the first array argument.
fn precision_of(obj: &Bound<'_, PyAny>, argument: &str) -> PyResult<Precision> {
    if obj.cast::<PyArrayDyn<f32>>().is_ok() {
        return Ok(Precision::F32);
    }
    if obj.cast::<PyArrayDyn<f64>>().is_ok() {
        return Ok(Precision::F64);
    }
    let found = obj
        .getattr("dtype")
        .map(|d| d.to_string())
        .unwrap_or_else(|_| obj.get_type().to_string());
    Err(invalid_argument(
        argument,
        format!("expected a numpy array of dtype float32 or float64, got {found}"),
    ))
}

/// Name numpy gives the element type, for error messages.
fn dtype_name<F: Real>() -> &'static str {
    if std::mem::size_of::<F>() == 4 {
        "float32"
    } else {
        "float64"
    }
}

/// A further float array, which must share the dtype of `rewards`.
fn matching_array<'py, F: Real + Element>(
    obj: &Bound<'py, PyAny>,
    argument: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, F>> {
    let expected = format!("{} (the dtype of rewards)", dtype_name::<F>());
    readonly_array::<F>(obj, argument, &expected)
}

fn slice_of<'a, T: Element>(
    array: &'a PyReadonlyArrayDyn<'_, T>,
    argument: &str,
) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|_| invalid_argument(argument, "array must be C-contiguous"))
}

/// A one-dimensional float array of the kernel's dtype.
fn vector<'py, F: Real + Element>(
    obj: &Bound<'py, PyAny>,
    argument: &str,
    len: Option<usize>,
) -> PyResult<PyReadonlyArrayDyn<'py, F>> {
    let array = matching_array::<F>(obj, argument)?;
    check_shape(argument, array.shape(), &[len])?;
    Ok(array)
}

fn check_factors(gamma: f64, lambd: f64) -> PyResult<()> {
    for (argument, value) in [("gamma", gamma), ("lambd", lambd)] {
        if !value.is_finite() {
            return Err(invalid_argument(
                argument,
                format!("must be a finite number, got {value}"),
            ));
        }
    }
    Ok(())
}

fn discount_rewards_typed<'py, F: Real + Element>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    gamma: f64,
    value_next: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let rewards = vector::<F>(rewards, "r", None)?;
    let rewards = slice_of(&rewards, "r")?;
    let value_next = F::from_f64(value_next);
    let out = py
        .detach(|| core::discount_rewards(rewards, gamma, value_next))
        .py()?;
    Ok(PyArray1::from_vec(py, out).into_any())
}

/// Discounted returns of one trajectory (`r` float32 or float64, 1-D); the result has `r`'s dtype.
#[pyfunction]
#[pyo3(signature = (r, gamma, value_next))]
fn discount_rewards<'py>(
    py: Python<'py>,
    r: &Bound<'py, PyAny>,
    gamma: f64,
    value_next: f64,
) -> PyResult<Bound<'py, PyAny>> {
    check_factors(gamma, 0.0)?;
    match precision_of(r, "r")? {
        Precision::F32 => discount_rewards_typed::<f32>(py, r, gamma, value_next),
        Precision::F64 => discount_rewards_typed::<f64>(py, r, gamma, value_next),
    }
}

/// Runs `kernel` over a 1-D reward series and a value series of the same length and
/// float dtype (`rewards_name` is the caller's argument name, used in errors).
fn rewards_and_values_typed<'py, F: Real + Element>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    rewards_name: &str,
    values: &Bound<'py, PyAny>,
    kernel: impl Send + FnOnce(&[F], &[F]) -> CoreResult<Vec<F>>,
) -> PyResult<Bound<'py, PyAny>> {
    let rewards = vector::<F>(rewards, rewards_name, None)?;
    let values = vector::<F>(values, "value_estimates", Some(rewards.len()))?;
    let (rewards, values) = (
        slice_of(&rewards, rewards_name)?,
        slice_of(&values, "value_estimates")?,
    );
    let out = py.detach(|| kernel(rewards, values)).py()?;
    Ok(PyArray1::from_vec(py, out).into_any())
}

/// GAE of one trajectory; `rewards` and `value_estimates` 1-D, same float dtype.
#[pyfunction]
#[pyo3(signature = (rewards, value_estimates, value_next, gamma, lambd))]
fn get_gae<'py>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    value_estimates: &Bound<'py, PyAny>,
    value_next: f64,
    gamma: f64,
    lambd: f64,
) -> PyResult<Bound<'py, PyAny>> {
    check_factors(gamma, lambd)?;
    match precision_of(rewards, "rewards")? {
        Precision::F32 => {
            rewards_and_values_typed::<f32>(py, rewards, "rewards", value_estimates, |r, v| {
                core::gae(r, v, value_next as f32, gamma, lambd)
            })
        }
        Precision::F64 => {
            rewards_and_values_typed::<f64>(py, rewards, "rewards", value_estimates, |r, v| {
                core::gae(r, v, value_next, gamma, lambd)
            })
        }
    }
}

/// Lambda returns of one trajectory (POCA); `r` and `value_estimates` 1-D, same float dtype.
#[pyfunction]
#[pyo3(signature = (r, value_estimates, gamma, lambd, value_next))]
fn lambda_return<'py>(
    py: Python<'py>,
    r: &Bound<'py, PyAny>,
    value_estimates: &Bound<'py, PyAny>,
    gamma: f64,
    lambd: f64,
    value_next: f64,
) -> PyResult<Bound<'py, PyAny>> {
    check_factors(gamma, lambd)?;
    match precision_of(r, "r")? {
        Precision::F32 => rewards_and_values_typed::<f32>(py, r, "r", value_estimates, |r, v| {
            core::lambda_return(r, v, gamma, lambd, value_next as f32)
        }),
        Precision::F64 => rewards_and_values_typed::<f64>(py, r, "r", value_estimates, |r, v| {
            core::lambda_return(r, v, gamma, lambd, value_next)
        }),
    }
}

/// Converts int64 offsets to indices, rejecting negative entries by position.
fn offsets_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    let offsets = readonly_array::<i64>(obj, "offsets", "int64")?;
    check_shape("offsets", offsets.shape(), &[None])?;
    slice_of(&offsets, "offsets")?
        .iter()
        .enumerate()
        .map(|(i, &offset)| {
            usize::try_from(offset).map_err(|_| {
                invalid_argument("offsets", format!("offsets[{i}] = {offset} is negative"))
            })
        })
        .collect()
}

type ArrayPair<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

/// Caller-provided output arrays (`out=`), or none: fresh arrays are made.
type OutPair<'a, 'py> = Option<(&'a Bound<'py, PyAny>, &'a Bound<'py, PyAny>)>;

/// Both outputs or neither.
fn out_pair<'a, 'py>(
    advantages_out: &'a Option<Bound<'py, PyAny>>,
    returns_out: &'a Option<Bound<'py, PyAny>>,
) -> PyResult<OutPair<'a, 'py>> {
    match (advantages_out, returns_out) {
        (Some(advantages), Some(returns)) => Ok(Some((advantages, returns))),
        (None, None) => Ok(None),
        _ => Err(invalid_argument(
            "out",
            "give both output arrays (advantages, returns) or neither",
        )),
    }
}

/// One preallocated output array: the dtype of `rewards`, `shape`, C-contiguous,
/// writeable, and sharing no memory with the inputs or the other output
/// (numpy's borrow tracking refuses a write borrow that overlaps another borrow).
fn output_array<'py, F: Real + Element>(
    obj: &Bound<'py, PyAny>,
    argument: &str,
    shape: &[usize],
) -> PyResult<PyReadwriteArrayDyn<'py, F>> {
    let array = obj.cast::<PyArrayDyn<F>>().map_err(|_| {
        let found = obj
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| obj.get_type().to_string());
        invalid_argument(
            argument,
            format!(
                "expected a numpy array of dtype {} (the dtype of rewards), got {found}",
                dtype_name::<F>()
            ),
        )
    })?;
    let expected: Vec<Option<usize>> = shape.iter().copied().map(Some).collect();
    check_shape(argument, array.shape(), &expected)?;
    if !array.is_c_contiguous() {
        return Err(invalid_argument(argument, "array must be C-contiguous"));
    }
    array.try_readwrite().map_err(|e| {
        invalid_argument(
            argument,
            format!(
                "cannot write into this array ({e}): outputs must be writeable and share no \
                 memory with the inputs or with each other"
            ),
        )
    })
}

/// Runs `kernel` into caller-provided outputs, or into fresh vectors that
/// become numpy arrays of `shape` without a copy.
fn run_into<'py, F: Real + Element>(
    py: Python<'py>,
    shape: &[usize],
    out: OutPair<'_, 'py>,
    fresh: impl Send + FnOnce() -> CoreResult<core::AdvantagesAndReturns<F>>,
    into: impl Send + FnOnce(&mut [F], &mut [F]) -> CoreResult<()>,
) -> PyResult<ArrayPair<'py>> {
    if let Some((advantages_obj, returns_obj)) = out {
        let mut advantages = output_array::<F>(advantages_obj, "out[0]", shape)?;
        let mut returns = output_array::<F>(returns_obj, "out[1]", shape)?;
        let advantages_slice = advantages
            .as_slice_mut()
            .map_err(|_| invalid_argument("out[0]", "array must be C-contiguous"))?;
        let returns_slice = returns
            .as_slice_mut()
            .map_err(|_| invalid_argument("out[1]", "array must be C-contiguous"))?;
        py.detach(|| into(advantages_slice, returns_slice)).py()?;
        return Ok((advantages_obj.clone(), returns_obj.clone()));
    }
    let result = py.detach(fresh).py()?;
    let to_array = |data: Vec<F>| -> PyResult<Bound<'py, PyAny>> {
        let array = PyArray1::from_vec(py, data);
        if shape.len() == 1 {
            Ok(array.into_any())
        } else {
            Ok(array.reshape(shape)?.into_any())
        }
    };
    Ok((to_array(result.advantages)?, to_array(result.returns)?))
}

#[allow(clippy::too_many_arguments)]
fn gae_ragged_typed<'py, F: Real + Element>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    offsets: Vec<usize>,
    value_next: &Bound<'py, PyAny>,
    gamma: f64,
    lambd: f64,
    out: OutPair<'_, 'py>,
) -> PyResult<ArrayPair<'py>> {
    let rewards = vector::<F>(rewards, "rewards", None)?;
    let values = vector::<F>(values, "values", Some(rewards.len()))?;
    let value_next = vector::<F>(value_next, "value_next", None)?;
    let rewards = slice_of(&rewards, "rewards")?;
    let values = slice_of(&values, "values")?;
    let value_next = slice_of(&value_next, "value_next")?;
    // Offsets are checked before the interpreter is released, so a bad call
    // costs nothing; the kernel checks them again (cheaply) for Rust callers.
    core::check_offsets(&offsets, value_next.len(), rewards.len()).py()?;
    let offsets = offsets.as_slice();
    run_into(
        py,
        &[rewards.len()],
        out,
        || core::gae_ragged(rewards, values, offsets, value_next, gamma, lambd),
        |advantages, returns| {
            core::gae_ragged_into(
                rewards, values, offsets, value_next, gamma, lambd, advantages, returns,
            )
        },
    )
}

/// Batched GAE over concatenated trajectories; see `compute_gae_ragged` in Python.
#[pyfunction]
#[pyo3(signature = (rewards, values, offsets, value_next, gamma, lambd, advantages_out=None, returns_out=None))]
#[allow(clippy::too_many_arguments)]
fn gae_ragged<'py>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    value_next: &Bound<'py, PyAny>,
    gamma: f64,
    lambd: f64,
    advantages_out: Option<Bound<'py, PyAny>>,
    returns_out: Option<Bound<'py, PyAny>>,
) -> PyResult<ArrayPair<'py>> {
    check_factors(gamma, lambd)?;
    let precision = precision_of(rewards, "rewards")?;
    let offsets = offsets_of(offsets)?;
    let out = out_pair(&advantages_out, &returns_out)?;
    match precision {
        Precision::F32 => {
            gae_ragged_typed::<f32>(py, rewards, values, offsets, value_next, gamma, lambd, out)
        }
        Precision::F64 => {
            gae_ragged_typed::<f64>(py, rewards, values, offsets, value_next, gamma, lambd, out)
        }
    }
}

fn lambda_return_ragged_typed<'py, F: Real + Element>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    offsets: Vec<usize>,
    value_next: &Bound<'py, PyAny>,
    gamma: f64,
    lambd: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let rewards = vector::<F>(rewards, "rewards", None)?;
    let values = vector::<F>(values, "values", Some(rewards.len()))?;
    let value_next = vector::<F>(value_next, "value_next", None)?;
    let rewards = slice_of(&rewards, "rewards")?;
    let values = slice_of(&values, "values")?;
    let value_next = slice_of(&value_next, "value_next")?;
    core::check_offsets(&offsets, value_next.len(), rewards.len()).py()?;
    let offsets = offsets.as_slice();
    let returns = py
        .detach(|| core::lambda_return_ragged(rewards, values, offsets, value_next, gamma, lambd))
        .py()?;
    Ok(PyArray1::from_vec(py, returns).into_any())
}

/// Batched lambda returns over concatenated trajectories; see
/// `compute_lambda_returns_ragged` in Python.
#[pyfunction]
#[pyo3(signature = (rewards, values, offsets, value_next, gamma, lambd))]
fn lambda_return_ragged<'py>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    value_next: &Bound<'py, PyAny>,
    gamma: f64,
    lambd: f64,
) -> PyResult<Bound<'py, PyAny>> {
    check_factors(gamma, lambd)?;
    let precision = precision_of(rewards, "rewards")?;
    let offsets = offsets_of(offsets)?;
    match precision {
        Precision::F32 => lambda_return_ragged_typed::<f32>(
            py, rewards, values, offsets, value_next, gamma, lambd,
        ),
        Precision::F64 => lambda_return_ragged_typed::<f64>(
            py, rewards, values, offsets, value_next, gamma, lambd,
        ),
    }
}

/// Turns off the rayon pool in this process: called in a child after fork,
/// where the parent's pool threads do not exist.
#[pyfunction]
fn disable_parallelism() {
    mlagents_fast_core::parallel::disable();
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(discount_rewards, m)?)?;
    m.add_function(wrap_pyfunction!(get_gae, m)?)?;
    m.add_function(wrap_pyfunction!(lambda_return, m)?)?;
    m.add_function(wrap_pyfunction!(gae_ragged, m)?)?;
    m.add_function(wrap_pyfunction!(lambda_return_ragged, m)?)?;
    m.add_function(wrap_pyfunction!(disable_parallelism, m)?)?;
    Ok(())
}
