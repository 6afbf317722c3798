//! Bindings of `.demo` files (`mlagents_fast_core::demo`); public API:
//! `mlagents_fast.trainers.demo_loader` and `mlagents_fast.envs.demo_writer`.
//! Every error is a `DemonstrationError` whose message starts with `source`
//! (the file the bytes came from).

use mlagents_fast_core::demo::{self, DemoActions, DemoError, DemoMeta, DemoSpec};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::decoded::spec_to_py;
use crate::errors::{invalid_argument, py_error, PyErrorKind};
use crate::proto::{parse_brain_parameters, to_numpy, BorrowedBatch};
use crate::validate::{check_shape, readonly_array};

fn demo_error(source: &str, err: DemoError) -> PyErr {
    py_error(PyErrorKind::Demonstration, format!("{source}: {err}"))
}

/// demo_read_layout(data, source, records_before, expected_before)
/// --
///
/// Checks the header of one `.demo` file and finds its records (see
/// `mlagents_fast_core::demo::read_layout` for the stopping rule). Returns a dict:
/// `meta` (dict of the DemonstrationMetaProto fields), `brain` (brain_name,
/// is_training, continuous_size, discrete_branches, action_descriptions),
/// `records` (int64 `(n, 2)` byte ranges `[start, end)`) and `spec`: None
/// without records, else the DecodedSpec of the first record.
#[pyfunction]
fn demo_read_layout<'py>(
    py: Python<'py>,
    data: &[u8],
    source: &str,
    records_before: u64,
    expected_before: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let (layout, spec) = py
        .detach(|| {
            let layout = demo::read_layout(data, records_before, expected_before)?;
            let spec = match layout.records.first() {
                Some(first) => Some(demo::record_spec(&layout.brain, &data[first.clone()])?),
                None => None,
            };
            Ok((layout, spec))
        })
        .map_err(|err| demo_error(source, err))?;
    let result = PyDict::new(py);
    let meta = PyDict::new(py);
    meta.set_item("api_version", layout.meta.api_version)?;
    meta.set_item("demonstration_name", &layout.meta.demonstration_name)?;
    meta.set_item("number_steps", layout.meta.number_steps)?;
    meta.set_item("number_episodes", layout.meta.number_episodes)?;
    meta.set_item("mean_reward", layout.meta.mean_reward)?;
    result.set_item("meta", meta)?;
    let brain = PyDict::new(py);
    brain.set_item("brain_name", &layout.brain.brain_name)?;
    brain.set_item("is_training", layout.brain.is_training)?;
    brain.set_item("continuous_size", layout.brain.continuous_size)?;
    brain.set_item(
        "discrete_branches",
        PyTuple::new(py, &layout.brain.discrete_branches)?,
    )?;
    brain.set_item("action_descriptions", &layout.brain.action_descriptions)?;
    result.set_item("brain", brain)?;
    let mut ranges = Array2::<i64>::zeros((layout.records.len(), 2));
    for (mut row, range) in ranges.rows_mut().into_iter().zip(&layout.records) {
        row[0] = range.start as i64;
        row[1] = range.end as i64;
    }
    result.set_item("records", ranges.into_pyarray(py))?;
    match spec {
        None => result.set_item("spec", py.None())?,
        Some(spec) => result.set_item("spec", spec_to_py(py, &spec)?)?,
    }
    Ok(result)
}

/// demo_decode_records(data, records, observation_shapes, continuous_size,
///                     discrete_branches, source, max_decoded_bytes)
/// --
///
/// Decodes the records at `records` (int64 `(n, 2)` byte ranges of `data`) for
/// a behavior with these observation shapes and actions. Returns a dict of
/// arrays with n rows: `observations` (list of float32 `(n, *shape)`),
/// `reward`, `done`, `max_step_reached`, `agent_id`, `group_id`, `group_reward`,
/// `action_mask` (bool `(n, sum(branches))`, true = masked),
/// `continuous_actions` (float32 `(n, c)`), `discrete_actions` (int32
/// `(n, branches)`), `deprecated_actions` (float32 `(n, w)`) and `has_action`
/// (bool `(n,)`: false for a record without any action value, whose action rows
/// are zeros).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn demo_decode_records<'py>(
    py: Python<'py>,
    data: &[u8],
    records: Bound<'py, PyAny>,
    observation_shapes: Vec<Vec<usize>>,
    continuous_size: usize,
    discrete_branches: Vec<usize>,
    source: &str,
    max_decoded_bytes: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let ranges = readonly_array::<i64>(&records, "records", "int64")?;
    check_shape("records", ranges.shape(), &[None, Some(2)])?;
    let ranges: Vec<std::ops::Range<usize>> = ranges
        .as_slice()?
        .chunks_exact(2)
        .map(|pair| {
            let start = usize::try_from(pair[0]).ok()?;
            let end = usize::try_from(pair[1]).ok()?;
            (start <= end).then_some(start..end)
        })
        .collect::<Option<_>>()
        .ok_or_else(|| invalid_argument("records", "byte ranges must be 0 <= start <= end"))?;
    let spec = DemoSpec {
        observation_shapes,
        continuous_size,
        discrete_branches,
    };
    let steps = py
        .detach(|| demo::decode_records(data, &ranges, &spec, max_decoded_bytes))
        .map_err(|err| demo_error(source, err))?;
    let n = steps.len;
    let result = PyDict::new(py);
    let observations = PyList::empty(py);
    for (values, shape) in steps.observations.into_iter().zip(&spec.observation_shapes) {
        let mut full_shape = vec![n];
        full_shape.extend_from_slice(shape);
        observations.append(to_numpy(py, values, &full_shape)?)?;
    }
    result.set_item("observations", observations)?;
    result.set_item("reward", to_numpy(py, steps.reward, &[n])?)?;
    result.set_item("done", to_numpy(py, steps.done, &[n])?)?;
    result.set_item(
        "max_step_reached",
        to_numpy(py, steps.max_step_reached, &[n])?,
    )?;
    result.set_item("agent_id", to_numpy(py, steps.agent_id, &[n])?)?;
    result.set_item("group_id", to_numpy(py, steps.group_id, &[n])?)?;
    result.set_item("group_reward", to_numpy(py, steps.group_reward, &[n])?)?;
    let mask_width: usize = spec.discrete_branches.iter().sum();
    let mask = if steps.action_mask.is_empty() {
        vec![false; n * mask_width]
    } else {
        steps.action_mask
    };
    result.set_item("action_mask", to_numpy(py, mask, &[n, mask_width])?)?;
    result.set_item(
        "continuous_actions",
        to_numpy(py, steps.continuous_actions, &[n, spec.continuous_size])?,
    )?;
    result.set_item(
        "discrete_actions",
        to_numpy(
            py,
            steps.discrete_actions,
            &[n, spec.discrete_branches.len()],
        )?,
    )?;
    result.set_item("has_action", to_numpy(py, steps.has_action, &[n])?)?;
    result.set_item(
        "deprecated_actions",
        to_numpy(py, steps.deprecated_actions, &[n, steps.deprecated_width])?,
    )?;
    Ok(result)
}

/// demo_encode_meta_area(api_version, demonstration_name, number_steps, number_episodes, mean_reward)
/// --
///
/// The first 33 bytes of a `.demo` file: the delimited DemonstrationMetaProto,
/// zero padded. The name is cut to 16 characters, as Unity does.
#[pyfunction]
fn demo_encode_meta_area<'py>(
    py: Python<'py>,
    api_version: i32,
    demonstration_name: String,
    number_steps: i32,
    number_episodes: i32,
    mean_reward: f32,
) -> PyResult<Bound<'py, PyBytes>> {
    let meta = DemoMeta {
        api_version,
        demonstration_name,
        number_steps,
        number_episodes,
        mean_reward,
    };
    let area = demo::encode_meta_area(&meta)
        .map_err(|err| invalid_argument("demonstration_name", err.to_string()))?;
    Ok(PyBytes::new(py, &area))
}

/// demo_encode_brain_record(brain)
/// --
///
/// The delimited BrainParametersProto written at byte 33. `brain` is a dict with
/// brain_name, continuous_size, discrete_branches and optionally is_training
/// (Unity writes false) and action_descriptions.
#[pyfunction]
fn demo_encode_brain_record<'py>(
    py: Python<'py>,
    brain: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyBytes>> {
    let brain = parse_brain_parameters(&brain, "brain")?;
    if brain.continuous_size < 0 || brain.discrete_branches.iter().any(|&b| b <= 0) {
        return Err(invalid_argument(
            "brain",
            format!(
                "invalid action spec (continuous {}, branches {:?})",
                brain.continuous_size, brain.discrete_branches
            ),
        ));
    }
    Ok(PyBytes::new(py, &demo::encode_brain_record(&brain)))
}

/// demo_encode_records(batch, continuous, discrete)
/// --
///
/// One delimited AgentInfoActionPairProto per agent of `batch` (a dict as
/// `encode_unity_output` takes), paired with the same row of `continuous`
/// (float32 `(n, c)`) and `discrete` (int32 `(n, d)`). Returns a list of n
/// bytes objects, one record each.
#[pyfunction]
fn demo_encode_records<'py>(
    py: Python<'py>,
    batch: Bound<'py, PyDict>,
    continuous: Bound<'py, PyAny>,
    discrete: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let borrowed = BorrowedBatch::new(&batch, "batch")?;
    let n = borrowed.len();
    let continuous: PyReadonlyArrayDyn<'py, f32> =
        readonly_array(&continuous, "continuous", "float32")?;
    let discrete: PyReadonlyArrayDyn<'py, i32> = readonly_array(&discrete, "discrete", "int32")?;
    check_shape("continuous", continuous.shape(), &[Some(n), None])?;
    check_shape("discrete", discrete.shape(), &[Some(n), None])?;
    let actions = DemoActions {
        continuous: continuous.as_slice()?,
        continuous_size: continuous.shape()[1],
        discrete: discrete.as_slice()?,
        discrete_size: discrete.shape()[1],
    };
    let agent_batch = borrowed.agent_batch()?;
    let (bytes, ends) = py
        .detach(|| demo::encode_records(&agent_batch, &actions))
        .map_err(|err| invalid_argument("batch", err.to_string()))?;
    let records = PyList::empty(py);
    let mut start = 0;
    for end in ends {
        records.append(PyBytes::new(py, &bytes[start..end]))?;
        start = end;
    }
    Ok(records)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(demo_read_layout, m)?)?;
    m.add_function(wrap_pyfunction!(demo_decode_records, m)?)?;
    m.add_function(wrap_pyfunction!(demo_encode_meta_area, m)?)?;
    m.add_function(wrap_pyfunction!(demo_encode_brain_record, m)?)?;
    m.add_function(wrap_pyfunction!(demo_encode_records, m)?)?;
    Ok(())
}
