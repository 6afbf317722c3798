//! Bindings of `mlagents_fast_core::envs`: one class, `BuiltinVectorEnv`,
//! that holds any built-in environment by name, single- or multi-agent, with
//! one or more behaviors. `step` checks every action array (dtype, contiguity,
//! shape) before anything moves, runs the step with the interpreter released
//! and hands every output array to numpy without a copy. The `BaseEnv` users
//! see is `mlagents_fast.envs.builtin.BuiltinEnv`.

use mlagents_fast_core::envs::{self as core, BehaviorActions, BuiltinEnv, Parameter, StepBatch};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::errors::{invalid_argument, IntoPyResult};
use crate::validate::{check_shape, readonly_array};

/// A vectorized built-in environment (`3DBall`, `Sorter`, `Tennis`, ...).
#[pyclass(module = "mlagents_fast._native", name = "BuiltinVectorEnv")]
pub struct BuiltinVectorEnv {
    env: Box<dyn BuiltinEnv>,
}

/// A flat vector as a numpy array of `shape` (a view of the moved buffer).
fn shaped<'py, T: numpy::Element>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, data);
    Ok(flat.reshape(shape)?.into_any())
}

fn observation_list<'py>(
    py: Python<'py>,
    spec: &core::EnvSpec,
    observations: Vec<Vec<f32>>,
    rows: usize,
) -> PyResult<Bound<'py, PyList>> {
    let arrays = observations
        .into_iter()
        .zip(&spec.observations)
        .map(|(data, layout)| {
            let mut shape = vec![rows];
            shape.extend_from_slice(&layout.shape);
            shaped(py, data, &shape)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, arrays)
}

/// One behavior's step as a dict of arrays: `decision_obs` (list), `decision_reward`,
/// `decision_agent_id`, `decision_group_id`, `decision_group_reward`, `action_mask`
/// (None without discrete branches), `terminal_obs` (list), `terminal_reward`,
/// `terminal_agent_id`, `terminal_group_id`, `terminal_group_reward`,
/// `terminal_interrupted`.
fn step_dict<'py>(
    py: Python<'py>,
    spec: &core::EnvSpec,
    batch: StepBatch,
) -> PyResult<Bound<'py, PyDict>> {
    let agents = batch.decision_agent_id.len();
    let terminals = batch.terminal_agent_id.len();
    let out = PyDict::new(py);
    let action_mask = if spec.discrete_branches.is_empty() {
        None
    } else {
        Some(shaped(py, batch.action_mask, &[agents, spec.mask_size()])?)
    };
    out.set_item(
        "decision_obs",
        observation_list(py, spec, batch.decision_obs, agents)?,
    )?;
    out.set_item(
        "decision_reward",
        PyArray1::from_vec(py, batch.decision_reward),
    )?;
    out.set_item(
        "decision_agent_id",
        PyArray1::from_vec(py, batch.decision_agent_id),
    )?;
    out.set_item(
        "decision_group_id",
        PyArray1::from_vec(py, batch.decision_group_id),
    )?;
    out.set_item(
        "decision_group_reward",
        PyArray1::from_vec(py, batch.decision_group_reward),
    )?;
    out.set_item("action_mask", action_mask)?;
    out.set_item(
        "terminal_obs",
        observation_list(py, spec, batch.terminal_obs, terminals)?,
    )?;
    out.set_item(
        "terminal_reward",
        PyArray1::from_vec(py, batch.terminal_reward),
    )?;
    out.set_item(
        "terminal_agent_id",
        PyArray1::from_vec(py, batch.terminal_agent_id),
    )?;
    out.set_item(
        "terminal_group_id",
        PyArray1::from_vec(py, batch.terminal_group_id),
    )?;
    out.set_item(
        "terminal_group_reward",
        PyArray1::from_vec(py, batch.terminal_group_reward),
    )?;
    out.set_item(
        "terminal_interrupted",
        PyArray1::from_vec(py, batch.terminal_interrupted),
    )?;
    Ok(out)
}

fn step_dicts<'py>(
    py: Python<'py>,
    specs: &[core::EnvSpec],
    batches: Vec<StepBatch>,
) -> PyResult<Bound<'py, PyList>> {
    let dicts = specs
        .iter()
        .zip(batches)
        .map(|(spec, batch)| step_dict(py, spec, batch))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, dicts)
}

/// One behavior's description: `name`, `observation_shapes`,
/// `observation_dimension_properties`, `observation_names`, `continuous_size`,
/// `discrete_branches`, `agents_per_area`.
fn behavior_dict<'py>(py: Python<'py>, spec: &core::EnvSpec) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("name", &spec.behavior_name)?;
    let shapes: Vec<Vec<usize>> = spec.observations.iter().map(|o| o.shape.clone()).collect();
    let properties: Vec<Vec<i32>> = spec
        .observations
        .iter()
        .map(|o| o.dimension_properties.clone())
        .collect();
    let names: Vec<&str> = spec.observations.iter().map(|o| o.name.as_str()).collect();
    out.set_item("observation_shapes", shapes)?;
    out.set_item("observation_dimension_properties", properties)?;
    out.set_item("observation_names", names)?;
    out.set_item("continuous_size", spec.continuous_size)?;
    out.set_item("discrete_branches", spec.discrete_branches.clone())?;
    out.set_item("agents_per_area", spec.agents_per_area)?;
    Ok(out)
}

#[pymethods]
impl BuiltinVectorEnv {
    /// `name` is one of `BUILTIN_NAMES` (case-sensitive); `num_areas` training
    /// areas of `agents_per_area` agents each (None: the task's default);
    /// `seed` fixes every random draw.
    #[new]
    #[pyo3(signature = (name, seed, num_areas=1, agents_per_area=None))]
    fn new(
        name: &str,
        seed: u64,
        num_areas: usize,
        agents_per_area: Option<usize>,
    ) -> PyResult<Self> {
        Ok(BuiltinVectorEnv {
            env: core::make(name, seed, num_areas, agents_per_area).py()?,
        })
    }

    /// One dict per behavior, in the order of `reset`/`step` results and actions.
    #[getter]
    fn behaviors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let dicts = self
            .env
            .behaviors()
            .iter()
            .map(|spec| behavior_dict(py, spec))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }

    #[getter]
    fn num_agents(&self) -> usize {
        self.env.num_agents()
    }

    #[getter]
    fn agents_per_area(&self) -> usize {
        self.env.agents_per_area()
    }

    #[getter]
    fn max_decisions(&self) -> u32 {
        self.env.max_decisions()
    }

    /// Starts a new episode for every agent (new agent ids); one dict per behavior.
    fn reset<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let env = &mut self.env;
        let batches = py.detach(|| env.reset());
        step_dicts(py, self.env.behaviors(), batches)
    }

    /// Restarts the random streams from `seed`; the next `reset` starts the episodes
    /// a fresh environment with that seed would start.
    fn reseed(&mut self, seed: u64) {
        self.env.reseed(seed);
    }

    /// One decision for every agent that asked for one. `actions` holds one
    /// `(continuous, discrete)` pair per behavior: float32 `(rows,
    /// continuous_size)` and int32 `(rows, len(discrete_branches))`, a row per
    /// agent of that behavior's last decision batch, in its order.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let specs = self.env.behaviors();
        let pairs: Vec<Bound<'py, PyAny>> = actions
            .try_iter()
            .map_err(|_| invalid_argument("actions", "expected a list of (continuous, discrete)"))?
            .collect::<PyResult<_>>()?;
        if pairs.len() != specs.len() {
            return Err(invalid_argument(
                "actions",
                format!(
                    "expected {} (continuous, discrete) pairs, one per behavior, got {}",
                    specs.len(),
                    pairs.len()
                ),
            ));
        }
        let mut arrays: Vec<(PyReadonlyArrayDyn<'py, f32>, PyReadonlyArrayDyn<'py, i32>)> =
            Vec::with_capacity(pairs.len());
        for (spec, pair) in specs.iter().zip(&pairs) {
            let pair = pair.cast::<PyTuple>().map_err(|_| {
                invalid_argument(
                    "actions",
                    "expected a list of (continuous, discrete) tuples",
                )
            })?;
            if pair.len() != 2 {
                return Err(invalid_argument(
                    "actions",
                    "expected a list of (continuous, discrete) tuples",
                ));
            }
            let name = &spec.behavior_name;
            let continuous = readonly_array::<f32>(
                &pair.get_item(0)?,
                &format!("{name} continuous"),
                "float32",
            )?;
            check_shape(
                &format!("{name} continuous"),
                continuous.shape(),
                &[None, Some(spec.continuous_size)],
            )?;
            let discrete =
                readonly_array::<i32>(&pair.get_item(1)?, &format!("{name} discrete"), "int32")?;
            check_shape(
                &format!("{name} discrete"),
                discrete.shape(),
                &[None, Some(spec.discrete_size())],
            )?;
            arrays.push((continuous, discrete));
        }
        let views = arrays
            .iter()
            .map(|(continuous, discrete)| {
                Ok(BehaviorActions {
                    continuous: continuous.as_slice()?,
                    discrete: discrete.as_slice()?,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let env = &mut self.env;
        let batches = py.detach(|| env.step(&views)).py()?;
        step_dicts(py, self.env.behaviors(), batches)
    }

    /// `EnvironmentParametersChannel.set_float_parameter`.
    fn set_float_parameter(&mut self, key: String, value: f32) {
        self.env.parameters_mut().set(key, Parameter::Float(value));
    }

    /// A uniform sampler in `[min_value, max_value)`, drawn at each episode start.
    fn set_uniform_sampler(
        &mut self,
        key: String,
        seed: i32,
        min_value: f32,
        max_value: f32,
    ) -> PyResult<()> {
        let sampler = Parameter::uniform(seed, min_value, max_value).py()?;
        self.env.parameters_mut().set(key, sampler);
        Ok(())
    }

    /// A gaussian sampler, drawn at each episode start.
    fn set_gaussian_sampler(
        &mut self,
        key: String,
        seed: i32,
        mean: f32,
        st_dev: f32,
    ) -> PyResult<()> {
        let sampler = Parameter::gaussian(seed, mean, st_dev).py()?;
        self.env.parameters_mut().set(key, sampler);
        Ok(())
    }

    /// A uniform sampler over flattened intervals `[min0, max0, min1, max1, ...]`.
    fn set_multirange_uniform_sampler(
        &mut self,
        key: String,
        seed: i32,
        intervals: Vec<f32>,
    ) -> PyResult<()> {
        let sampler = Parameter::multi_range_uniform(seed, &intervals).py()?;
        self.env.parameters_mut().set(key, sampler);
        Ok(())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BuiltinVectorEnv>()?;
    m.add("BUILTIN_NAMES", core::BUILTIN_NAMES.to_vec())?;
    Ok(())
}
