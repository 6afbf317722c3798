"""Trajectories: the counterpart of ``mlagents.trainers.trajectory`` (ML-Agents 1.1.0).

Two forms of the same data:

- :class:`Trajectory` (with :class:`AgentExperience` steps) is ML-Agents' per-step form,
  same names and fields. Its :meth:`Trajectory.to_agentbuffer` gives the same fields as
  ML-Agents', but stacks each field once and appends it as one column.
- :class:`ColumnarTrajectory` holds one stacked array per field (time along the first
  axis). Build it directly from the batched arrays an agent processor already has; its
  :meth:`ColumnarTrajectory.to_agentbuffer` does one copy per field and no per-step Python,
  which is the fast path for trainers (tens of millions of steps per second).

Fields written by ``to_agentbuffer`` (``T`` steps; canonical names in brackets):

=================================  =====================  ===============================
key                                dtype, row shape       content
=================================  =====================  ===============================
``(OBSERVATION, i)`` [obs_i]       obs dtype, obs shape   observation i at each step
``(NEXT_OBSERVATION, i)``          obs dtype, obs shape   observation i after each step
[next_obs_i]                                              (the last row is ``next_obs[i]``)
``MEMORY`` [memory]                float32, (M,)          only if memories are given
``MASKS`` [masks]                  float32, ()            1.0
``DONE`` [done]                    bool, ()               episode terminated at this step
``CONTINUOUS_ACTION``              float32, (C,)          C may be 0
``DISCRETE_ACTION``                int32, (D,)            D may be 0
``NEXT_CONT_ACTION``               float32, (C,)          next step's action, 0 at the end
``NEXT_DISC_ACTION``               int32, (D,)            next step's action, 0 at the end
``CONTINUOUS_LOG_PROBS``           float32, (C,)
``DISCRETE_LOG_PROBS``             float32, (D,)
``ACTION_MASK`` [action_mask]      float32, (sum(B),)     1 = action available; padding 1
``PREV_ACTION`` [prev_action]      int32, (D,)
``ENVIRONMENT_REWARDS``            float32, ()
``GROUP_REWARD`` [group_reward]    float32, ()
=================================  =====================  ===============================

Group fields (``GROUP_CONTINUOUS_ACTION``, ``GROUP_DISCRETE_ACTION``, ``GROUPMATE_REWARDS``,
``GROUP_NEXT_CONT_ACTION``, ``GROUP_NEXT_DISC_ACTION``, ``GROUP_DONES``, ``(GROUP_OBSERVATION,
i)``, ``(NEXT_GROUP_OBSERVATION, i)``) hold ragged lists, as in ML-Agents. Unlike ML-Agents,
``Trajectory.to_agentbuffer`` writes them only when some step has group mates (PPO and SAC
never read them, and lists of empty lists would slow every shuffle); the columnar form never
writes them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.buffer import (
    AgentBuffer,
    AgentBufferField,
    AgentBufferKey,
    BufferKey,
    ObservationKeyPrefix,
)

__all__ = [
    "AgentExperience",
    "AgentStatus",
    "ColumnarTrajectory",
    "GroupObsUtil",
    "ObsUtil",
    "Trajectory",
]


class AgentStatus(NamedTuple):
    """Observation, action, reward and done of a group mate at one step."""

    obs: list[np.ndarray]
    reward: float
    action: Any  # ActionTuple: .continuous (C,) float32, .discrete (D,) int32
    done: bool


class AgentExperience(NamedTuple):
    """Everything about one agent at one step (ML-Agents' fields, same order)."""

    obs: list[np.ndarray]
    reward: float
    done: bool
    action: Any  # ActionTuple: .continuous (C,), .discrete (D,)
    action_probs: Any  # LogProbsTuple: .continuous (C,), .discrete (D,)
    action_mask: list[np.ndarray] | None  # per branch, True = action NOT available
    prev_action: np.ndarray
    interrupted: bool
    memory: np.ndarray | None
    group_status: list[AgentStatus]
    group_reward: float


class ObsUtil:
    """Keys of the observation fields."""

    @staticmethod
    def get_name_at(index: int) -> AgentBufferKey:
        """Key of observation ``index``."""
        return ObservationKeyPrefix.OBSERVATION, index

    @staticmethod
    def get_name_at_next(index: int) -> AgentBufferKey:
        """Key of the next observation ``index``."""
        return ObservationKeyPrefix.NEXT_OBSERVATION, index

    @staticmethod
    def from_buffer(batch: AgentBuffer, num_obs: int) -> list[AgentBufferField]:
        """The observation fields of ``batch`` (``np.asarray`` each for an array)."""
        return [batch[ObsUtil.get_name_at(i)] for i in range(num_obs)]

    @staticmethod
    def from_buffer_next(batch: AgentBuffer, num_obs: int) -> list[AgentBufferField]:
        """The next-observation fields of ``batch``."""
        return [batch[ObsUtil.get_name_at_next(i)] for i in range(num_obs)]


class GroupObsUtil:
    """Keys of the group-mate observation fields."""

    @staticmethod
    def get_name_at(index: int) -> AgentBufferKey:
        return ObservationKeyPrefix.GROUP_OBSERVATION, index

    @staticmethod
    def get_name_at_next(index: int) -> AgentBufferKey:
        return ObservationKeyPrefix.NEXT_GROUP_OBSERVATION, index

    @staticmethod
    def _transpose_list_of_lists(list_list: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        return list(map(list, zip(*list_list)))

    @staticmethod
    def from_buffer(batch: AgentBuffer, num_obs: int) -> list[list[np.ndarray]]:
        """Per group mate, the list of its observations (NaN where it was absent)."""
        separated = [
            batch[GroupObsUtil.get_name_at(i)].padded_to_batch(pad_value=np.nan)
            for i in range(num_obs)
        ]
        return GroupObsUtil._transpose_list_of_lists(separated)

    @staticmethod
    def from_buffer_next(batch: AgentBuffer, num_obs: int) -> list[list[np.ndarray]]:
        """Per group mate, the list of its next observations (NaN where it was absent)."""
        separated = [
            batch[GroupObsUtil.get_name_at_next(i)].padded_to_batch(pad_value=np.nan)
            for i in range(num_obs)
        ]
        return GroupObsUtil._transpose_list_of_lists(separated)


def _column(value: Any, dtype: Any, name: str, steps: int, row_ndim: int) -> np.ndarray:
    """A fresh C-contiguous copy of ``value`` as ``dtype`` with ``steps`` rows of rank ``row_ndim``."""
    try:
        array = np.array(value, dtype=dtype, order="C", copy=True)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"{name}: cannot be read as {np.dtype(dtype)}: {err}") from None
    if array.ndim != row_ndim + 1 or array.shape[0] != steps:
        expected = "(T,)" if row_ndim == 0 else "(T, n)"
        raise InvalidArgumentError(
            f"{name}: expected shape {expected} with T={steps} steps (the length of "
            f"rewards), got {array.shape}"
        )
    return array


def _shifted(column: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Rows 1..T-1 of ``column`` followed by ``last``: the "next" column."""
    out = np.empty_like(column)
    out[:-1] = column[1:]
    out[-1] = last
    return out


@attrs.define(frozen=True, kw_only=True, eq=False)
class ColumnarTrajectory:
    """A trajectory of ``T`` steps of one agent as stacked arrays (time on axis 0).

    ``to_agentbuffer`` writes the fields listed in the module docstring with one copy per
    field. Arrays are checked (step count, rank) when ``to_agentbuffer`` runs and
    converted to the field dtypes there; the caller may reuse its arrays afterwards.
    """

    obs: list[np.ndarray]
    """Per observation, shape (T, *obs_shape): the observation seen at each step."""
    next_obs: list[np.ndarray]
    """Per observation, shape obs_shape: the observation after the last step (bootstrap)."""
    rewards: np.ndarray
    """(T,) environment reward received after each step."""
    dones: np.ndarray
    """(T,) bool: the episode terminated at this step (ML-Agents' ``done``)."""
    continuous_actions: np.ndarray
    """(T, C) float32 continuous actions; C may be 0."""
    discrete_actions: np.ndarray
    """(T, D) int32 discrete actions; D may be 0."""
    continuous_log_probs: np.ndarray
    """(T, C) log-probabilities of the continuous actions."""
    discrete_log_probs: np.ndarray
    """(T, D) log-probabilities of the discrete actions."""
    action_masks: np.ndarray | None = None
    """(T, sum of branch sizes) bool, True where an action was NOT available (ML-Agents'
    ``AgentExperience.action_mask`` convention); stored as ``1 - mask``. None: all available
    (a mask of ones with D columns, as ML-Agents writes when no mask is given)."""
    prev_actions: np.ndarray | None = None
    """(T, D) int32 discrete action taken before each step; None: zeros."""
    memories: np.ndarray | None = None
    """(T, M) float32 recurrent memory at each step; None: no ``MEMORY`` field."""
    group_rewards: np.ndarray | None = None
    """(T,) group reward at each step; None: zeros."""
    interrupted: bool = False
    """The last step ended because the episode reached its maximum length (truncation)."""
    agent_id: str = ""
    """Id of the agent that lived this trajectory."""
    behavior_id: str = ""
    """Behavior name (with team id) of the policy that acted."""

    def __len__(self) -> int:
        return int(np.shape(self.rewards)[0]) if np.ndim(self.rewards) else 0

    @property
    def done_reached(self) -> bool:
        """True if the trajectory ends with the episode terminated."""
        return bool(self.dones[-1])

    @property
    def all_group_dones_reached(self) -> bool:
        """True: the columnar form carries no group mates (``all([]) is True`` in ML-Agents)."""
        return True

    @classmethod
    def from_trajectory(cls, trajectory: Trajectory) -> ColumnarTrajectory:
        """Stacks the steps of an ML-Agents-style :class:`Trajectory` (group data dropped)."""
        steps = trajectory.steps
        if not steps:
            raise InvalidArgumentError("trajectory.steps: a trajectory needs at least one step")
        num_obs = len(steps[0].obs)
        masks = None
        if any(step.action_mask is not None for step in steps):
            masks = np.stack(
                [
                    np.concatenate(step.action_mask)
                    if step.action_mask is not None
                    # ML-Agents' fallback row: ones over the discrete action shape, i.e.
                    # "available" (stored as 1 - mask, so a False mask here).
                    else np.zeros(np.shape(step.action.discrete), dtype=bool)
                    for step in steps
                ]
            )
        memories = [step.memory for step in steps if step.memory is not None]
        return cls(
            obs=[np.stack([step.obs[i] for step in steps]) for i in range(num_obs)],
            next_obs=list(trajectory.next_obs),
            rewards=np.array([step.reward for step in steps], dtype=np.float32),
            dones=np.array([step.done for step in steps], dtype=bool),
            continuous_actions=np.stack([step.action.continuous for step in steps]),
            discrete_actions=np.stack([step.action.discrete for step in steps]),
            continuous_log_probs=np.stack([step.action_probs.continuous for step in steps]),
            discrete_log_probs=np.stack([step.action_probs.discrete for step in steps]),
            action_masks=masks,
            prev_actions=np.stack([step.prev_action for step in steps]),
            memories=np.stack(memories) if memories else None,
            group_rewards=np.array([step.group_reward for step in steps], dtype=np.float32),
            interrupted=bool(steps[-1].interrupted),
            agent_id=trajectory.agent_id,
            behavior_id=trajectory.behavior_id,
        )

    @classmethod
    def from_agent_columns(
        cls,
        columns: Any,
        next_obs: list[np.ndarray],
        agent_id: str,
        behavior_id: str,
        done: bool = False,
        interrupted: bool = False,
    ) -> ColumnarTrajectory:
        """Stacks per-step rows collected by an agent processor.

        ``columns`` has list attributes of one entry per step: ``obs`` (one list per
        observation), ``rewards``, ``continuous_actions``, ``discrete_actions``,
        ``continuous_log_probs``, ``discrete_log_probs``, ``action_masks`` (per step a list
        of per-branch bool arrays, True = unavailable, or None), ``prev_actions`` and
        ``memories`` (empty lists when not collected), ``group_rewards``. ``done`` marks the
        last step as terminal; ``interrupted`` says the episode hit its step limit.
        """
        steps = len(columns.rewards)
        if steps == 0:
            raise InvalidArgumentError("columns.rewards: a trajectory needs at least one step")
        dones = np.zeros(steps, dtype=bool)
        dones[-1] = bool(done)
        discrete = np.stack(columns.discrete_actions)
        masks = None
        if any(mask is not None for mask in columns.action_masks):
            masks = np.stack(
                [
                    np.concatenate(mask)
                    if mask is not None
                    else np.zeros(discrete.shape[1:], dtype=bool)
                    for mask in columns.action_masks
                ]
            )
        return cls(
            obs=[np.stack(rows) for rows in columns.obs],
            next_obs=list(next_obs),
            rewards=np.asarray(columns.rewards, dtype=np.float32),
            dones=dones,
            continuous_actions=np.stack(columns.continuous_actions),
            discrete_actions=discrete,
            continuous_log_probs=np.stack(columns.continuous_log_probs),
            discrete_log_probs=np.stack(columns.discrete_log_probs),
            action_masks=masks,
            prev_actions=np.stack(columns.prev_actions) if len(columns.prev_actions) else None,
            memories=np.stack(columns.memories) if len(columns.memories) else None,
            group_rewards=np.asarray(columns.group_rewards, dtype=np.float32)
            if len(columns.group_rewards)
            else None,
            interrupted=bool(interrupted),
            agent_id=agent_id,
            behavior_id=behavior_id,
        )

    def to_agentbuffer(self) -> AgentBuffer:
        """A new AgentBuffer of ``T`` rows per field (see the module docstring): one
        copy per field, no per-step Python."""
        steps = len(self)
        if steps == 0:
            raise InvalidArgumentError("rewards: a trajectory needs at least one step")
        if len(self.obs) != len(self.next_obs):
            raise InvalidArgumentError(
                f"next_obs: {len(self.next_obs)} observations, obs has {len(self.obs)}"
            )
        buffer = AgentBuffer()
        fields = buffer._fields
        from_rows = AgentBufferField._from_rows

        def put(key: AgentBufferKey, rows: np.ndarray, padding_value: float = 0.0) -> None:
            fields[key] = from_rows(rows, padding_value, key)

        for i, (obs, next_obs) in enumerate(zip(self.obs, self.next_obs)):
            obs = np.asarray(obs)
            column = _column(obs, obs.dtype, f"obs[{i}]", steps, obs.ndim - 1)
            last = np.asarray(next_obs)
            if last.shape != column.shape[1:]:
                raise InvalidArgumentError(
                    f"next_obs[{i}]: expected shape {column.shape[1:]}, got {last.shape}"
                )
            put((ObservationKeyPrefix.OBSERVATION, i), column)
            put((ObservationKeyPrefix.NEXT_OBSERVATION, i), _shifted(column, last))
        if self.memories is not None:
            put(BufferKey.MEMORY, _column(self.memories, np.float32, "memories", steps, 1))
        put(BufferKey.MASKS, np.ones(steps, dtype=np.float32))
        put(BufferKey.DONE, _column(self.dones, bool, "dones", steps, 0))

        continuous = _column(self.continuous_actions, np.float32, "continuous_actions", steps, 1)
        discrete = _column(self.discrete_actions, np.int32, "discrete_actions", steps, 1)
        put(BufferKey.CONTINUOUS_ACTION, continuous)
        put(BufferKey.DISCRETE_ACTION, discrete)
        put(BufferKey.NEXT_CONT_ACTION, _shifted(continuous, 0))
        put(BufferKey.NEXT_DISC_ACTION, _shifted(discrete, 0))
        put(
            BufferKey.CONTINUOUS_LOG_PROBS,
            _column(self.continuous_log_probs, np.float32, "continuous_log_probs", steps, 1),
        )
        put(
            BufferKey.DISCRETE_LOG_PROBS,
            _column(self.discrete_log_probs, np.float32, "discrete_log_probs", steps, 1),
        )
        if self.action_masks is not None:
            unavailable = _column(self.action_masks, bool, "action_masks", steps, 1)
            available = np.logical_not(unavailable).astype(np.float32)
        else:
            available = np.ones(discrete.shape, dtype=np.float32)
        put(BufferKey.ACTION_MASK, available, padding_value=1.0)
        if self.prev_actions is not None:
            prev = _column(self.prev_actions, np.int32, "prev_actions", steps, 1)
        else:
            prev = np.zeros(discrete.shape, dtype=np.int32)
        put(BufferKey.PREV_ACTION, prev)
        put(BufferKey.ENVIRONMENT_REWARDS, _column(self.rewards, np.float32, "rewards", steps, 0))
        if self.group_rewards is not None:
            group = _column(self.group_rewards, np.float32, "group_rewards", steps, 0)
        else:
            group = np.zeros(steps, dtype=np.float32)
        put(BufferKey.GROUP_REWARD, group)
        return buffer


class Trajectory(NamedTuple):
    """ML-Agents' trajectory: a list of steps plus the observation that follows them."""

    steps: list[AgentExperience]
    next_obs: list[np.ndarray]  # Observation following the trajectory, for bootstrapping
    next_group_obs: list[list[np.ndarray]]
    agent_id: str
    behavior_id: str

    @staticmethod
    def from_agent_columns(
        columns: Any,
        next_obs: list[np.ndarray],
        agent_id: str,
        behavior_id: str,
        done: bool = False,
        interrupted: bool = False,
    ) -> ColumnarTrajectory:
        """The columnar form built from an agent processor's per-step rows; see
        :meth:`ColumnarTrajectory.from_agent_columns`."""
        return ColumnarTrajectory.from_agent_columns(
            columns, next_obs, agent_id, behavior_id, done=done, interrupted=interrupted
        )

    def to_agentbuffer(self) -> AgentBuffer:
        """Converts the trajectory to an AgentBuffer with one row per step (the fields of
        ML-Agents, see the module docstring). Each field is stacked once and appended as
        one column; group fields are written only when some step has group mates."""
        buffer = ColumnarTrajectory.from_trajectory(self).to_agentbuffer()
        if any(step.group_status for step in self.steps) or any(self.next_group_obs):
            self._add_group_fields(buffer)
        return buffer

    def _add_group_fields(self, buffer: AgentBuffer) -> None:
        """ML-Agents' ragged group-mate fields, step by step (only for agents in groups)."""
        steps = self.steps
        num_obs = len(steps[0].obs)
        for index, exp in enumerate(steps):
            is_last_step = index == len(steps) - 1
            statuses = exp.group_status
            next_statuses = statuses if is_last_step else steps[index + 1].group_status
            buffer[BufferKey.GROUP_CONTINUOUS_ACTION].append(
                [s.action.continuous for s in statuses]
            )
            buffer[BufferKey.GROUP_DISCRETE_ACTION].append([s.action.discrete for s in statuses])
            buffer[BufferKey.GROUPMATE_REWARDS].append([s.reward for s in statuses])
            buffer[BufferKey.GROUP_NEXT_CONT_ACTION].append(
                [s.action.continuous for s in next_statuses]
            )
            buffer[BufferKey.GROUP_NEXT_DISC_ACTION].append(
                [s.action.discrete for s in next_statuses]
            )
            for i in range(num_obs):
                buffer[GroupObsUtil.get_name_at(i)].append([s.obs[i] for s in statuses])
                if is_last_step:
                    next_group = [obs[i] for obs in self.next_group_obs]
                else:
                    next_group = [s.obs[i] for s in steps[index + 1].group_status]
                buffer[GroupObsUtil.get_name_at_next(i)].append(next_group)
            buffer[BufferKey.GROUP_DONES].append([s.done for s in statuses])

    @property
    def done_reached(self) -> bool:
        """True if the trajectory ends with the episode terminated."""
        return self.steps[-1].done

    @property
    def all_group_dones_reached(self) -> bool:
        """True if every group mate is done at the last step."""
        return all(status.done for status in self.steps[-1].group_status)

    @property
    def interrupted(self) -> bool:
        """True if the trajectory ended because the episode reached its maximum length."""
        return self.steps[-1].interrupted
