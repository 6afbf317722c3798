"""On-policy trainers such as PPO (the counterpart of ``mlagents.trainers.trainer.on_policy_trainer``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np

from mlagents_fast.trainers.batches import minibatches
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.trainer.rl_trainer import RLTrainer

__all__ = ["OnPolicyTrainer"]

logger = logging.getLogger(__name__)


class OnPolicyTrainer(RLTrainer):
    """Fills the update buffer to buffer_size, then runs num_epoch passes of minibatch updates."""

    def __init__(
        self,
        behavior_name: str,
        reward_buff_cap: int,
        trainer_settings: Any,
        training: bool,
        load: bool,
        seed: int,
        artifact_path: str,
    ) -> None:
        """
        :param behavior_name: behavior name this trainer trains.
        :param reward_buff_cap: how many recent episode rewards the reward buffer keeps.
        :param trainer_settings: its TrainerSettings.
        :param training: False for --inference.
        :param load: resume from the checkpoint in ``artifact_path``.
        :param seed: seed of the policy's initialization.
        :param artifact_path: results/<run-id>/<behavior name>.
        """
        super().__init__(
            behavior_name, trainer_settings, training, load, artifact_path, reward_buff_cap
        )
        self.hyperparameters = self.trainer_settings.hyperparameters
        self.seed = seed
        self.policy: Any = None
        self.optimizer: Any = None

    # A non-threaded trainer with a batch path lets trajectories queue up (while the
    # environment keeps stepping with the same policy, so the data stays on-policy) and
    # processes them as one batch.
    MAX_QUEUED_TRAJECTORIES = 64

    def _should_process(self, trajectory_queue: Any) -> bool:
        if not self._processes_in_batches or self.threaded or not self.should_still_train:
            return True
        if trajectory_queue.qsize() >= self.MAX_QUEUED_TRAJECTORIES:
            return True
        # Process as soon as the queued steps would make an update ready, or make a summary
        # or checkpoint due (so those happen on time), or reach max_steps.
        step_after = self.get_step + trajectory_queue.queued_length
        return (
            self.update_buffer.num_experiences + trajectory_queue.queued_length
            > self.hyperparameters.buffer_size
            or self._summary_due(step_after)
            or self._checkpoint_due(step_after)
            or step_after > self.get_max_steps
        )

    def _is_ready_update(self) -> bool:
        return self.update_buffer.num_experiences > self.hyperparameters.buffer_size

    def _update_policy(self) -> bool:
        """num_epoch shuffled passes of minibatch updates over the whole update buffer."""
        self.cumulative_returns_since_policy_update.clear()
        sequence_length = self.policy.sequence_length
        # batch_size must be a whole number of sequences, and at least one.
        batch_size = (
            self.hyperparameters.batch_size - self.hyperparameters.batch_size % sequence_length
        )
        batch_size = max(batch_size, sequence_length)
        n_sequences = max(int(self.hyperparameters.batch_size / sequence_length), 1)

        advantages = np.asarray(
            self.update_buffer[BufferKey.ADVANTAGES].get_batch(), dtype=np.float32
        )
        self.update_buffer[BufferKey.ADVANTAGES].set(
            (advantages - advantages.mean()) / (advantages.std() + 1e-10)
        )
        batch_update_stats: dict[str, list[float]] = defaultdict(list)
        for _ in range(self.hyperparameters.num_epoch):
            self.update_buffer.shuffle(sequence_length=sequence_length)
            # Typed minibatches (ExperienceBatch) showing the shuffled rows, no copies.
            for minibatch in minibatches(self.update_buffer, batch_size):
                update_stats = self.optimizer.update(minibatch, n_sequences)
                update_stats.update(self.optimizer.update_reward_signals(minibatch))
                for stat_name, value in update_stats.items():
                    batch_update_stats[stat_name].append(value)
        for stat_name, values in batch_update_stats.items():
            self._stats_reporter.add_stat(stat_name, float(np.mean(values)))
        if self.optimizer.bc_module:
            # Behavioral cloning after the policy update, as ML-Agents.
            for stat_name, value in self.optimizer.bc_module.update().items():
                self._stats_reporter.add_stat(stat_name, value)
        self._clear_update_buffer()
        return True

    def add_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: Any) -> None:
        """Attach ``policy``, create its optimizer and load (or initialize) its weights."""
        self._attach_policy(parsed_behavior_id, policy)
        # A resumed policy knows its step: continue counting from there.
        self._step = policy.get_current_step()
