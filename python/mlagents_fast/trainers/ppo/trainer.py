"""The PPO trainer (the counterpart of ``mlagents.trainers.ppo.trainer``).

Per trajectory: update observation normalization, estimate values (bootstrapping a cut or
interrupted trajectory from its next observation), evaluate reward signals, compute GAE and
returns in Rust, and append to the update buffer. Updates follow :class:`OnPolicyTrainer`.
Proximal Policy Optimization: Schulman et al. 2017, https://arxiv.org/abs/1707.06347.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey, RewardSignalUtil
from mlagents_fast.trainers.trainer.on_policy_trainer import OnPolicyTrainer
from mlagents_fast.trainers.trainer.trainer_utils import get_gae

__all__ = ["TRAINER_NAME", "PPOTrainer"]

logger = logging.getLogger(__name__)

TRAINER_NAME = "ppo"


def _scalar(value: Any) -> float:
    """A bootstrap value as a float (optimizers return it as a 0-d or 1-element array)."""
    return float(np.asarray(value, dtype=np.float32).reshape(-1)[0])


class PPOTrainer(OnPolicyTrainer):
    """Proximal Policy Optimization with GAE advantages."""

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
        super().__init__(
            behavior_name, reward_buff_cap, trainer_settings, training, load, seed, artifact_path
        )
        self.shared_critic = bool(getattr(self.hyperparameters, "shared_critic", False))

    def _process_trajectory(self, trajectory: Any) -> None:
        super()._process_trajectory(trajectory)
        agent_id = trajectory.agent_id
        buffer = trajectory.to_agentbuffer()
        if self.is_training:
            self.policy.actor.update_normalization(buffer)
            self.optimizer.critic.update_normalization(buffer)

        value_estimates, value_next, value_memories = self.optimizer.get_trajectory_value_estimates(
            buffer, trajectory.next_obs, trajectory.done_reached and not trajectory.interrupted
        )
        if value_memories is not None:
            buffer[BufferKey.CRITIC_MEMORY].set(value_memories)
        for name, values in value_estimates.items():
            buffer[RewardSignalUtil.value_estimates_key(name)].extend(values)
            self._stats_reporter.add_stat(
                f"Policy/{self.optimizer.reward_signals[name].name.capitalize()} Value Estimate",
                float(np.mean(values)),
            )

        self.collected_rewards["environment"][agent_id] += float(
            np.sum(buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch())
        )
        for name, reward_signal in self.optimizer.reward_signals.items():
            rewards = reward_signal.evaluate(buffer) * reward_signal.strength
            buffer[RewardSignalUtil.rewards_key(name)].extend(rewards)
            self.collected_rewards[name][agent_id] += float(np.sum(rewards))

        all_advantages = []
        all_returns = []
        for name, reward_signal in self.optimizer.reward_signals.items():
            local_rewards = np.asarray(
                buffer[RewardSignalUtil.rewards_key(name)].get_batch(), dtype=np.float32
            )
            local_values = np.asarray(
                buffer[RewardSignalUtil.value_estimates_key(name)].get_batch(), dtype=np.float32
            )
            advantages = get_gae(
                rewards=local_rewards,
                value_estimates=local_values,
                value_next=_scalar(value_next[name]),
                gamma=reward_signal.gamma,
                lambd=self.hyperparameters.lambd,
            )
            returns = advantages + local_values
            buffer[RewardSignalUtil.returns_key(name)].set(returns)
            buffer[RewardSignalUtil.advantage_key(name)].set(advantages)
            all_advantages.append(advantages)
            all_returns.append(returns)
        buffer[BufferKey.ADVANTAGES].set(
            np.mean(np.asarray(all_advantages, dtype=np.float32), axis=0)
        )
        buffer[BufferKey.DISCOUNTED_RETURNS].set(
            np.mean(np.asarray(all_returns, dtype=np.float32), axis=0)
        )

        buffer.resequence_and_append(
            self.update_buffer, batch_size=None, training_length=self.policy.sequence_length
        )
        if trajectory.done_reached:
            self._update_end_episode_stats(agent_id, self.optimizer)

    def create_optimizer(self) -> Any:
        from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer

        return TorchPPOOptimizer(self.policy, self.trainer_settings)

    def create_policy(self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: Any) -> Any:
        """A TorchPolicy with an unsquashed Gaussian (continuous) / categorical actor."""
        from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
        from mlagents_fast.trainers.torch_entities.networks import SimpleActor

        actor_kwargs = {"conditional_sigma": False, "tanh_squash": False}
        actor_cls: Any = SimpleActor
        if self.shared_critic:
            from mlagents_fast.trainers.torch_entities.networks import SharedActorCritic

            actor_cls = SharedActorCritic
            actor_kwargs["stream_names"] = [
                key.value for key in self.trainer_settings.reward_signals
            ]
        return TorchPolicy(
            self.seed,
            behavior_spec,
            self.trainer_settings.network_settings,
            actor_cls,
            actor_kwargs,
        )

    def get_policy(self, name_behavior_id: str) -> Any:
        return self.policy

    @staticmethod
    def get_trainer_name() -> str:
        return TRAINER_NAME
