"""The PPO trainer (the counterpart of ``mlagents.trainers.ppo.trainer``).

Trajectories are processed in batches (a single trajectory is a batch of one): update
observation normalization, estimate values (one critic pass; bootstrapping a cut or
truncated trajectory from its next observation), evaluate reward signals, compute GAE and
returns for every trajectory in one Rust call, and append to the update buffer. Updates follow
:class:`OnPolicyTrainer`.
Proximal Policy Optimization: Schulman et al. 2017, https://arxiv.org/abs/1707.06347.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey, RewardSignalUtil
from mlagents_fast.trainers.settings import PPOSettings  # re-exported here as in ML-Agents
from mlagents_fast.trainers.trainer.on_policy_trainer import OnPolicyTrainer
from mlagents_fast.trainers.trainer.trainer_utils import compute_gae_ragged
from mlagents_fast.trainers.trajectory import TrajectoryBatch

if TYPE_CHECKING:
    from mlagents_fast.envs.base_env import BehaviorSpec
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
    from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer

__all__ = ["TRAINER_NAME", "PPOSettings", "PPOTrainer"]

logger = logging.getLogger(__name__)

TRAINER_NAME = "ppo"


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

    def _process_batch(self, batch: TrajectoryBatch) -> None:
        """Values, rewards, advantages and returns of every step of the batch, into the
        update buffer; then the episode rewards of each trajectory, in order."""
        buffer = batch.buffer
        self._warn_if_group_reward(buffer)
        if self.is_training:
            self.policy.actor.update_normalization(buffer)
            self.optimizer.critic.update_normalization(buffer)
        estimates = self.optimizer.get_batch_value_estimates(
            buffer, batch.offsets, batch.next_obs, batch.agent_ids, batch.done_reached
        )
        if estimates.memories is not None:
            buffer[BufferKey.CRITIC_MEMORY].set(estimates.memories)

        rewards = {
            "environment": np.asarray(
                buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch(), dtype=np.float32
            )
        }
        all_advantages = []
        all_returns = []
        for name, reward_signal in self.optimizer.reward_signals.items():
            values = estimates.values[name]
            buffer[RewardSignalUtil.value_estimates_key(name)].extend(values)
            stat_name = f"Policy/{reward_signal.name.capitalize()} Value Estimate"
            for mean in batch.means(values).tolist():
                self._stats_reporter.add_stat(stat_name, mean)
            signal_rewards = np.asarray(
                reward_signal.evaluate(buffer) * reward_signal.strength, dtype=np.float32
            )
            buffer[RewardSignalUtil.rewards_key(name)].extend(signal_rewards)
            rewards[name] = signal_rewards
            # A terminated trajectory's next state is worth 0 (unless the signal ignores
            # episode ends); a truncated or cut one bootstraps from its next observation.
            value_next = estimates.next_values[name]
            if not reward_signal.ignore_done:
                value_next = np.where(batch.terminated, np.float32(0.0), value_next)
            advantages, returns = compute_gae_ragged(
                signal_rewards,
                values,
                batch.offsets,
                value_next,
                gamma=reward_signal.gamma,
                lambd=self.hyperparameters.lambd,
            )
            buffer[RewardSignalUtil.returns_key(name)].set(returns)
            buffer[RewardSignalUtil.advantage_key(name)].set(advantages)
            all_advantages.append(advantages)
            all_returns.append(returns)
        buffer[BufferKey.ADVANTAGES].set(np.mean(np.asarray(all_advantages), axis=0))
        buffer[BufferKey.DISCOUNTED_RETURNS].set(np.mean(np.asarray(all_returns), axis=0))
        self._append_batch_to_update_buffer(batch)
        self._credit_rewards(batch, rewards)

    def create_optimizer(self) -> TorchPPOOptimizer:
        from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer

        return TorchPPOOptimizer(self.policy, self.trainer_settings)

    def create_policy(
        self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: BehaviorSpec
    ) -> TorchPolicy:
        """A TorchPolicy with an unsquashed Gaussian (continuous) / categorical actor."""
        from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
        from mlagents_fast.trainers.torch_entities.networks import SimpleActor

        actor_kwargs: dict[str, Any] = {"conditional_sigma": False, "tanh_squash": False}
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

    def get_policy(self, name_behavior_id: str) -> TorchPolicy:
        return self.policy

    @staticmethod
    def get_trainer_name() -> str:
        return TRAINER_NAME
