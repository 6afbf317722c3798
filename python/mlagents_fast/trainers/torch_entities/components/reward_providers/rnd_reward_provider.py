"""Random network distillation (Burda et al. 2018, arXiv:1810.12894): the reward is how badly a
trained network predicts the embedding a fixed random network gives an observation, so rarely
seen observations pay more."""

from __future__ import annotations

import logging
from typing import Any

import attr
import numpy as np
import torch

from mlagents_fast.torch_utils import default_device
from mlagents_fast.trainers.batches import BatchOrBuffer, ExperienceBatch
from mlagents_fast.trainers.torch_entities.components.reward_providers.base_reward_provider import (
    BaseRewardProvider,
)
from mlagents_fast.trainers.torch_entities.networks import NetworkBody
from mlagents_fast.trainers.torch_entities.utils import ModelUtils, module_device

__all__ = ["RNDNetwork", "RNDRewardProvider", "encoder_settings_without_memory"]

logger = logging.getLogger(__name__)


def encoder_settings_without_memory(settings: Any, signal: str) -> Any:
    """The signal's network settings with ``memory`` dropped (these encoders have no LSTM)."""
    network_settings = settings.network_settings
    if network_settings.memory is not None:
        logger.warning(
            "memory was specified in network_settings but is not supported by %s. "
            "It is being ignored.",
            signal,
        )
        network_settings = attr.evolve(network_settings, memory=None)
    return network_settings


class RNDNetwork(torch.nn.Module):
    def __init__(self, specs: Any, settings: Any) -> None:
        super().__init__()
        self._encoder = NetworkBody(
            specs.observation_specs, encoder_settings_without_memory(settings, "RND")
        )

    def forward(self, mini_batch: BatchOrBuffer) -> torch.Tensor:
        batch = ExperienceBatch.of(mini_batch)
        n_obs = len(self._encoder.processors)
        tensor_obs = ModelUtils.list_to_tensor_list(
            batch.observations(n_obs), device=module_device(self)
        )
        hidden, _ = self._encoder(tensor_obs)
        # As ML-Agents: the normaliser learns from every batch this network sees.
        self._encoder.update_normalization(batch)
        return hidden


class RNDRewardProvider(BaseRewardProvider):
    def __init__(self, specs: Any, settings: Any) -> None:
        super().__init__(specs, settings)
        self._ignore_done = True
        self._random_network = RNDNetwork(specs, settings)
        self._training_network = RNDNetwork(specs, settings)
        for param in self._random_network.parameters():
            param.requires_grad_(False)
        self._random_network.to(default_device())
        self._training_network.to(default_device())
        self.optimizer = ModelUtils.create_adam(
            self._training_network.parameters(), lr=settings.learning_rate
        )

    def evaluate(self, mini_batch: BatchOrBuffer) -> np.ndarray:
        batch = ExperienceBatch.of(mini_batch)
        with torch.no_grad():
            target = self._random_network(batch)
            prediction = self._training_network(batch)
            rewards = torch.sum((prediction - target) ** 2, dim=1)
        return ModelUtils.to_numpy(rewards)

    def update(self, mini_batch: BatchOrBuffer) -> dict[str, np.ndarray]:
        batch = ExperienceBatch.of(mini_batch)
        with torch.no_grad():
            target = self._random_network(batch)
        prediction = self._training_network(batch)
        loss = torch.mean(torch.sum((prediction - target) ** 2, dim=1))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"Losses/RND Loss": ModelUtils.to_numpy(loss)}

    def get_modules(self) -> dict[str, torch.nn.Module]:
        return {
            f"Module:{self.name}-pred": self._training_network,
            f"Module:{self.name}-target": self._random_network,
        }
