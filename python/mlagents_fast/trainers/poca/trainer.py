"""The MA-POCA trainer (the counterpart of ``mlagents.trainers.poca.trainer``).

Trajectories arrive with their group mates' columns (see the agent processor) and are
processed in batches: normalization, the group's values and each agent's counterfactual
baseline (one critic pass each), reward signals (the extrinsic one adds the group reward and
the mates' rewards), lambda returns for every trajectory in one Rust call, advantages
``returns - baseline``, then the update buffer. A trajectory bootstraps from its next
observations (its own and its mates') unless its episode terminated for the whole group: an
agent that leaves the group mid-episode still earns what the group earns after it left,
through the value of the group it left behind. Updates follow :class:`OnPolicyTrainer`.
Cohen et al. 2021, https://arxiv.org/abs/2111.05992.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey, RewardSignalUtil
from mlagents_fast.trainers.settings import POCASettings  # re-exported here as in ML-Agents
from mlagents_fast.trainers.stats import StatsAggregationMethod
from mlagents_fast.trainers.trainer.on_policy_trainer import OnPolicyTrainer
from mlagents_fast.trainers.trainer.trainer_utils import compute_lambda_returns_ragged
from mlagents_fast.trainers.trajectory import TrajectoryBatch, group_width, pad_group_fields

if TYPE_CHECKING:
    from mlagents_fast.envs.base_env import BehaviorSpec
    from mlagents_fast.trainers.poca.optimizer_torch import TorchPOCAOptimizer
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy

__all__ = ["TRAINER_NAME", "POCASettings", "POCATrainer"]

logger = logging.getLogger(__name__)

TRAINER_NAME = "poca"


class POCATrainer(OnPolicyTrainer):
    """Multi-Agent POsthumous Credit Assignment: a centralized critic over the group and a
    counterfactual baseline per agent."""

    reads_group_fields = True

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
        # Agent id -> group reward it collected in its current episode.
        self.collected_group_rewards: dict[str, float] = defaultdict(float)

    def _process_batch(self, batch: TrajectoryBatch) -> None:
        """Values, baselines, rewards, lambda returns and advantages of every step of the
        batch, into the update buffer; then the episode and group rewards, in order."""
        buffer = batch.buffer
        if self.is_training:
            self.policy.actor.update_normalization(buffer)
            self.optimizer.critic.update_normalization(buffer)
        estimates = self.optimizer.get_batch_value_and_baseline_estimates(
            buffer,
            batch.offsets,
            batch.next_obs,
            batch.next_group_obs,
            batch.agent_ids,
            batch.done_reached,
        )
        if estimates.value_memories is not None:
            buffer[BufferKey.CRITIC_MEMORY].set(estimates.value_memories)
            buffer[BufferKey.BASELINE_MEMORY].set(estimates.baseline_memories)

        rewards = {
            "environment": np.asarray(
                buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch(), dtype=np.float32
            )
        }
        # The whole group is done: nothing follows (an agent that left alone bootstraps).
        group_terminated = batch.terminated & batch.all_group_dones_reached
        all_advantages = []
        for name, reward_signal in self.optimizer.reward_signals.items():
            values = estimates.values[name]
            baselines = estimates.baselines[name]
            buffer[RewardSignalUtil.value_estimates_key(name)].extend(values)
            buffer[RewardSignalUtil.baseline_estimates_key(name)].extend(baselines)
            label = reward_signal.name.capitalize()
            for mean in batch.means(baselines).tolist():
                self._stats_reporter.add_stat(f"Policy/{label} Baseline Estimate", mean)
            for mean in batch.means(values).tolist():
                self._stats_reporter.add_stat(f"Policy/{label} Value Estimate", mean)
            signal_rewards = np.asarray(
                reward_signal.evaluate(buffer) * reward_signal.strength, dtype=np.float32
            )
            buffer[RewardSignalUtil.rewards_key(name)].extend(signal_rewards)
            rewards[name] = signal_rewards
            value_next = estimates.next_values[name]
            if not reward_signal.ignore_done:
                value_next = np.where(group_terminated, np.float32(0.0), value_next)
            returns = compute_lambda_returns_ragged(
                signal_rewards,
                values,
                batch.offsets,
                value_next,
                gamma=reward_signal.gamma,
                lambd=self.hyperparameters.lambd,
            )
            advantages = returns - baselines
            buffer[RewardSignalUtil.returns_key(name)].set(returns)
            buffer[RewardSignalUtil.advantage_key(name)].set(advantages)
            all_advantages.append(advantages)
        buffer[BufferKey.ADVANTAGES].set(
            np.mean(np.asarray(all_advantages, dtype=np.float32), axis=0)
        )
        self._match_group_widths(buffer)
        self._append_batch_to_update_buffer(batch)
        self._credit_rewards(batch, rewards)
        self._credit_group_rewards(batch)

    def _match_group_widths(self, buffer: Any) -> None:
        """Make the batch's group columns and the update buffer's equally wide (the wider
        wins: rows of fewer mates get absent mates)."""
        if not self.should_still_train:
            return
        ours, theirs = group_width(buffer), group_width(self.update_buffer)
        if ours is None or theirs is None or ours == theirs:
            return
        if ours < theirs:
            pad_group_fields(buffer, theirs)
        else:
            pad_group_fields(self.update_buffer, ours)

    def _credit_group_rewards(self, batch: TrajectoryBatch) -> None:
        """Group rewards per agent; when the whole group is done, each agent reports its
        total as ``Environment/Group Cumulative Reward`` (an agent that left early reports
        nothing), as ML-Agents does."""
        totals = batch.sums(
            np.asarray(batch.buffer[BufferKey.GROUP_REWARD].get_batch(), dtype=np.float32)
        ).tolist()
        ended = batch.done_reached.tolist()
        all_done = batch.all_group_dones_reached.tolist()
        for index, agent_id in enumerate(batch.agent_ids):
            self.collected_group_rewards[agent_id] += totals[index]
            if not ended[index]:
                continue
            total = self.collected_group_rewards.pop(agent_id, 0.0)
            if all_done[index]:
                self.stats_reporter.add_stat(
                    "Environment/Group Cumulative Reward",
                    total,
                    aggregation=StatsAggregationMethod.HISTOGRAM,
                )

    def end_episode(self) -> None:
        """The environment was reset: drop the running episode and group rewards."""
        super().end_episode()
        self.collected_group_rewards.clear()

    def create_optimizer(self) -> TorchPOCAOptimizer:
        from mlagents_fast.trainers.poca.optimizer_torch import TorchPOCAOptimizer

        return TorchPOCAOptimizer(self.policy, self.trainer_settings)

    def create_policy(
        self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: BehaviorSpec
    ) -> TorchPolicy:
        """A TorchPolicy with an unsquashed Gaussian (continuous) / categorical actor: the
        policy each agent runs on its own observations (what is exported to ONNX)."""
        from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
        from mlagents_fast.trainers.torch_entities.networks import SimpleActor

        return TorchPolicy(
            self.seed,
            behavior_spec,
            self.trainer_settings.network_settings,
            SimpleActor,
            {"conditional_sigma": False, "tanh_squash": False},
        )

    def get_policy(self, name_behavior_id: str) -> TorchPolicy:
        return self.policy

    @staticmethod
    def get_trainer_name() -> str:
        return TRAINER_NAME
