"""Optimizer: the interface trainers call to update a policy."""

from __future__ import annotations

import abc
from typing import Any

from mlagents_fast.trainers.batches import ExperienceBatch
from mlagents_fast.trainers.buffer import AgentBuffer

__all__ = ["Optimizer"]


class Optimizer(abc.ABC):
    def __init__(self) -> None:
        self.reward_signals: dict[str, Any] = {}

    @abc.abstractmethod
    def update(self, batch: ExperienceBatch | AgentBuffer, num_sequences: int) -> dict[str, float]:
        """Update the policy on ``batch`` (a minibatch holding ``num_sequences`` recurrent
        sequences: an ExperienceBatch, or an AgentBuffer as ML-Agents passes it); returns
        stats by name (e.g. "Losses/Policy Loss")."""
