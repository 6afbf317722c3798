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

Groups (multi-agent): from the first step where an agent has a ``group_id`` other than 0,
trajectories also carry what each step showed of the agent's group mates, as ML-Agents'
``group_status`` (observation, action, reward and done of each mate, its most recent
status: a mate that did not step keeps the one of its last step; an agent that leaves stays
visible, done, for the rest of that step) and the mates' observations after the last step,
in numeric group columns (see :class:`~mlagents_fast.trainers.trajectory.ColumnarTrajectory`).
The order of updates is ML-Agents': the statuses of the agents that ended, their
trajectories, then the statuses and trajectories of the agents that ask for a decision.

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
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.trainers.behavior_id_utils import get_global_agent_id
from mlagents_fast.trainers.stats import StatsAggregationMethod, StatsReporter
from mlagents_fast.trainers.trajectory import ColumnarTrajectory

if TYPE_CHECKING:
    from mlagents_fast.envs.base_env import DecisionSteps, TerminalSteps
    from mlagents_fast.envs.side_channel.stats_side_channel import EnvironmentStats
    from mlagents_fast.trainers.action_info import ActionInfo
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy

__all__ = ["AgentManager", "AgentManagerQueue", "AgentProcessor"]

T = TypeVar("T")


class _SlotColumns:
    """Per-agent columns of the current partial trajectory, one slot (row) per live agent.

    Every field is an array ``[slots, capacity, *row_shape]``; ``lengths[slot]`` rows of a
    slot are filled. A step writes the rows of all its agents with one fancy-indexed
    assignment per field, so the cost per step does not grow with Python work per agent.
    Capacity doubles (up to the time horizon) when a slot needs more rows; slots double when
    more agents are alive. Space not written yet holds the field's fill value (NaN for the
    group mates' observations: ML-Agents' mark of an absent mate).
    """

    def __init__(
        self,
        slots: int,
        capacity: int,
        shapes: dict[str, tuple[tuple[int, ...], Any]],
        fills: dict[str, float] | None = None,
    ):
        self.shapes = dict(shapes)
        self.fills = dict(fills or {})
        self.fields = {
            name: np.full((slots, capacity, *shape), self.fills.get(name, 0), dtype=dtype)
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
            grown = np.full(
                (slots, capacity, *array.shape[2:]), self.fills.get(name, 0), dtype=array.dtype
            )
            grown[:old_slots, :old_capacity] = array
            self.fields[name] = grown
        lengths = np.zeros(slots, dtype=np.int64)
        lengths[:old_slots] = self.lengths
        self.lengths = lengths

    def add_fields(
        self, shapes: dict[str, tuple[tuple[int, ...], Any]], fills: dict[str, float]
    ) -> None:
        """New fields (rows already written get the fill value)."""
        self.fills.update(fills)
        for name, (shape, dtype) in shapes.items():
            self.shapes[name] = (shape, dtype)
            self.fields[name] = np.full(
                (self.slots, self.capacity, *shape), self.fills.get(name, 0), dtype=dtype
            )

    def widen(self, names: list[str], width: int) -> None:
        """Give the fields ``names`` (row shape ``(width, ...)``) ``width`` columns."""
        for name in names:
            array = self.fields[name]
            old_width = array.shape[2]
            if width <= old_width:
                continue
            grown = np.full(
                (*array.shape[:2], width, *array.shape[3:]),
                self.fills.get(name, 0),
                dtype=array.dtype,
            )
            grown[:, :, :old_width] = array
            self.fields[name] = grown
            shape, dtype = self.shapes[name]
            self.shapes[name] = ((width, *shape[1:]), dtype)


class _GroupStatuses:
    """What each agent of a group shows its group mates (ML-Agents' ``_group_status`` and
    ``_current_group_obs``), one row per slot.

    An agent's status is set by a step that completes one of its transitions while its
    ``group_id`` is not 0: the observation it decided on, the action it took, the reward and
    the done (a TerminalStep) of that step, and the step's observation (``current_obs``, its
    mates' bootstrap). It is kept until the agent leaves (its episode ends), so a mate that
    did not step this time is seen as it was at its last step, as in ML-Agents.
    """

    def __init__(self) -> None:
        # Per slot: group code (worker_id << 32 | group_id), -1 for no status.
        self.group = np.full(0, -1, dtype=np.int64)
        # Per slot: when the agent entered its group's statuses (mates are listed in order of
        # entry, as ML-Agents' dicts list them).
        self.entered = np.zeros(0, dtype=np.int64)
        self._entries = 0
        self.obs: list[np.ndarray] = []
        self.current_obs: list[np.ndarray] = []
        self.continuous = np.zeros((0, 0), dtype=np.float32)
        self.discrete = np.zeros((0, 0), dtype=np.int32)
        self.reward = np.zeros(0, dtype=np.float32)
        self.done = np.zeros(0, dtype=bool)

    @property
    def slots(self) -> int:
        return self.group.shape[0]

    def grow(self, slots: int) -> None:
        current = self.slots
        if slots <= current:
            return

        def grown(array: np.ndarray, fill: Any = 0) -> np.ndarray:
            out = np.full((slots, *array.shape[1:]), fill, dtype=array.dtype)
            out[:current] = array
            return out

        self.group = grown(self.group, -1)
        self.entered = grown(self.entered)
        self.obs = [grown(obs) for obs in self.obs]
        self.current_obs = [grown(obs) for obs in self.current_obs]
        self.continuous = grown(self.continuous)
        self.discrete = grown(self.discrete)
        self.reward = grown(self.reward)
        self.done = grown(self.done)

    def set(
        self,
        slots: np.ndarray,
        groups: np.ndarray,
        obs: list[np.ndarray],
        continuous: np.ndarray,
        discrete: np.ndarray,
        reward: np.ndarray,
        done: bool,
        current_obs: list[np.ndarray],
    ) -> None:
        """Set the statuses of ``slots`` (in groups ``groups``)."""
        if not self.obs:
            capacity = self.slots
            self.obs = [np.zeros((capacity, *o.shape[1:]), np.float32) for o in obs]
            self.current_obs = [np.zeros((capacity, *o.shape[1:]), np.float32) for o in obs]
        if self.continuous.shape[1:] != continuous.shape[1:]:
            self.continuous = np.zeros((self.slots, *continuous.shape[1:]), np.float32)
        if self.discrete.shape[1:] != discrete.shape[1:]:
            self.discrete = np.zeros((self.slots, *discrete.shape[1:]), np.int32)
        new = self.group[slots] != groups
        if new.any():
            count = int(new.sum())
            self.entered[slots[new]] = np.arange(self._entries, self._entries + count)
            self._entries += count
        self.group[slots] = groups
        for k, rows in enumerate(obs):
            self.obs[k][slots] = rows
        for k, rows in enumerate(current_obs):
            self.current_obs[k][slots] = rows
        self.continuous[slots] = continuous
        self.discrete[slots] = discrete
        self.reward[slots] = reward
        self.done[slots] = done

    def clear(self, slots: np.ndarray | list[int]) -> None:
        self.group[slots] = -1

    def mates(self, slots: np.ndarray) -> np.ndarray:
        """``(len(slots), W)`` slots of each agent's group mates that have a status (in order
        of entry, left-aligned, -1 after the last); W is the most mates any of them has."""
        members = np.nonzero(self.group >= 0)[0]
        own = self.group[slots]
        if not len(members) or not (own >= 0).any():
            return np.full((len(slots), 0), -1, dtype=np.int64)
        groups = self.group[members]
        order = np.lexsort((self.entered[members], groups))
        members, groups = members[order], groups[order]
        codes, starts, counts = np.unique(groups, return_index=True, return_counts=True)
        table = np.full((len(codes) + 1, int(counts.max())), -1, dtype=np.int64)
        rank = np.arange(len(members)) - np.repeat(starts, counts)
        table[np.repeat(np.arange(len(codes)), counts), rank] = members
        # Rows of agents without a status read the last (empty) row of the table.
        position = np.minimum(np.searchsorted(codes, own), len(codes) - 1)
        position = np.where(codes[position] == own, position, len(codes))
        candidates = table[position]
        valid = (candidates >= 0) & (candidates != slots[:, np.newaxis])
        compact = np.argsort(~valid, axis=1, kind="stable")
        mates = np.take_along_axis(np.where(valid, candidates, -1), compact, axis=1)
        return mates[:, : int(valid.sum(axis=1).max())]

    def gather(self, arrays: np.ndarray, mates: np.ndarray, fill: Any) -> np.ndarray:
        """``arrays[mates]`` with ``fill`` where ``mates`` is -1."""
        out = arrays[np.maximum(mates, 0)]
        out[mates < 0] = fill
        return out


def _group_codes(worker_id: int, group_ids: np.ndarray) -> np.ndarray:
    """One int64 per (worker, group id): group ids are unique per environment only."""
    return (np.int64(worker_id) << np.int64(32)) | np.asarray(group_ids).astype(np.int64)


# Columns of the group mates (row shape (W, ...)): observations are NaN where there is no
# mate (what MultiAgentNetworkBody reads as "absent"), everything else 0.
_GROUP_FIELDS = (
    "group_continuous_actions",
    "group_discrete_actions",
    "groupmate_rewards",
    "group_dones",
)


class AgentProcessor:
    """Per-agent trajectory assembly for one behavior id.

    Agents live in slots: arrays indexed by slot hold each agent's last decision (its
    observations and action mask), the action the policy chose for it, and the rows of its
    partial trajectory. One step costs one dictionary lookup per agent plus a fixed number of
    whole-batch numpy operations.
    """

    def __init__(
        self,
        policy: TorchPolicy,
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
        # Group statuses, from the first step with a group id other than 0 (None before:
        # trajectories then carry no group columns).
        self._statuses: _GroupStatuses | None = None
        # Slots of agents that left during this step: their statuses stay visible to their
        # group mates until the step is processed, so the slots are freed only then.
        self._leaving: list[int] = []

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
        if self._statuses is not None:
            self._statuses.grow(slots)

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
        if self._statuses is None:
            self._free_slots.extend(slots.tolist())
        else:
            self._leaving.extend(slots.tolist())
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
        self,
        decision_steps: DecisionSteps,
        terminal_steps: TerminalSteps,
        worker_id: int,
        previous_action: ActionInfo,
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

        if self._statuses is None and (_has_groups(decision_steps) or _has_groups(terminal_steps)):
            self._statuses = _GroupStatuses()
            self._statuses.grow(self._has_last.shape[0])
        # As ML-Agents: every terminal agent's status first, then their transitions; then the
        # same for the decision steps; the statuses of agents that left go last.
        if len(terminal_steps):
            slots = self._slots_for(worker_id, np.asarray(terminal_steps.agent_id), create=False)
            known = slots >= 0
            if known.any():
                rows = np.nonzero(known)[0]
                self._set_statuses(terminal_steps, rows, slots[known], worker_id, done=True)
                self._add_transitions(terminal_steps, rows, slots[known], terminated=True)
                self._release(worker_id, np.asarray(terminal_steps.agent_id)[known], slots[known])
        if len(decision_steps):
            self._ensure_mask_array(decision_steps)
            slots = self._slots_for(worker_id, np.asarray(decision_steps.agent_id), create=True)
            rows = np.arange(len(slots))
            self._set_statuses(decision_steps, rows, slots, worker_id, done=False)
            self._add_transitions(decision_steps, rows, slots, terminated=False)
            for k, obs in enumerate(decision_steps.obs):
                self._last_obs[k][slots] = obs
            if self._last_mask is not None:
                mask = getattr(decision_steps, "action_mask", None)
                self._last_mask[slots] = False if mask is None else np.concatenate(mask, axis=1)
            self._has_last[slots] = True
            self._has_action[slots] = False
        if self._leaving:
            assert self._statuses is not None
            self._statuses.clear(self._leaving)
            self._free_slots.extend(self._leaving)
            self._leaving = []

        if (
            len(action_slots)
            and "action" in outputs
            and hasattr(self.policy, "save_previous_action")
        ):
            still = action_slots[self._has_last[action_slots]]
            if len(still):
                action_rows = [self._action_row_of[slot] for slot in still.tolist()]
                self.policy.save_previous_action(
                    [self._global_ids[slot] for slot in still.tolist()],
                    _take_rows(outputs["action"], action_rows),
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

    def _set_statuses(
        self, steps: Any, rows: np.ndarray, slots: np.ndarray, worker_id: int, done: bool
    ) -> None:
        """Record what the agents of ``slots`` that acted and are in a group show their mates."""
        statuses = self._statuses
        if statuses is None:
            return
        group_ids = np.asarray(steps.group_id)[rows]
        chosen = self._has_last[slots] & self._has_action[slots] & (group_ids > 0)
        if not chosen.any():
            return
        rows, slots = rows[chosen], slots[chosen]
        statuses.set(
            slots,
            _group_codes(worker_id, group_ids[chosen]),
            obs=[obs[slots] for obs in self._last_obs],
            continuous=self._last_action["continuous_actions"][slots],
            discrete=self._last_action["discrete_actions"][slots],
            reward=np.asarray(steps.reward)[rows],
            done=done,
            current_obs=[np.asarray(obs)[rows] for obs in steps.obs],
        )

    def _add_transitions(
        self, steps: Any, rows: np.ndarray, slots: np.ndarray, terminated: bool
    ) -> None:
        """Append (last decision, its action, this reward) for agents that acted."""
        acted = self._has_last[slots] & self._has_action[slots]
        if not acted.any():
            return
        rows, slots = rows[acted], slots[acted]
        statuses = self._statuses
        mates = None if statuses is None else statuses.mates(slots)
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
        if mates is not None:
            columns.widen(self._group_field_names(), mates.shape[1])
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
        if mates is not None:
            assert statuses is not None
            self._write_group_rows(columns, slots, positions, statuses, mates)
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
            next_group = None
            if mates is not None:
                assert statuses is not None
                row_mates = mates[index][mates[index] >= 0]
                next_group = [obs[row_mates] for obs in statuses.current_obs]
            trajectory = self._make_trajectory(
                slot,
                [obs[rows[index]] for obs in steps.obs],
                done=terminated,
                interrupted=bool(interrupted[index]),
                next_group_obs=next_group,
            )
            columns.lengths[slot] = 0
            for trajectory_queue in self._trajectory_queues:
                trajectory_queue.put(trajectory)
        if terminated:
            for steps_taken in self._episode_steps[slots].tolist():
                self._stats_reporter.add_stat("Environment/Episode Length", steps_taken)

    def _group_field_names(self) -> list[str]:
        return [f"group_obs_{k}" for k in range(self._num_obs)] + list(_GROUP_FIELDS)

    def _write_group_rows(
        self,
        columns: _SlotColumns,
        slots: np.ndarray,
        positions: np.ndarray,
        statuses: _GroupStatuses,
        mates: np.ndarray,
    ) -> None:
        """Write each agent's group mates (as their statuses are now) into its new row."""
        width = columns.shapes["group_dones"][0][0]
        if mates.shape[1] < width:
            pad = np.full((len(mates), width - mates.shape[1]), -1, dtype=np.int64)
            mates = np.concatenate([mates, pad], axis=1)
        fields = columns.fields
        for k, obs in enumerate(statuses.obs):
            fields[f"group_obs_{k}"][slots, positions] = statuses.gather(obs, mates, np.nan)
        fields["group_continuous_actions"][slots, positions] = statuses.gather(
            statuses.continuous, mates, 0
        )
        fields["group_discrete_actions"][slots, positions] = statuses.gather(
            statuses.discrete, mates, 0
        )
        fields["groupmate_rewards"][slots, positions] = statuses.gather(statuses.reward, mates, 0)
        fields["group_dones"][slots, positions] = statuses.gather(statuses.done, mates, False)
        fields["group_counts"][slots, positions] = (mates >= 0).sum(axis=1)

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
        if self._statuses is not None and "group_counts" not in columns.fields:
            self._add_group_columns(columns)
        needed = int(columns.lengths[slots].max()) + 1
        if needed > columns.capacity or columns.slots < self._has_last.shape[0]:
            capacity = columns.capacity
            while capacity < needed:
                capacity = min(2 * capacity, self._max_trajectory_length)
            columns.grow(max(columns.slots, self._has_last.shape[0]), capacity)
        return columns

    def _add_group_columns(self, columns: _SlotColumns) -> None:
        """The group mates' columns, 0 mates wide (they widen as groups fill up)."""
        assert self._statuses is not None
        shapes: dict[str, tuple[tuple[int, ...], Any]] = {}
        fills: dict[str, float] = {}
        for k, obs in enumerate(self._last_obs):
            shapes[f"group_obs_{k}"] = ((0, *obs.shape[1:]), np.float32)
            fills[f"group_obs_{k}"] = np.nan
        continuous = self._last_action["continuous_actions"]
        discrete = self._last_action["discrete_actions"]
        shapes["group_continuous_actions"] = ((0, *continuous.shape[1:]), np.float32)
        shapes["group_discrete_actions"] = ((0, *discrete.shape[1:]), np.int32)
        shapes["groupmate_rewards"] = ((0,), np.float32)
        shapes["group_dones"] = ((0,), bool)
        shapes["group_counts"] = ((), np.int32)
        columns.add_fields(shapes, fills)

    def _make_trajectory(
        self,
        slot: int,
        next_obs: list[np.ndarray],
        done: bool,
        interrupted: bool,
        next_group_obs: list[np.ndarray] | None = None,
    ) -> ColumnarTrajectory:
        """Copy the slot's rows into one columnar trajectory (with its group mates' columns,
        as wide as the most mates it had, when the behavior has groups)."""
        columns = self._columns
        assert columns is not None
        length = int(columns.lengths[slot])
        group: dict[str, Any] = {}
        if next_group_obs is not None:
            counts = columns.fields["group_counts"][slot, :length].copy()
            next_count = len(next_group_obs[0]) if next_group_obs else 0
            width = max(int(counts.max()), next_count)
            group = {
                "group_obs": [
                    columns.fields[f"group_obs_{k}"][slot, :length, :width].copy()
                    for k in range(self._num_obs)
                ],
                "group_counts": counts,
                "group_next_obs": [_nan_padded(rows, width) for rows in next_group_obs],
                "next_group_count": next_count,
            }
            for name in _GROUP_FIELDS:
                group[name] = columns.fields[name][slot, :length, :width].copy()
        fields = {
            name: array[slot, :length].copy()
            for name, array in columns.fields.items()
            if not name.startswith("group") or name == "group_rewards"
        }
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
            **group,
        )

    def record_environment_stats(self, env_stats: EnvironmentStats, worker_id: int) -> None:
        """Pass stats the environment sent (stats side channel) to the stats reporter.

        MOST_RECENT stats of workers other than 0 are dropped, as ML-Agents does, so one
        worker's value does not flicker with another's.
        """
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
        if self._leaving:
            assert self._statuses is not None
            self._statuses.clear(self._leaving)
            self._free_slots.extend(self._leaving)
            self._leaving = []


def _has_groups(steps: Any) -> bool:
    group_id = getattr(steps, "group_id", None)
    return group_id is not None and len(group_id) > 0 and bool(np.any(np.asarray(group_id) > 0))


def _nan_padded(rows: np.ndarray, width: int) -> np.ndarray:
    """``rows`` (n, ...) followed by NaN rows up to ``width``."""
    out = np.full((width, *rows.shape[1:]), np.nan, dtype=np.float32)
    out[: len(rows)] = rows
    return out


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


def _take_rows(action: ActionTuple, rows: list[int]) -> ActionTuple:
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
        policy: TorchPolicy,
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
        self.policy_queue: AgentManagerQueue[TorchPolicy] = AgentManagerQueue(self._behavior_id)
        self.publish_trajectory_queue(self.trajectory_queue)
