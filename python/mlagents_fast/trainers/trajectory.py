"""Trajectories: the counterpart of ``mlagents.trainers.trajectory`` (ML-Agents 1.1.0).

Two forms of the same data:

- :class:`Trajectory` (with :class:`AgentExperience` steps) is ML-Agents' per-step form,
  same names and fields. Its :meth:`Trajectory.to_agentbuffer` gives the same fields as
  ML-Agents', but stacks each field once and appends it as one column.
- :class:`ColumnarTrajectory` holds one stacked array per field (time along the first
  axis). Build it directly from the batched arrays an agent processor already has; its
  :meth:`ColumnarTrajectory.to_agentbuffer` does one copy per field and no per-step Python,
  which is the fast path for trainers (tens of millions of steps per second). It offers
  ML-Agents' ``Trajectory`` API too (``steps``, ``next_obs``, ``next_group_obs``,
  ``agent_id``, ``done_reached``, ``interrupted``, ...): ``steps`` is a view that builds
  each :class:`AgentExperience` when it is read, so code written against ML-Agents works on
  it unchanged.

Both forms say how they end: ``terminated`` (the episode reached a terminal state: no
bootstrap), ``truncated`` (the episode was cut at its maximum length: ``interrupted``, the
next observation bootstraps), or neither (the trajectory was cut at the time horizon while
the episode goes on). ``done_reached`` is ``terminated or truncated``, as in ML-Agents.

:class:`TrajectoryBatch` is what trainers process: trajectories taken from a queue together,
as one AgentBuffer (trajectory after trajectory) plus their offsets and end flags. A single
trajectory is a batch of one.

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
i)``, ``(NEXT_GROUP_OBSERVATION, i)``): ``Trajectory.to_agentbuffer`` writes ragged lists,
as in ML-Agents, but only when some step has group mates (PPO and SAC never read them, and
lists of empty lists would slow every shuffle). The columnar form of a behavior with groups
writes them as numeric columns ``(T, W, ...)`` instead, ``W`` the most group mates at any
step, mates left-aligned: observations are NaN after the last mate (what ML-Agents' padding
gives and its critic reads as "absent"), actions, rewards and dones 0. :class:`GroupObsUtil`
and ``AgentAction.group_from_buffer`` read both layouts the same way.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, NamedTuple, overload

import attrs
import numpy as np

from mlagents_fast.envs.base_env import ActionTuple
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
    "TrajectoryBatch",
    "TrajectorySteps",
]


class AgentStatus(NamedTuple):
    """Observation, action, reward and done of a group mate at one step."""

    obs: list[np.ndarray]
    reward: float | np.float32
    action: Any  # ActionTuple: .continuous (C,) float32, .discrete (D,) int32
    done: bool


class AgentExperience(NamedTuple):
    """Everything about one agent at one step (ML-Agents' fields, same order)."""

    obs: list[np.ndarray]
    reward: float | np.float32
    done: bool
    action: Any  # ActionTuple: .continuous (C,), .discrete (D,)
    action_probs: Any  # LogProbsTuple: .continuous (C,), .discrete (D,)
    action_mask: list[np.ndarray] | None  # per branch, True = action NOT available
    prev_action: np.ndarray
    interrupted: bool
    memory: np.ndarray | None
    group_status: list[AgentStatus]
    group_reward: float | np.float32


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
    def _per_mate(field: AgentBufferField) -> list[np.ndarray]:
        """One array per group position, NaN where the mate was absent: from ragged entries
        (ML-Agents' layout) or from a numeric ``(L, W, ...)`` column."""
        if field.contains_lists or field.row_shape is None:
            per_mate = field.padded_to_batch(pad_value=np.nan)
            assert isinstance(per_mate, list)  # a group field: one array per position
            return per_mate
        rows = np.asarray(field, dtype=np.float32)
        return [rows[:, j] for j in range(rows.shape[1])]

    @staticmethod
    def from_buffer(batch: AgentBuffer, num_obs: int) -> list[list[np.ndarray]]:
        """Per group mate, the list of its observations (NaN where it was absent)."""
        separated = [
            GroupObsUtil._per_mate(batch[GroupObsUtil.get_name_at(i)]) for i in range(num_obs)
        ]
        return GroupObsUtil._transpose_list_of_lists(separated)

    @staticmethod
    def from_buffer_next(batch: AgentBuffer, num_obs: int) -> list[list[np.ndarray]]:
        """Per group mate, the list of its next observations (NaN where it was absent)."""
        separated = [
            GroupObsUtil._per_mate(batch[GroupObsUtil.get_name_at_next(i)]) for i in range(num_obs)
        ]
        return GroupObsUtil._transpose_list_of_lists(separated)


def _group_fill(key: AgentBufferKey) -> float:
    """What stands for "no mate" in a numeric group column."""
    if isinstance(key, tuple):
        return np.nan
    return 0


# Numeric group columns: keys whose rows are (W, ...) with W group positions.
_GROUP_COLUMN_KEYS = (
    BufferKey.GROUP_CONTINUOUS_ACTION,
    BufferKey.GROUP_DISCRETE_ACTION,
    BufferKey.GROUP_NEXT_CONT_ACTION,
    BufferKey.GROUP_NEXT_DISC_ACTION,
    BufferKey.GROUPMATE_REWARDS,
    BufferKey.GROUP_DONES,
)


def _is_group_key(key: Any) -> bool:
    if isinstance(key, tuple):
        return key[0] in (
            ObservationKeyPrefix.GROUP_OBSERVATION,
            ObservationKeyPrefix.NEXT_GROUP_OBSERVATION,
        )
    return key in _GROUP_COLUMN_KEYS


def group_width(buffer: AgentBuffer) -> int | None:
    """How many group positions the numeric group columns of ``buffer`` have (None: it has
    none, or only ragged ones)."""
    for key, field in buffer.items():
        if _is_group_key(key) and not field.contains_lists and field.row_shape:
            return int(field.row_shape[0])
    return None


def pad_group_fields(buffer: AgentBuffer, width: int) -> None:
    """Widen the numeric group columns of ``buffer`` to ``width`` group positions (the new
    positions are absent mates), so that rows of trajectories with more mates can follow."""
    for key, field in list(buffer.items()):
        if not _is_group_key(key) or field.contains_lists or not field.row_shape:
            continue
        rows = np.asarray(field)
        if rows.shape[1] >= width:
            continue
        padded = np.full((rows.shape[0], width, *rows.shape[2:]), _group_fill(key), rows.dtype)
        padded[:, : rows.shape[1]] = rows
        field.set(padded)


def _column(
    value: Any, dtype: Any, name: str, steps: int, row_ndim: int, copy: bool = True
) -> np.ndarray:
    """``value`` as a C-contiguous ``dtype`` array of ``steps`` rows of rank ``row_ndim``; a
    fresh copy unless ``copy`` is False (then only converted when it has to be)."""
    try:
        if copy:
            array = np.array(value, dtype=dtype, order="C", copy=True)
        else:
            array = np.ascontiguousarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"{name}: cannot be read as {np.dtype(dtype)}: {err}") from None
    if array.ndim != row_ndim + 1 or array.shape[0] != steps:
        expected = "(T,)" if row_ndim == 0 else "(T, n)"
        raise InvalidArgumentError(
            f"{name}: expected shape {expected} with T={steps} steps (the length of "
            f"rewards), got {array.shape}"
        )
    return array


def _shifted(column: np.ndarray, ends: np.ndarray, rows_after_ends: Any) -> np.ndarray:
    """The "next" column: row ``t + 1`` at step ``t``, except at the last step of each
    trajectory (``ends``), which gets its row of ``rows_after_ends``."""
    out = np.empty_like(column)
    out[:-1] = column[1:]
    out[ends] = rows_after_ends
    return out


def _fill_agentbuffer(
    columns: ColumnarTrajectory,
    ends: np.ndarray,
    next_obs: list[np.ndarray],
    dones: np.ndarray,
    copy: bool,
    next_group_obs: list[np.ndarray] | None = None,
) -> AgentBuffer:
    """The AgentBuffer of the module docstring from ``columns`` (one or more trajectories
    one after another): ``ends`` are the last rows of the trajectories, ``next_obs[i]`` holds
    observation ``i`` after each of them (shape ``(len(ends), *obs_shape)``), ``dones`` is the
    ``DONE`` column. ``copy=False`` when the columns are fresh arrays nobody else holds.

    When ``columns`` has group columns they are written too; the "next" group fields only
    when ``next_group_obs`` (per observation, ``(len(ends), W, *obs_shape)``: the mates
    after each trajectory) is given."""
    steps = len(columns)
    if steps == 0:
        raise InvalidArgumentError("rewards: a trajectory needs at least one step")
    if len(columns.obs) != len(next_obs):
        raise InvalidArgumentError(
            f"next_obs: {len(next_obs)} observations, obs has {len(columns.obs)}"
        )
    buffer = AgentBuffer()
    # No copy: the buffer takes the columns as they are and never writes into them.
    put = buffer.adopt

    def column(value: Any, dtype: Any, name: str, row_ndim: int) -> np.ndarray:
        return _column(value, dtype, name, steps, row_ndim, copy)

    for i, (obs, after) in enumerate(zip(columns.obs, next_obs)):
        obs = np.asarray(obs)
        rows = column(obs, obs.dtype, f"obs[{i}]", obs.ndim - 1)
        after = np.asarray(after)
        if after.shape != (len(ends), *rows.shape[1:]):
            expected = rows.shape[1:] if len(ends) == 1 else (len(ends), *rows.shape[1:])
            got = after.shape[1:] if len(ends) == 1 else after.shape
            raise InvalidArgumentError(f"next_obs[{i}]: expected shape {expected}, got {got}")
        put((ObservationKeyPrefix.OBSERVATION, i), rows)
        put((ObservationKeyPrefix.NEXT_OBSERVATION, i), _shifted(rows, ends, after))
    if columns.memories is not None:
        put(BufferKey.MEMORY, column(columns.memories, np.float32, "memories", 1))
    put(BufferKey.MASKS, np.ones(steps, dtype=np.float32))
    put(BufferKey.DONE, column(dones, bool, "dones", 0))

    continuous = column(columns.continuous_actions, np.float32, "continuous_actions", 1)
    discrete = column(columns.discrete_actions, np.int32, "discrete_actions", 1)
    put(BufferKey.CONTINUOUS_ACTION, continuous)
    put(BufferKey.DISCRETE_ACTION, discrete)
    put(BufferKey.NEXT_CONT_ACTION, _shifted(continuous, ends, 0))
    put(BufferKey.NEXT_DISC_ACTION, _shifted(discrete, ends, 0))
    put(
        BufferKey.CONTINUOUS_LOG_PROBS,
        column(columns.continuous_log_probs, np.float32, "continuous_log_probs", 1),
    )
    put(
        BufferKey.DISCRETE_LOG_PROBS,
        column(columns.discrete_log_probs, np.float32, "discrete_log_probs", 1),
    )
    if columns.action_masks is not None:
        unavailable = _column(columns.action_masks, bool, "action_masks", steps, 1, copy=False)
        available = np.logical_not(unavailable).astype(np.float32)
    else:
        available = np.ones(discrete.shape, dtype=np.float32)
    put(BufferKey.ACTION_MASK, available, padding_value=1.0)
    if columns.prev_actions is not None:
        prev = column(columns.prev_actions, np.int32, "prev_actions", 1)
    else:
        prev = np.zeros(discrete.shape, dtype=np.int32)
    put(BufferKey.PREV_ACTION, prev)
    put(BufferKey.ENVIRONMENT_REWARDS, column(columns.rewards, np.float32, "rewards", 0))
    if columns.group_rewards is not None:
        group = column(columns.group_rewards, np.float32, "group_rewards", 0)
    else:
        group = np.zeros(steps, dtype=np.float32)
    put(BufferKey.GROUP_REWARD, group)
    if columns.group_counts is not None:
        _put_group_fields(put, column, columns, ends, next_group_obs)
    return buffer


def _put_group_fields(
    put: Any,
    column: Any,
    columns: ColumnarTrajectory,
    ends: np.ndarray,
    next_group_obs: list[np.ndarray] | None,
) -> None:
    """The numeric group columns of ``columns`` (see the module docstring)."""
    assert columns.group_obs is not None
    width = columns.group_width
    for i, obs in enumerate(columns.group_obs):
        obs = np.asarray(obs)
        put(
            (ObservationKeyPrefix.GROUP_OBSERVATION, i),
            column(obs, np.float32, f"group_obs[{i}]", obs.ndim - 1),
        )
    continuous = column(columns.group_continuous_actions, np.float32, "group_continuous", 2)
    discrete = column(columns.group_discrete_actions, np.int32, "group_discrete_actions", 2)
    put(BufferKey.GROUP_CONTINUOUS_ACTION, continuous)
    put(BufferKey.GROUP_DISCRETE_ACTION, discrete)
    put(BufferKey.GROUPMATE_REWARDS, column(columns.groupmate_rewards, np.float32, "rewards", 1))
    put(BufferKey.GROUP_DONES, column(columns.group_dones, bool, "group_dones", 1))
    if next_group_obs is None:
        return
    # ML-Agents: the next step's mates; at a trajectory's end, its next group observations
    # and (for actions) the last step's own mates.
    for i, obs in enumerate(columns.group_obs):
        rows = np.asarray(obs, dtype=np.float32)
        after = np.asarray(next_group_obs[i], dtype=np.float32)
        if after.shape != (len(ends), width, *rows.shape[2:]):
            raise InvalidArgumentError(
                f"next_group_obs[{i}]: expected shape {(len(ends), width, *rows.shape[2:])}, "
                f"got {after.shape}"
            )
        put((ObservationKeyPrefix.NEXT_GROUP_OBSERVATION, i), _shifted(rows, ends, after))
    put(BufferKey.GROUP_NEXT_CONT_ACTION, _shifted(continuous, ends, continuous[ends]))
    put(BufferKey.GROUP_NEXT_DISC_ACTION, _shifted(discrete, ends, discrete[ends]))


class TrajectorySteps(Sequence[AgentExperience]):
    """ML-Agents' ``Trajectory.steps`` of a :class:`ColumnarTrajectory`: a read-only sequence
    whose :class:`AgentExperience` items are built from the columns when read (``len`` is
    free, nothing is built up front)."""

    __slots__ = ("_trajectory",)

    def __init__(self, trajectory: ColumnarTrajectory) -> None:
        self._trajectory = trajectory

    def __len__(self) -> int:
        return len(self._trajectory)

    @overload
    def __getitem__(self, index: int) -> AgentExperience: ...

    @overload
    def __getitem__(self, index: slice) -> list[AgentExperience]: ...

    def __getitem__(self, index: int | slice) -> AgentExperience | list[AgentExperience]:
        length = len(self)
        if isinstance(index, slice):
            return [self._trajectory._experience(t) for t in range(*index.indices(length))]
        position = operator.index(index)
        if position < 0:
            position += length
        if not 0 <= position < length:
            raise IndexError(f"step {index} out of range for a trajectory of {length} steps")
        return self._trajectory._experience(position)

    def __repr__(self) -> str:
        return f"TrajectorySteps({len(self)} steps of agent {self._trajectory.agent_id!r})"


@attrs.define(frozen=True, kw_only=True, eq=False)
class ColumnarTrajectory:
    """A trajectory of ``T`` steps of one agent as stacked arrays (time on axis 0).

    ``to_agentbuffer`` writes the fields listed in the module docstring with one copy per
    field. Arrays are checked (step count, rank) when ``to_agentbuffer`` runs and
    converted to the field dtypes there; the caller may reuse its arrays afterwards.

    It also answers to ML-Agents' ``Trajectory`` API: ``steps`` (built lazily),
    ``next_obs``, ``next_group_obs``, ``agent_id``, ``behavior_id``, ``done_reached``,
    ``interrupted``, ``all_group_dones_reached`` and ``to_agentbuffer()``.
    """

    obs: list[np.ndarray]
    """Per observation, shape (T, *obs_shape): the observation seen at each step."""
    next_obs: list[np.ndarray]
    """Per observation, shape obs_shape: the observation after the last step (bootstrap)."""
    rewards: np.ndarray
    """(T,) environment reward received after each step."""
    dones: np.ndarray
    """(T,) bool: the episode ended at this step, terminated or interrupted (ML-Agents'
    ``done``); only the last step can be done."""
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
    """The episode was cut at its last step because it reached its maximum length
    (truncation: the last step is done, but not terminal)."""
    agent_id: str = ""
    """Id of the agent that lived this trajectory."""
    behavior_id: str = ""
    """Behavior name (with team id) of the policy that acted."""
    discrete_branches: tuple[int, ...] | None = None
    """Sizes of the discrete action branches, to give ``steps`` the per-branch action masks
    ML-Agents has; None: each step's mask is one array over all branches."""
    group_counts: np.ndarray | None = None
    """(T,) int: how many group mates the agent had at each step (ML-Agents'
    ``len(group_status)``); they are the first ``group_counts[t]`` of the W positions of the
    group columns below. None: no group columns (the behavior has no groups)."""
    group_obs: list[np.ndarray] | None = None
    """Per observation, (T, W, *obs_shape) float32: each mate's observation (the one it
    decided on), NaN after the last mate."""
    group_continuous_actions: np.ndarray | None = None
    """(T, W, C) float32: each mate's continuous action, 0 after the last mate."""
    group_discrete_actions: np.ndarray | None = None
    """(T, W, D) int32: each mate's discrete action, 0 after the last mate."""
    groupmate_rewards: np.ndarray | None = None
    """(T, W) float32: each mate's reward at the step, 0 after the last mate."""
    group_dones: np.ndarray | None = None
    """(T, W) bool: the mate's episode ended at the step."""
    group_next_obs: list[np.ndarray] | None = None
    """Per observation, (W, *obs_shape): the mates' observations after the last step (their
    bootstrap), NaN after the ``next_group_count`` first."""
    next_group_count: int = 0
    """How many mates ``group_next_obs`` holds."""

    def __len__(self) -> int:
        """Number of steps."""
        return int(np.shape(self.rewards)[0]) if np.ndim(self.rewards) else 0

    @property
    def group_width(self) -> int:
        """W, the group positions of the group columns (0 without them)."""
        if self.group_dones is None:
            return 0
        return int(np.shape(self.group_dones)[1])

    @property
    def steps(self) -> TrajectorySteps:
        """ML-Agents' list of :class:`AgentExperience`, as a lazy read-only sequence."""
        return TrajectorySteps(self)

    @property
    def next_group_obs(self) -> list[list[np.ndarray]]:
        """Per group mate, its observations after the last step (ML-Agents' layout)."""
        if self.group_next_obs is None:
            return []
        return [
            [np.asarray(obs[j]) for obs in self.group_next_obs]
            for j in range(self.next_group_count)
        ]

    @property
    def done_reached(self) -> bool:
        """True if the episode ended at the last step (terminated or truncated)."""
        return bool(self.dones[-1])

    @property
    def terminated(self) -> bool:
        """The episode ended in a terminal state at the last step: its value is 0."""
        return bool(self.dones[-1]) and not self.interrupted

    @property
    def truncated(self) -> bool:
        """The episode was cut at its maximum length at the last step (``interrupted``): the
        next observation still bootstraps."""
        return bool(self.dones[-1]) and bool(self.interrupted)

    @property
    def all_group_dones_reached(self) -> bool:
        """True if every group mate is done at the last step (True without mates, as
        ``all([])`` in ML-Agents)."""
        if self.group_counts is None or self.group_dones is None:
            return True
        count = int(self.group_counts[-1])
        return bool(np.all(np.asarray(self.group_dones)[-1, :count]))

    def _group_status(self, t: int) -> list[AgentStatus]:
        if self.group_counts is None:
            return []
        assert self.group_obs is not None
        assert self.group_continuous_actions is not None
        assert self.group_discrete_actions is not None
        assert self.groupmate_rewards is not None and self.group_dones is not None
        return [
            AgentStatus(
                obs=[np.asarray(obs[t, j]) for obs in self.group_obs],
                reward=np.float32(self.groupmate_rewards[t, j]),
                action=ActionTuple(
                    continuous=np.asarray(self.group_continuous_actions[t, j], np.float32),
                    discrete=np.asarray(self.group_discrete_actions[t, j], np.int32),
                ),
                done=bool(self.group_dones[t, j]),
            )
            for j in range(int(self.group_counts[t]))
        ]

    def _experience(self, t: int) -> AgentExperience:
        """Step ``t`` as ML-Agents' AgentExperience (field types as ML-Agents gives them)."""
        from mlagents_fast.trainers.torch_entities.action_log_probs import LogProbsTuple

        action_mask = None
        if self.action_masks is not None:
            row = np.asarray(self.action_masks[t], dtype=bool)
            branches = self.discrete_branches
            action_mask = np.split(row, np.cumsum(branches)[:-1]) if branches else [row]
        discrete = np.asarray(self.discrete_actions[t], dtype=np.int32)
        if self.prev_actions is not None:
            prev_action = np.asarray(self.prev_actions[t], dtype=np.int32)
        else:
            prev_action = np.zeros(discrete.shape, dtype=np.int32)
        return AgentExperience(
            obs=[np.asarray(obs[t]) for obs in self.obs],
            reward=np.float32(self.rewards[t]),
            done=bool(self.dones[t]),
            action=ActionTuple(
                continuous=np.asarray(self.continuous_actions[t], dtype=np.float32),
                discrete=discrete,
            ),
            action_probs=LogProbsTuple(
                continuous=np.asarray(self.continuous_log_probs[t], dtype=np.float32),
                discrete=np.asarray(self.discrete_log_probs[t], dtype=np.float32),
            ),
            action_mask=action_mask,
            prev_action=prev_action,
            interrupted=bool(self.interrupted) and t == len(self) - 1,
            memory=None if self.memories is None else np.asarray(self.memories[t], np.float32),
            group_status=self._group_status(t),
            group_reward=np.float32(0.0 if self.group_rewards is None else self.group_rewards[t]),
        )

    def to_trajectory(self) -> Trajectory:
        """The same steps as ML-Agents' per-step :class:`Trajectory`."""
        return Trajectory(
            steps=list(self.steps),
            next_obs=list(self.next_obs),
            next_group_obs=self.next_group_obs,
            agent_id=self.agent_id,
            behavior_id=self.behavior_id,
        )

    @classmethod
    def from_trajectory(
        cls, trajectory: Trajectory, group_columns: bool = True
    ) -> ColumnarTrajectory:
        """Stacks the steps of an ML-Agents-style :class:`Trajectory`; its group statuses
        become group columns when some step has group mates (unless ``group_columns`` is
        False)."""
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
        first_mask = next(
            (step.action_mask for step in steps if step.action_mask is not None), None
        )
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
            discrete_branches=None
            if first_mask is None
            else tuple(int(np.shape(branch)[0]) for branch in first_mask),
            **(_group_columns_of(trajectory) if group_columns else {}),
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
        next_group = None
        if self.group_next_obs is not None:
            next_group = [np.asarray(obs)[np.newaxis] for obs in self.group_next_obs]
        return _fill_agentbuffer(
            self,
            ends=np.array([steps - 1], dtype=np.int64),
            next_obs=[np.asarray(obs)[np.newaxis] for obs in self.next_obs],
            dones=self.dones,
            copy=True,
            next_group_obs=next_group,
        )


def _group_columns_of(trajectory: Trajectory) -> dict[str, Any]:
    """The group columns of an ML-Agents-style trajectory (keyword arguments of
    :class:`ColumnarTrajectory`); none when no step has group mates."""
    steps = trajectory.steps
    if not any(step.group_status for step in steps) and not trajectory.next_group_obs:
        return {}
    num_obs = len(steps[0].obs)
    counts = np.array([len(step.group_status) for step in steps], dtype=np.int32)
    next_count = len(trajectory.next_group_obs)
    width = max(int(counts.max()), next_count)
    length = len(steps)
    # Group mates act for the same behavior: the agent's own shapes are theirs.
    obs_shapes = [np.shape(o) for o in steps[0].obs]
    group_obs = [np.full((length, width, *shape), np.nan, np.float32) for shape in obs_shapes]
    continuous = np.zeros((length, width, *np.shape(steps[0].action.continuous)), np.float32)
    discrete = np.zeros((length, width, *np.shape(steps[0].action.discrete)), np.int32)
    rewards = np.zeros((length, width), np.float32)
    dones = np.zeros((length, width), bool)
    for t, step in enumerate(steps):
        for j, status in enumerate(step.group_status):
            for k in range(num_obs):
                group_obs[k][t, j] = status.obs[k]
            continuous[t, j] = status.action.continuous
            discrete[t, j] = status.action.discrete
            rewards[t, j] = status.reward
            dones[t, j] = status.done
    next_obs = [np.full((width, *shape), np.nan, np.float32) for shape in obs_shapes]
    for j, mate_obs in enumerate(trajectory.next_group_obs):
        for k in range(num_obs):
            next_obs[k][j] = mate_obs[k]
    return {
        "group_counts": counts,
        "group_obs": group_obs,
        "group_continuous_actions": continuous,
        "group_discrete_actions": discrete,
        "groupmate_rewards": rewards,
        "group_dones": dones,
        "group_next_obs": next_obs,
        "next_group_count": next_count,
    }


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
        buffer = ColumnarTrajectory.from_trajectory(self, group_columns=False).to_agentbuffer()
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
        """True if the episode ended at the last step (terminated or truncated)."""
        return self.steps[-1].done

    @property
    def all_group_dones_reached(self) -> bool:
        """True if every group mate is done at the last step."""
        return all(status.done for status in self.steps[-1].group_status)

    @property
    def interrupted(self) -> bool:
        """True if the trajectory ended because the episode reached its maximum length."""
        return self.steps[-1].interrupted

    @property
    def terminated(self) -> bool:
        """The episode ended in a terminal state at the last step: its value is 0."""
        last = self.steps[-1]
        return bool(last.done) and not bool(last.interrupted)

    @property
    def truncated(self) -> bool:
        """The episode was cut at its maximum length at the last step: the next observation
        still bootstraps."""
        last = self.steps[-1]
        return bool(last.done) and bool(last.interrupted)


def _concatenated(parts: list[Any], lengths: list[int], name: str) -> np.ndarray | None:
    """The per-trajectory arrays of one field, one after another. None when no trajectory
    has the field; trajectories without it get zero rows (as their to_agentbuffer writes)."""
    present = [part for part in parts if part is not None]
    if not present:
        return None
    row_shape = np.shape(present[0])[1:]
    arrays = []
    for index, (part, length) in enumerate(zip(parts, lengths)):
        if part is None:
            array = np.zeros((length, *row_shape), np.asarray(present[0]).dtype)
        else:
            array = np.asarray(part)
        if array.ndim == 0 or array.shape[0] != length:
            raise InvalidArgumentError(
                f"trajectories[{index}].{name}: expected {length} rows (the length of its "
                f"rewards), got shape {array.shape}"
            )
        arrays.append(array)
    try:
        return np.concatenate(arrays)
    except ValueError as err:
        raise InvalidArgumentError(
            f"{name}: trajectories disagree on the row shape: {err}"
        ) from None


@attrs.define(frozen=True, eq=False)
class TrajectoryBatch:
    """Trajectories processed together (a single trajectory is a batch of one).

    ``buffer`` holds their steps one trajectory after another with the fields of
    :meth:`ColumnarTrajectory.to_agentbuffer`, except ``DONE``, which is True only where an
    episode *terminated* (a truncated episode's last step is not terminal: the critic
    bootstraps from its next observation). Trajectory ``i`` is rows
    ``offsets[i]:offsets[i + 1]``.
    """

    trajectories: list[Any]
    """The trajectories as given (either form)."""
    buffer: AgentBuffer
    """Every step, trajectory after trajectory."""
    offsets: np.ndarray
    """(N + 1,) int64: row where each trajectory starts, then the total row count."""
    next_obs: list[np.ndarray]
    """Per observation, (N, *obs_shape): the observation after each trajectory."""
    terminated: np.ndarray
    """(N,) bool: the trajectory ends in a terminal state (no bootstrap)."""
    truncated: np.ndarray
    """(N,) bool: the trajectory ends because its episode reached its maximum length."""
    agent_ids: list[str]
    """Agent id of each trajectory."""
    all_group_dones_reached: np.ndarray = attrs.field(default=None)
    """(N,) bool: every group mate was done at the trajectory's last step (True without
    mates; ML-Agents' ``Trajectory.all_group_dones_reached``)."""
    next_group_obs: list[np.ndarray] | None = None
    """With group fields: per observation, (N, W, *obs_shape): the group mates after each
    trajectory, NaN where there is none. None without group fields."""

    def __len__(self) -> int:
        """Number of trajectories."""
        return len(self.agent_ids)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) steps of each trajectory."""
        return np.diff(self.offsets)

    @property
    def done_reached(self) -> np.ndarray:
        """(N,) bool: the trajectory ends its episode (terminated or truncated)."""
        return self.terminated | self.truncated

    def slice(self, index: int) -> AgentBuffer:
        """The rows of trajectory ``index`` (views, no copy)."""
        return self.buffer.make_mini_batch(int(self.offsets[index]), int(self.offsets[index + 1]))

    def sums(self, per_step: np.ndarray) -> np.ndarray:
        """(N,) sum of ``per_step`` (one value per row) over each trajectory."""
        return np.add.reduceat(np.asarray(per_step), self.offsets[:-1])

    def means(self, per_step: np.ndarray) -> np.ndarray:
        """(N,) mean of ``per_step`` over each trajectory."""
        return self.sums(per_step) / self.lengths

    @classmethod
    def from_trajectories(
        cls, trajectories: Sequence[Any], group_fields: bool = False
    ) -> TrajectoryBatch:
        """One batch of ``trajectories``: :class:`ColumnarTrajectory` objects are used as they
        are, ML-Agents-style :class:`Trajectory` objects are stacked first.

        ``group_fields``: also write the group mates' columns (POCA reads them; PPO and SAC
        do not, so by default they are left out), as wide as the most mates of any
        trajectory: ``(GROUP_OBSERVATION, i)``, ``GROUP_CONTINUOUS_ACTION``,
        ``GROUP_DISCRETE_ACTION``, ``GROUPMATE_REWARDS``, ``GROUP_DONES`` (not the "next"
        group fields, which no trainer reads: :attr:`next_group_obs` has what follows each
        trajectory)."""
        if not trajectories:
            raise InvalidArgumentError("trajectories: a batch needs at least one trajectory")
        columnar = [
            t if isinstance(t, ColumnarTrajectory) else ColumnarTrajectory.from_trajectory(t)
            for t in trajectories
        ]
        lengths = [len(t) for t in columnar]
        for index, length in enumerate(lengths):
            if length == 0:
                raise InvalidArgumentError(
                    f"trajectories[{index}]: a trajectory needs at least one step"
                )
        offsets = np.zeros(len(columnar) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ends = offsets[1:] - 1
        num_obs = len(columnar[0].obs)
        for index, t in enumerate(columnar):
            if len(t.obs) != num_obs or len(t.next_obs) != num_obs:
                raise InvalidArgumentError(
                    f"trajectories[{index}]: {len(t.obs)} observations and {len(t.next_obs)} "
                    f"next observations, the first trajectory has {num_obs}"
                )

        def field(name: str) -> Any:
            return _concatenated([getattr(t, name) for t in columnar], lengths, name)

        group: dict[str, Any] = {}
        next_group_obs = None
        if group_fields:
            group, next_group_obs = _batch_group_columns(columnar, lengths)

        terminated = np.array([t.terminated for t in columnar], dtype=bool)
        truncated = np.array([t.truncated for t in columnar], dtype=bool)
        # DONE marks terminal states only (see the class docstring).
        dones = np.zeros(int(offsets[-1]), dtype=bool)
        dones[ends] = terminated

        obs_columns = []
        for k in range(num_obs):
            column = _concatenated([t.obs[k] for t in columnar], lengths, f"obs[{k}]")
            assert column is not None  # every trajectory has every observation
            obs_columns.append(column)
        combined = ColumnarTrajectory(
            obs=obs_columns,
            next_obs=list(columnar[-1].next_obs),
            rewards=field("rewards"),
            dones=dones,
            continuous_actions=field("continuous_actions"),
            discrete_actions=field("discrete_actions"),
            continuous_log_probs=field("continuous_log_probs"),
            discrete_log_probs=field("discrete_log_probs"),
            action_masks=field("action_masks"),
            prev_actions=field("prev_actions"),
            memories=field("memories"),
            group_rewards=field("group_rewards"),
            **group,
        )
        try:
            next_obs = [
                np.stack([np.asarray(t.next_obs[k]) for t in columnar]) for k in range(num_obs)
            ]
        except ValueError as err:
            raise InvalidArgumentError(
                f"next_obs: trajectories disagree on the observation shape: {err}"
            ) from None
        buffer = _fill_agentbuffer(combined, ends, next_obs, combined.dones, copy=False)
        return cls(
            trajectories=list(trajectories),
            buffer=buffer,
            offsets=offsets,
            next_obs=next_obs,
            terminated=terminated,
            truncated=truncated,
            agent_ids=[t.agent_id for t in columnar],
            all_group_dones_reached=np.array(
                [t.all_group_dones_reached for t in columnar], dtype=bool
            ),
            next_group_obs=next_group_obs,
        )


def _batch_group_columns(
    columnar: list[ColumnarTrajectory], lengths: list[int]
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The group columns of ``columnar`` one after another, each padded to the widest
    (trajectories without group columns have no mates), and the next group observations
    ``(N, W, *obs_shape)`` of every trajectory."""
    width = max(t.group_width for t in columnar)
    first = columnar[0]
    obs_shapes = [np.shape(obs)[1:] for obs in first.obs]
    continuous_shape = np.shape(first.continuous_actions)[1:]
    discrete_shape = np.shape(first.discrete_actions)[1:]

    def padded(value: Any, length: int, row_shape: tuple[int, ...], dtype: Any, fill: Any):
        out = np.full((length, width, *row_shape), fill, dtype=dtype)
        if value is not None:
            array = np.asarray(value)
            out[:, : array.shape[1]] = array
        return out

    def stacked(name: str, row_shape: tuple[int, ...], dtype: Any, fill: Any) -> np.ndarray:
        return np.concatenate(
            [
                padded(getattr(t, name), length, row_shape, dtype, fill)
                for t, length in zip(columnar, lengths)
            ]
        )

    group_obs = []
    for k, shape in enumerate(obs_shapes):
        parts = [
            padded(None if t.group_obs is None else t.group_obs[k], n, shape, np.float32, np.nan)
            for t, n in zip(columnar, lengths)
        ]
        group_obs.append(np.concatenate(parts))
    counts = np.concatenate(
        [
            np.zeros(n, np.int32) if t.group_counts is None else np.asarray(t.group_counts)
            for t, n in zip(columnar, lengths)
        ]
    )
    next_group_obs = [
        np.stack(
            [
                padded(
                    None if t.group_next_obs is None else t.group_next_obs[k][np.newaxis],
                    1,
                    shape,
                    np.float32,
                    np.nan,
                )[0]
                for t in columnar
            ]
        )
        for k, shape in enumerate(obs_shapes)
    ]
    columns = {
        "group_counts": counts,
        "group_obs": group_obs,
        "group_continuous_actions": stacked(
            "group_continuous_actions", continuous_shape, np.float32, 0
        ),
        "group_discrete_actions": stacked("group_discrete_actions", discrete_shape, np.int32, 0),
        "groupmate_rewards": stacked("groupmate_rewards", (), np.float32, 0),
        "group_dones": stacked("group_dones", (), bool, False),
    }
    return columns, next_group_obs
