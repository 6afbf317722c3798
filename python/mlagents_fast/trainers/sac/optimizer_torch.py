"""SAC (Haarnoja et al. 2018, arXiv:1812.05905) as ML-Agents runs it: twin Q networks, a
separate value network with a Polyak-averaged target (tau), and entropy coefficients tuned
toward a target entropy (one per discrete branch, one for all continuous actions)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from mlagents_fast.trainers.batches import ExperienceBatch
from mlagents_fast.trainers.buffer import AgentBuffer
from mlagents_fast.trainers.exception import UnityTrainerException
from mlagents_fast.trainers.optimizer.torch_optimizer import TorchOptimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.settings import SACSettings
from mlagents_fast.trainers.torch_entities.action_log_probs import ActionLogProbs
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.networks import SharedActorCritic, ValueNetwork
from mlagents_fast.trainers.torch_entities.utils import ModelUtils

__all__ = ["SACSettings", "TorchSACOptimizer"]

_MIN_LEARNING_RATE = 1e-10


def _sequence_starts(field: Any, sequence_length: int, device: torch.device) -> torch.Tensor:
    return ModelUtils.list_to_tensor(field, device=device)[::sequence_length].unsqueeze(0)


class TorchSACOptimizer(TorchOptimizer):
    class PolicyValueNetwork(nn.Module):
        """Two Q networks. Continuous actions are network inputs; with discrete branches each
        network outputs one Q value per discrete action (sum of branch sizes)."""

        def __init__(
            self,
            stream_names: list[str],
            observation_specs: list[Any],
            network_settings: Any,
            action_spec: Any,
        ):
            super().__init__()
            num_value_outs = max(int(sum(action_spec.discrete_branches)), 1)
            num_action_ins = int(action_spec.continuous_size)
            self.q1_network = ValueNetwork(
                stream_names, observation_specs, network_settings, num_action_ins, num_value_outs
            )
            self.q2_network = ValueNetwork(
                stream_names, observation_specs, network_settings, num_action_ins, num_value_outs
            )

        def forward(
            self,
            inputs: list[torch.Tensor],
            actions: torch.Tensor | None = None,
            memories: torch.Tensor | None = None,
            sequence_length: int = 1,
            q1_grad: bool = True,
            q2_grad: bool = True,
        ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
            with torch.set_grad_enabled(q1_grad and torch.is_grad_enabled()):
                q1_out, _ = self.q1_network(
                    inputs, actions=actions, memories=memories, sequence_length=sequence_length
                )
            with torch.set_grad_enabled(q2_grad and torch.is_grad_enabled()):
                q2_out, _ = self.q2_network(
                    inputs, actions=actions, memories=memories, sequence_length=sequence_length
                )
            return q1_out, q2_out

    class TargetEntropy(NamedTuple):
        discrete: tuple[float, ...] = ()  # one per branch
        continuous: float = 0.0

    class LogEntCoef(nn.Module):
        def __init__(self, discrete: nn.Parameter, continuous: nn.Parameter):
            super().__init__()
            self.discrete = discrete
            self.continuous = continuous

    def __init__(self, policy: TorchPolicy, trainer_settings: Any):
        super().__init__(policy, trainer_settings)
        if isinstance(policy.actor, SharedActorCritic):
            raise UnityTrainerException("SAC does not support SharedActorCritic")
        reward_signal_names = [key.value for key in trainer_settings.reward_signals]
        hyperparameters: SACSettings = trainer_settings.hyperparameters
        self.hyperparameters = hyperparameters
        self._critic = ValueNetwork(
            reward_signal_names, policy.behavior_spec.observation_specs, policy.network_settings
        )
        self.tau = hyperparameters.tau
        self.init_entcoef = hyperparameters.init_entcoef
        self.burn_in_ratio = 0.0
        # Not exposed in the settings (ML-Agents' values).
        self.discrete_target_entropy_scale = 0.2  # roughly e-greedy with 0.05
        self.continuous_target_entropy_scale = 1.0

        self.stream_names = list(self.reward_signals.keys())
        self.gammas = [signal.gamma for signal in trainer_settings.reward_signals.values()]
        self.use_dones_in_backup = {
            name: int(not self.reward_signals[name].ignore_done) for name in self.stream_names
        }
        self._action_spec = policy.behavior_spec.action_spec
        self._discrete_branches = [int(b) for b in self._action_spec.discrete_branches]
        self._continuous_size = int(self._action_spec.continuous_size)

        self.q_network = TorchSACOptimizer.PolicyValueNetwork(
            self.stream_names,
            policy.behavior_spec.observation_specs,
            policy.network_settings,
            self._action_spec,
        )
        self.target_network = ValueNetwork(
            self.stream_names, policy.behavior_spec.observation_specs, policy.network_settings
        )
        ModelUtils.soft_update(self._critic, self.target_network, 1.0)

        self._log_ent_coef = TorchSACOptimizer.LogEntCoef(
            discrete=nn.Parameter(
                torch.log(torch.full((len(self._discrete_branches),), float(self.init_entcoef)))
            ),
            continuous=nn.Parameter(torch.log(torch.tensor([float(self.init_entcoef)]))),
        )
        self.target_entropy = TorchSACOptimizer.TargetEntropy(
            continuous=-1.0 * self.continuous_target_entropy_scale * float(self._continuous_size),
            discrete=tuple(
                self.discrete_target_entropy_scale * float(np.log(size))
                for size in self._discrete_branches
            ),
        )
        # On the policy's device before the optimizers take their parameters.
        for module in (self._critic, self.q_network, self.target_network, self._log_ent_coef):
            module.to(policy.device)
        policy_params = list(self.policy.actor.parameters())
        value_params = list(self.q_network.parameters()) + list(self._critic.parameters())
        self.decay_learning_rate = ModelUtils.DecayedValue(
            hyperparameters.learning_rate_schedule,
            hyperparameters.learning_rate,
            _MIN_LEARNING_RATE,
            trainer_settings.max_steps,
        )
        self.policy_optimizer = ModelUtils.create_adam(
            policy_params, lr=hyperparameters.learning_rate
        )
        self.value_optimizer = ModelUtils.create_adam(
            value_params, lr=hyperparameters.learning_rate
        )
        self.entropy_optimizer = ModelUtils.create_adam(
            self._log_ent_coef.parameters(), lr=hyperparameters.learning_rate
        )

    @property
    def critic(self) -> Any:
        return self._critic

    def _mean_over_branches(self, per_action: torch.Tensor) -> torch.Tensor:
        """(batch, sum(branches)) -> per-branch sums averaged over branches, (batch, 1)."""
        branches = ModelUtils.break_into_branches(per_action, self._discrete_branches)
        return torch.mean(torch.stack([torch.sum(b, dim=1, keepdim=True) for b in branches]), dim=0)

    def sac_q_loss(
        self,
        q1_out: dict[str, torch.Tensor],
        q2_out: dict[str, torch.Tensor],
        target_values: dict[str, torch.Tensor],
        dones: torch.Tensor,
        rewards: dict[str, torch.Tensor],
        loss_masks: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q1_losses = []
        q2_losses = []
        for i, name in enumerate(q1_out.keys()):
            q1_stream = q1_out[name].reshape(-1)
            q2_stream = q2_out[name].reshape(-1)
            with torch.no_grad():
                q_backup = rewards[name] + (
                    (1.0 - self.use_dones_in_backup[name] * dones)
                    * self.gammas[i]
                    * target_values[name]
                )
            q1_losses.append(0.5 * ModelUtils.masked_mean((q_backup - q1_stream) ** 2, loss_masks))
            q2_losses.append(0.5 * ModelUtils.masked_mean((q_backup - q2_stream) ** 2, loss_masks))
        return torch.mean(torch.stack(q1_losses)), torch.mean(torch.stack(q2_losses))

    def sac_value_loss(
        self,
        log_probs: ActionLogProbs,
        values: dict[str, torch.Tensor],
        q1p_out: dict[str, torch.Tensor],
        q2p_out: dict[str, torch.Tensor],
        loss_masks: torch.Tensor,
    ) -> torch.Tensor:
        value_losses = []
        with torch.no_grad():
            cont_ent_coef = self._log_ent_coef.continuous.exp()
            disc_ent_coef = self._log_ent_coef.discrete.exp()
            if self._discrete_branches:
                disc_log_probs = log_probs.all_discrete_tensor
                disc_probs = disc_log_probs.exp()
                branched_ent = ModelUtils.break_into_branches(
                    disc_log_probs * disc_probs, self._discrete_branches
                )
                ent_bonus = torch.mean(
                    torch.stack(
                        [
                            torch.sum(disc_ent_coef[i] * lp, dim=1, keepdim=True)
                            for i, lp in enumerate(branched_ent)
                        ]
                    ),
                    dim=0,
                )
        for name, value_estimate in values.items():
            with torch.no_grad():
                if not self._discrete_branches:
                    cont_log_probs = log_probs.continuous_tensor
                    assert cont_log_probs is not None  # no discrete branches: continuous actions
                    min_policy_q = torch.min(q1p_out[name], q2p_out[name])
                    v_backup = min_policy_q - torch.sum(cont_ent_coef * cont_log_probs, dim=1)
                else:
                    min_policy_q = torch.min(
                        self._mean_over_branches(q1p_out[name] * disc_probs),
                        self._mean_over_branches(q2p_out[name] * disc_probs),
                    )
                    v_backup = min_policy_q - ent_bonus
                    if self._continuous_size > 0:
                        cont_log_probs = log_probs.continuous_tensor
                        assert cont_log_probs is not None  # the spec has continuous actions
                        # ML-Agents adds (not subtracts) the continuous term in the hybrid case.
                        v_backup = v_backup + torch.sum(
                            cont_ent_coef * cont_log_probs, dim=1, keepdim=True
                        )
                    v_backup = v_backup.reshape(-1)
            value_losses.append(
                0.5 * ModelUtils.masked_mean((value_estimate - v_backup) ** 2, loss_masks)
            )
        value_loss = torch.mean(torch.stack(value_losses))
        if not torch.isfinite(value_loss).all():
            raise UnityTrainerException("SAC value loss is not finite (Inf or NaN found).")
        return value_loss

    def sac_policy_loss(
        self,
        log_probs: ActionLogProbs,
        q1p_outs: dict[str, torch.Tensor],
        loss_masks: torch.Tensor,
    ) -> torch.Tensor:
        cont_ent_coef = self._log_ent_coef.continuous.exp()
        disc_ent_coef = self._log_ent_coef.discrete.exp()
        mean_q1 = torch.mean(torch.stack(list(q1p_outs.values())), dim=0)
        batch_policy_loss: Any = 0
        if self._discrete_branches:
            disc_log_probs = log_probs.all_discrete_tensor
            disc_probs = disc_log_probs.exp()
            branched_ent = ModelUtils.break_into_branches(
                disc_log_probs * disc_probs, self._discrete_branches
            )
            branched_q = ModelUtils.break_into_branches(
                mean_q1 * disc_probs, self._discrete_branches
            )
            branched_policy_loss = torch.stack(
                [
                    torch.sum(disc_ent_coef[i] * lp - q, dim=1)
                    for i, (lp, q) in enumerate(zip(branched_ent, branched_q))
                ],
                dim=1,
            )
            batch_policy_loss = batch_policy_loss + torch.sum(branched_policy_loss, dim=1)
            all_mean_q1 = torch.sum(disc_probs * mean_q1, dim=1)
        else:
            all_mean_q1 = mean_q1
        if self._continuous_size > 0:
            cont_log_probs = log_probs.continuous_tensor
            assert cont_log_probs is not None  # the spec has continuous actions
            batch_policy_loss = batch_policy_loss + (
                cont_ent_coef * torch.sum(cont_log_probs, dim=1) - all_mean_q1
            )
        return ModelUtils.masked_mean(batch_policy_loss, loss_masks)

    def sac_entropy_loss(self, log_probs: ActionLogProbs, loss_masks: torch.Tensor) -> torch.Tensor:
        cont_log_ent_coef = self._log_ent_coef.continuous
        disc_log_ent_coef = self._log_ent_coef.discrete
        entropy_loss: Any = 0
        if self._discrete_branches:
            with torch.no_grad():
                disc_log_probs = log_probs.all_discrete_tensor
                branched_ent = ModelUtils.break_into_branches(
                    disc_log_probs * disc_log_probs.exp(), self._discrete_branches
                )
                target_current_diff = torch.stack(
                    [
                        torch.sum(lp, dim=1) + te
                        for lp, te in zip(branched_ent, self.target_entropy.discrete)
                    ],
                    dim=1,
                )
            # The loss is on log(alpha): its gradient pushes entropy toward the target.
            entropy_loss = entropy_loss - ModelUtils.masked_mean(
                torch.mean(disc_log_ent_coef * target_current_diff, dim=1), loss_masks
            )
        if self._continuous_size > 0:
            cont_log_probs = log_probs.continuous_tensor
            assert cont_log_probs is not None  # the spec has continuous actions
            with torch.no_grad():
                target_current_diff_cont = (
                    torch.sum(cont_log_probs, dim=1) + self.target_entropy.continuous
                )
            entropy_loss = entropy_loss - ModelUtils.masked_mean(
                cont_log_ent_coef * target_current_diff_cont, loss_masks
            )
        return entropy_loss

    def _condense_q_streams(
        self, q_output: dict[str, torch.Tensor], discrete_actions: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Q of the taken discrete action per branch, averaged over branches, (batch,)."""
        onehot_actions = ModelUtils.actions_to_onehot(discrete_actions, self._discrete_branches)
        condensed = {}
        for key, item in q_output.items():
            branched_q = ModelUtils.break_into_branches(item, self._discrete_branches)
            only_action_qs = torch.stack(
                [
                    torch.sum(act * q, dim=1, keepdim=True)
                    for act, q in zip(onehot_actions, branched_q)
                ]
            )
            condensed[key] = torch.mean(only_action_qs, dim=0).reshape(-1)
        return condensed

    def update(self, batch: ExperienceBatch | AgentBuffer, num_sequences: int) -> dict[str, float]:
        """One SAC step on a minibatch (an ExperienceBatch, or an AgentBuffer as ML-Agents
        passes it, with each reward signal's rewards filled in): Q, value and policy losses,
        entropy coefficient, then the target network moves by tau."""
        batch = ExperienceBatch.of(batch)
        device = self.policy.device
        rewards = {
            name: ModelUtils.list_to_tensor(batch.signal_rows("rewards", name), device=device)
            for name in self.reward_signals
        }
        n_obs = len(self.policy.behavior_spec.observation_specs)
        current_obs = ModelUtils.list_to_tensor_list(batch.observations(n_obs), device=device)
        next_obs = ModelUtils.list_to_tensor_list(batch.next_observations(n_obs), device=device)
        act_masks = (
            ModelUtils.list_to_tensor(batch.action_masks, device=device)
            if batch.action_masks is not None
            else None
        )
        actions = AgentAction.from_arrays(batch.continuous_actions, batch.discrete_actions, device)
        sequence_length = self.policy.sequence_length
        memories = value_memories = q_memories = None
        if self.policy.use_recurrent:
            memories = _sequence_starts(batch.require("memories"), sequence_length, device)
            value_memories = _sequence_starts(
                batch.require("critic_memories"), sequence_length, device
            )
            # The Q networks' memories are zeros: they are not recorded during inference.
            q_memories = torch.zeros_like(value_memories)

        # The critics share the policy's observation normalisation.
        actor_body = self.policy.actor.network_body
        self.q_network.q1_network.network_body.copy_normalization(actor_body)
        self.q_network.q2_network.network_body.copy_normalization(actor_body)
        self.target_network.network_body.copy_normalization(actor_body)
        self._critic.network_body.copy_normalization(actor_body)

        sampled_actions, run_out, _ = self.policy.actor.get_action_and_stats(
            current_obs, masks=act_masks, memories=memories, sequence_length=sequence_length
        )
        log_probs: ActionLogProbs = run_out["log_probs"]
        value_estimates, _ = self._critic.critic_pass(
            current_obs, value_memories, sequence_length=sequence_length
        )
        cont_sampled_actions = sampled_actions.continuous_tensor if self._continuous_size else None
        cont_actions = actions.continuous_tensor if self._continuous_size else None
        q1p_out, q2p_out = self.q_network(
            current_obs,
            cont_sampled_actions,
            memories=q_memories,
            sequence_length=sequence_length,
            q2_grad=False,
        )
        q1_out, q2_out = self.q_network(
            current_obs, cont_actions, memories=q_memories, sequence_length=sequence_length
        )
        if self._discrete_branches:
            disc_actions = actions.discrete_tensor
            q1_stream = self._condense_q_streams(q1_out, disc_actions)
            q2_stream = self._condense_q_streams(q2_out, disc_actions)
        else:
            q1_stream, q2_stream = q1_out, q2_out

        with torch.no_grad():
            next_value_memories = None
            if value_memories is not None:
                # The critic memory one step into each sequence (not recorded in the buffer).
                just_first_obs = [obs[::sequence_length] for obs in current_obs]
                _, next_value_memories = self._critic.critic_pass(
                    just_first_obs, value_memories, sequence_length=1
                )
            target_values, _ = self.target_network(
                next_obs, memories=next_value_memories, sequence_length=sequence_length
            )
        masks = ModelUtils.list_to_tensor(batch.require("masks"), dtype=torch.bool, device=device)
        dones = ModelUtils.list_to_tensor(batch.require("done"), device=device)

        q1_loss, q2_loss = self.sac_q_loss(
            q1_stream, q2_stream, target_values, dones, rewards, masks
        )
        value_loss = self.sac_value_loss(log_probs, value_estimates, q1p_out, q2p_out, masks)
        policy_loss = self.sac_policy_loss(log_probs, q1p_out, masks)
        entropy_loss = self.sac_entropy_loss(log_probs, masks)
        total_value_loss = q1_loss + q2_loss + value_loss

        decay_lr = self.decay_learning_rate.get_value(self.policy.get_current_step())
        ModelUtils.update_learning_rate(self.policy_optimizer, decay_lr)
        self.policy_optimizer.zero_grad()
        policy_loss.backward()
        self.policy_optimizer.step()

        ModelUtils.update_learning_rate(self.value_optimizer, decay_lr)
        self.value_optimizer.zero_grad()
        total_value_loss.backward()
        self.value_optimizer.step()

        ModelUtils.update_learning_rate(self.entropy_optimizer, decay_lr)
        self.entropy_optimizer.zero_grad()
        entropy_loss.backward()
        self.entropy_optimizer.step()

        ModelUtils.soft_update(self._critic, self.target_network, self.tau)
        return {
            "Losses/Policy Loss": policy_loss.item(),
            "Losses/Value Loss": value_loss.item(),
            "Losses/Q1 Loss": q1_loss.item(),
            "Losses/Q2 Loss": q2_loss.item(),
            "Policy/Discrete Entropy Coeff": torch.mean(
                torch.exp(self._log_ent_coef.discrete)
            ).item()
            if self._discrete_branches
            else 0.0,
            "Policy/Continuous Entropy Coeff": torch.mean(
                torch.exp(self._log_ent_coef.continuous)
            ).item(),
            "Policy/Learning Rate": decay_lr,
        }

    def get_modules(self) -> dict[str, Any]:
        modules: dict[str, Any] = {
            "Optimizer:q_network": self.q_network,
            "Optimizer:value_network": self._critic,
            "Optimizer:target_network": self.target_network,
            "Optimizer:policy_optimizer": self.policy_optimizer,
            "Optimizer:value_optimizer": self.value_optimizer,
            "Optimizer:entropy_optimizer": self.entropy_optimizer,
        }
        for reward_provider in self.reward_signals.values():
            modules.update(reward_provider.get_modules())
        return modules
