//! Named results of the Unity decoder (`decode_unity_output`) and of the demo
//! reader's spec: frozen classes with read-only attributes, re-exported by
//! `mlagents_fast.envs.rpc_utils`. They replace dicts of positional tuples.
//! Classes built here cost one allocation each; a `NamedTuple` would run its
//! Python-level `__new__` for every object of every message (about 1 us each).

use mlagents_fast_core::proto::output::{
    BehaviorSteps, BrainParameters, DecodedOutput as CoreOutput, InitOutput, NewSpec, StepBatch,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::proto::{capabilities_tuple, to_numpy};

/// One observation of a newly announced behavior, as Unity describes it.
#[pyclass(module = "mlagents_fast._native", frozen, get_all)]
pub struct DecodedObservation {
    /// Shape of one agent's observation.
    shape: Py<PyTuple>,
    /// One `DimensionProperty` flag combination per dimension, or empty (unspecified).
    dimension_properties: Py<PyTuple>,
    /// `ObservationType` value.
    observation_type: i32,
    name: Py<PyString>,
}

#[pymethods]
impl DecodedObservation {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DecodedObservation(shape={}, dimension_properties={}, observation_type={}, name={})",
            self.shape.bind(py).repr()?,
            self.dimension_properties.bind(py).repr()?,
            self.observation_type,
            self.name.bind(py).repr()?,
        ))
    }
}

/// What a message announcing a behavior says about it (brain parameters plus the
/// observations of its first agent).
#[pyclass(module = "mlagents_fast._native", frozen, get_all)]
pub struct DecodedSpec {
    /// Tuple of `DecodedObservation`, in sensor order.
    observations: Py<PyTuple>,
    continuous_size: usize,
    discrete_branches: Py<PyTuple>,
}

#[pymethods]
impl DecodedSpec {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DecodedSpec(observations={}, continuous_size={}, discrete_branches={})",
            self.observations.bind(py).repr()?,
            self.continuous_size,
            self.discrete_branches.bind(py).repr()?,
        ))
    }
}

/// The agents of one behavior that ask for a decision, or those whose episode ended,
/// in message order: `n` rows in every array.
#[pyclass(module = "mlagents_fast._native", frozen, get_all)]
pub struct DecodedSteps {
    /// One float32 array `(n, *shape)` per observation.
    obs: Py<PyList>,
    /// float32 `(n,)`.
    reward: Py<PyAny>,
    /// int32 `(n,)`.
    agent_id: Py<PyAny>,
    /// int32 `(n,)`, 0 for agents in no group.
    group_id: Py<PyAny>,
    /// float32 `(n,)`.
    group_reward: Py<PyAny>,
    /// bool `(n,)`: the episode reached its maximum length (meaningful for terminal steps).
    interrupted: Py<PyAny>,
}

#[pymethods]
impl DecodedSteps {
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.agent_id.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("DecodedSteps(<{} agents>)", self.__len__(py)?))
    }
}

/// The agents of one behavior present in a message.
#[pyclass(module = "mlagents_fast._native", frozen, get_all)]
pub struct DecodedBehavior {
    name: Py<PyString>,
    /// Set when this message announced the behavior, else None.
    new_spec: Option<Py<DecodedSpec>>,
    decision: Py<DecodedSteps>,
    terminal: Py<DecodedSteps>,
    /// bool `(n_decision, sum(discrete_branches))`, True = masked; None for continuous-only
    /// behaviors and when no agent asks for a decision.
    action_mask: Option<Py<PyAny>>,
    discrete_branches: Py<PyTuple>,
}

#[pymethods]
impl DecodedBehavior {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DecodedBehavior(name={}, decision=<{} agents>, terminal=<{} agents>, new_spec={})",
            self.name.bind(py).repr()?,
            self.decision.get().__len__(py)?,
            self.terminal.get().__len__(py)?,
            match &self.new_spec {
                None => "None".to_string(),
                Some(spec) => spec.get().__repr__(py)?,
            },
        ))
    }
}

/// A `BrainParametersProto`, the action spec resolved (deprecated fields as fallback).
#[pyclass(module = "mlagents_fast._native", frozen, get_all)]
pub struct DecodedBrainParameters {
    brain_name: Py<PyString>,
    is_training: bool,
    continuous_size: i32,
    discrete_branches: Py<PyTuple>,
    /// Tuple of str.
    action_descriptions: Py<PyTuple>,
}

#[pymethods]
impl DecodedBrainParameters {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DecodedBrainParameters(brain_name={}, continuous_size={}, discrete_branches={})",
            self.brain_name.bind(py).repr()?,
            self.continuous_size,
            self.discrete_branches.bind(py).repr()?,
        ))
    }
}

/// The initialization output Unity sends in its first message.
#[pyclass(module = "mlagents_fast._native", frozen, get_all)]
pub struct DecodedInitOutput {
    name: Py<PyString>,
    communication_version: Py<PyString>,
    log_path: Py<PyString>,
    package_version: Py<PyString>,
    /// The 7 capability flags in `UnityRLCapabilitiesProto` field order.
    capabilities: Py<PyTuple>,
    /// Tuple of `DecodedBrainParameters`.
    brain_parameters: Py<PyTuple>,
}

#[pymethods]
impl DecodedInitOutput {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DecodedInitOutput(name={}, communication_version={}, package_version={}, \
             brain_parameters={})",
            self.name.bind(py).repr()?,
            self.communication_version.bind(py).repr()?,
            self.package_version.bind(py).repr()?,
            self.brain_parameters.bind(py).repr()?,
        ))
    }
}

/// One message from Unity.
#[pyclass(module = "mlagents_fast._native", frozen, get_all)]
pub struct DecodedOutput {
    /// Header status: 200 for a normal message.
    status: i32,
    /// Whether the message had a `unity_output` at all.
    has_output: bool,
    /// The side-channel bytes, for the channels.
    side_channel: Py<PyBytes>,
    /// Set in Unity's first message.
    init_output: Option<Py<DecodedInitOutput>>,
    /// List of `DecodedBehavior`: the behaviors present, in message order.
    behaviors: Py<PyList>,
}

#[pymethods]
impl DecodedOutput {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DecodedOutput(status={}, has_output={}, init_output={}, behaviors={})",
            self.status,
            if self.has_output { "True" } else { "False" },
            if self.init_output.is_some() {
                "..."
            } else {
                "None"
            },
            self.behaviors.bind(py).repr()?,
        ))
    }
}

pub(crate) fn spec_to_py(py: Python<'_>, spec: &NewSpec) -> PyResult<Py<DecodedSpec>> {
    let observations = spec
        .observations
        .iter()
        .map(|obs| {
            Py::new(
                py,
                DecodedObservation {
                    shape: PyTuple::new(py, &obs.shape)?.unbind(),
                    dimension_properties: PyTuple::new(py, &obs.dimension_properties)?.unbind(),
                    observation_type: obs.observation_type,
                    name: PyString::new(py, &obs.name).unbind(),
                },
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    Py::new(
        py,
        DecodedSpec {
            observations: PyTuple::new(py, observations)?.unbind(),
            continuous_size: spec.continuous_size,
            discrete_branches: PyTuple::new(py, &spec.discrete_branches)?.unbind(),
        },
    )
}

fn steps_to_py(
    py: Python<'_>,
    batch: StepBatch,
    shapes: &[Vec<usize>],
) -> PyResult<Py<DecodedSteps>> {
    let n = batch.len();
    let obs = PyList::empty(py);
    for (values, shape) in batch.observations.into_iter().zip(shapes) {
        let mut full_shape = Vec::with_capacity(shape.len() + 1);
        full_shape.push(n);
        full_shape.extend_from_slice(shape);
        obs.append(to_numpy(py, values, &full_shape)?)?;
    }
    Py::new(
        py,
        DecodedSteps {
            obs: obs.unbind(),
            reward: to_numpy(py, batch.reward, &[n])?.unbind(),
            agent_id: to_numpy(py, batch.agent_id, &[n])?.unbind(),
            group_id: to_numpy(py, batch.group_id, &[n])?.unbind(),
            group_reward: to_numpy(py, batch.group_reward, &[n])?.unbind(),
            interrupted: to_numpy(py, batch.interrupted, &[n])?.unbind(),
        },
    )
}

fn behavior_to_py(py: Python<'_>, behavior: BehaviorSteps) -> PyResult<Py<DecodedBehavior>> {
    let new_spec = match &behavior.new_spec {
        None => None,
        Some(spec) => Some(spec_to_py(py, spec)?),
    };
    let n_decision = behavior.decision.len();
    let mask_width: usize = behavior.discrete_branches.iter().sum();
    let action_mask = match behavior.action_mask {
        None => None,
        Some(mask) => Some(to_numpy(py, mask, &[n_decision, mask_width])?.unbind()),
    };
    Py::new(
        py,
        DecodedBehavior {
            name: PyString::new(py, &behavior.name).unbind(),
            new_spec,
            decision: steps_to_py(py, behavior.decision, &behavior.observation_shapes)?,
            terminal: steps_to_py(py, behavior.terminal, &behavior.observation_shapes)?,
            action_mask,
            discrete_branches: PyTuple::new(py, &behavior.discrete_branches)?.unbind(),
        },
    )
}

fn brain_to_py(py: Python<'_>, brain: &BrainParameters) -> PyResult<Py<DecodedBrainParameters>> {
    Py::new(
        py,
        DecodedBrainParameters {
            brain_name: PyString::new(py, &brain.brain_name).unbind(),
            is_training: brain.is_training,
            continuous_size: brain.continuous_size,
            discrete_branches: PyTuple::new(py, &brain.discrete_branches)?.unbind(),
            action_descriptions: PyTuple::new(py, &brain.action_descriptions)?.unbind(),
        },
    )
}

fn init_output_to_py(py: Python<'_>, init: &InitOutput) -> PyResult<Py<DecodedInitOutput>> {
    let brains = init
        .brain_parameters
        .iter()
        .map(|brain| brain_to_py(py, brain))
        .collect::<PyResult<Vec<_>>>()?;
    Py::new(
        py,
        DecodedInitOutput {
            name: PyString::new(py, &init.name).unbind(),
            communication_version: PyString::new(py, &init.communication_version).unbind(),
            log_path: PyString::new(py, &init.log_path).unbind(),
            package_version: PyString::new(py, &init.package_version).unbind(),
            capabilities: capabilities_tuple(py, &init.capabilities)?.unbind(),
            brain_parameters: PyTuple::new(py, brains)?.unbind(),
        },
    )
}

pub(crate) fn output_to_py(py: Python<'_>, decoded: CoreOutput) -> PyResult<Py<DecodedOutput>> {
    let init_output = match &decoded.init_output {
        None => None,
        Some(init) => Some(init_output_to_py(py, init)?),
    };
    let behaviors = PyList::empty(py);
    for behavior in decoded.behaviors {
        behaviors.append(behavior_to_py(py, behavior)?)?;
    }
    Py::new(
        py,
        DecodedOutput {
            status: decoded.status,
            has_output: decoded.has_output,
            side_channel: PyBytes::new(py, &decoded.side_channel).unbind(),
            init_output,
            behaviors: behaviors.unbind(),
        },
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DecodedObservation>()?;
    m.add_class::<DecodedSpec>()?;
    m.add_class::<DecodedSteps>()?;
    m.add_class::<DecodedBehavior>()?;
    m.add_class::<DecodedBrainParameters>()?;
    m.add_class::<DecodedInitOutput>()?;
    m.add_class::<DecodedOutput>()?;
    Ok(())
}
