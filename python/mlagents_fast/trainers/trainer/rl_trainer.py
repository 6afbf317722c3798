"""Trainers driven by reward signals (the counterpart of ``mlagents.trainers.trainer.rl_trainer``)."""

from __future__ import annotations

import abc
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlagents_fast.trainers.agent_processor import AgentManagerQueue
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey
from mlagents_fast.trainers.stats import StatsAggregationMethod, StatsPropertyType
from mlagents_fast.trainers.timers import hierarchical_timer, timed
from mlagents_fast.trainers.trainer.trainer import Trainer
from mlagents_fast.trainers.trajectory import TrajectoryBatch

if TYPE_CHECKING:
    from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
    from mlagents_fast.trainers.model_saver.torch_model_saver import TorchModelSaver
    from mlagents_fast.trainers.optimizer.torch_optimizer import TorchOptimizer
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy

__all__ = ["RLTrainer", "next_interval_step"]

logger = logging.getLogger(__name__)


def next_interval_step(step: int, interval: int) -> int:
    """The first multiple of ``interval`` after ``step``: where a summary or checkpoint
    written every ``interval`` steps falls due next."""
    return step + (interval - step % interval)


class RLTrainer(Trainer):
    """Collects trajectories into an update buffer, updates on a schedule, checkpoints, reports.

    Trajectories reach a trainer in one of two ways:

    - ML-Agents' way: the trainer overrides :meth:`_process_trajectory`, calls this class's
      version first (it counts the steps, writes summaries and checkpoints when due) and then
      reads the trajectory (``trajectory.steps``, ``trajectory.to_agentbuffer()``, ...).
    - In batches (PPO, SAC): the trainer implements :meth:`_process_batch`, its one
      trajectory path. Trajectories queued together arrive as one
      :class:`~mlagents_fast.trainers.trajectory.TrajectoryBatch`; a single trajectory is a
      batch of one. A batch is split where a summary or checkpoint falls due, so those see
      exactly what they would see if trajectories came one at a time.

    Either way trajectories may be :class:`~mlagents_fast.trainers.trajectory.ColumnarTrajectory`
    (what the agent processor publishes) or ML-Agents-style ``Trajectory`` objects.
    """

    #: Whether the batch path reads the group mates' columns (multi-agent trainers): batches
    #: are built with them (``TrajectoryBatch.from_trajectories(group_fields=True)``).
    reads_group_fields = False

    #: The behavior's policy once the environment announced it (set by the subclasses).
    policy: TorchPolicy | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Reward signal name -> agent id -> reward collected in the agent's current episode.
        self.cumulative_returns_since_policy_update: list[float] = []
        self.collected_rewards: dict[str, dict[str, float]] = {"environment": defaultdict(float)}
        self.update_buffer: AgentBuffer = AgentBuffer()
        self._stats_reporter.add_property(
            StatsPropertyType.HYPERPARAMETERS, self.trainer_settings.as_dict()
        )
        self._next_save_step = 0
        self._next_summary_step = 0
        self.model_saver = self.create_model_saver(
            self.trainer_settings, self.artifact_path, self.load
        )
        # Called after every checkpoint (the controller saves training_status.json there).
        self.checkpoint_callback: Callable[[], None] | None = None
        self._has_warned_group_rewards = False

    def end_episode(self) -> None:
        """The environment was reset: drop every agent's running episode reward."""
        for rewards in self.collected_rewards.values():
            for agent_id in rewards:
                rewards[agent_id] = 0

    def _update_end_episode_stats(self, agent_id: str, optimizer: Any) -> None:
        for name, rewards in self.collected_rewards.items():
            episode_reward = rewards.get(agent_id, 0.0)
            if name == "environment":
                # A histogram too (TensorBoard's "Environment/Cumulative Reward_hist"), as ML-Agents.
                self.stats_reporter.add_stat(
                    "Environment/Cumulative Reward",
                    episode_reward,
                    aggregation=StatsAggregationMethod.HISTOGRAM,
                )
                self.cumulative_returns_since_policy_update.append(episode_reward)
                self.reward_buffer.appendleft(episode_reward)
            else:
                signal = optimizer.reward_signals[name]
                self.stats_reporter.add_stat(
                    f"Policy/{signal.name.capitalize()} Reward", episode_reward
                )
            rewards.pop(agent_id, None)

    def _clear_update_buffer(self) -> None:
        self.update_buffer.reset_agent()

    @abc.abstractmethod
    def _is_ready_update(self) -> bool:
        """Whether the update buffer holds enough experience to update."""

    def _attach_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: TorchPolicy) -> None:
        """Make ``policy`` this trainer's one policy, create its optimizer and load (or
        initialize) both through the model saver; shared by the on- and off-policy trainers."""
        if self.policy is not None:
            logger.warning(
                "Your environment contains multiple teams, but %s doesn't support adversarial "
                "games.",
                type(self).__name__,
            )
        self.policy = policy
        self.policies[parsed_behavior_id.behavior_id] = policy
        self.optimizer = self.create_optimizer()
        for reward_signal in self.optimizer.reward_signals:
            self.collected_rewards[reward_signal] = defaultdict(float)
        self.model_saver.register(self.policy)
        self.model_saver.register(self.optimizer)
        self.model_saver.initialize_or_load()

    @abc.abstractmethod
    def create_optimizer(self) -> TorchOptimizer:
        """Create the optimizer of :attr:`policy`."""

    @staticmethod
    def create_model_saver(trainer_settings: Any, model_path: str, load: bool) -> TorchModelSaver:
        from mlagents_fast.trainers.model_saver.torch_model_saver import TorchModelSaver

        return TorchModelSaver(trainer_settings, model_path, load)

    def _policy_mean_reward(self) -> float | None:
        rewards = self.cumulative_returns_since_policy_update
        if not rewards:
            return None
        return sum(rewards) / len(rewards)

    @timed
    def _checkpoint(self) -> Any:
        """Write ``<Behavior>-<step>.pt`` and ``.onnx`` and record them in the training status."""
        from mlagents_fast.trainers.policy.checkpoint_manager import (
            ModelCheckpoint,
            ModelCheckpointManager,
        )

        if len(self.policies) > 1:
            logger.warning(
                "Trainer has multiple policies, but default behavior only saves the first."
            )
        export_path, auxiliary_paths = self.model_saver.save_checkpoint(
            self.brain_name, self.get_step
        )
        new_checkpoint = ModelCheckpoint(
            int(self.get_step),
            export_path,
            self._policy_mean_reward(),
            time.time(),
            auxillary_file_paths=auxiliary_paths,
        )
        ModelCheckpointManager.add_checkpoint(
            self.brain_name, new_checkpoint, self.trainer_settings.keep_checkpoints
        )
        if self.checkpoint_callback is not None:
            self.checkpoint_callback()
        return new_checkpoint

    def save_model(self) -> None:
        """Checkpoint, then copy the checkpoint's ONNX to the final ``<Behavior>.onnx``."""
        from mlagents_fast.trainers.policy.checkpoint_manager import ModelCheckpointManager

        if not self.policies:
            logger.warning("Trainer has no policies, not saving anything.")
            return
        model_checkpoint = self._checkpoint()
        self.model_saver.copy_final_model(model_checkpoint.file_path)
        final_checkpoint = attrs.evolve(
            model_checkpoint, file_path=f"{self.model_saver.model_path}.onnx"
        )
        ModelCheckpointManager.track_final_checkpoint(self.brain_name, final_checkpoint)

    @abc.abstractmethod
    def _update_policy(self) -> bool:
        """Update the policy from the update buffer; True when it changed."""

    def _increment_step(self, n_steps: int, name_behavior_id: str) -> None:
        self._step += n_steps
        self._next_summary_step = self._get_next_interval_step(self.summary_freq)
        self._next_save_step = self._get_next_interval_step(
            self.trainer_settings.checkpoint_interval
        )
        policy = self.policies.get(name_behavior_id)
        if policy is not None:
            policy.increment_step(n_steps)

    def _get_next_interval_step(self, interval: int) -> int:
        return next_interval_step(self._step, interval)

    def _write_summary(self, step: int) -> None:
        self.stats_reporter.add_stat("Is Training", float(self.should_still_train))
        self.stats_reporter.write_stats(int(step))

    def _summary_due(self, step_after_process: int) -> bool:
        """Whether reaching ``step_after_process`` crosses the next summary step."""
        if self._next_summary_step == 0:  # not set yet
            self._next_summary_step = self._get_next_interval_step(self.summary_freq)
        return step_after_process >= self._next_summary_step

    def _checkpoint_due(self, step_after_process: int) -> bool:
        """Whether reaching ``step_after_process`` crosses the next checkpoint step."""
        if self._next_save_step == 0:  # not set yet
            self._next_save_step = self._get_next_interval_step(
                self.trainer_settings.checkpoint_interval
            )
        return step_after_process >= self._next_save_step

    def _maybe_write_summary(self, step_after_process: int) -> None:
        """Write the summary when this step count crosses its step (not for the very first
        trajectory: ML-Agents writes nothing at step 0)."""
        if self._summary_due(step_after_process) and self.get_step != 0:
            self._write_summary(self._next_summary_step)

    def _maybe_save_model(self, step_after_process: int) -> None:
        """Checkpoint when this step count crosses the checkpoint step (not at step 0)."""
        if self._checkpoint_due(step_after_process) and self.get_step != 0:
            self._checkpoint()

    # -- trajectories -------------------------------------------------------------------

    def _count_trajectory(self, trajectory: Any) -> None:
        """Count the trajectory's steps (``len(trajectory.steps)``, either form), writing a
        summary / checkpoint first when the count crosses one, as ML-Agents does."""
        steps = len(trajectory.steps)
        step_after = self.get_step + steps
        self._maybe_write_summary(step_after)
        self._maybe_save_model(step_after)
        self._increment_step(steps, trajectory.behavior_id)

    def _process_trajectory(self, trajectory: Any) -> None:
        """Take one trajectory.

        For a trainer written the ML-Agents way this counts the steps (and writes a summary /
        checkpoint when due); the subclass calls it first, then puts the trajectory into the
        update buffer. For a trainer with a batch path it is that path with a batch of one.
        """
        if self._processes_in_batches:
            self._process_in_batches([trajectory])
        else:
            self._count_trajectory(trajectory)

    def _process_batch(self, batch: TrajectoryBatch) -> None:
        """The one trajectory path of a trainer that processes trajectories in batches (its
        steps are already counted). Trainers written the ML-Agents way leave it alone."""
        raise NotImplementedError

    @property
    def _processes_in_batches(self) -> bool:
        """Whether the trainer has a batch path (it implements :meth:`_process_batch`)."""
        return type(self)._process_batch is not RLTrainer._process_batch

    def _process_trajectories(self, trajectories: list[Any]) -> None:
        """Take the trajectories read from one queue, in order: in batches when the trainer
        has a batch path (and no subclass took over :meth:`_process_trajectory`), else one
        at a time through :meth:`_process_trajectory`, as ML-Agents does."""
        if (
            self._processes_in_batches
            and type(self)._process_trajectory is RLTrainer._process_trajectory
        ):
            self._process_in_batches(trajectories)
        else:
            for trajectory in trajectories:
                self._process_trajectory(trajectory)

    def _process_in_batches(self, trajectories: list[Any]) -> None:
        """Count each trajectory and hand them to :meth:`_process_batch` together, except that
        the trajectories before one whose count makes a summary or checkpoint due are
        processed first, so the summary reports (and the checkpoint saves) what it would if
        trajectories came one at a time."""
        pending: list[Any] = []
        for trajectory in trajectories:
            step_after = self.get_step + len(trajectory.steps)
            if pending and (self._summary_due(step_after) or self._checkpoint_due(step_after)):
                self._process_batch(self._batch_of(pending))
                pending = []
            self._count_trajectory(trajectory)
            pending.append(trajectory)
        if pending:
            self._process_batch(self._batch_of(pending))

    def _batch_of(self, trajectories: list[Any]) -> TrajectoryBatch:
        return TrajectoryBatch.from_trajectories(trajectories, group_fields=self.reads_group_fields)

    def _should_process(self, trajectory_queue: AgentManagerQueue[Any]) -> bool:
        """Whether to take the queued trajectories now (subclasses may wait for a batch)."""
        return True

    # -- helpers of the trajectory paths --------------------------------------------------

    def _sequence_length(self) -> int:
        memory = self.trainer_settings.network_settings.memory
        return int(memory.sequence_length) if memory is not None else 1

    def _append_to_update_buffer(self, agentbuffer_trajectory: AgentBuffer) -> None:
        """Append a trajectory's rows to the update buffer, padded to whole sequences for a
        recurrent network; nothing once training stopped (so inference does not pile up)."""
        if self.should_still_train:
            agentbuffer_trajectory.resequence_and_append(
                self.update_buffer, training_length=self._sequence_length()
            )

    def _append_batch_to_update_buffer(self, batch: TrajectoryBatch) -> None:
        """Append a batch's rows; a recurrent network pads each trajectory to whole
        sequences on its own (a sequence never spans two trajectories)."""
        if self._sequence_length() == 1:
            self._append_to_update_buffer(batch.buffer)
        else:
            for index in range(len(batch)):
                self._append_to_update_buffer(batch.slice(index))

    def _credit_rewards(self, batch: TrajectoryBatch, rewards: dict[str, np.ndarray]) -> None:
        """Add each trajectory's reward per signal (``rewards``: name -> one value per row,
        "environment" included) to its agent's episode totals, in trajectory order, and
        report the episodes that ended (an agent may end one and start the next in a batch)."""
        totals = {name: batch.sums(per_step).tolist() for name, per_step in rewards.items()}
        ended = batch.done_reached.tolist()
        for index, agent_id in enumerate(batch.agent_ids):
            for name, signal_totals in totals.items():
                self.collected_rewards[name][agent_id] += signal_totals[index]
            if ended[index]:
                self._update_end_episode_stats(agent_id, self.optimizer)

    def _warn_if_group_reward(self, buffer: AgentBuffer) -> None:
        """Warn once when agents receive group rewards this trainer does not learn from."""
        if self._has_warned_group_rewards or BufferKey.GROUP_REWARD not in buffer:
            return
        if np.any(np.asarray(buffer[BufferKey.GROUP_REWARD].get_batch())):
            logger.warning(
                "An agent received a group reward, but %s is not a multi-agent trainer: it "
                "adds the group reward to the agent's own; use the POCA trainer "
                "(trainer_type: poca) for best results.",
                type(self).__name__,
            )
            self._has_warned_group_rewards = True

    def advance(self) -> None:
        """Process every queued trajectory, then update and publish the policy if ready."""
        with hierarchical_timer("process_trajectory"):
            for trajectory_queue in self.trajectory_queues:
                if not self._should_process(trajectory_queue):
                    continue
                trajectories = []
                # At most the current queue length, so a fast producer cannot starve updates.
                for _ in range(trajectory_queue.qsize()):
                    try:
                        trajectories.append(trajectory_queue.get_nowait())
                    except AgentManagerQueue.Empty:
                        break
                if trajectories:
                    self._process_trajectories(trajectories)
                elif self.threaded:
                    time.sleep(0.0001)  # yield instead of busy-waiting
        # Once training stopped the update buffer is kept as it is (nothing is appended any
        # more): SAC saves it as the replay buffer when the run ends, as ML-Agents does.
        if self.should_still_train and self._is_ready_update():
            with hierarchical_timer("_update_policy"):
                if self._update_policy():
                    for policy_queue in self.policy_queues:
                        policy_queue.put(self.get_policy(policy_queue.behavior_id))
