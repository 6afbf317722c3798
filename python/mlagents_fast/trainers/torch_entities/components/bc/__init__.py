"""Behavioral cloning from demonstrations, alongside reinforcement learning."""

from mlagents_fast.trainers.torch_entities.components.bc.module import BCModule

__all__ = ["BCModule"]
