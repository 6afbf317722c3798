"""Curiosity (Pathak et al. 2017, arXiv:1705.05363): an inverse model learns a state encoding
that predicts the action taken between two states; a forward model predicts the next state's
encoding from the state and action. The reward is the forward model's error."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from mlagents_fast.torch_utils import default_device
from mlagents_fast.trainers.batches import BatchOrBuffer, ExperienceBatch
from mlagents_fast.trainers.torch_entities.action_flattener import ActionFlattener
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.components.reward_providers.base_reward_provider import (
    BaseRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.rnd_reward_provider import (
    encoder_settings_without_memory,
)
from mlagents_fast.trainers.torch_entities.layers import LinearEncoder, linear_layer
from mlagents_fast.trainers.torch_entities.networks import NetworkBody
from mlagents_fast.trainers.torch_entities.utils import ModelUtils, module_device

__all__ = ["ActionPredictionTuple", "CuriosityNetwork", "CuriosityRewardProvider"]


class ActionPredictionTuple(NamedTuple):
    continuous: torch.Tensor | None
    discrete: torch.Tensor | None


class CuriosityNetwork(torch.nn.Module):
    EPSILON = 1e-10

    def __init__(self, specs: Any, settings: Any) -> None:
        super().__init__()
        self._action_spec = specs.action_spec
        self._continuous_size = int(specs.action_spec.continuous_size)
        self._discrete_branches = [int(b) for b in specs.action_spec.discrete_branches]
        encoder_settings = encoder_settings_without_memory(settings, "Curiosity")
        hidden = encoder_settings.hidden_units
        self._state_encoder = NetworkBody(specs.observation_specs, encoder_settings)
        self.inverse_model_action_encoding = torch.nn.Sequential(LinearEncoder(2 * hidden, 1, 256))
        if self._continuous_size > 0:
            self.continuous_action_prediction = linear_layer(256, self._continuous_size)
        if self._discrete_branches:
            self.discrete_action_prediction = linear_layer(256, sum(self._discrete_branches))
        self._action_flattener = ActionFlattener(self._action_spec)
        self.forward_model_next_state_prediction = torch.nn.Sequential(
            LinearEncoder(hidden + self._action_flattener.flattened_size, 1, 256),
            linear_layer(256, hidden),
        )

    @property
    def device(self) -> torch.device:
        return module_device(self)

    def _encode(self, obs: list) -> torch.Tensor:
        hidden, _ = self._state_encoder(ModelUtils.list_to_tensor_list(obs, device=self.device))
        return hidden

    def get_current_state(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        batch = ExperienceBatch.of(mini_batch)
        return self._encode(batch.observations(len(self._state_encoder.processors)))

    def get_next_state(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        batch = ExperienceBatch.of(mini_batch)
        return self._encode(batch.next_observations(len(self._state_encoder.processors)))

    def predict_action(self, mini_batch: BatchOrBuffer) -> ActionPredictionTuple:
        """Continuous: the predicted action; discrete: per-branch softmax probabilities."""
        batch = ExperienceBatch.of(mini_batch)
        inverse_input = torch.cat(
            (self.get_current_state(batch), self.get_next_state(batch)), dim=1
        )
        hidden = self.inverse_model_action_encoding(inverse_input)
        continuous_pred = discrete_pred = None
        if self._continuous_size > 0:
            continuous_pred = self.continuous_action_prediction(hidden)
        if self._discrete_branches:
            branches = ModelUtils.break_into_branches(
                self.discrete_action_prediction(hidden), self._discrete_branches
            )
            discrete_pred = torch.cat([torch.softmax(b, dim=1) for b in branches], dim=1)
        return ActionPredictionTuple(continuous_pred, discrete_pred)

    def predict_next_state(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        batch = ExperienceBatch.of(mini_batch)
        actions = AgentAction.from_arrays(
            batch.continuous_actions, batch.discrete_actions, self.device
        )
        forward_input = torch.cat(
            (self.get_current_state(batch), self._action_flattener.forward(actions)), dim=1
        )
        return self.forward_model_next_state_prediction(forward_input)

    @staticmethod
    def _mean_over_kept(values: torch.Tensor, batch: ExperienceBatch) -> torch.Tensor:
        # Mask rows may be scalars or shape (1,) (as ML-Agents' own buffers hold them):
        # masked_mean flattens them to one flag per step.
        masks = ModelUtils.list_to_tensor(
            batch.require("masks"), dtype=torch.float, device=values.device
        )
        return ModelUtils.masked_mean(values, masks)

    def compute_inverse_loss(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        """Error of the predicted action: squared error (continuous) plus cross-entropy
        (discrete), averaged over unpadded steps."""
        batch = ExperienceBatch.of(mini_batch)
        predicted = self.predict_action(batch)
        actions = AgentAction.from_arrays(
            batch.continuous_actions, batch.discrete_actions, self.device
        )
        inverse_loss: Any = 0
        if predicted.continuous is not None:
            taken = actions.continuous_tensor
            # The network predicts continuous actions only when the spec has them.
            assert taken is not None
            sq_difference = torch.sum((taken - predicted.continuous) ** 2, dim=1)
            inverse_loss = inverse_loss + self._mean_over_kept(sq_difference, batch)
        if predicted.discrete is not None:
            true_action = torch.cat(
                ModelUtils.actions_to_onehot(actions.discrete_tensor, self._discrete_branches),
                dim=1,
            )
            cross_entropy = torch.sum(
                -torch.log(predicted.discrete + self.EPSILON) * true_action, dim=1
            )
            inverse_loss = inverse_loss + self._mean_over_kept(cross_entropy, batch)
        return inverse_loss

    def compute_reward(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        """Half the squared error of the predicted next-state encoding, per step."""
        batch = ExperienceBatch.of(mini_batch)
        predicted_next_state = self.predict_next_state(batch)
        target = self.get_next_state(batch)
        return torch.sum(0.5 * (target - predicted_next_state) ** 2, dim=1)

    def compute_forward_loss(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        batch = ExperienceBatch.of(mini_batch)
        return self._mean_over_kept(self.compute_reward(batch), batch)


class CuriosityRewardProvider(BaseRewardProvider):
    beta = 0.2  # weight of the forward loss against the inverse loss
    loss_multiplier = 10.0

    def __init__(self, specs: Any, settings: Any) -> None:
        super().__init__(specs, settings)
        self._ignore_done = True
        self._network = CuriosityNetwork(specs, settings)
        self._network.to(default_device())
        self.optimizer = ModelUtils.create_adam(
            self._network.parameters(), lr=settings.learning_rate
        )
        self._has_updated_once = False

    def evaluate(self, mini_batch: BatchOrBuffer) -> np.ndarray:
        """Rewards, capped so that reward * strength <= 1; zero until the first update."""
        with torch.no_grad():
            rewards = ModelUtils.to_numpy(self._network.compute_reward(mini_batch))
        rewards = np.minimum(rewards, 1.0 / self.strength)
        return rewards * self._has_updated_once

    def update(self, mini_batch: BatchOrBuffer) -> dict[str, float]:
        self._has_updated_once = True
        batch = ExperienceBatch.of(mini_batch)
        forward_loss = self._network.compute_forward_loss(batch)
        inverse_loss = self._network.compute_inverse_loss(batch)
        loss = self.loss_multiplier * (self.beta * forward_loss + (1.0 - self.beta) * inverse_loss)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {
            "Losses/Curiosity Forward Loss": forward_loss.item(),
            "Losses/Curiosity Inverse Loss": inverse_loss.item(),
        }

    def get_modules(self) -> dict[str, torch.nn.Module]:
        return {f"Module:{self.name}": self._network}
