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
from mlagents_fast.trainers.settings import PPOSettings  # re-exported here as in ML-Agents
from mlagents_fast.trainers.trainer.on_policy_trainer import OnPolicyTrainer
from mlagents_fast.trainers.trainer.rl_trainer import RLTrainer, concatenate_trajectories
from mlagents_fast.trainers.trainer.trainer_utils import compute_gae_ragged, get_gae
from mlagents_fast.trainers.trajectory import ObsUtil

__all__ = ["TRAINER_NAME", "PPOSettings", "PPOTrainer"]

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

    def _process_trajectories(self, trajectories: list[Any]) -> None:
        """All queued trajectories at once: one normalizer update, one critic pass over every
        step, one pass over the bootstrap observations, one ragged GAE call (Rust), one append.
        Recurrent policies carry critic memory per agent, so they go one trajectory at a time.
        """
        if self.policy.use_recurrent or len(trajectories) == 1:
            super()._process_trajectories(trajectories)
            return
        for chunk in self._split_at_intervals(trajectories):
            self._process_batch(chunk)

    def _split_at_intervals(self, trajectories: list[Any]) -> list[list[Any]]:
        """Split so that a trajectory crossing a summary or checkpoint step starts a chunk:
        the chunks before it are credited (episode rewards) before that summary is written."""
        summary_interval = self.summary_freq
        save_interval = self.trainer_settings.checkpoint_interval

        def next_step(step: int, interval: int) -> int:
            return step + (interval - step % interval)

        step = self.get_step
        next_summary = self._next_summary_step or next_step(step, summary_interval)
        next_save = self._next_save_step or next_step(step, save_interval)
        chunks: list[list[Any]] = [[]]
        for trajectory in trajectories:
            step_after = step + len(trajectory)
            if (step_after >= next_summary or step_after >= next_save) and chunks[-1]:
                chunks.append([])
            chunks[-1].append(trajectory)
            step = step_after
            next_summary = next_step(step, summary_interval)
            next_save = next_step(step, save_interval)
        return chunks

    def _process_batch(self, trajectories: list[Any]) -> None:
        if len(trajectories) == 1:
            self._process_trajectory(trajectories[0])
            return
        for trajectory in trajectories:
            RLTrainer._process_trajectory(self, trajectory)
        buffer, lengths = concatenate_trajectories(trajectories)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if self.is_training:
            self.policy.actor.update_normalization(buffer)
            self.optimizer.critic.update_normalization(buffer)

        bootstrap = np.array(
            [not (t.done_reached and not t.interrupted) for t in trajectories], dtype=bool
        )
        values, next_values = self._batched_values(buffer, trajectories)
        environment_rewards = np.asarray(
            buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch(), dtype=np.float32
        )
        # Reward totals per trajectory and signal, credited in trajectory order below (an
        # agent may end an episode and start the next within one batch).
        totals = {"environment": np.add.reduceat(environment_rewards, offsets[:-1]).tolist()}

        all_advantages = []
        all_returns = []
        for name, reward_signal in self.optimizer.reward_signals.items():
            value_estimates = values[name]
            buffer[RewardSignalUtil.value_estimates_key(name)].extend(value_estimates)
            means = np.add.reduceat(value_estimates, offsets[:-1]) / lengths
            stat_name = f"Policy/{reward_signal.name.capitalize()} Value Estimate"
            for mean in means.tolist():
                self._stats_reporter.add_stat(stat_name, mean)
            rewards = np.asarray(
                reward_signal.evaluate(buffer) * reward_signal.strength, dtype=np.float32
            )
            buffer[RewardSignalUtil.rewards_key(name)].extend(rewards)
            totals[name] = np.add.reduceat(rewards, offsets[:-1]).tolist()
            value_next = next_values[name]
            if not reward_signal.ignore_done:
                value_next = np.where(bootstrap, value_next, 0.0).astype(np.float32)
            advantages, returns = compute_gae_ragged(
                rewards,
                value_estimates,
                offsets,
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
        buffer.resequence_and_append(self.update_buffer, batch_size=None, training_length=1)
        for index, trajectory in enumerate(trajectories):
            for name, signal_totals in totals.items():
                self.collected_rewards[name][trajectory.agent_id] += signal_totals[index]
            if trajectory.done_reached:
                self._update_end_episode_stats(trajectory.agent_id, self.optimizer)

    def _batched_values(
        self, buffer: Any, trajectories: list[Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Critic values of every step, and of every trajectory's next observation."""
        import torch

        num_obs = len(trajectories[0].obs)
        obs = [
            torch.as_tensor(
                np.asarray(buffer[ObsUtil.get_name_at(k)].get_batch(), dtype=np.float32)
            )
            for k in range(num_obs)
        ]
        next_obs = [
            torch.as_tensor(
                np.stack([np.asarray(t.next_obs[k], dtype=np.float32) for t in trajectories])
            )
            for k in range(num_obs)
        ]
        critic = self.optimizer.critic
        with torch.no_grad():
            values, _ = critic.critic_pass(obs, None, sequence_length=obs[0].shape[0])
            next_values, _ = critic.critic_pass(next_obs, None, sequence_length=1)
        return (
            {name: v.detach().numpy().astype(np.float32).reshape(-1) for name, v in values.items()},
            {
                name: v.detach().numpy().astype(np.float32).reshape(-1)
                for name, v in next_values.items()
            },
        )

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
