"""A custom trainer written the way ML-Agents documents custom trainers (the ``Trainer`` /
``RLTrainer`` API, ML-Agents' import paths with ``mlagents`` renamed), for the tests of
test_custom_trainer.py: nothing here knows about columnar trajectories or batches.

``ReinforceTrainer`` is policy gradient with a learned baseline (REINFORCE with a critic):
each trajectory is read step by step (``trajectory.steps``) for its rewards and converted with
``trajectory.to_agentbuffer()``; returns are discounted rewards bootstrapped from the critic
when the episode did not terminate; the update is one pass of minibatches over the buffer.
It records what it saw so tests can compare with what ML-Agents would have done.

(No ``from __future__ import annotations`` here: the settings layer, like ML-Agents', reads
the attrs field types of ``ReinforceSettings`` as real types.)
"""

from collections import defaultdict
from typing import Any

import attr
import numpy as np
import torch
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey, RewardSignalUtil
from mlagents_fast.trainers.optimizer.torch_optimizer import TorchOptimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.settings import HyperparamSettings
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.networks import SimpleActor, ValueNetwork
from mlagents_fast.trainers.torch_entities.utils import ModelUtils
from mlagents_fast.trainers.trainer.rl_trainer import RLTrainer
from mlagents_fast.trainers.trainer.trainer_utils import discount_rewards
from mlagents_fast.trainers.trajectory import ObsUtil

TRAINER_NAME = "reinforce_with_baseline"


@attr.s(auto_attribs=True)
class ReinforceSettings(HyperparamSettings):
    batch_size: int = 32
    buffer_size: int = 256
    learning_rate: float = 3.0e-3
    gamma: float = 0.9


class ReinforceOptimizer(TorchOptimizer):
    def __init__(self, policy: TorchPolicy, trainer_settings: Any) -> None:
        super().__init__(policy, trainer_settings)
        self._critic = ValueNetwork(
            list(self.reward_signals.keys()),
            policy.behavior_spec.observation_specs,
            trainer_settings.network_settings,
        )
        parameters = list(policy.actor.parameters()) + list(self._critic.parameters())
        self.optimizer = torch.optim.Adam(
            parameters, lr=trainer_settings.hyperparameters.learning_rate
        )

    @property
    def critic(self) -> ValueNetwork:
        return self._critic

    def update(self, batch: Any, num_sequences: int) -> dict[str, float]:
        n_obs = len(self.policy.behavior_spec.observation_specs)
        obs = [ModelUtils.list_to_tensor(o) for o in ObsUtil.from_buffer(batch, n_obs)]
        masks = ModelUtils.list_to_tensor(batch[BufferKey.ACTION_MASK])
        stats = self.policy.actor.get_stats(
            obs, AgentAction.from_buffer(batch), masks=masks, sequence_length=1
        )
        log_probs = stats["log_probs"].flatten().sum(dim=1)
        values, _ = self.critic.critic_pass(obs, sequence_length=1)
        returns = ModelUtils.list_to_tensor(batch[RewardSignalUtil.returns_key("extrinsic")])
        advantage = returns - values["extrinsic"].detach()
        policy_loss = -(log_probs * advantage).mean()
        value_loss = torch.mean((returns - values["extrinsic"]) ** 2)
        self.optimizer.zero_grad()
        (policy_loss + 0.5 * value_loss).backward()
        self.optimizer.step()
        return {"Losses/Policy Loss": policy_loss.item(), "Losses/Value Loss": value_loss.item()}

    def get_modules(self) -> dict[str, Any]:
        return {"Optimizer:adam": self.optimizer, "Optimizer:critic": self._critic}


class ReinforceTrainer(RLTrainer):
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
            behavior_name, trainer_settings, training, load, artifact_path, reward_buff_cap
        )
        self.hyperparameters: ReinforceSettings = trainer_settings.hyperparameters
        self.seed = seed
        self.policy: TorchPolicy = None  # type: ignore[assignment]
        self.optimizer: ReinforceOptimizer = None  # type: ignore[assignment]
        # What the trainer saw, for the tests.
        self.steps_read = 0
        self.trajectory_kinds: set[str] = set()
        self.ends: list[tuple[bool, bool]] = []
        self.updates = 0
        self.saved_models = 0

    def _process_trajectory(self, trajectory: Any) -> None:
        super()._process_trajectory(trajectory)
        agent_id = trajectory.agent_id
        self.trajectory_kinds.add(type(trajectory).__name__)
        rewards = []
        for step in trajectory.steps:
            assert len(step.obs) == len(trajectory.next_obs)
            rewards.append(float(step.reward))
        self.steps_read += len(rewards)
        last_step = trajectory.steps[-1]
        if trajectory.done_reached:
            self.ends.append((bool(last_step.done), bool(last_step.interrupted)))

        agent_buffer_trajectory = trajectory.to_agentbuffer()
        if self.is_training:
            self.policy.actor.update_normalization(agent_buffer_trajectory)
            self.optimizer.critic.update_normalization(agent_buffer_trajectory)
        _, value_next, _ = self.optimizer.get_trajectory_value_estimates(
            agent_buffer_trajectory,
            trajectory.next_obs,
            trajectory.done_reached and not trajectory.interrupted,
        )
        returns = discount_rewards(
            np.asarray(rewards, dtype=np.float32),
            self.hyperparameters.gamma,
            value_next["extrinsic"],
        )
        agent_buffer_trajectory[RewardSignalUtil.returns_key("extrinsic")].extend(returns)
        self.collected_rewards["environment"][agent_id] += np.sum(rewards)
        self._append_to_update_buffer(agent_buffer_trajectory)
        if trajectory.done_reached:
            self._update_end_episode_stats(agent_id, self.optimizer)

    def _is_ready_update(self) -> bool:
        return self.update_buffer.num_experiences >= self.hyperparameters.buffer_size

    def _update_policy(self) -> bool:
        self.cumulative_returns_since_policy_update.clear()
        batch_size = self.hyperparameters.batch_size
        self.update_buffer.shuffle(sequence_length=1)
        losses: dict[str, list[float]] = defaultdict(list)
        for start in range(0, self.update_buffer.num_experiences - batch_size + 1, batch_size):
            minibatch = self.update_buffer.make_mini_batch(start, start + batch_size)
            for name, value in self.optimizer.update(minibatch, batch_size).items():
                losses[name].append(value)
        for name, values in losses.items():
            self._stats_reporter.add_stat(name, float(np.mean(values)))
        self._clear_update_buffer()
        self.updates += 1
        return True

    def create_policy(self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: Any) -> Any:
        return TorchPolicy(
            self.seed,
            behavior_spec,
            self.trainer_settings.network_settings,
            SimpleActor,
            {"conditional_sigma": False, "tanh_squash": False},
        )

    def create_optimizer(self) -> ReinforceOptimizer:
        return ReinforceOptimizer(self.policy, self.trainer_settings)

    def add_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: Any) -> None:
        self.policy = policy
        self.policies[parsed_behavior_id.behavior_id] = policy
        self.optimizer = self.create_optimizer()
        for name in self.optimizer.reward_signals:
            self.collected_rewards[name] = defaultdict(lambda: 0)
        self.model_saver.register(self.policy)
        self.model_saver.register(self.optimizer)
        self.model_saver.initialize_or_load()
        self._step = policy.get_current_step()

    def get_policy(self, name_behavior_id: str) -> Any:
        return self.policy

    def save_model(self) -> None:
        super().save_model()
        self.saved_models += 1

    @staticmethod
    def get_settings_type() -> type:
        return ReinforceSettings

    @staticmethod
    def get_trainer_name() -> str:
        return TRAINER_NAME


def get_type_and_setting() -> tuple[dict[str, type], dict[str, type]]:
    """What an ``mlagents_fast.trainer_type`` entry point returns (as ML-Agents' plugins do)."""
    return {TRAINER_NAME: ReinforceTrainer}, {TRAINER_NAME: ReinforceSettings}
