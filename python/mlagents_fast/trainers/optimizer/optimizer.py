"""Optimizer: the interface trainers call to update a policy."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["Optimizer"]


class Optimizer(abc.ABC):
    def __init__(self) -> None:
        self.reward_signals: dict[str, Any] = {}

    @abc.abstractmethod
    def update(self, batch: Any, num_sequences: int) -> dict[str, float]:
        """Update the policy on ``batch`` (an AgentBuffer minibatch holding ``num_sequences``
        recurrent sequences); returns stats by name (e.g. "Losses/Policy Loss")."""
