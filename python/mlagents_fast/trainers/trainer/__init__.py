"""Trainer base classes and helpers (the counterpart of ``mlagents.trainers.trainer``).

``Trainer`` and ``TrainerFactory`` are importable from here, as in ML-Agents.
"""

from mlagents_fast.trainers.trainer.trainer import Trainer
from mlagents_fast.trainers.trainer.trainer_factory import TrainerFactory

__all__ = ["Trainer", "TrainerFactory"]
