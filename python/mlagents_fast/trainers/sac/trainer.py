"""The SAC trainer (the counterpart of ``mlagents.trainers.sac.trainer``).

Soft Actor-Critic: Haarnoja et al. 2018, https://arxiv.org/abs/1801.01290 (and 1812.05905 for
entropy tuning). Trajectories go into the replay buffer in batches (a single trajectory is a
batch of one), with ``DONE`` set only where an episode terminated (a truncated episode's last
transition bootstraps); updates follow :class:`OffPolicyTrainer`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.settings import SACSettings  # re-exported here as in ML-Agents
from mlagents_fast.trainers.trainer.off_policy_trainer import OffPolicyTrainer
from mlagents_fast.trainers.trajectory import TrajectoryBatch

__all__ = ["TRAINER_NAME", "SACSettings", "SACTrainer"]

logger = logging.getLogger(__name__)

TRAINER_NAME = "sac"


class SACTrainer(OffPolicyTrainer):
    """Soft Actor-Critic with twin Q networks and entropy tuning."""

    def _process_batch(self, batch: TrajectoryBatch) -> None:
        """Normalization, reward and value reports, critic memories (recurrent), then the
        steps into the replay buffer and the episode rewards of each trajectory, in order."""
        buffer = batch.buffer
        self._warn_if_group_reward(buffer)
        if self.is_training:
            self.policy.actor.update_normalization(buffer)
            self.optimizer.critic.update_normalization(buffer)

        # Rewards are evaluated again at update time; here they are only reported.
        rewards = {
            "environment": np.asarray(
                buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch(), dtype=np.float32
            )
        }
        for name, reward_signal in self.optimizer.reward_signals.items():
            rewards[name] = np.asarray(
                reward_signal.evaluate(buffer) * reward_signal.strength, dtype=np.float32
            )

        estimates = self.optimizer.get_batch_value_estimates(
            buffer, batch.offsets, batch.next_obs, batch.agent_ids, batch.done_reached
        )
        if estimates.memories is not None:
            buffer[BufferKey.CRITIC_MEMORY].set(estimates.memories)
        for name, values in estimates.values.items():
            stat_name = f"Policy/{self.optimizer.reward_signals[name].name.capitalize()} Value"
            for mean in batch.means(values).tolist():
                self._stats_reporter.add_stat(stat_name, mean)

        self._append_batch_to_update_buffer(batch)
        self._credit_rewards(batch, rewards)

    def create_optimizer(self) -> Any:
        from mlagents_fast.trainers.sac.optimizer_torch import TorchSACOptimizer

        return TorchSACOptimizer(self.policy, self.trainer_settings)

    def create_policy(self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: Any) -> Any:
        """A TorchPolicy with a tanh-squashed, state-conditioned Gaussian actor."""
        from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
        from mlagents_fast.trainers.torch_entities.networks import SimpleActor

        return TorchPolicy(
            self.seed,
            behavior_spec,
            self.trainer_settings.network_settings,
            SimpleActor,
            {"conditional_sigma": True, "tanh_squash": True},
        )

    def get_policy(self, name_behavior_id: str) -> Any:
        return self.policy

    @staticmethod
    def get_trainer_name() -> str:
        return TRAINER_NAME
