# Type stub of the private compiled module. Public names are re-exported by the
# Python modules that wrap them; import from those, not from here.

import os
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

__version__: str

# --- field files (rust/python/src/replay.rs) ---
# A dense field is an array (rows along the first axis); a ragged field is the pair
# (offsets: int64 array of entries + 1 values, members: array of shape (M, *member_shape)).
_StoredField: TypeAlias = (
    npt.NDArray[np.generic] | tuple[npt.NDArray[np.int64], npt.NDArray[np.generic]]
)

def save_fields(
    path: str | os.PathLike[str], kind: str, fields: dict[str, _StoredField]
) -> None: ...
def load_fields(path: str | os.PathLike[str], kind: str) -> dict[str, _StoredField]: ...
def verify_fields(path: str | os.PathLike[str], kind: str | None = None) -> None: ...

# --- advantages (rust/python/src/advantages.rs); public API: mlagents_fast.trainers.trainer.trainer_utils
# Every array argument is a C-contiguous numpy array; float arrays of one call share one dtype
# (float32 or float64) and results have that dtype.
_FloatArray: TypeAlias = npt.NDArray[np.float32] | npt.NDArray[np.float64]

def discount_rewards(r: _FloatArray, gamma: float, value_next: float) -> _FloatArray: ...
def get_gae(
    rewards: _FloatArray,
    value_estimates: _FloatArray,
    value_next: float,
    gamma: float,
    lambd: float,
) -> _FloatArray: ...
def lambda_return(
    r: _FloatArray, value_estimates: _FloatArray, gamma: float, lambd: float, value_next: float
) -> _FloatArray: ...
def lambda_return_ragged(
    rewards: _FloatArray,
    values: _FloatArray,
    offsets: npt.NDArray[np.int64],
    value_next: _FloatArray,
    gamma: float,
    lambd: float,
) -> _FloatArray: ...
def gae_ragged(
    rewards: _FloatArray,
    values: _FloatArray,
    offsets: npt.NDArray[np.int64],
    value_next: _FloatArray,
    gamma: float,
    lambd: float,
    advantages_out: _FloatArray | None = None,
    returns_out: _FloatArray | None = None,
) -> tuple[_FloatArray, _FloatArray]: ...
def disable_parallelism() -> None:
    """Runs every kernel on the calling thread from now on (called in a child after fork)."""

# --- replay ring (rust/python/src/replay.rs); use mlagents_fast.trainers.replay_buffer ---
_Arrays: TypeAlias = dict[str, npt.NDArray[np.generic]]
_Sample: TypeAlias = tuple[_Arrays, _Arrays, npt.NDArray[np.bool_], npt.NDArray[np.int64]]

class ReplayRing:
    def __init__(
        self, capacity: int, specs: list[tuple[str, str, list[int], bool]], seed: int
    ) -> None: ...
    def push_trajectory(
        self,
        fields: dict[str, npt.NDArray[np.generic]],
        next_fields: dict[str, npt.NDArray[np.generic]],
        terminated: bool,
    ) -> None: ...
    def push_trajectories(
        self,
        fields: dict[str, npt.NDArray[np.generic]],
        next_fields: dict[str, npt.NDArray[np.generic]],
        lengths: list[int],
        terminated: list[bool],
    ) -> None: ...
    def sample(self, batch_size: int) -> _Sample: ...
    def sample_sequences(self, count: int, sequence_length: int) -> _Sample: ...
    def rows(self, indices: list[int] | range) -> _Sample: ...
    def truncate(self, max_length: int) -> None: ...
    def resize(self, capacity: int) -> None: ...
    def clear(self) -> None: ...
    def reseed(self, seed: int) -> None: ...
    def __len__(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def rng_state(self) -> tuple[int, int]: ...
    @property
    def specs(self) -> list[tuple[str, str, list[int], bool]]: ...
    def save(self, path: str | os.PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | os.PathLike[str]) -> ReplayRing: ...

# --- AgentBuffer row kernels (rust/python/src/agent_buffer.rs) ---
def buffer_shuffle_rows(rows: int, sequence_length: int, seed: int) -> npt.NDArray[np.int64]: ...
def buffer_sample_rows(
    rows: int, batch_size: int, sequence_length: int, seed: int
) -> npt.NDArray[np.int64]: ...
def buffer_batch_plan(
    length: int, batch_size: int | None, training_length: int, sequential: bool
) -> tuple[int, int, int, npt.NDArray[np.int64] | None]: ...
def buffer_gather_rows(
    sources: list[npt.NDArray[np.uint8]],
    rows: npt.NDArray[np.int64],
    outputs: list[npt.NDArray[np.uint8]],
) -> None: ...

# --- built-in environments (rust/python/src/envs.rs); public API: mlagents_fast.envs.builtin
BUILTIN_NAMES: list[str]

# One behavior's step: decision_obs (list of (n, *shape)), decision_reward, decision_agent_id,
# decision_group_id, decision_group_reward, action_mask ((n, sum(branches)) or None),
# terminal_obs, terminal_reward, terminal_agent_id, terminal_group_id, terminal_group_reward,
# terminal_interrupted.
_StepArrays: TypeAlias = dict[str, Any]
# One behavior: name, observation_shapes, observation_dimension_properties, observation_names,
# continuous_size, discrete_branches, agents_per_area.
_BehaviorDescription: TypeAlias = dict[str, Any]

class BuiltinVectorEnv:
    def __init__(
        self, name: str, seed: int, num_areas: int = 1, agents_per_area: int | None = None
    ) -> None: ...
    @property
    def behaviors(self) -> list[_BehaviorDescription]: ...
    @property
    def num_agents(self) -> int: ...
    @property
    def agents_per_area(self) -> int: ...
    @property
    def max_decisions(self) -> int: ...
    def reset(self) -> list[_StepArrays]: ...
    def reseed(self, seed: int) -> None: ...
    def step(
        self, actions: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]]
    ) -> list[_StepArrays]: ...
    def set_float_parameter(self, key: str, value: float) -> None: ...
    def set_uniform_sampler(
        self, key: str, seed: int, min_value: float, max_value: float
    ) -> None: ...
    def set_gaussian_sampler(self, key: str, seed: int, mean: float, st_dev: float) -> None: ...
    def set_multirange_uniform_sampler(
        self, key: str, seed: int, intervals: list[float]
    ) -> None: ...

# --- Unity wire codec (rust/python/src/proto.rs) ---

class DecodeLimits:
    def __init__(
        self,
        *,
        max_agents: int = ...,
        max_observations: int = ...,
        max_observation_elements: int = ...,
        max_png_pixels: int = ...,
        max_discrete_branches: int = ...,
        max_action_size: int = ...,
        max_message_bytes: int = ...,
    ) -> None: ...
    def as_dict(self) -> dict[str, int]: ...

# Results of decode_unity_output (rust/python/src/decoded.rs): frozen, read-only attributes;
# public names in mlagents_fast.envs.rpc_utils.

class DecodedObservation:
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dimension_properties(self) -> tuple[int, ...]: ...
    @property
    def observation_type(self) -> int: ...
    @property
    def name(self) -> str: ...

class DecodedSpec:
    @property
    def observations(self) -> tuple[DecodedObservation, ...]: ...
    @property
    def continuous_size(self) -> int: ...
    @property
    def discrete_branches(self) -> tuple[int, ...]: ...

class DecodedSteps:
    @property
    def obs(self) -> list[npt.NDArray[np.float32]]: ...
    @property
    def reward(self) -> npt.NDArray[np.float32]: ...
    @property
    def agent_id(self) -> npt.NDArray[np.int32]: ...
    @property
    def group_id(self) -> npt.NDArray[np.int32]: ...
    @property
    def group_reward(self) -> npt.NDArray[np.float32]: ...
    @property
    def interrupted(self) -> npt.NDArray[np.bool_]: ...
    def __len__(self) -> int: ...

class DecodedBehavior:
    @property
    def name(self) -> str: ...
    @property
    def new_spec(self) -> DecodedSpec | None: ...
    @property
    def decision(self) -> DecodedSteps: ...
    @property
    def terminal(self) -> DecodedSteps: ...
    @property
    def action_mask(self) -> npt.NDArray[np.bool_] | None: ...
    @property
    def discrete_branches(self) -> tuple[int, ...]: ...

class DecodedBrainParameters:
    @property
    def brain_name(self) -> str: ...
    @property
    def is_training(self) -> bool: ...
    @property
    def continuous_size(self) -> int: ...
    @property
    def discrete_branches(self) -> tuple[int, ...]: ...
    @property
    def action_descriptions(self) -> tuple[str, ...]: ...

class DecodedInitOutput:
    @property
    def name(self) -> str: ...
    @property
    def communication_version(self) -> str: ...
    @property
    def log_path(self) -> str: ...
    @property
    def package_version(self) -> str: ...
    @property
    def capabilities(self) -> tuple[bool, ...]: ...
    @property
    def brain_parameters(self) -> tuple[DecodedBrainParameters, ...]: ...

class DecodedOutput:
    @property
    def status(self) -> int: ...
    @property
    def has_output(self) -> bool: ...
    @property
    def side_channel(self) -> bytes: ...
    @property
    def init_output(self) -> DecodedInitOutput | None: ...
    @property
    def behaviors(self) -> list[DecodedBehavior]: ...

def decode_unity_output(
    data: bytes,
    known_specs: list[tuple[str, list[tuple[int, ...]], tuple[int, ...]]],
    limits: DecodeLimits | None = None,
) -> DecodedOutput: ...
def encode_init_input(
    seed: int,
    communication_version: str,
    package_version: str,
    capabilities: tuple[bool, ...] | list[bool],
    num_areas: int,
) -> bytes: ...
def encode_rl_input(
    command: int,
    side_channel: bytes,
    actions: list[tuple[str, npt.NDArray[np.float32], npt.NDArray[np.int32]]],
) -> bytes: ...
def encode_close() -> bytes: ...
def decode_unity_input(data: bytes, limits: DecodeLimits | None = None) -> dict[str, Any]: ...
def encode_unity_output(
    status: int,
    with_output: bool,
    init_output: dict[str, Any] | None,
    batches: list[dict[str, Any]],
    side_channel: bytes,
) -> bytes: ...

# --- .demo files (rust/python/src/demo.rs); public API: mlagents_fast.trainers.demo_loader
# and mlagents_fast.envs.demo_writer. Errors are DemonstrationError naming `source`.

def demo_read_layout(
    data: bytes, source: str, records_before: int, expected_before: int
) -> dict[str, Any]: ...
def demo_decode_records(
    data: bytes,
    records: npt.NDArray[np.int64],
    observation_shapes: list[tuple[int, ...]],
    continuous_size: int,
    discrete_branches: list[int],
    source: str,
    max_decoded_bytes: int,
) -> dict[str, Any]: ...
def demo_encode_meta_area(
    api_version: int,
    demonstration_name: str,
    number_steps: int,
    number_episodes: int,
    mean_reward: float,
) -> bytes: ...
def demo_encode_brain_record(brain: dict[str, Any]) -> bytes: ...
def demo_encode_records(
    batch: dict[str, Any], continuous: npt.NDArray[np.float32], discrete: npt.NDArray[np.int32]
) -> list[bytes]: ...
