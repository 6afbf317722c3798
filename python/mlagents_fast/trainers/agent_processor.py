"""From environment steps to trajectories (the counterpart of ``mlagents.trainers.agent_processor``).

One :class:`AgentProcessor` per behavior id. ``add_experiences`` takes one batched
(DecisionSteps, TerminalSteps) pair and the :class:`ActionInfo` the policy returned for the
previous decision, and appends one row per agent to that agent's columns (observation, action,
log probabilities, mask, reward, done). A trajectory is cut when the agent's episode ends or its
columns reach ``max_trajectory_length`` (the behavior's time_horizon); it carries the next
observation so the trainer can bootstrap the value of a cut (or interrupted) episode.

Rows are kept as numpy row views of the batched arrays, and a trajectory stacks them once
(columnar), instead of building one object per agent step.
"""

from __future__ import annotations

import queue
import sys
from collections import defaultdict
from typing import Any, Generic, TypeVar

import numpy as np

from mlagents_fast.trainers.behavior_id_utils import get_global_agent_id
from mlagents_fast.trainers.stats import StatsReporter

__all__ = ["AgentManager", "AgentManagerQueue", "AgentProcessor"]

T = TypeVar("T")


class _AgentColumns:
    """The rows an agent collected since its last trajectory was cut."""

    __slots__ = [
        "action_masks",
        "continuous_actions",
        "continuous_log_probs",
        "discrete_actions",
        "discrete_log_probs",
        "group_rewards",
        "memories",
        "obs",
        "prev_actions",
        "rewards",
    ]

    def __init__(self, num_obs: int) -> None:
        self.obs: list[list[np.ndarray]] = [[] for _ in range(num_obs)]
        self.continuous_actions: list[np.ndarray] = []
        self.discrete_actions: list[np.ndarray] = []
        self.continuous_log_probs: list[np.ndarray] = []
        self.discrete_log_probs: list[np.ndarray] = []
        self.action_masks: list[np.ndarray | None] = []
        self.prev_actions: list[np.ndarray] = []
        self.memories: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.group_rewards: list[float] = []

    def __len__(self) -> int:
        return len(self.rewards)


class AgentProcessor:
    """Per-agent trajectory assembly for one behavior id."""

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
        self._max_trajectory_length = max_trajectory_length
        self._trajectory_queues: list[AgentManagerQueue[Any]] = []
        # Global agent id -> (observation rows of its last decision, index of its row in the
        # ActionInfo of that decision, action mask rows).
        self._last_obs: dict[str, list[np.ndarray]] = {}
        self._last_mask: dict[str, list[np.ndarray] | None] = {}
        self._last_action_row: dict[str, int] = {}
        self._last_action_outputs: dict[str, dict[str, Any]] = {}
        self._columns: dict[str, _AgentColumns] = {}
        self._episode_steps: dict[str, int] = defaultdict(int)
        self._episode_rewards: dict[str, float] = defaultdict(float)

    @property
    def behavior_id(self) -> str:
        return self._behavior_id

    def add_experiences(
        self, decision_steps: Any, terminal_steps: Any, worker_id: int, previous_action: Any
    ) -> None:
        """Record one environment step of this behavior.

        :param decision_steps: the agents that requested a decision.
        :param terminal_steps: the agents whose episode ended.
        :param worker_id: index of the environment worker (makes agent ids global).
        :param previous_action: the ActionInfo returned for these agents' previous decision.
        """
        outputs = previous_action.outputs
        if outputs:
            entropy = outputs.get("entropy")
            if entropy is not None:
                self._stats_reporter.add_stat("Policy/Entropy", float(np.mean(entropy)))
            for row, agent_id in enumerate(previous_action.agent_ids):
                global_id = get_global_agent_id(worker_id, int(agent_id))
                # An agent that was reset since its decision starts over: keep no action for it.
                if global_id in self._last_obs:
                    self._last_action_outputs[global_id] = outputs
                    self._last_action_row[global_id] = row

        for index, agent_id in enumerate(terminal_steps.agent_id):
            self._process_row(terminal_steps, index, int(agent_id), worker_id, terminated=True)
        for index, agent_id in enumerate(decision_steps.agent_id):
            self._process_row(decision_steps, index, int(agent_id), worker_id, terminated=False)

        if outputs and "action" in outputs and hasattr(self.policy, "save_previous_action"):
            saved = [
                get_global_agent_id(worker_id, int(a))
                for a in previous_action.agent_ids
                if get_global_agent_id(worker_id, int(a)) in self._last_obs
            ]
            if saved:
                rows = [
                    row
                    for row, a in enumerate(previous_action.agent_ids)
                    if get_global_agent_id(worker_id, int(a)) in self._last_obs
                ]
                action = outputs["action"]
                self.policy.save_previous_action(saved, _take_rows(action, rows))

    def _process_row(
        self, steps: Any, index: int, agent_id: int, worker_id: int, terminated: bool
    ) -> None:
        global_id = get_global_agent_id(worker_id, agent_id)
        obs_rows = [obs[index] for obs in steps.obs]
        previous_obs = self._last_obs.get(global_id)
        previous_mask = self._last_mask.get(global_id)
        outputs = self._last_action_outputs.get(global_id)
        if not terminated:
            self._last_obs[global_id] = obs_rows
            mask = getattr(steps, "action_mask", None)
            self._last_mask[global_id] = None if mask is None else [m[index] for m in mask]

        if previous_obs is not None and outputs is not None:
            row = self._last_action_row[global_id]
            columns = self._columns.get(global_id)
            if columns is None:
                columns = _AgentColumns(len(previous_obs))
                self._columns[global_id] = columns
            for k, obs in enumerate(previous_obs):
                columns.obs[k].append(obs)
            action = outputs["action"]
            log_probs = outputs["log_probs"]
            columns.continuous_actions.append(_row_or_empty(action.continuous, row))
            columns.discrete_actions.append(_row_or_empty(action.discrete, row))
            columns.continuous_log_probs.append(_row_or_empty(log_probs.continuous, row))
            columns.discrete_log_probs.append(_row_or_empty(log_probs.discrete, row))
            columns.action_masks.append(previous_mask)
            if getattr(self.policy, "use_recurrent", False):
                columns.memories.append(self.policy.retrieve_previous_memories([global_id])[0, :])
            if hasattr(self.policy, "retrieve_previous_action"):
                columns.prev_actions.append(self.policy.retrieve_previous_action([global_id])[0, :])
            reward = float(steps.reward[index])
            columns.rewards.append(reward)
            group_reward = getattr(steps, "group_reward", None)
            columns.group_rewards.append(
                0.0 if group_reward is None else float(group_reward[index])
            )
            self._episode_rewards[global_id] += reward
            if not terminated:
                self._episode_steps[global_id] += 1

            if terminated or len(columns) >= self._max_trajectory_length:
                interrupted = bool(steps.interrupted[index]) if terminated else False
                trajectory = self._make_trajectory(
                    global_id, columns, obs_rows, done=terminated, interrupted=interrupted
                )
                for trajectory_queue in self._trajectory_queues:
                    trajectory_queue.put(trajectory)
                self._columns[global_id] = _AgentColumns(len(previous_obs))
            if terminated:
                self._stats_reporter.add_stat(
                    "Environment/Episode Length", self._episode_steps.get(global_id, 0)
                )
        if terminated:
            self._clean_agent_data(global_id)

    def _make_trajectory(
        self,
        global_id: str,
        columns: _AgentColumns,
        next_obs: list[np.ndarray],
        done: bool,
        interrupted: bool,
    ) -> Any:
        """Stack the agent's rows into one columnar trajectory (one copy per field)."""
        from mlagents_fast.trainers.trajectory import ColumnarTrajectory

        steps = len(columns)
        dones = np.zeros(steps, dtype=bool)
        dones[-1] = done
        action_masks = None
        if any(mask is not None for mask in columns.action_masks):
            width = self._mask_width()
            action_masks = np.stack(
                [
                    np.concatenate(mask) if mask is not None else np.zeros(width, dtype=bool)
                    for mask in columns.action_masks
                ]
            )
        return ColumnarTrajectory(
            obs=[np.stack(rows) for rows in columns.obs],
            next_obs=list(next_obs),
            rewards=np.asarray(columns.rewards, dtype=np.float32),
            dones=dones,
            continuous_actions=np.stack(columns.continuous_actions),
            discrete_actions=np.stack(columns.discrete_actions),
            continuous_log_probs=np.stack(columns.continuous_log_probs),
            discrete_log_probs=np.stack(columns.discrete_log_probs),
            action_masks=action_masks,
            prev_actions=np.stack(columns.prev_actions) if columns.prev_actions else None,
            memories=np.stack(columns.memories) if columns.memories else None,
            group_rewards=np.asarray(columns.group_rewards, dtype=np.float32),
            interrupted=interrupted,
            agent_id=global_id,
            behavior_id=self._behavior_id,
        )

    def _mask_width(self) -> int:
        spec = getattr(self.policy, "behavior_spec", None)
        if spec is None:
            return 0
        return int(sum(spec.action_spec.discrete_branches))

    def _clean_agent_data(self, global_id: str) -> None:
        for store in (
            self._last_obs,
            self._last_mask,
            self._last_action_row,
            self._last_action_outputs,
            self._columns,
            self._episode_steps,
            self._episode_rewards,
        ):
            store.pop(global_id, None)
        if hasattr(self.policy, "remove_previous_action"):
            self.policy.remove_previous_action([global_id])
        if hasattr(self.policy, "remove_memories"):
            self.policy.remove_memories([global_id])

    def record_environment_stats(self, env_stats: dict[str, Any], worker_id: int) -> None:
        """Pass stats the environment sent (stats side channel) to the stats reporter.

        Stats of workers other than 0 are dropped for MOST_RECENT stats, as ML-Agents does, so
        one worker's value does not flicker with another's.
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
        for global_id in list(self._last_obs.keys() | self._columns.keys()):
            self._clean_agent_data(global_id)


def _row_or_empty(array: np.ndarray | None, row: int) -> np.ndarray:
    if array is None:
        return np.zeros(0, dtype=np.float32)
    return array[row]


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

    def get_nowait(self) -> T:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            raise self.Empty("The AgentManagerQueue is empty.") from None

    def put(self, item: T) -> None:
        self._queue.put(item)


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
