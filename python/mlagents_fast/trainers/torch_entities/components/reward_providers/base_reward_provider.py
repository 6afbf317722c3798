"""BaseRewardProvider: one reward signal (extrinsic, curiosity, ...) with its gamma and strength."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mlagents_fast.trainers.batches import BatchOrBuffer

__all__ = ["BaseRewardProvider"]


class BaseRewardProvider(ABC):
    def __init__(self, specs: Any, settings: Any) -> None:
        self._policy_specs = specs
        self._gamma = settings.gamma
        self._strength = settings.strength
        self._ignore_done = False

    @property
    def gamma(self) -> float:
        """Discount factor of this signal."""
        return self._gamma

    @property
    def strength(self) -> float:
        """Multiplier applied to this signal's rewards."""
        return self._strength

    @property
    def name(self) -> str:
        return self.__class__.__name__.replace("RewardProvider", "")

    @property
    def ignore_done(self) -> bool:
        """True when episode ends must not cut this signal's returns (bootstrap through them)."""
        return self._ignore_done

    @abstractmethod
    def evaluate(self, mini_batch: BatchOrBuffer) -> np.ndarray:
        """Rewards (float32, one per experience) of this signal for a batch."""

    @abstractmethod
    def update(self, mini_batch: BatchOrBuffer) -> Mapping[str, float | np.ndarray]:
        """Train the signal's own model on a batch; returns stats (floats or 0-d arrays)."""

    def get_modules(self) -> dict[str, torch.nn.Module]:
        """Modules to save in checkpoints, by name."""
        return {}
