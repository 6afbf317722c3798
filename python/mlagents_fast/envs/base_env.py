"""The environment API of ``mlagents_envs.base_env`` (ML-Agents 1.1.0), same names and behavior.

Agents that share a behavior (same observations and actions) are grouped under a
:data:`BehaviorName`, and their data is handled in batches: :class:`DecisionSteps` holds the
agents that ask for a decision, :class:`TerminalSteps` those whose episode ended. Agent ids
(:data:`AgentId`) track agents across steps; neither the number nor the order of agents is
fixed from one step to the next.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from enum import Enum, IntFlag
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import DTypeLike

from mlagents_fast.envs.exception import UnityActionException

__all__ = [
    "ActionSpec",
    "ActionTuple",
    "AgentId",
    "BaseEnv",
    "BehaviorMapping",
    "BehaviorName",
    "BehaviorSpec",
    "DecisionStep",
    "DecisionSteps",
    "DimensionProperty",
    "GroupId",
    "ObservationSpec",
    "ObservationType",
    "TerminalStep",
    "TerminalSteps",
]

AgentId = int
GroupId = int
BehaviorName = str


class DecisionStep(NamedTuple):
    """What one agent collected since its last decision.

    - obs: one array per observation.
    - reward: reward since the last decision.
    - agent_id: the agent's unique id.
    - action_mask: one bool array per discrete branch (True = action unavailable), or None.
    - group_id: the agent's group (0 = no group).
    - group_reward: reward given to the agent's whole group.
    """

    obs: list[np.ndarray]
    reward: float
    agent_id: AgentId
    action_mask: list[np.ndarray] | None
    group_id: int
    group_reward: float


class _AgentBatch(Mapping):
    """What DecisionSteps and TerminalSteps share: a Mapping from agent id to one agent's
    step, over arrays indexed by the agent's position in ``agent_id``."""

    agent_id: np.ndarray
    _agent_id_to_index: dict[AgentId, int] | None

    @property
    def agent_id_to_index(self) -> dict[AgentId, int]:
        """A dict from agent id to the agent's index in this batch."""
        if self._agent_id_to_index is None:
            self._agent_id_to_index = {
                agent_id: index for index, agent_id in enumerate(self.agent_id)
            }
        return self._agent_id_to_index

    def __len__(self) -> int:
        return len(self.agent_id)

    def __iter__(self) -> Iterator[Any]:
        yield from self.agent_id


class DecisionSteps(_AgentBatch):
    """A batch of agents of one behavior that ask for a decision.

    - obs: list of arrays, each of shape ``(n_agents,) + observation_shape``.
    - reward: float32 array ``(n_agents,)``.
    - agent_id: int32 array ``(n_agents,)``.
    - action_mask: None, or one bool array ``(n_agents, branch_size)`` per discrete branch.
    - group_id: int32 array ``(n_agents,)``; group_reward: float32 array ``(n_agents,)``.
    """

    def __init__(self, obs, reward, agent_id, action_mask, group_id, group_reward):
        self.obs: list[np.ndarray] = obs
        self.reward: np.ndarray = reward
        self.agent_id: np.ndarray = agent_id
        self.action_mask: list[np.ndarray] | None = action_mask
        self.group_id: np.ndarray = group_id
        self.group_reward: np.ndarray = group_reward
        self._agent_id_to_index: dict[AgentId, int] | None = None

    def __getitem__(self, agent_id: AgentId) -> DecisionStep:
        """The DecisionStep of one agent; KeyError if the agent is not in this batch."""
        if agent_id not in self.agent_id_to_index:
            raise KeyError(f"agent_id {agent_id} is not present in the DecisionSteps")
        agent_index = self.agent_id_to_index[agent_id]
        agent_mask = None
        if self.action_mask is not None:
            agent_mask = [mask[agent_index] for mask in self.action_mask]
        return DecisionStep(
            obs=[batched_obs[agent_index] for batched_obs in self.obs],
            reward=self.reward[agent_index],
            agent_id=agent_id,
            action_mask=agent_mask,
            group_id=self.group_id[agent_index],
            group_reward=self.group_reward[agent_index],
        )

    @staticmethod
    def empty(spec: BehaviorSpec) -> DecisionSteps:
        """A DecisionSteps with no agents, with observation arrays shaped for ``spec``."""
        return DecisionSteps(
            obs=[
                np.zeros((0,) + tuple(obs_spec.shape), dtype=np.float32)
                for obs_spec in spec.observation_specs
            ],
            reward=np.zeros(0, dtype=np.float32),
            agent_id=np.zeros(0, dtype=np.int32),
            action_mask=None,
            group_id=np.zeros(0, dtype=np.int32),
            group_reward=np.zeros(0, dtype=np.float32),
        )


class TerminalStep(NamedTuple):
    """What one agent collected when its episode ended.

    - interrupted: True if the episode was cut short (for example max steps reached)
      rather than ended by the task itself.
    """

    obs: list[np.ndarray]
    reward: float
    interrupted: bool
    agent_id: AgentId
    group_id: int
    group_reward: float


class TerminalSteps(_AgentBatch):
    """A batch of agents of one behavior whose episode ended.

    - obs: list of arrays, each of shape ``(n_agents,) + observation_shape``.
    - reward: float32 ``(n_agents,)``; interrupted: bool ``(n_agents,)``;
      agent_id: int32 ``(n_agents,)``; group_id: int32; group_reward: float32.
    """

    def __init__(self, obs, reward, interrupted, agent_id, group_id, group_reward):
        self.obs: list[np.ndarray] = obs
        self.reward: np.ndarray = reward
        self.interrupted: np.ndarray = interrupted
        self.agent_id: np.ndarray = agent_id
        self.group_id: np.ndarray = group_id
        self.group_reward: np.ndarray = group_reward
        self._agent_id_to_index: dict[AgentId, int] | None = None

    def __getitem__(self, agent_id: AgentId) -> TerminalStep:
        """The TerminalStep of one agent; KeyError if the agent is not in this batch."""
        if agent_id not in self.agent_id_to_index:
            raise KeyError(f"agent_id {agent_id} is not present in the TerminalSteps")
        agent_index = self.agent_id_to_index[agent_id]
        return TerminalStep(
            obs=[batched_obs[agent_index] for batched_obs in self.obs],
            reward=self.reward[agent_index],
            interrupted=self.interrupted[agent_index],
            agent_id=agent_id,
            group_id=self.group_id[agent_index],
            group_reward=self.group_reward[agent_index],
        )

    @staticmethod
    def empty(spec: BehaviorSpec) -> TerminalSteps:
        """A TerminalSteps with no agents, with observation arrays shaped for ``spec``."""
        return TerminalSteps(
            obs=[
                np.zeros((0,) + tuple(obs_spec.shape), dtype=np.float32)
                for obs_spec in spec.observation_specs
            ],
            reward=np.zeros(0, dtype=np.float32),
            interrupted=np.zeros(0, dtype=bool),
            agent_id=np.zeros(0, dtype=np.int32),
            group_id=np.zeros(0, dtype=np.int32),
            group_reward=np.zeros(0, dtype=np.float32),
        )


class _ActionTupleBase(ABC):
    """Continuous and discrete actions of a batch of agents, as two 2-D arrays.

    Setting only one part fills the other with an empty ``(n_agents, 0)`` array.
    """

    def __init__(self, continuous: np.ndarray | None = None, discrete: np.ndarray | None = None):
        self._continuous: np.ndarray | None = None
        self._discrete: np.ndarray | None = None
        if continuous is not None:
            self.add_continuous(continuous)
        if discrete is not None:
            self.add_discrete(discrete)

    # Typed as arrays for callers, as in ML-Agents: both are None only on an ActionTuple built
    # with neither part, and setting either part sets both.
    @property
    def continuous(self) -> np.ndarray:
        """float32 array ``(n_agents, continuous_size)``."""
        return self._continuous  # type: ignore[return-value]

    @property
    def discrete(self) -> np.ndarray:
        """Array ``(n_agents, n_branches)`` of :attr:`discrete_dtype`."""
        return self._discrete  # type: ignore[return-value]

    def add_continuous(self, continuous: np.ndarray) -> None:
        """Set the continuous part (converted to float32)."""
        if continuous.dtype != np.float32:
            continuous = continuous.astype(np.float32, copy=False)
        if self._discrete is None:
            self._discrete = np.zeros((continuous.shape[0], 0), dtype=self.discrete_dtype)
        self._continuous = continuous

    def add_discrete(self, discrete: np.ndarray) -> None:
        """Set the discrete part (converted to :attr:`discrete_dtype`)."""
        if discrete.dtype != self.discrete_dtype:
            discrete = discrete.astype(self.discrete_dtype, copy=False)
        if self._continuous is None:
            self._continuous = np.zeros((discrete.shape[0], 0), dtype=np.float32)
        self._discrete = discrete

    @property
    @abstractmethod
    def discrete_dtype(self) -> DTypeLike:
        """The dtype of the discrete part."""


class ActionTuple(_ActionTupleBase):
    """Actions sent to the environment: continuous float32 and discrete int32 arrays."""

    @property
    def discrete_dtype(self) -> DTypeLike:
        return np.int32


class ActionSpec(NamedTuple):
    """The action space of a behavior.

    - continuous_size: number of continuous actions (floats).
    - discrete_branches: the number of choices of each discrete branch.
    """

    continuous_size: int
    discrete_branches: tuple[int, ...]

    def __eq__(self, other):
        return (
            self.continuous_size == other.continuous_size
            and self.discrete_branches == other.discrete_branches
        )

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.continuous_size, tuple(self.discrete_branches)))

    def __str__(self):
        return f"Continuous: {self.continuous_size}, Discrete: {self.discrete_branches}"

    # For backwards compatibility
    def is_discrete(self) -> bool:
        """True if the behavior has only discrete actions."""
        return self.discrete_size > 0 and self.continuous_size == 0

    # For backwards compatibility
    def is_continuous(self) -> bool:
        """True if the behavior has only continuous actions."""
        return self.discrete_size == 0 and self.continuous_size > 0

    @property
    def discrete_size(self) -> int:
        """The number of discrete branches."""
        return len(self.discrete_branches)

    def empty_action(self, n_agents: int) -> ActionTuple:
        """All-zero actions for ``n_agents`` agents."""
        return ActionTuple(
            continuous=np.zeros((n_agents, self.continuous_size), dtype=np.float32),
            discrete=np.zeros((n_agents, self.discrete_size), dtype=np.int32),
        )

    def random_action(self, n_agents: int) -> ActionTuple:
        """Random actions: continuous uniform in [-1, 1], discrete uniform per branch."""
        continuous = np.random.uniform(low=-1.0, high=1.0, size=(n_agents, self.continuous_size))
        discrete = np.zeros((n_agents, self.discrete_size), dtype=np.int32)
        if self.discrete_size > 0:
            discrete = np.column_stack(
                [
                    np.random.randint(0, branch_size, size=(n_agents), dtype=np.int32)
                    for branch_size in self.discrete_branches
                ]
            )
        return ActionTuple(continuous=continuous, discrete=discrete)

    def _validate_action(self, actions: ActionTuple, n_agents: int, name: str) -> ActionTuple:
        """Check the shapes of ``actions`` for ``n_agents`` agents of behavior ``name``."""
        expected_shape = (n_agents, self.continuous_size)
        if actions.continuous.shape != expected_shape:
            raise UnityActionException(
                f"The behavior {name} needs a continuous input of dimension "
                f"{expected_shape} for (<number of agents>, <action size>) but "
                f"received input of dimension {actions.continuous.shape}"
            )
        expected_shape = (n_agents, self.discrete_size)
        if actions.discrete.shape != expected_shape:
            raise UnityActionException(
                f"The behavior {name} needs a discrete input of dimension "
                f"{expected_shape} for (<number of agents>, <action size>) but "
                f"received input of dimension {actions.discrete.shape}"
            )
        return actions

    @staticmethod
    def create_continuous(continuous_size: int) -> ActionSpec:
        """An ActionSpec with only continuous actions."""
        return ActionSpec(continuous_size, ())

    @staticmethod
    def create_discrete(discrete_branches: tuple[int, ...]) -> ActionSpec:
        """An ActionSpec with only discrete actions."""
        return ActionSpec(0, tuple(discrete_branches))

    @staticmethod
    def create_hybrid(continuous_size: int, discrete_branches: tuple[int, ...]) -> ActionSpec:
        """An ActionSpec with both continuous and discrete actions."""
        return ActionSpec(continuous_size, tuple(discrete_branches))


class DimensionProperty(IntFlag):
    """What an observation axis means, for network selection."""

    UNSPECIFIED = 0
    """No property specified."""
    NONE = 1
    """No property: the axis is not translationally equivariant nor variable size."""
    TRANSLATIONAL_EQUIVARIANCE = 2
    """The axis is translationally equivariant (image rows and columns)."""
    VARIABLE_SIZE = 4
    """The axis can have a different size from step to step (entities)."""


class ObservationType(Enum):
    """What an observation is for."""

    DEFAULT = 0
    """A plain observation."""
    GOAL_SIGNAL = 1
    """An observation describing the goal (used by goal-conditioned networks)."""


class ObservationSpec(NamedTuple):
    """One observation of a behavior.

    - shape: the observation's shape, without the batch axis.
    - dimension_property: one DimensionProperty per axis.
    - observation_type: DEFAULT or GOAL_SIGNAL.
    - name: the sensor's name.
    """

    shape: tuple[int, ...]
    dimension_property: tuple[DimensionProperty, ...]
    observation_type: ObservationType
    name: str


class BehaviorSpec(NamedTuple):
    """Observations and actions of a behavior.

    - observation_specs: one ObservationSpec per observation, in DecisionSteps.obs order.
    - action_spec: the ActionSpec.
    """

    observation_specs: list[ObservationSpec]
    action_spec: ActionSpec


class BehaviorMapping(Mapping):
    """A read-only mapping from behavior name to BehaviorSpec."""

    def __init__(self, specs: dict[BehaviorName, BehaviorSpec]):
        self._dict = specs

    def __len__(self) -> int:
        return len(self._dict)

    def __getitem__(self, behavior: BehaviorName) -> BehaviorSpec:
        return self._dict[behavior]

    def __iter__(self) -> Iterator[Any]:
        yield from self._dict


class BaseEnv(ABC):
    """An environment of agents grouped by behavior (mlagents_envs' BaseEnv)."""

    @abstractmethod
    def step(self) -> None:
        """Move the simulation forward until at least one agent needs a decision again."""

    @abstractmethod
    def reset(self) -> None:
        """Reset the simulation."""

    @abstractmethod
    def close(self) -> None:
        """Close the environment and free its resources."""

    @property
    @abstractmethod
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        """A mapping from behavior name to BehaviorSpec, for every behavior seen so far."""

    @abstractmethod
    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        """Set the actions of every agent of ``behavior_name`` in the last DecisionSteps.

        The arrays have ``len(DecisionSteps)`` rows, in DecisionSteps order.
        """

    @abstractmethod
    def set_action_for_agent(
        self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple
    ) -> None:
        """Set the action of one agent (arrays with one row)."""

    @abstractmethod
    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]:
        """The DecisionSteps and TerminalSteps of ``behavior_name`` since the last step."""
