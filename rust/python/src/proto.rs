//! Bindings of the Unity wire format (`mlagents_fast_core::proto`). Messages
//! are decoded and encoded with the interpreter released; decoded batches
//! reach numpy without a copy. Errors become the `mlagents_fast.envs.exception`
//! classes ML-Agents raises in the same situation, all subclasses of
//! `UnityProtocolException`. The decoders never panic on any input; should one
//! ever do, the panic is caught here and raised as a protocol error too, never
//! as pyo3's `PanicException` (a BaseException that `except Exception` misses).

use mlagents_fast_core::proto::input::{self, BehaviorActions, InitInput, RlInput};
use mlagents_fast_core::proto::output::{
    self, AgentBatch, BrainParameters, InitOutput, KnownSpec, ObservationBatch,
};
use mlagents_fast_core::proto::{Capabilities, DecodeLimits, ProtoError};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple, PyType};

use crate::decoded::{output_to_py, DecodedOutput};
use crate::errors::invalid_argument;
use crate::validate::{check_shape, readonly_array};

static DECODE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static OBSERVATION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static NON_FINITE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static LIMIT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Appended to limit errors: how a user with a scene that really needs more raises a limit.
const RAISE_LIMIT_HINT: &str = "If your scene really sends this much, raise the limit with the \
     MLAGENTS_FAST_DECODE_LIMITS environment variable (see docs/protocol.md, \"Decoder limits\").";

fn envs_exception(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: String,
) -> PyErr {
    let class = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let module = py.import("mlagents_fast.envs.exception")?;
        Ok(module.getattr(name)?.cast_into::<PyType>()?.unbind())
    });
    match class {
        Ok(class) => PyErr::from_type(class.bind(py).clone(), message),
        Err(lookup_failure) => lookup_failure,
    }
}

fn proto_error(py: Python<'_>, err: ProtoError) -> PyErr {
    match err {
        ProtoError::Decode(_) => envs_exception(
            py,
            &DECODE_ERROR,
            "UnityMessageDecodeException",
            err.to_string(),
        ),
        ProtoError::Observation(m) => {
            envs_exception(py, &OBSERVATION_ERROR, "UnityObservationException", m)
        }
        ProtoError::NonFinite(m) => {
            envs_exception(py, &NON_FINITE_ERROR, "UnityNonFiniteValueException", m)
        }
        ProtoError::Limit(_) => envs_exception(
            py,
            &LIMIT_ERROR,
            "UnityMessageLimitException",
            format!("{err}. {RAISE_LIMIT_HINT}"),
        ),
    }
}

/// Runs `body`, turning a panic into a protocol error naming `what` (last line of
/// defence: the decoders return errors for every input they are given).
fn panic_guard<'py, T>(
    py: Python<'py>,
    what: &str,
    body: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(proto_error(
            py,
            ProtoError::Decode(format!("{what} failed on this message ({reason})")),
        ))
    })
}

/// DecodeLimits(*, max_agents=..., max_observations=..., max_observation_elements=...,
/// max_png_pixels=..., max_discrete_branches=..., max_action_size=..., max_message_bytes=...)
/// --
///
/// Upper bounds the decoder checks every size of a message from Unity against,
/// before allocating (docs/protocol.md, "Decoder limits"). Each must be at least 1.
#[pyclass(module = "mlagents_fast._native", name = "DecodeLimits", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyDecodeLimits {
    limits: DecodeLimits,
}

#[pymethods]
impl PyDecodeLimits {
    #[new]
    #[pyo3(signature = (
        *,
        max_agents = DecodeLimits::DEFAULT.max_agents,
        max_observations = DecodeLimits::DEFAULT.max_observations,
        max_observation_elements = DecodeLimits::DEFAULT.max_observation_elements,
        max_png_pixels = DecodeLimits::DEFAULT.max_png_pixels,
        max_discrete_branches = DecodeLimits::DEFAULT.max_discrete_branches,
        max_action_size = DecodeLimits::DEFAULT.max_action_size,
        max_message_bytes = DecodeLimits::DEFAULT.max_message_bytes,
    ))]
    fn new(
        max_agents: usize,
        max_observations: usize,
        max_observation_elements: usize,
        max_png_pixels: usize,
        max_discrete_branches: usize,
        max_action_size: usize,
        max_message_bytes: usize,
    ) -> PyResult<Self> {
        let limits = DecodeLimits {
            max_agents,
            max_observations,
            max_observation_elements,
            max_png_pixels,
            max_discrete_branches,
            max_action_size,
            max_message_bytes,
        };
        if let Some((name, _)) = limits.named().into_iter().find(|&(_, value)| value == 0) {
            return Err(invalid_argument(name, "must be at least 1"));
        }
        Ok(PyDecodeLimits { limits })
    }

    /// The limits as a dict, in declaration order.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in self.limits.named() {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        let fields: Vec<String> = self
            .limits
            .named()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        format!("DecodeLimits({})", fields.join(", "))
    }
}

pub(crate) fn to_numpy<'py, T: numpy::Element>(
    py: Python<'py>,
    values: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    // The decoder sized `values` from `shape`; a mismatch would be a decoder bug, reported
    // as a protocol error like every other failure on received bytes.
    let array = ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| {
        proto_error(
            py,
            ProtoError::Decode(format!("decoded batch of shape {shape:?}: {e}")),
        )
    })?;
    Ok(array.into_pyarray(py).into_any())
}

pub(crate) fn capabilities_tuple<'py>(
    py: Python<'py>,
    caps: &Capabilities,
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, caps.as_array())
}

/// decode_unity_output(data, known_specs, limits=None)
/// --
///
/// Decodes a UnityMessageProto sent by Unity. `known_specs` lists
/// `(behavior_name, observation_shapes, discrete_branches)` of the behaviors
/// announced earlier; `limits` is a DecodeLimits (None: the defaults). Every
/// failure raises a subclass of UnityProtocolException. Returns a DecodedOutput
/// (`status`, `has_output`, `side_channel`, `init_output`, `behaviors`: a list of
/// DecodedBehavior; see `decoded.rs`).
#[pyfunction]
#[pyo3(signature = (data, known_specs, limits = None))]
fn decode_unity_output<'py>(
    py: Python<'py>,
    data: &[u8],
    known_specs: Vec<(String, Vec<Vec<usize>>, Vec<usize>)>,
    limits: Option<Bound<'py, PyDecodeLimits>>,
) -> PyResult<Py<DecodedOutput>> {
    let limits = limits.map_or(DecodeLimits::DEFAULT, |l| l.get().limits);
    let known: Vec<KnownSpec> = known_specs
        .into_iter()
        .map(|(name, observation_shapes, discrete_branches)| KnownSpec {
            name,
            observation_shapes,
            discrete_branches,
        })
        .collect();
    panic_guard(py, "decoding a message from Unity", || {
        let decoded = py
            .detach(|| output::decode_unity_message_limited(data, &known, &limits))
            .map_err(|e| proto_error(py, e))?;
        output_to_py(py, decoded)
    })
}

/// encode_init_input(seed, communication_version, package_version, capabilities, num_areas)
/// --
///
/// The first message the trainer sends: status 200 and the initialization input.
/// `capabilities` is a sequence of the 7 capability flags in field order.
#[pyfunction]
fn encode_init_input<'py>(
    py: Python<'py>,
    seed: i32,
    communication_version: String,
    package_version: String,
    capabilities: [bool; 7],
    num_areas: i32,
) -> Bound<'py, PyBytes> {
    let bytes = input::encode_init_input(&InitInput {
        seed,
        communication_version,
        package_version,
        capabilities: Capabilities::from_array(capabilities),
        num_areas,
    });
    PyBytes::new(py, &bytes)
}

/// encode_rl_input(command, side_channel, actions)
/// --
///
/// A step (command 0) or reset (command 1) message. `actions` is a list of
/// `(behavior_name, continuous, discrete)` with continuous a float32 array
/// `(n_agents, continuous_size)` and discrete an int32 array `(n_agents, n_branches)`.
#[pyfunction]
fn encode_rl_input<'py>(
    py: Python<'py>,
    command: i32,
    side_channel: &[u8],
    actions: Vec<(String, Bound<'py, PyAny>, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut behaviors = Vec::with_capacity(actions.len());
    for (name, continuous, discrete) in &actions {
        let argument = format!("actions[{name:?}]");
        let continuous =
            readonly_array::<f32>(continuous, &format!("{argument}.continuous"), "float32")?;
        let discrete = readonly_array::<i32>(discrete, &format!("{argument}.discrete"), "int32")?;
        check_shape(
            &format!("{argument}.continuous"),
            continuous.shape(),
            &[None, None],
        )?;
        let n_agents = continuous.shape()[0];
        check_shape(
            &format!("{argument}.discrete"),
            discrete.shape(),
            &[Some(n_agents), None],
        )?;
        behaviors.push(BehaviorActions {
            name: name.clone(),
            n_agents,
            continuous: continuous.as_slice()?.to_vec(),
            continuous_size: continuous.shape()[1],
            discrete: discrete.as_slice()?.to_vec(),
            discrete_size: discrete.shape()[1],
        });
    }
    let rl = RlInput {
        command,
        side_channel: side_channel.to_vec(),
        actions: behaviors,
    };
    let bytes = py
        .detach(|| input::encode_rl_input(&rl))
        .map_err(|e| proto_error(py, e))?;
    Ok(PyBytes::new(py, &bytes))
}

/// encode_close()
/// --
///
/// The close message: header status 400 and nothing else.
#[pyfunction]
fn encode_close(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &input::encode_close())
}

/// decode_unity_input(data, limits=None)
/// --
///
/// Decodes a message sent by the trainer (used by the Unity-side host), with the same
/// guarantees as `decode_unity_output`: sizes are checked against `limits` (a
/// DecodeLimits; None: the defaults) before anything is allocated, and every failure
/// raises a subclass of UnityProtocolException. Returns a dict with `status`,
/// `init_input` (dict or None) and `rl_input` (None or a dict with `command`,
/// `side_channel` and `actions`: behavior name -> `(continuous float32 (n, c), discrete
/// int32 (n, d))`).
#[pyfunction]
#[pyo3(signature = (data, limits = None))]
fn decode_unity_input<'py>(
    py: Python<'py>,
    data: &[u8],
    limits: Option<Bound<'py, PyDecodeLimits>>,
) -> PyResult<Bound<'py, PyDict>> {
    let limits = limits.map_or(DecodeLimits::DEFAULT, |l| l.get().limits);
    panic_guard(py, "decoding a message from the trainer", || {
        let decoded = py
            .detach(|| input::decode_unity_input_limited(data, &limits))
            .map_err(|e| proto_error(py, e))?;
        decoded_input_to_py(py, decoded)
    })
}

fn decoded_input_to_py(
    py: Python<'_>,
    decoded: input::DecodedInput,
) -> PyResult<Bound<'_, PyDict>> {
    let result = PyDict::new(py);
    result.set_item("status", decoded.status)?;
    match decoded.init_input {
        None => result.set_item("init_input", py.None())?,
        Some(init) => {
            let dict = PyDict::new(py);
            dict.set_item("seed", init.seed)?;
            dict.set_item("communication_version", init.communication_version)?;
            dict.set_item("package_version", init.package_version)?;
            dict.set_item("capabilities", capabilities_tuple(py, &init.capabilities)?)?;
            dict.set_item("num_areas", init.num_areas)?;
            result.set_item("init_input", dict)?;
        }
    }
    match decoded.rl_input {
        None => result.set_item("rl_input", py.None())?,
        Some(rl) => {
            let dict = PyDict::new(py);
            dict.set_item("command", rl.command)?;
            dict.set_item("side_channel", PyBytes::new(py, &rl.side_channel))?;
            let actions = PyDict::new(py);
            for behavior in rl.actions {
                let n = behavior.n_agents;
                actions.set_item(
                    behavior.name,
                    (
                        to_numpy(py, behavior.continuous, &[n, behavior.continuous_size])?,
                        to_numpy(py, behavior.discrete, &[n, behavior.discrete_size])?,
                    ),
                )?;
            }
            dict.set_item("actions", actions)?;
            result.set_item("rl_input", dict)?;
        }
    }
    Ok(result)
}

fn required<'py>(
    dict: &Bound<'py, PyDict>,
    key: &str,
    argument: &str,
) -> PyResult<Bound<'py, PyAny>> {
    dict.get_item(key)?
        .ok_or_else(|| invalid_argument(argument, format!("missing key {key:?}")))
}

/// A brain-parameters dict: brain_name, continuous_size, discrete_branches and
/// optionally is_training (default true) and action_descriptions.
pub(crate) fn parse_brain_parameters(
    item: &Bound<'_, PyDict>,
    argument: &str,
) -> PyResult<BrainParameters> {
    Ok(BrainParameters {
        brain_name: required(item, "brain_name", argument)?.extract()?,
        is_training: match item.get_item("is_training")? {
            Some(v) => v.extract()?,
            None => true,
        },
        continuous_size: required(item, "continuous_size", argument)?.extract()?,
        discrete_branches: required(item, "discrete_branches", argument)?.extract()?,
        action_descriptions: match item.get_item("action_descriptions")? {
            Some(v) => v.extract()?,
            None => Vec::new(),
        },
    })
}

fn parse_init_output(init: &Bound<'_, PyDict>) -> PyResult<InitOutput> {
    let argument = "init_output";
    let text = |key: &str| -> PyResult<String> {
        match init.get_item(key)? {
            Some(value) => value.extract(),
            None => Ok(String::new()),
        }
    };
    let mut brains = Vec::new();
    if let Some(list) = init.get_item("brain_parameters")? {
        for item in list.try_iter()? {
            let item = item?;
            let item = item
                .cast::<PyDict>()
                .map_err(|_| invalid_argument(argument, "brain_parameters items must be dicts"))?;
            brains.push(parse_brain_parameters(item, argument)?);
        }
    }
    let capabilities = match init.get_item("capabilities")? {
        Some(value) => Capabilities::from_array(value.extract()?),
        None => Capabilities::default(),
    };
    Ok(InitOutput {
        name: text("name")?,
        communication_version: text("communication_version")?,
        log_path: text("log_path")?,
        package_version: text("package_version")?,
        capabilities,
        brain_parameters: brains,
    })
}

struct BorrowedObservation<'py> {
    array: PyReadonlyArrayDyn<'py, f32>,
    shape: Vec<i32>,
    dimension_properties: Vec<i32>,
    observation_type: i32,
    name: String,
}

/// The arrays of one agent-batch dict, borrowed from numpy (see `encode_unity_output`).
pub(crate) struct BorrowedBatch<'py> {
    name: String,
    agent_id: PyReadonlyArrayDyn<'py, i32>,
    reward: PyReadonlyArrayDyn<'py, f32>,
    done: PyReadonlyArrayDyn<'py, bool>,
    max_step_reached: PyReadonlyArrayDyn<'py, bool>,
    group_id: PyReadonlyArrayDyn<'py, i32>,
    group_reward: PyReadonlyArrayDyn<'py, f32>,
    observations: Vec<BorrowedObservation<'py>>,
    action_mask: Option<PyReadonlyArrayDyn<'py, bool>>,
}

impl<'py> BorrowedBatch<'py> {
    /// Checks and borrows the arrays of `batch`; `argument` names it in errors.
    pub(crate) fn new(batch: &Bound<'py, PyDict>, argument: &str) -> PyResult<Self> {
        let field = |key: &str| required(batch, key, argument);
        let name: String = field("name")?.extract()?;
        let arg = |key: &str| format!("{argument}.{key}");
        let agent_id = readonly_array::<i32>(&field("agent_id")?, &arg("agent_id"), "int32")?;
        check_shape(&arg("agent_id"), agent_id.shape(), &[None])?;
        let n = agent_id.shape()[0];
        let reward = readonly_array::<f32>(&field("reward")?, &arg("reward"), "float32")?;
        let done = readonly_array::<bool>(&field("done")?, &arg("done"), "bool")?;
        let max_step_reached = readonly_array::<bool>(
            &field("max_step_reached")?,
            &arg("max_step_reached"),
            "bool",
        )?;
        let group_id = readonly_array::<i32>(&field("group_id")?, &arg("group_id"), "int32")?;
        let group_reward =
            readonly_array::<f32>(&field("group_reward")?, &arg("group_reward"), "float32")?;
        check_shape(&arg("reward"), reward.shape(), &[Some(n)])?;
        check_shape(&arg("done"), done.shape(), &[Some(n)])?;
        check_shape(
            &arg("max_step_reached"),
            max_step_reached.shape(),
            &[Some(n)],
        )?;
        check_shape(&arg("group_id"), group_id.shape(), &[Some(n)])?;
        check_shape(&arg("group_reward"), group_reward.shape(), &[Some(n)])?;
        let mut observations = Vec::new();
        for (obs_index, item) in field("observations")?.try_iter()?.enumerate() {
            let (array, dimension_properties, observation_type, obs_name): (
                Bound<'py, PyAny>,
                Vec<i32>,
                i32,
                String,
            ) = item?.extract()?;
            let obs_arg = arg(&format!("observations[{obs_index}]"));
            let array = readonly_array::<f32>(&array, &obs_arg, "float32")?;
            if array.shape().first() != Some(&n) {
                return Err(invalid_argument(
                    &obs_arg,
                    format!("expected {n} rows, got shape {:?}", array.shape()),
                ));
            }
            let shape: Vec<i32> = array.shape()[1..].iter().map(|&d| d as i32).collect();
            observations.push(BorrowedObservation {
                array,
                shape,
                dimension_properties,
                observation_type,
                name: obs_name,
            });
        }
        let action_mask = match batch.get_item("action_mask")? {
            Some(mask) if !mask.is_none() => {
                let mask = readonly_array::<bool>(&mask, &arg("action_mask"), "bool")?;
                check_shape(&arg("action_mask"), mask.shape(), &[Some(n), None])?;
                Some(mask)
            }
            _ => None,
        };
        Ok(BorrowedBatch {
            name,
            agent_id,
            reward,
            done,
            max_step_reached,
            group_id,
            group_reward,
            observations,
            action_mask,
        })
    }

    /// Number of agents (rows).
    pub(crate) fn len(&self) -> usize {
        self.agent_id.shape()[0]
    }

    /// The borrowed slices as the core's batch.
    pub(crate) fn agent_batch(&self) -> PyResult<AgentBatch<'_>> {
        Ok(AgentBatch {
            name: &self.name,
            agent_id: self.agent_id.as_slice()?,
            reward: self.reward.as_slice()?,
            done: self.done.as_slice()?,
            max_step_reached: self.max_step_reached.as_slice()?,
            group_id: self.group_id.as_slice()?,
            group_reward: self.group_reward.as_slice()?,
            observations: self
                .observations
                .iter()
                .map(|obs| {
                    Ok(ObservationBatch {
                        shape: &obs.shape,
                        dimension_properties: &obs.dimension_properties,
                        observation_type: obs.observation_type,
                        name: &obs.name,
                        data: obs.array.as_slice()?,
                    })
                })
                .collect::<PyResult<Vec<_>>>()?,
            action_mask: match &self.action_mask {
                Some(mask) => mask.as_slice()?,
                None => &[],
            },
            mask_width: self.action_mask.as_ref().map_or(0, |m| m.shape()[1]),
        })
    }
}

/// encode_unity_output(status, with_output, init_output, batches, side_channel)
/// --
///
/// A message from the Unity side (used by the host). `init_output` is None or a
/// dict (name, communication_version, package_version, capabilities, brain_parameters:
/// list of dicts with brain_name, continuous_size, discrete_branches). `batches`
/// is a list of dicts with name, agent_id (int32), reward (float32), done (bool),
/// max_step_reached (bool), group_id (int32), group_reward (float32),
/// observations (list of `(float32 (n, *shape), dimension_properties, observation_type,
/// name)`) and action_mask (bool `(n, sum(branches))` or None).
#[pyfunction]
fn encode_unity_output<'py>(
    py: Python<'py>,
    status: i32,
    with_output: bool,
    init_output: Option<Bound<'py, PyDict>>,
    batches: Vec<Bound<'py, PyDict>>,
    side_channel: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let init = init_output.as_ref().map(parse_init_output).transpose()?;
    // Borrow every array first; the slices are then encoded without the interpreter.
    let borrowed = batches
        .iter()
        .enumerate()
        .map(|(index, batch)| BorrowedBatch::new(batch, &format!("batches[{index}]")))
        .collect::<PyResult<Vec<_>>>()?;
    let agent_batches = borrowed
        .iter()
        .map(BorrowedBatch::agent_batch)
        .collect::<PyResult<Vec<_>>>()?;
    let bytes = py
        .detach(|| {
            output::encode_unity_output(
                status,
                with_output,
                init.as_ref(),
                &agent_batches,
                side_channel,
            )
        })
        .map_err(|e| invalid_argument("batches", e.to_string()))?;
    Ok(PyBytes::new(py, &bytes))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDecodeLimits>()?;
    m.add_function(wrap_pyfunction!(decode_unity_output, m)?)?;
    m.add_function(wrap_pyfunction!(encode_init_input, m)?)?;
    m.add_function(wrap_pyfunction!(encode_rl_input, m)?)?;
    m.add_function(wrap_pyfunction!(encode_close, m)?)?;
    m.add_function(wrap_pyfunction!(decode_unity_input, m)?)?;
    m.add_function(wrap_pyfunction!(encode_unity_output, m)?)?;
    Ok(())
}
