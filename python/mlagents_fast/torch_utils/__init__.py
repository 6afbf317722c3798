"""The torch device training runs on (the counterpart of ``mlagents.torch_utils``).

``set_torch_config(torch_settings)`` chooses it from ``--torch-device`` /
``torch_settings.device`` as ML-Agents 1.1.0 does (``cpu``, ``cuda``, ``cuda:N``, ``mps``;
unset: ``cuda`` when available, else ``cpu``) and ``default_device()`` returns it. Policies,
critics, reward-signal networks and optimizers are created on it, and every tensor fed to them
is created there through :func:`mlagents_fast.trainers.torch_entities.utils.to_device`.

Unlike ML-Agents, the choice is not installed as torch's global default device
(``torch.set_default_device``): each tensor names its device, so that code outside the trainer
is not moved to the GPU behind its back.
"""

from mlagents_fast.torch_utils.device import (
    default_device,
    nn,
    resolve_device,
    set_torch_config,
    torch,
)

__all__ = ["default_device", "nn", "resolve_device", "set_torch_config", "torch"]
