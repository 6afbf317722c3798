"""GAIL (Ho & Ermon 2016, arXiv:1606.03476): a discriminator learns to tell the agent's
steps from the demonstration's; the reward is high where it cannot, so the agent is paid for
behaving like the expert. Optional VAIL (Peng et al. 2018, arXiv:1810.00821) passes the
discriminator's encoding through a variational bottleneck; a gradient penalty (Gulrajani et
al. 2017, arXiv:1704.00028) keeps the discriminator smooth. Same networks, losses, constants
and state-dict names as ML-Agents 1.1.0, so checkpoints carry the discriminator either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mlagents_fast.torch_utils import default_device
from mlagents_fast.trainers.batches import BatchOrBuffer, ExperienceBatch
from mlagents_fast.trainers.demo_loader import demo_buffer_for_training
from mlagents_fast.trainers.torch_entities.action_flattener import ActionFlattener
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.components.reward_providers.base_reward_provider import (
    BaseRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.rnd_reward_provider import (
    encoder_settings_without_memory,
)
from mlagents_fast.trainers.torch_entities.layers import Initialization, linear_layer
from mlagents_fast.trainers.torch_entities.networks import NetworkBody
from mlagents_fast.trainers.torch_entities.utils import ModelUtils, module_device

__all__ = ["DiscriminatorNetwork", "GAILRewardProvider"]


class GAILRewardProvider(BaseRewardProvider):
    def __init__(self, specs: Any, settings: Any) -> None:
        super().__init__(specs, settings)
        self._ignore_done = False
        self._discriminator_network = DiscriminatorNetwork(specs, settings)
        self._discriminator_network.to(default_device())
        # Sequence length 1: the discriminator sees single steps (ML-Agents does the same).
        self._demo_buffer = demo_buffer_for_training(
            settings.demo_path, 1, specs, ["reward_signals", "gail", "demo_path"]
        )
        self.optimizer = torch.optim.Adam(
            self._discriminator_network.parameters(), lr=settings.learning_rate
        )

    def evaluate(self, mini_batch: BatchOrBuffer) -> np.ndarray:
        """``-log(1 - D(s, a))`` per step: large where the discriminator takes the agent's
        step for the expert's."""
        with torch.no_grad():
            estimates, _ = self._discriminator_network.compute_estimate(
                mini_batch, use_vail_noise=False
            )
            return ModelUtils.to_numpy(
                -torch.log(
                    1.0 - estimates.squeeze(dim=1) * (1.0 - self._discriminator_network.EPSILON)
                )
            )

    def update(self, mini_batch: BatchOrBuffer) -> dict[str, float]:
        """One discriminator step on ``mini_batch`` against as many demonstration steps."""
        policy_batch = ExperienceBatch.of(mini_batch)
        expert_batch = ExperienceBatch.of(
            self._demo_buffer.sample_mini_batch(policy_batch.num_experiences, 1)
        )
        self._discriminator_network.encoder.update_normalization(expert_batch)
        loss, stats = self._discriminator_network.compute_loss(policy_batch, expert_batch)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return stats

    def get_modules(self) -> dict[str, torch.nn.Module]:
        return {f"Module:{self.name}": self._discriminator_network}


class DiscriminatorNetwork(torch.nn.Module):
    gradient_penalty_weight = 10.0
    z_size = 128
    alpha = 0.0005  # step of the VAIL beta (the KL constraint's multiplier)
    mutual_information = 0.5  # the KL bound VAIL keeps the encoding under
    EPSILON = 1e-7
    initial_beta = 0.0

    def __init__(self, specs: Any, settings: Any) -> None:
        super().__init__()
        self._use_vail = settings.use_vail
        self._use_actions = settings.use_actions
        encoder_settings = encoder_settings_without_memory(settings, "GAIL")
        self._action_flattener = ActionFlattener(specs.action_spec)
        # Actions (flattened, one-hot discrete) and the done flag join the encoding.
        unencoded_size = self._action_flattener.flattened_size + 1 if self._use_actions else 0
        self.encoder = NetworkBody(specs.observation_specs, encoder_settings, unencoded_size)
        estimator_input_size = encoder_settings.hidden_units
        if self._use_vail:
            estimator_input_size = self.z_size
            self._z_sigma = torch.nn.Parameter(
                torch.ones(self.z_size, dtype=torch.float), requires_grad=True
            )
            self._z_mu_layer = linear_layer(
                encoder_settings.hidden_units,
                self.z_size,
                kernel_init=Initialization.KaimingHeNormal,
                kernel_gain=0.1,
            )
            self._beta = torch.nn.Parameter(
                torch.tensor(self.initial_beta, dtype=torch.float), requires_grad=False
            )
        self._estimator = torch.nn.Sequential(
            linear_layer(estimator_input_size, 1, kernel_gain=0.2), torch.nn.Sigmoid()
        )

    @property
    def device(self) -> torch.device:
        return module_device(self)

    def get_action_input(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        """Continuous actions and one-hot discrete actions, ``[batch, flattened_size]``."""
        batch = ExperienceBatch.of(mini_batch)
        actions = AgentAction.from_arrays(
            batch.continuous_actions, batch.discrete_actions, self.device
        )
        return self._action_flattener.forward(actions)

    def get_state_inputs(self, mini_batch: BatchOrBuffer) -> list[torch.Tensor]:
        n_obs = len(self.encoder.processors)
        batch = ExperienceBatch.of(mini_batch)
        return ModelUtils.list_to_tensor_list(batch.observations(n_obs), device=self.device)

    def _dones(self, batch: ExperienceBatch) -> torch.Tensor:
        dones = np.asarray(batch.require("done"), dtype=np.float32)
        return ModelUtils.list_to_tensor(dones, device=self.device).reshape(-1, 1)

    def _sample_code(self, hidden: torch.Tensor, use_vail_noise: bool) -> tuple:
        """VAIL: the mean code, plus noise of scale ``z_sigma`` when sampling."""
        z_mu = self._z_mu_layer(hidden)
        return z_mu + torch.randn_like(z_mu) * self._z_sigma * use_vail_noise, z_mu

    def compute_estimate(
        self, mini_batch: BatchOrBuffer, use_vail_noise: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``D(s, a)``, how much the discriminator believes each step is the expert's
        (``[batch, 1]``), and the VAIL mean code (None without VAIL)."""
        batch = ExperienceBatch.of(mini_batch)
        inputs = self.get_state_inputs(batch)
        if self._use_actions:
            action_inputs = torch.cat([self.get_action_input(batch), self._dones(batch)], dim=1)
            hidden, _ = self.encoder(inputs, action_inputs)
        else:
            hidden, _ = self.encoder(inputs)
        z_mu: torch.Tensor | None = None
        if self._use_vail:
            hidden, z_mu = self._sample_code(hidden, use_vail_noise)
        return self._estimator(hidden), z_mu

    def compute_loss(
        self, policy_batch: BatchOrBuffer, expert_batch: BatchOrBuffer
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Binary cross-entropy of the discriminator (expert = 1, agent = 0), plus the VAIL
        KL term and the gradient penalty. Returns the loss and ML-Agents' statistics."""
        stats: dict[str, float] = {}
        policy_batch, expert_batch = (
            ExperienceBatch.of(policy_batch),
            ExperienceBatch.of(expert_batch),
        )
        policy_estimate, policy_mu = self.compute_estimate(policy_batch, use_vail_noise=True)
        expert_estimate, expert_mu = self.compute_estimate(expert_batch, use_vail_noise=True)
        stats["Policy/GAIL Policy Estimate"] = policy_estimate.mean().item()
        stats["Policy/GAIL Expert Estimate"] = expert_estimate.mean().item()
        discriminator_loss = -(
            torch.log(expert_estimate + self.EPSILON)
            + torch.log(1.0 - policy_estimate + self.EPSILON)
        ).mean()
        stats["Losses/GAIL Loss"] = discriminator_loss.item()
        total_loss = torch.zeros(1, device=discriminator_loss.device) + discriminator_loss
        if self._use_vail:
            # compute_estimate returns the mean codes whenever VAIL is on.
            assert expert_mu is not None and policy_mu is not None
            kl_loss = torch.mean(
                -torch.sum(
                    1
                    + (self._z_sigma**2).log()
                    - 0.5 * expert_mu**2
                    - 0.5 * policy_mu**2
                    - (self._z_sigma**2),
                    dim=1,
                )
            )
            vail_loss = self._beta * (kl_loss - self.mutual_information)
            with torch.no_grad():
                # Dual ascent on beta keeps the KL near the bound.
                self._beta.data = torch.clamp(
                    self._beta + self.alpha * (kl_loss - self.mutual_information), min=0.0
                )
            total_loss = total_loss + vail_loss
            stats["Policy/GAIL Beta"] = self._beta.item()
            stats["Losses/GAIL KL Loss"] = kl_loss.item()
        if self.gradient_penalty_weight > 0.0:
            gradient_magnitude_loss = (
                self.gradient_penalty_weight
                * self.compute_gradient_magnitude(policy_batch, expert_batch)
            )
            stats["Policy/GAIL Grad Mag Loss"] = gradient_magnitude_loss.item()
            total_loss = total_loss + gradient_magnitude_loss
        return total_loss, stats

    def compute_gradient_magnitude(
        self, policy_batch: BatchOrBuffer, expert_batch: BatchOrBuffer
    ) -> torch.Tensor:
        """``mean((||grad D(x)|| - 1)^2)`` at points drawn between agent and expert steps."""
        policy_batch, expert_batch = (
            ExperienceBatch.of(policy_batch),
            ExperienceBatch.of(expert_batch),
        )
        interp_inputs = []
        for policy_input, expert_input in zip(
            self.get_state_inputs(policy_batch), self.get_state_inputs(expert_batch), strict=True
        ):
            obs_epsilon = torch.rand(policy_input.shape, device=policy_input.device)
            interp_input = obs_epsilon * policy_input + (1 - obs_epsilon) * expert_input
            interp_input.requires_grad = True
            interp_inputs.append(interp_input)
        if self._use_actions:
            policy_action = self.get_action_input(policy_batch)
            expert_action = self.get_action_input(expert_batch)
            action_epsilon = torch.rand(policy_action.shape, device=policy_action.device)
            policy_dones = self._dones(policy_batch)
            expert_dones = self._dones(expert_batch)
            dones_epsilon = torch.rand(policy_dones.shape, device=policy_dones.device)
            action_inputs = torch.cat(
                [
                    action_epsilon * policy_action + (1 - action_epsilon) * expert_action,
                    dones_epsilon * policy_dones + (1 - dones_epsilon) * expert_dones,
                ],
                dim=1,
            )
            action_inputs.requires_grad = True
            hidden, _ = self.encoder(interp_inputs, action_inputs)
            encoder_input = (*interp_inputs, action_inputs)
        else:
            hidden, _ = self.encoder(interp_inputs)
            encoder_input = tuple(interp_inputs)
        if self._use_vail:
            hidden, _ = self._sample_code(hidden, use_vail_noise=True)
        estimate = self._estimator(hidden).squeeze(1).sum()
        gradient = torch.autograd.grad(estimate, encoder_input, create_graph=True)[0]
        # The norm's gradient is NaN at 0: add EPSILON under the square root.
        safe_norm = (torch.sum(gradient**2, dim=1) + self.EPSILON).sqrt()
        return torch.mean((safe_norm - 1) ** 2)
