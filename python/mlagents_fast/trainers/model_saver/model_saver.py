"""BaseModelSaver: the interface trainers use to checkpoint, export and restore their models."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["BaseModelSaver"]


class BaseModelSaver(abc.ABC):
    def __init__(self) -> None:
        pass

    @abc.abstractmethod
    def register(self, module: Any) -> None:
        """Include a policy's or optimizer's modules in what is saved and loaded."""

    def _register_policy(self, policy: Any) -> None:
        pass

    def _register_optimizer(self, optimizer: Any) -> None:
        pass

    @abc.abstractmethod
    def save_checkpoint(self, behavior_name: str, step: int) -> tuple[str, list[str]]:
        """Write ``<Behavior>-<step>.pt`` and ``.onnx``; return the .onnx path and [the .pt path]."""

    @abc.abstractmethod
    def export(self, output_filepath: str, behavior_name: str) -> None:
        """Write the policy's ONNX model to ``<output_filepath>.onnx``."""

    @abc.abstractmethod
    def initialize_or_load(self, policy: Any | None = None) -> None:
        """Load ``--initialize-from`` or ``--resume`` weights into the registered modules."""
