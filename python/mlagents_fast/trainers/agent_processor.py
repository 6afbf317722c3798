"""From environment steps to trajectories (the counterpart of ``mlagents.trainers.agent_processor``).

One :class:`AgentProcessor` per behavior id. ``add_experiences`` takes one batched
(DecisionSteps, TerminalSteps) pair and the :class:`ActionInfo` the policy returned for the
previous decision, and appends one row per agent to that agent's columns (observation, action,
log probabilities, mask, reward, done). A trajectory is cut when the agent's episode ends or its
columns reach ``max_trajectory_length`` (the behavior's time_horizon); it carries the next
observation so the trainer can bootstrap the value of a cut (or interrupted) episode.

Rows are kept as numpy row views of the batched arrays, and a trajectory stacks them once
(columnar), instead of building one object per agent step. The trajectories published are
:class:`~mlagents_fast.trainers.trajectory.ColumnarTrajectory` objects, which also offer
ML-Agents' ``Trajectory`` API (``steps``, ``to_agentbuffer()``, ...). Each says how it ended:
``terminated`` (a TerminalStep that was not interrupted), ``truncated`` (a TerminalStep with
``interrupted``: the episode hit its maximum length) or neither (cut at the time horizon).

What the processor uses from the policy is what ML-Agents' uses, and less is fine: previous
actions (``retrieve_previous_action``, ``save_previous_action``, ``remove_previous_action``)
and memories (``use_recurrent``, ``retrieve_previous_memories``, ``remove_memories``) are
recorded when the policy has them; the action-mask width comes from the policy's
``behavior_spec`` when it has one, else from the masks the environment sends.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Sized
from typing import Any, Generic, TypeVar

import numpy as np

from mlagents_fast.trainers.behavior_id_utils import get_global_agent_id
from mlagents_fast.trainers.stats import StatsReporter

__all__ = ["AgentManager", "AgentManagerQueue", "AgentProcessor"]

T = TypeVar("T")


class _SlotColumns:
    """Per-agent columns of the current partial trajectory, one slot (row) per live agent.

    Every field is an array ``[slots, capacity, *row_shape]``; ``lengths[slot]`` rows of a
    slot are filled. A step writes the rows of all its agents with one fancy-indexed
    assignment per field, so the cost per step does not grow with Python work per agent.
    Capacity doubles (up to the time horizon) when a slot needs more rows; slots double when
    more agents are alive.
    """

    def __init__(self, slots: int, capacity: int, shapes: dict[str, tuple[tuple[int, ...], Any]]):
        self.shapes = shapes
        self.fields = {
            name: np.zeros((slots, capacity, *shape), dtype=dtype)
            for name, (shape, dtype) in shapes.items()
        }
        self.lengths = np.zeros(slots, dtype=np.int64)

    @property
    def slots(self) -> int:
        return self.lengths.shape[0]

    @property
    def capacity(self) -> int:
        return next(iter(self.fields.values())).shape[1]

    def grow(self, slots: int, capacity: int) -> None:
        old_slots, old_capacity = self.slots, self.capacity
        for name, array in self.fields.items():
            grown = np.zeros((slots, capacity, *array.shape[2:]), dtype=array.dtype)
            grown[:old_slots, :old_capacity] = array
            self.fields[name] = grown
        lengths = np.zeros(slots, dtype=np.int64)
        lengths[:old_slots] = self.lengths
        self.lengths = lengths


class AgentProcessor:
    """Per-agent trajectory assembly for one behavior id.

    Agents live in slots: arrays indexed by slot hold each agent's last decision (its
    observations and action mask), the action the policy chose for it, and the rows of its
    partial trajectory. One step costs one dictionary lookup per agent plus a fixed number of
    whole-batch numpy operations.
    """

    def __init__(
        self,
        policy: Any,
        behavior_id: str,
        stats_reporter: StatsReporter,
        max_trajectory_length: int = sys.maxsize,
    ) -> None:
        """
        :param policy: the behavior's policy (memories and previous actions are read from it).
        :param behavior_id: the fully qualified behavior id trajectories are tagged with.
        :param stats_reporter: where episode length and policy entropy are reported.
        :param max_trajectory_length: time_horizon: a trajectory is cut at this many steps.
        """
        self.policy = policy
        self._behavior_id = behavior_id
        self._stats_reporter = stats_reporter
        self._max_trajectory_length = max(1, int(max_trajectory_length))
        self._trajectory_queues: list[AgentManagerQueue[Any]] = []
        # (worker id, agent id) -> slot; slot -> global agent id string.
        self._slot_of: dict[tuple[int, int], int] = {}
        self._global_ids: list[str] = []
        self._free_slots: list[int] = []
        self._columns: _SlotColumns | None = None
        # Per slot: the last decision (observations, mask) and the action taken for it.
        self._last_obs: list[np.ndarray] = []
        self._last_mask: np.ndarray | None = None
        self._has_last = np.zeros(0, dtype=bool)
        self._has_action = np.zeros(0, dtype=bool)
        self._last_action: dict[str, np.ndarray] = {}
        self._episode_steps = np.zeros(0, dtype=np.int64)
        self._action_row_of: dict[int, int] = {}
        self._num_obs = 0
        # Discrete branch sizes (None until known: from the policy's spec or the first masks).
        self._branches: tuple[int, ...] | None = None

    @property
    def behavior_id(self) -> str:
        return self._behavior_id

    # --- slots -------------------------------------------------------------------------

    def _ensure_slot_arrays(self, steps: Any) -> None:
        """Allocate the per-slot arrays from the first batch's shapes."""
        if self._last_obs:
            return
        self._num_obs = len(steps.obs)
        slots = self._has_last.shape[0]
        self._last_obs = [np.zeros((slots, *obs.shape[1:]), dtype=np.float32) for obs in steps.obs]

    def _ensure_mask_array(self, decision_steps: Any) -> None:
        """Learn the discrete branches at the first decision: from the policy's behavior_spec
        if it has one (ML-Agents' processor does not need it), else from the masks sent."""
        if self._branches is not None:
            return
        spec = getattr(self.policy, "behavior_spec", None)
        mask = getattr(decision_steps, "action_mask", None)
        if spec is not None:
            self._branches = tuple(int(b) for b in spec.action_spec.discrete_branches)
        elif mask is not None:
            self._branches = tuple(int(np.shape(branch)[1]) for branch in mask)
        else:
            self._branches = ()
        width = sum(self._branches)
        if width:
            self._last_mask = np.zeros((self._has_last.shape[0], width), dtype=bool)

    def _grow_slots(self, needed: int) -> None:
        current = self._has_last.shape[0]
        if needed <= current:
            return
        slots = max(needed, 2 * current, 8)

        def grown(array: np.ndarray) -> np.ndarray:
            out = np.zeros((slots, *array.shape[1:]), dtype=array.dtype)
            out[:current] = array
            return out

        self._last_obs = [grown(obs) for obs in self._last_obs]
        if self._last_mask is not None:
            self._last_mask = grown(self._last_mask)
        self._has_last = grown(self._has_last)
        self._has_action = grown(self._has_action)
        self._episode_steps = grown(self._episode_steps)
        self._last_action = {name: grown(array) for name, array in self._last_action.items()}
        if self._columns is not None:
            self._columns.grow(slots, self._columns.capacity)

    def _slots_for(self, worker_id: int, agent_ids: np.ndarray, create: bool) -> np.ndarray:
        """Slot of each agent (-1 for unknown agents when ``create`` is False)."""
        slots = np.empty(len(agent_ids), dtype=np.int64)
        slot_of = self._slot_of
        for row, agent_id in enumerate(agent_ids.tolist()):
            key = (worker_id, agent_id)
            slot = slot_of.get(key)
            if slot is None:
                if not create:
                    slots[row] = -1
                    continue
                if self._free_slots:
                    slot = self._free_slots.pop()
                    self._global_ids[slot] = get_global_agent_id(worker_id, agent_id)
                else:
                    slot = len(self._global_ids)
                    self._global_ids.append(get_global_agent_id(worker_id, agent_id))
                    self._grow_slots(slot + 1)
                slot_of[key] = slot
            slots[row] = slot
        return slots

    def _release(self, worker_id: int, agent_ids: np.ndarray, slots: np.ndarray) -> None:
        for agent_id, slot in zip(agent_ids.tolist(), slots.tolist()):
            del self._slot_of[(worker_id, agent_id)]
            self._free_slots.append(slot)
        self._has_last[slots] = False
        self._has_action[slots] = False
        self._episode_steps[slots] = 0
        if self._columns is not None:
            self._columns.lengths[slots] = 0
        global_ids = [self._global_ids[slot] for slot in slots.tolist()]
        if hasattr(self.policy, "remove_previous_action"):
            self.policy.remove_previous_action(global_ids)
        if hasattr(self.policy, "remove_memories"):
            self.policy.remove_memories(global_ids)

    # --- steps ---------------------------------------------------------------------------

    def add_experiences(
        self, decision_steps: Any, terminal_steps: Any, worker_id: int, previous_action: Any
    ) -> None:
        """Record one environment step of this behavior.

        :param decision_steps: the agents that requested a decision.
        :param terminal_steps: the agents whose episode ended.
        :param worker_id: index of the environment worker (makes agent ids global).
        :param previous_action: the ActionInfo returned for these agents' previous decision.
        """
        self._ensure_slot_arrays(decision_steps if len(decision_steps.obs) else terminal_steps)
        outputs = previous_action.outputs
        action_slots = np.zeros(0, dtype=np.int64)
        if outputs:
            entropy = outputs.get("entropy")
            if entropy is not None:
                self._stats_reporter.add_stat("Policy/Entropy", float(np.mean(entropy)))
            action_ids = np.asarray(previous_action.agent_ids, dtype=np.int64)
            slots = self._slots_for(worker_id, action_ids, create=False)
            # An agent reset since its decision starts over: keep no action for it.
            keep = slots >= 0
            keep[keep] = self._has_last[slots[keep]]
            action_slots = slots[keep]
            if len(action_slots):
                self._store_actions(action_slots, outputs, np.nonzero(keep)[0])

        if len(terminal_steps):
            slots = self._slots_for(worker_id, np.asarray(terminal_steps.agent_id), create=False)
            known = slots >= 0
            if known.any():
                rows = np.nonzero(known)[0]
                self._add_transitions(terminal_steps, rows, slots[known], terminated=True)
                self._release(worker_id, np.asarray(terminal_steps.agent_id)[known], slots[known])
        if len(decision_steps):
            self._ensure_mask_array(decision_steps)
            slots = self._slots_for(worker_id, np.asarray(decision_steps.agent_id), create=True)
            self._add_transitions(decision_steps, np.arange(len(slots)), slots, terminated=False)
            for k, obs in enumerate(decision_steps.obs):
                self._last_obs[k][slots] = obs
            if self._last_mask is not None:
                mask = getattr(decision_steps, "action_mask", None)
                self._last_mask[slots] = False if mask is None else np.concatenate(mask, axis=1)
            self._has_last[slots] = True
            self._has_action[slots] = False

        if (
            len(action_slots)
            and "action" in outputs
            and hasattr(self.policy, "save_previous_action")
        ):
            still = action_slots[self._has_last[action_slots]]
            if len(still):
                rows = [self._action_row_of[slot] for slot in still.tolist()]
                self.policy.save_previous_action(
                    [self._global_ids[slot] for slot in still.tolist()],
                    _take_rows(outputs["action"], rows),
                )

    def _store_actions(self, slots: np.ndarray, outputs: dict[str, Any], rows: np.ndarray) -> None:
        action = outputs["action"]
        log_probs = outputs["log_probs"]
        values = {
            "continuous_actions": _rows_or_empty(action.continuous, rows, np.float32),
            "discrete_actions": _rows_or_empty(action.discrete, rows, np.int32),
            "continuous_log_probs": _rows_or_empty(log_probs.continuous, rows, np.float32),
            "discrete_log_probs": _rows_or_empty(log_probs.discrete, rows, np.float32),
        }
        capacity = self._has_last.shape[0]
        for name, value in values.items():
            stored = self._last_action.get(name)
            if stored is None or stored.shape[1:] != value.shape[1:]:
                stored = np.zeros((capacity, *value.shape[1:]), dtype=value.dtype)
                self._last_action[name] = stored
            stored[slots] = value
        self._has_action[slots] = True
        # Row of each slot in the ActionInfo, for save_previous_action at the end of the step.
        self._action_row_of = dict(zip(slots.tolist(), rows.tolist()))

    def _add_transitions(
        self, steps: Any, rows: np.ndarray, slots: np.ndarray, terminated: bool
    ) -> None:
        """Append (last decision, its action, this reward) for agents that acted."""
        acted = self._has_last[slots] & self._has_action[slots]
        if not acted.any():
            return
        rows, slots = rows[acted], slots[acted]
        # Memories and previous actions as the policy keeps them (their widths size the
        # columns, so the policy needs no m_size or behavior_spec).
        per_policy: dict[str, np.ndarray] = {}
        if self._records_memories or self._records_prev_actions:
            global_ids = [self._global_ids[slot] for slot in slots.tolist()]
            if self._records_memories:
                per_policy["memories"] = _rows(
                    self.policy.retrieve_previous_memories(global_ids), np.float32, len(slots)
                )
            if self._records_prev_actions:
                per_policy["prev_actions"] = _rows(
                    self.policy.retrieve_previous_action(global_ids), np.int32, len(slots)
                )
        columns = self._columns_for(slots, per_policy)
        positions = columns.lengths[slots]
        fields = columns.fields
        for k in range(self._num_obs):
            fields[f"obs_{k}"][slots, positions] = self._last_obs[k][slots]
        for name, stored in self._last_action.items():
            fields[name][slots, positions] = stored[slots]
        if self._last_mask is not None:
            fields["action_masks"][slots, positions] = self._last_mask[slots]
        for name, values in per_policy.items():
            fields[name][slots, positions] = values
        fields["rewards"][slots, positions] = np.asarray(steps.reward)[rows]
        group_reward = getattr(steps, "group_reward", None)
        if group_reward is not None:
            fields["group_rewards"][slots, positions] = np.asarray(group_reward)[rows]
        columns.lengths[slots] = positions + 1
        if not terminated:
            self._episode_steps[slots] += 1

        full = columns.lengths[slots] >= self._max_trajectory_length
        cut = np.ones(len(slots), dtype=bool) if terminated else full
        interrupted = (
            np.asarray(steps.interrupted)[rows] if terminated else np.zeros(len(rows), bool)
        )
        for index in np.nonzero(cut)[0].tolist():
            slot = int(slots[index])
            trajectory = self._make_trajectory(
                slot,
                [obs[rows[index]] for obs in steps.obs],
                done=terminated,
                interrupted=bool(interrupted[index]),
            )
            columns.lengths[slot] = 0
            for trajectory_queue in self._trajectory_queues:
                trajectory_queue.put(trajectory)
        if terminated:
            for steps_taken in self._episode_steps[slots].tolist():
                self._stats_reporter.add_stat("Environment/Episode Length", steps_taken)

    @property
    def _records_memories(self) -> bool:
        return bool(getattr(self.policy, "use_recurrent", False)) and hasattr(
            self.policy, "retrieve_previous_memories"
        )

    @property
    def _records_prev_actions(self) -> bool:
        return hasattr(self.policy, "retrieve_previous_action")

    def _columns_for(self, slots: np.ndarray, per_policy: dict[str, np.ndarray]) -> _SlotColumns:
        """The slot columns, allocated on first use and grown to hold one more row."""
        columns = self._columns
        if columns is None:
            shapes: dict[str, tuple[tuple[int, ...], Any]] = {}
            for k, obs in enumerate(self._last_obs):
                shapes[f"obs_{k}"] = (obs.shape[1:], np.float32)
            for name, stored in self._last_action.items():
                shapes[name] = (stored.shape[1:], stored.dtype)
            if self._last_mask is not None:
                shapes["action_masks"] = (self._last_mask.shape[1:], bool)
            for name, values in per_policy.items():
                shapes[name] = (values.shape[1:], values.dtype)
            shapes["rewards"] = ((), np.float32)
            shapes["group_rewards"] = ((), np.float32)
            capacity = min(self._max_trajectory_length, 64)
            columns = _SlotColumns(self._has_last.shape[0], capacity, shapes)
            self._columns = columns
        needed = int(columns.lengths[slots].max()) + 1
        if needed > columns.capacity or columns.slots < self._has_last.shape[0]:
            capacity = columns.capacity
            while capacity < needed:
                capacity = min(2 * capacity, self._max_trajectory_length)
            columns.grow(max(columns.slots, self._has_last.shape[0]), capacity)
        return columns

    def _make_trajectory(
        self, slot: int, next_obs: list[np.ndarray], done: bool, interrupted: bool
    ) -> Any:
        """Copy the slot's rows into one columnar trajectory."""
        from mlagents_fast.trainers.trajectory import ColumnarTrajectory

        columns = self._columns
        assert columns is not None
        length = int(columns.lengths[slot])
        fields = {name: array[slot, :length].copy() for name, array in columns.fields.items()}
        dones = np.zeros(length, dtype=bool)
        dones[-1] = done
        return ColumnarTrajectory(
            obs=[fields[f"obs_{k}"] for k in range(self._num_obs)],
            next_obs=[np.array(obs, dtype=np.float32) for obs in next_obs],
            rewards=fields["rewards"],
            dones=dones,
            continuous_actions=fields["continuous_actions"],
            discrete_actions=fields["discrete_actions"],
            continuous_log_probs=fields["continuous_log_probs"],
            discrete_log_probs=fields["discrete_log_probs"],
            action_masks=fields.get("action_masks"),
            prev_actions=fields.get("prev_actions"),
            memories=fields.get("memories"),
            group_rewards=fields["group_rewards"],
            interrupted=interrupted,
            agent_id=self._global_ids[slot],
            behavior_id=self._behavior_id,
            discrete_branches=self._branches or None,
        )

    def record_environment_stats(self, env_stats: dict[str, Any], worker_id: int) -> None:
        """Pass stats the environment sent (stats side channel) to the stats reporter.

        MOST_RECENT stats of workers other than 0 are dropped, as ML-Agents does, so one
        worker's value does not flicker with another's.
        """
        from mlagents_fast.trainers.stats import StatsAggregationMethod

        for stat_name, value_list in env_stats.items():
            for value, aggregation in value_list:
                if aggregation == StatsAggregationMethod.MOST_RECENT and worker_id != 0:
                    continue
                self._stats_reporter.add_stat(stat_name, value, aggregation)

    def publish_trajectory_queue(self, trajectory_queue: AgentManagerQueue[Any]) -> None:
        """Send every trajectory assembled from now on to ``trajectory_queue`` too."""
        self._trajectory_queues.append(trajectory_queue)

    def end_episode(self) -> None:
        """Drop every agent's partial trajectory (a forced reset, e.g. on a lesson change)."""
        for (worker_id, agent_id), slot in list(self._slot_of.items()):
            self._release(worker_id, np.array([agent_id]), np.array([slot]))


def _rows(values: Any, dtype: Any, count: int) -> np.ndarray:
    """What the policy returned for ``count`` agents as a ``(count, width)`` array."""
    array = np.asarray(values, dtype=dtype)
    if array.ndim == 2 and array.shape[0] == count:
        return array
    if array.size == 0:
        return np.zeros((count, 0), dtype=dtype)
    return array.reshape(count, -1)


def _rows_or_empty(array: np.ndarray | None, rows: np.ndarray, dtype: Any) -> np.ndarray:
    if array is None:
        return np.zeros((len(rows), 0), dtype=dtype)
    return np.asarray(array)[rows]


def _take_rows(action: Any, rows: list[int]) -> Any:
    from mlagents_fast.envs.base_env import ActionTuple

    return ActionTuple(
        continuous=None if action.continuous is None else action.continuous[rows],
        discrete=None if action.discrete is None else action.discrete[rows],
    )


class AgentManagerQueue(Generic[T]):
    """A FIFO between the environment side and a trainer (trajectories one way, policies the other)."""

    class Empty(Exception):
        """Raised by get_nowait on an empty queue."""

    def __init__(self, behavior_id: str, maxlen: int = 0) -> None:
        """
        :param behavior_id: the behavior id the queue carries data for.
        :param maxlen: the most items held at once (0: unbounded); put blocks when full.
        """
        self._maxlen = maxlen
        self._queue: queue.Queue[T] = queue.Queue(maxsize=maxlen)
        self._behavior_id = behavior_id
        # Steps of the queued trajectories, for batching decisions.
        self._queued_length = 0
        self._length_lock = threading.Lock()

    @property
    def maxlen(self) -> int:
        return self._maxlen

    @property
    def behavior_id(self) -> str:
        return self._behavior_id

    def qsize(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()

    @property
    def queued_length(self) -> int:
        """Steps of the queued trajectories (0 for a queue of policies)."""
        return self._queued_length

    def get_nowait(self) -> T:
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            raise self.Empty("The AgentManagerQueue is empty.") from None
        steps = _steps_in(item)
        if steps:
            with self._length_lock:
                self._queued_length -= steps
        return item

    def put(self, item: T) -> None:
        steps = _steps_in(item)
        if steps:
            with self._length_lock:
                self._queued_length += steps
        self._queue.put(item)


def _steps_in(item: Any) -> int:
    """Steps of a trajectory of either form (``len(steps)``: ML-Agents' ``Trajectory`` is a
    NamedTuple, so its own len() counts fields), 0 for anything else."""
    steps = getattr(item, "steps", None)
    return len(steps) if isinstance(steps, Sized) else 0


class AgentManager(AgentProcessor):
    """An AgentProcessor with its own trajectory and policy queues."""

    def __init__(
        self,
        policy: Any,
        behavior_id: str,
        stats_reporter: StatsReporter,
        max_trajectory_length: int = sys.maxsize,
        threaded: bool = True,
    ) -> None:
        super().__init__(policy, behavior_id, stats_reporter, max_trajectory_length)
        # A threaded trainer lags the environment; bound the queue so trajectories stay near
        # on-policy (as ML-Agents does).
        trajectory_queue_len = 20 if threaded else 0
        self.trajectory_queue: AgentManagerQueue[Any] = AgentManagerQueue(
            self._behavior_id, maxlen=trajectory_queue_len
        )
        self.policy_queue: AgentManagerQueue[Any] = AgentManagerQueue(self._behavior_id)
        self.publish_trajectory_queue(self.trajectory_queue)
