//! Bindings of `mlagents_fast_core::envs`: one class, `BuiltinVectorEnv`,
//! that holds any built-in environment by name. `step` checks the action
//! arrays (dtype, contiguity, shape) before anything moves, runs the step with
//! the interpreter released and hands every output array to numpy without a
//! copy. The `BaseEnv` users see is `mlagents_fast.envs.builtin.BuiltinEnv`.

use mlagents_fast_core::envs::{self as core, Parameter, StepBatch, VectorEnv};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::errors::{invalid_argument, IntoPyResult};
use crate::validate::{check_shape, readonly_array};

/// Arrays of one step: `(decision_obs, decision_reward, decision_agent_id,
/// action_mask, terminal_obs, terminal_reward, terminal_agent_id,
/// terminal_interrupted)`.
type StepArrays<'py> = (
    Bound<'py, PyList>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
    Bound<'py, PyList>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// A vectorized built-in environment (`3DBall`, `GridWorld`, ...).
#[pyclass(module = "mlagents_fast._native", name = "BuiltinVectorEnv")]
pub struct BuiltinVectorEnv {
    env: Box<dyn VectorEnv>,
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

fn step_arrays<'py>(
    py: Python<'py>,
    spec: &core::EnvSpec,
    batch: StepBatch,
) -> PyResult<StepArrays<'py>> {
    let agents = batch.decision_agent_id.len();
    let terminals = batch.terminal_agent_id.len();
    let mask_size = spec.mask_size();
    let action_mask = if spec.discrete_branches.is_empty() {
        None
    } else {
        Some(shaped(py, batch.action_mask, &[agents, mask_size])?)
    };
    Ok((
        observation_list(py, spec, batch.decision_obs, agents)?,
        PyArray1::from_vec(py, batch.decision_reward).into_any(),
        PyArray1::from_vec(py, batch.decision_agent_id).into_any(),
        action_mask,
        observation_list(py, spec, batch.terminal_obs, terminals)?,
        PyArray1::from_vec(py, batch.terminal_reward).into_any(),
        PyArray1::from_vec(py, batch.terminal_agent_id).into_any(),
        PyArray1::from_vec(py, batch.terminal_interrupted).into_any(),
    ))
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

    #[getter]
    fn behavior_name(&self) -> String {
        self.env.spec().behavior_name.clone()
    }

    #[getter]
    fn observation_shapes(&self) -> Vec<Vec<usize>> {
        self.env
            .spec()
            .observations
            .iter()
            .map(|o| o.shape.clone())
            .collect()
    }

    #[getter]
    fn observation_dimension_properties(&self) -> Vec<Vec<i32>> {
        self.env
            .spec()
            .observations
            .iter()
            .map(|o| o.dimension_properties.clone())
            .collect()
    }

    #[getter]
    fn observation_names(&self) -> Vec<String> {
        self.env
            .spec()
            .observations
            .iter()
            .map(|o| o.name.clone())
            .collect()
    }

    #[getter]
    fn continuous_size(&self) -> usize {
        self.env.spec().continuous_size
    }

    #[getter]
    fn discrete_branches(&self) -> Vec<usize> {
        self.env.spec().discrete_branches.clone()
    }

    #[getter]
    fn num_agents(&self) -> usize {
        self.env.num_agents()
    }

    #[getter]
    fn agents_per_area(&self) -> usize {
        self.env.spec().agents_per_area
    }

    #[getter]
    fn max_decisions(&self) -> u32 {
        self.env.spec().max_decisions
    }

    /// Starts a new episode for every agent (new agent ids).
    fn reset<'py>(&mut self, py: Python<'py>) -> PyResult<StepArrays<'py>> {
        let env = &mut self.env;
        let batch = py.detach(|| env.reset());
        step_arrays(py, self.env.spec(), batch)
    }

    /// Restarts the random streams from `seed`; the next `reset` starts the episodes
    /// a fresh environment with that seed would start.
    fn reseed(&mut self, seed: u64) {
        self.env.reseed(seed);
    }

    /// One decision for every agent: `continuous` float32 `(num_agents,
    /// continuous_size)`, `discrete` int32 `(num_agents, len(discrete_branches))`.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        continuous: &Bound<'py, PyAny>,
        discrete: &Bound<'py, PyAny>,
    ) -> PyResult<StepArrays<'py>> {
        let agents = self.env.num_agents();
        let spec = self.env.spec();
        let continuous = readonly_array::<f32>(continuous, "continuous", "float32")?;
        check_shape(
            "continuous",
            continuous.shape(),
            &[Some(agents), Some(spec.continuous_size)],
        )?;
        let discrete = readonly_array::<i32>(discrete, "discrete", "int32")?;
        check_shape(
            "discrete",
            discrete.shape(),
            &[Some(agents), Some(spec.discrete_size())],
        )?;
        let continuous = continuous
            .as_slice()
            .map_err(|_| invalid_argument("continuous", "array must be C-contiguous"))?;
        let discrete = discrete
            .as_slice()
            .map_err(|_| invalid_argument("discrete", "array must be C-contiguous"))?;
        let env = &mut self.env;
        let batch = py.detach(|| env.step(continuous, discrete)).py()?;
        step_arrays(py, self.env.spec(), batch)
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
