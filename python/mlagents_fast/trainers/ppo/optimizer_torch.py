"""PPO: clipped surrogate, clipped value loss and entropy bonus (Schulman et al. 2017,
arXiv:1707.06347), with ML-Agents' linear/constant schedules for learning rate, epsilon and beta."""

from __future__ import annotations

from typing import Any

import torch

from mlagents_fast.trainers.batches import ExperienceBatch
from mlagents_fast.trainers.buffer import AgentBuffer
from mlagents_fast.trainers.optimizer.torch_optimizer import TorchOptimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.settings import POCASettings, PPOSettings
from mlagents_fast.trainers.torch_entities.action_log_probs import ActionLogProbs
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.networks import ValueNetwork
from mlagents_fast.trainers.torch_entities.utils import ModelUtils

__all__ = ["PPOSettings", "TorchPPOOptimizer"]

# Floors the schedules decay to at max_steps (ML-Agents' values).
_MIN_LEARNING_RATE = 1e-10
_MIN_EPSILON = 0.1
_MIN_BETA = 1e-5


def ppo_decay_schedules(
    hyperparameters: PPOSettings | POCASettings, max_steps: int
) -> tuple[ModelUtils.DecayedValue, ModelUtils.DecayedValue, ModelUtils.DecayedValue]:
    """Learning rate, clipping epsilon and entropy beta as they decay over ``max_steps``
    (PPO and POCA share these schedules and their floors)."""
    return (
        ModelUtils.DecayedValue(
            hyperparameters.learning_rate_schedule,
            hyperparameters.learning_rate,
            _MIN_LEARNING_RATE,
            max_steps,
        ),
        ModelUtils.DecayedValue(
            hyperparameters.epsilon_schedule, hyperparameters.epsilon, _MIN_EPSILON, max_steps
        ),
        ModelUtils.DecayedValue(
            hyperparameters.beta_schedule, hyperparameters.beta, _MIN_BETA, max_steps
        ),
    )


def _sequence_starts(field: Any, sequence_length: int, device: torch.device) -> torch.Tensor:
    """The memories at the start of each sequence, as (1, n_sequences, memory_size)."""
    memories = ModelUtils.list_to_tensor(field, device=device)
    return memories[::sequence_length].unsqueeze(0)


class TorchPPOOptimizer(TorchOptimizer):
    def __init__(self, policy: TorchPolicy, trainer_settings: Any):
        """PPO around ``policy``; ``trainer_settings.hyperparameters`` is a PPOSettings."""
        super().__init__(policy, trainer_settings)
        reward_signal_names = [key.value for key in trainer_settings.reward_signals]
        self.hyperparameters: PPOSettings = trainer_settings.hyperparameters
        params = list(self.policy.actor.parameters())
        if self.hyperparameters.shared_critic:
            self._critic = policy.actor
        else:
            self._critic = ValueNetwork(
                reward_signal_names,
                policy.behavior_spec.observation_specs,
                network_settings=trainer_settings.network_settings,
            )
            self._critic.to(policy.device)
            params += list(self._critic.parameters())
        max_steps = trainer_settings.max_steps
        self.decay_learning_rate, self.decay_epsilon, self.decay_beta = ppo_decay_schedules(
            self.hyperparameters, max_steps
        )
        self.optimizer = ModelUtils.create_adam(params, lr=self.hyperparameters.learning_rate)
        self.stats_name_to_update_name = {
            "Losses/Value Loss": "value_loss",
            "Losses/Policy Loss": "policy_loss",
        }
        self.stream_names = list(self.reward_signals.keys())

    @property
    def critic(self) -> Any:
        return self._critic

    def update(self, batch: ExperienceBatch | AgentBuffer, num_sequences: int) -> dict[str, float]:
        """One gradient step on a minibatch: an ExperienceBatch (what the trainer passes) or
        an AgentBuffer (ML-Agents' signature). Reads, per experience: observations, actions,
        action masks, old log-probs, advantages, loss masks, and per reward stream the old
        value estimates and returns (and memories with LSTM)."""
        batch = ExperienceBatch.of(batch)
        step = self.policy.get_current_step()
        decay_lr = self.decay_learning_rate.get_value(step)
        decay_eps = self.decay_epsilon.get_value(step)
        decay_bet = self.decay_beta.get_value(step)
        device = self.policy.device
        returns = {}
        old_values = {}
        for name in self.reward_signals:
            old_values[name] = ModelUtils.list_to_tensor(
                batch.signal_rows("value_estimates", name), device=device
            )
            returns[name] = ModelUtils.list_to_tensor(
                batch.signal_rows("returns", name), device=device
            )

        n_obs = len(self.policy.behavior_spec.observation_specs)
        current_obs = ModelUtils.list_to_tensor_list(batch.observations(n_obs), device=device)
        act_masks = (
            ModelUtils.list_to_tensor(batch.action_masks, device=device)
            if batch.action_masks is not None
            else None
        )
        actions = AgentAction.from_arrays(batch.continuous_actions, batch.discrete_actions, device)
        sequence_length = self.policy.sequence_length
        memories = None
        value_memories = None
        if self.policy.use_recurrent:
            memories = _sequence_starts(batch.require("memories"), sequence_length, device)
            if batch.critic_memories is not None:
                value_memories = _sequence_starts(batch.critic_memories, sequence_length, device)

        run_out = self.policy.actor.get_stats(
            current_obs,
            actions,
            masks=act_masks,
            memories=memories,
            sequence_length=sequence_length,
        )
        log_probs = run_out["log_probs"].flatten()
        entropy = run_out["entropy"]
        values, _ = self.critic.critic_pass(
            current_obs, memories=value_memories, sequence_length=sequence_length
        )
        old_log_probs = ActionLogProbs.from_arrays(
            batch.continuous_log_probs, batch.discrete_log_probs, device
        ).flatten()
        loss_masks = ModelUtils.list_to_tensor(
            batch.require("masks"), dtype=torch.bool, device=device
        )
        value_loss = ModelUtils.trust_region_value_loss(
            values, old_values, returns, decay_eps, loss_masks
        )
        policy_loss = ModelUtils.trust_region_policy_loss(
            ModelUtils.list_to_tensor(batch.require("advantages"), device=device),
            log_probs,
            old_log_probs,
            loss_masks,
            decay_eps,
        )
        loss = (
            policy_loss + 0.5 * value_loss - decay_bet * ModelUtils.masked_mean(entropy, loss_masks)
        )

        ModelUtils.update_learning_rate(self.optimizer, decay_lr)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {
            # abs() as ML-Agents reports it (a TensorFlow-era convention).
            "Losses/Policy Loss": torch.abs(policy_loss).item(),
            "Losses/Value Loss": value_loss.item(),
            "Policy/Learning Rate": decay_lr,
            "Policy/Epsilon": decay_eps,
            "Policy/Beta": decay_bet,
        }

    def get_modules(self) -> dict[str, Any]:
        modules: dict[str, Any] = {
            "Optimizer:value_optimizer": self.optimizer,
            "Optimizer:critic": self._critic,
        }
        for reward_provider in self.reward_signals.values():
            modules.update(reward_provider.get_modules())
        return modules
