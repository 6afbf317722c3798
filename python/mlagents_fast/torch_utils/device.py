"""``set_torch_config`` and ``default_device`` (in ML-Agents, ``mlagents.torch_utils.torch``)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from mlagents_fast.trainers.exception import TrainerConfigError

__all__ = ["default_device", "nn", "resolve_device", "set_torch_config", "torch"]

logger = logging.getLogger(__name__)

_device: torch.device | None = None
"""The configured device; None until configured or first asked for (probing CUDA at import
would touch the driver in every process that merely imports the package)."""


def _refuse(name: str, reason: str) -> TrainerConfigError:
    return TrainerConfigError(
        f"--torch-device {name}: {reason}", key_path=["torch_settings", "device"]
    )


def resolve_device(name: str | None) -> torch.device:
    """The torch device ``--torch-device name`` means; ML-Agents' rule for None (``cuda``
    when available, else ``cpu``). A name that is no device, or a device this machine does
    not have, is a TrainerConfigError naming it (ML-Agents fails later, with a traceback)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise _refuse(
            repr(name), "not a torch device (expected cpu, cuda, cuda:N or mps)"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise _refuse(
                name,
                f"CUDA is not available (PyTorch {torch.__version__}, CUDA build "
                f"{torch.version.cuda or 'none'}); use --torch-device cpu",
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise _refuse(
                name, f"this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
        return device
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise _refuse(name, "the Apple MPS backend is not available on this machine")
        return device
    raise _refuse(name, "training runs on cpu, cuda, cuda:N or mps")


def set_torch_config(torch_settings: Any) -> None:
    """Choose the training device from ``torch_settings.device`` (see :func:`resolve_device`)."""
    global _device
    _device = resolve_device(getattr(torch_settings, "device", None))
    torch.set_default_dtype(torch.float32)
    logger.debug("default Torch device: %s", _device)


def default_device() -> torch.device:
    """The device networks are created on and train on."""
    global _device
    if _device is None:
        _device = resolve_device(None)
    return _device
