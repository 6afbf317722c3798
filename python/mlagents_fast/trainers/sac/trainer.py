"""The SAC trainer (the counterpart of ``mlagents.trainers.sac.trainer``).

Soft Actor-Critic: Haarnoja et al. 2018, https://arxiv.org/abs/1801.01290 (and 1812.05905 for
entropy tuning). Trajectories go into the replay buffer; updates follow :class:`OffPolicyTrainer`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.settings import SACSettings  # re-exported here as in ML-Agents
from mlagents_fast.trainers.trainer.off_policy_trainer import OffPolicyTrainer

__all__ = ["TRAINER_NAME", "SACSettings", "SACTrainer"]

logger = logging.getLogger(__name__)

TRAINER_NAME = "sac"


class SACTrainer(OffPolicyTrainer):
    """Soft Actor-Critic with twin Q networks and entropy tuning."""

    def _process_trajectory(self, trajectory: Any) -> None:
        super()._process_trajectory(trajectory)
        agent_id = trajectory.agent_id
        buffer = trajectory.to_agentbuffer()
        if self.is_training:
            self.policy.actor.update_normalization(buffer)
            self.optimizer.critic.update_normalization(buffer)

        self.collected_rewards["environment"][agent_id] += float(
            np.sum(buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch())
        )
        for name, reward_signal in self.optimizer.reward_signals.items():
            rewards = reward_signal.evaluate(buffer) * reward_signal.strength
            self.collected_rewards[name][agent_id] += float(np.sum(rewards))

        value_estimates, _, value_memories = self.optimizer.get_trajectory_value_estimates(
            buffer, trajectory.next_obs, trajectory.done_reached
        )
        if value_memories is not None:
            buffer[BufferKey.CRITIC_MEMORY].set(value_memories)
        for name, values in value_estimates.items():
            self._stats_reporter.add_stat(
                f"Policy/{self.optimizer.reward_signals[name].name.capitalize()} Value",
                float(np.mean(values)),
            )
        # An episode cut by max step did not terminate: its last transition bootstraps.
        if trajectory.interrupted:
            dones = np.array(buffer[BufferKey.DONE].get_batch(), dtype=bool)
            dones[-1] = False
            buffer[BufferKey.DONE].set(dones)

        buffer.resequence_and_append(
            self.update_buffer, batch_size=None, training_length=self.policy.sequence_length
        )
        if trajectory.done_reached:
            self._update_end_episode_stats(agent_id, self.optimizer)

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
