"""Off-policy trainers such as SAC (the counterpart of ``mlagents.trainers.trainer.off_policy_trainer``)."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from typing import Any

import numpy as np

from mlagents_fast.exceptions import CorruptFileError, InvalidArgumentError, StorageIOError
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import FILE_KIND as AGENT_BUFFER_FILE_KIND
from mlagents_fast.trainers.buffer import AgentBuffer, RewardSignalUtil
from mlagents_fast.trainers.exception import ResultsFileError
from mlagents_fast.trainers.replay_buffer import ReplayUpdateBuffer
from mlagents_fast.trainers.timers import timed
from mlagents_fast.trainers.trainer.rl_trainer import RLTrainer
from mlagents_fast.trainers.trajectory import TrajectoryBatch

__all__ = ["OffPolicyTrainer"]

logger = logging.getLogger(__name__)

# Truncate the replay buffer to this fraction of buffer_size when it overflows, so truncation
# does not happen at every update.
BUFFER_TRUNCATE_PERCENT = 0.8

REPLAY_BUFFER_FILE = "last_replay_buffer.hdf5"
#: Field-file kind (docs/file-format.md) of REPLAY_BUFFER_FILE: what the update buffer saves.
REPLAY_BUFFER_FILE_KIND = AGENT_BUFFER_FILE_KIND


class OffPolicyTrainer(RLTrainer):
    """Keeps experience in a replay buffer and updates every steps_per_update steps."""

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
        :param load: resume from the checkpoint (and replay buffer) in ``artifact_path``.
        :param seed: seed of the policy's initialization.
        :param artifact_path: results/<run-id>/<behavior name>.
        """
        super().__init__(
            behavior_name, trainer_settings, training, load, artifact_path, reward_buff_cap
        )
        self.seed = seed
        self.policy: Any = None
        self.optimizer: Any = None
        self.hyperparameters = self.trainer_settings.hyperparameters
        self._step = 0
        # Counts start at 1 so the first ratio below is finite.
        self.update_steps = 1
        self.reward_signal_update_steps = 1
        self.steps_per_update = self.hyperparameters.steps_per_update
        self.reward_signal_steps_per_update = self.hyperparameters.reward_signal_steps_per_update
        self.checkpoint_replay_buffer = self.hyperparameters.save_replay_buffer
        # The experience lives in the Rust replay ring (trainers/replay_buffer.py), read
        # and written through the AgentBuffer methods used here.
        self.update_buffer: ReplayUpdateBuffer = ReplayUpdateBuffer(  # type: ignore[assignment]
            self.hyperparameters.buffer_size, sequence_length=self._sequence_length()
        )

    def _checkpoint(self) -> Any:
        checkpoint = super()._checkpoint()
        if self.checkpoint_replay_buffer:
            self.save_replay_buffer()
        return checkpoint

    def save_model(self) -> None:
        """Save the final model, and the replay buffer when save_replay_buffer is on."""
        super().save_model()
        if self.checkpoint_replay_buffer:
            self.save_replay_buffer()

    def save_replay_buffer(self) -> None:
        """Write the replay buffer to ``<artifact_path>/last_replay_buffer.hdf5`` (atomically)."""
        path = os.path.join(self.artifact_path, REPLAY_BUFFER_FILE)
        logger.info("Saving experience replay buffer to %s", path)
        self.update_buffer.save_to_file(path)

    def load_replay_buffer(self) -> None:
        """Load the replay buffer saved by :meth:`save_replay_buffer`, if there is one."""
        path = os.path.join(self.artifact_path, REPLAY_BUFFER_FILE)
        if not os.path.exists(path):
            logger.warning("Replay buffer was not found at %s; starting with an empty one.", path)
            return
        logger.info("Loading experience replay buffer from %s", path)
        try:
            self.update_buffer.load_from_file(path)
        except (CorruptFileError, InvalidArgumentError, StorageIOError) as err:
            # One line naming the file for the command line (exit status 2), not a traceback.
            raise ResultsFileError(
                f"{' '.join(str(err).split())}. Delete it to resume with an empty replay "
                "buffer, or restore it from a backup.",
                path,
            ) from err
        logger.info(
            "Experience replay buffer has %d experiences.", self.update_buffer.num_experiences
        )

    def _append_to_update_buffer(self, agentbuffer_trajectory: AgentBuffer) -> None:
        """Append one trajectory's steps to the replay buffer (padded to whole sequences
        for a recurrent network); nothing once training stopped."""
        if self.should_still_train:
            self.update_buffer.append_trajectory(agentbuffer_trajectory)

    def _append_batch_to_update_buffer(self, batch: TrajectoryBatch) -> None:
        """Append the steps of a batch's trajectories to the replay buffer in one call."""
        if self.should_still_train:
            self.update_buffer.append_batch(batch)

    def _is_ready_update(self) -> bool:
        return (
            self.update_buffer.num_experiences >= self.hyperparameters.batch_size
            and self._step >= self.hyperparameters.buffer_init_steps
        )

    def maybe_load_replay_buffer(self) -> None:
        if self.load and self.checkpoint_replay_buffer:
            self.load_replay_buffer()

    @timed
    def _update_policy(self) -> bool:
        """Sample minibatches until the update count catches up with steps / steps_per_update."""
        has_updated = False
        self.cumulative_returns_since_policy_update.clear()
        sequence_length = self.policy.sequence_length
        n_sequences = max(int(self.hyperparameters.batch_size / sequence_length), 1)
        batch_update_stats: dict[str, list[float]] = defaultdict(list)
        while (
            self._step - self.hyperparameters.buffer_init_steps
        ) / self.update_steps > self.steps_per_update:
            if self.update_buffer.num_experiences < self.hyperparameters.batch_size:
                break
            minibatch = self.update_buffer.sample_mini_batch(
                self.hyperparameters.batch_size, sequence_length=sequence_length
            )
            for name, signal in self.optimizer.reward_signals.items():
                minibatch[RewardSignalUtil.rewards_key(name)] = (
                    signal.evaluate(minibatch) * signal.strength
                )
            update_stats = self.optimizer.update(minibatch, n_sequences)
            for stat_name, value in update_stats.items():
                batch_update_stats[stat_name].append(value)
            self.update_steps += 1
            has_updated = True
            if self.optimizer.bc_module:
                # Behavioral cloning after each policy update, as ML-Agents.
                for stat_name, value in self.optimizer.bc_module.update().items():
                    batch_update_stats[stat_name].append(value)
        for stat_name, values in batch_update_stats.items():
            self._stats_reporter.add_stat(stat_name, float(np.mean(values)))
        if self.update_buffer.num_experiences > self.hyperparameters.buffer_size:
            self.update_buffer.truncate(
                int(self.hyperparameters.buffer_size * BUFFER_TRUNCATE_PERCENT)
            )
        self._update_reward_signals()
        return has_updated

    def _update_reward_signals(self) -> None:
        """Train the reward signals' own models (curiosity, RND, GAIL's discriminator) on
        replay samples until their update count catches up with steps /
        reward_signal_steps_per_update, separately from the policy (as ML-Agents)."""
        trainable = [s for s in self.optimizer.reward_signals.values() if s.get_modules()]
        sequence_length = self.policy.sequence_length
        batch_update_stats: dict[str, list[float]] = defaultdict(list)
        while (
            self._step - self.hyperparameters.buffer_init_steps
        ) / self.reward_signal_update_steps > self.reward_signal_steps_per_update:
            if trainable and self.update_buffer.num_experiences >= sequence_length:
                minibatch = self.update_buffer.sample_mini_batch(
                    self.hyperparameters.batch_size, sequence_length=sequence_length
                )
                for signal in trainable:
                    for stat_name, value in signal.update(minibatch).items():
                        batch_update_stats[stat_name].append(value)
            self.reward_signal_update_steps += 1
        for stat_name, values in batch_update_stats.items():
            self._stats_reporter.add_stat(stat_name, float(np.mean(values)))

    def add_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: Any) -> None:
        """Attach ``policy``, create its optimizer, load weights (and the replay buffer on resume)."""
        self._attach_policy(parsed_behavior_id, policy)
        self._step = policy.get_current_step()
        self.maybe_load_replay_buffer()
        # Updates already done for the steps taken before a resume.
        self.update_steps = int(max(1, self._step / self.steps_per_update))
        self.reward_signal_update_steps = int(
            max(1, self._step / self.reward_signal_steps_per_update)
        )
