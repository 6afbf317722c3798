"""Trainers driven by reward signals (the counterpart of ``mlagents.trainers.trainer.rl_trainer``)."""

from __future__ import annotations

import abc
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from mlagents_fast.trainers.agent_processor import AgentManagerQueue
from mlagents_fast.trainers.buffer import AgentBuffer
from mlagents_fast.trainers.stats import StatsPropertyType
from mlagents_fast.trainers.timers import hierarchical_timer, timed
from mlagents_fast.trainers.trainer.trainer import Trainer

__all__ = ["RLTrainer", "concatenate_trajectories"]

logger = logging.getLogger(__name__)


def concatenate_trajectories(trajectories: list[Any]) -> tuple[AgentBuffer, np.ndarray]:
    """One AgentBuffer holding the columnar trajectories one after another, and their lengths.

    Each field is built with one concatenation; the next-observation (and next-action) rows at
    the end of every trajectory come from that trajectory's own ``next_obs`` (zeros for the
    next action), exactly as if each trajectory had been converted on its own.
    """
    from mlagents_fast.trainers.buffer import BufferKey, ObservationKeyPrefix
    from mlagents_fast.trainers.trajectory import ColumnarTrajectory

    lengths = np.array([len(t) for t in trajectories], dtype=np.int64)

    def cat(name: str) -> Any:
        parts = [getattr(t, name) for t in trajectories]
        if any(part is None for part in parts):
            return None
        return np.concatenate(parts)

    num_obs = len(trajectories[0].obs)
    combined = ColumnarTrajectory(
        obs=[np.concatenate([t.obs[k] for t in trajectories]) for k in range(num_obs)],
        next_obs=list(trajectories[-1].next_obs),
        rewards=cat("rewards"),
        dones=cat("dones"),
        continuous_actions=cat("continuous_actions"),
        discrete_actions=cat("discrete_actions"),
        continuous_log_probs=cat("continuous_log_probs"),
        discrete_log_probs=cat("discrete_log_probs"),
        action_masks=cat("action_masks"),
        prev_actions=cat("prev_actions"),
        memories=cat("memories"),
        group_rewards=cat("group_rewards"),
        interrupted=trajectories[-1].interrupted,
        agent_id=trajectories[-1].agent_id,
        behavior_id=trajectories[-1].behavior_id,
    )
    buffer = combined.to_agentbuffer()
    ends = np.cumsum(lengths)[:-1] - 1  # the last trajectory's end is already right
    if len(ends):
        for k in range(num_obs):
            field = buffer[(ObservationKeyPrefix.NEXT_OBSERVATION, k)]
            rows = np.array(field.get_batch())
            rows[ends] = np.stack([np.asarray(t.next_obs[k]) for t in trajectories[:-1]])
            field.set(rows)
        for key in (BufferKey.NEXT_CONT_ACTION, BufferKey.NEXT_DISC_ACTION):
            field = buffer[key]
            rows = np.array(field.get_batch())
            rows[ends] = 0
            field.set(rows)
    return buffer, lengths


class RLTrainer(Trainer):
    """Collects trajectories into an update buffer, updates on a schedule, checkpoints, reports."""

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

    def end_episode(self) -> None:
        """The environment was reset: drop every agent's running episode reward."""
        for rewards in self.collected_rewards.values():
            for agent_id in rewards:
                rewards[agent_id] = 0

    def _update_end_episode_stats(self, agent_id: str, optimizer: Any) -> None:
        for name, rewards in self.collected_rewards.items():
            episode_reward = rewards.get(agent_id, 0.0)
            if name == "environment":
                self.stats_reporter.add_stat("Environment/Cumulative Reward", episode_reward)
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

    def _attach_policy(self, parsed_behavior_id: Any, policy: Any) -> None:
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
    def create_optimizer(self) -> Any:
        """Create the optimizer of :attr:`policy`."""

    @staticmethod
    def create_model_saver(trainer_settings: Any, model_path: str, load: bool) -> Any:
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
        return self._step + (interval - self._step % interval)

    def _write_summary(self, step: int) -> None:
        self.stats_reporter.add_stat("Is Training", float(self.should_still_train))
        self.stats_reporter.write_stats(int(step))

    def _process_trajectory(self, trajectory: Any) -> None:
        """Count the trajectory's steps; write a summary / checkpoint when an interval is crossed.

        Subclasses call this first, then put the trajectory into the update buffer.
        """
        step_after = self.get_step + len(trajectory)
        self._maybe_write_summary(step_after)
        self._maybe_save_model(step_after)
        self._increment_step(len(trajectory), trajectory.behavior_id)

    def _should_process(self, trajectory_queue: AgentManagerQueue[Any]) -> bool:
        """Whether to take the queued trajectories now (subclasses may wait for a batch)."""
        return True

    def _process_trajectories(self, trajectories: list[Any]) -> None:
        """Process a batch of trajectories taken from one queue, in order. Subclasses may
        process the batch at once (one critic pass, one GAE call)."""
        for trajectory in trajectories:
            self._process_trajectory(trajectory)

    def _maybe_write_summary(self, step_after_process: int) -> None:
        if self._next_summary_step == 0:  # no summary at step 0
            self._next_summary_step = self._get_next_interval_step(self.summary_freq)
        if step_after_process >= self._next_summary_step and self.get_step != 0:
            self._write_summary(self._next_summary_step)

    def _maybe_save_model(self, step_after_process: int) -> None:
        if self._next_save_step == 0:  # no checkpoint at step 0
            self._next_save_step = self._get_next_interval_step(
                self.trainer_settings.checkpoint_interval
            )
        if step_after_process >= self._next_save_step and self.get_step != 0:
            self._checkpoint()

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
        if self.should_still_train:
            if self._is_ready_update():
                with hierarchical_timer("_update_policy"):
                    if self._update_policy():
                        for policy_queue in self.policy_queues:
                            policy_queue.put(self.get_policy(policy_queue.behavior_id))
        else:
            self._clear_update_buffer()
