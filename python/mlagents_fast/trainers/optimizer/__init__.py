"""Optimizers (the counterpart of ``mlagents.trainers.optimizer``)."""

from mlagents_fast.trainers.optimizer.optimizer import Optimizer

__all__ = ["Optimizer"]
