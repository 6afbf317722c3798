"""Log-probabilities of taken actions, as tensors (ActionLogProbs) and as numpy (LogProbsTuple)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.torch_entities.utils import ModelUtils

__all__ = ["ActionLogProbs", "LogProbsTuple"]


class LogProbsTuple:
    """Numpy log-probabilities of one decision step: ``continuous`` (n_agents, continuous_size)
    and ``discrete`` (n_agents, n_branches), both float32; an absent part is an empty
    (n_agents, 0) array, as in ML-Agents' ``ActionTuple``."""

    __slots__ = ("_continuous", "_discrete")

    def __init__(self, continuous: np.ndarray | None = None, discrete: np.ndarray | None = None):
        self._continuous: np.ndarray | None = None
        self._discrete: np.ndarray | None = None
        if continuous is not None:
            self.add_continuous(continuous)
        if discrete is not None:
            self.add_discrete(discrete)

    @property
    def continuous(self) -> np.ndarray:
        return self._continuous if self._continuous is not None else np.zeros((0, 0), np.float32)

    @property
    def discrete(self) -> np.ndarray:
        return self._discrete if self._discrete is not None else np.zeros((0, 0), np.float32)

    @property
    def discrete_dtype(self) -> type:
        return np.float32

    def add_continuous(self, continuous: np.ndarray) -> None:
        continuous = np.asarray(continuous, dtype=np.float32)
        if self._discrete is None:
            self._discrete = np.zeros((continuous.shape[0], 0), dtype=np.float32)
        self._continuous = continuous

    def add_discrete(self, discrete: np.ndarray) -> None:
        discrete = np.asarray(discrete, dtype=np.float32)
        if self._continuous is None:
            self._continuous = np.zeros((discrete.shape[0], 0), dtype=np.float32)
        self._discrete = discrete

    @staticmethod
    def empty_log_probs() -> LogProbsTuple:
        return LogProbsTuple()


class ActionLogProbs(NamedTuple):
    """Log-probabilities as tensors.

    ``continuous_tensor``: (batch, continuous_size) or None. ``discrete_list``: one (batch,)
    tensor per branch (the taken action) or None. ``all_discrete_list``: one
    (batch, branch_size) tensor per branch (every action) or None.
    """

    continuous_tensor: torch.Tensor | None
    discrete_list: list[torch.Tensor] | None
    all_discrete_list: list[torch.Tensor] | None

    @property
    def discrete_tensor(self) -> torch.Tensor:
        return torch.stack(self.discrete_list, dim=-1)  # type: ignore[arg-type]

    @property
    def all_discrete_tensor(self) -> torch.Tensor:
        return torch.cat(self.all_discrete_list, dim=1)  # type: ignore[arg-type]

    def to_log_probs_tuple(self) -> LogProbsTuple:
        log_probs_tuple = LogProbsTuple()
        if self.continuous_tensor is not None:
            log_probs_tuple.add_continuous(ModelUtils.to_numpy(self.continuous_tensor))
        if self.discrete_list is not None:
            log_probs_tuple.add_discrete(ModelUtils.to_numpy(self.discrete_tensor))
        return log_probs_tuple

    def _to_tensor_list(self) -> list[torch.Tensor]:
        tensor_list: list[torch.Tensor] = []
        if self.continuous_tensor is not None:
            tensor_list.append(self.continuous_tensor)
        if self.discrete_list is not None:
            tensor_list.append(self.discrete_tensor)
        return tensor_list

    def flatten(self) -> torch.Tensor:
        """All log-probabilities side by side, (batch, continuous_size + n_branches) (PPO's ratio)."""
        return torch.cat(self._to_tensor_list(), dim=1)

    @staticmethod
    def from_arrays(
        continuous: Any | None, discrete: Any | None, device: torch.device | None = None
    ) -> ActionLogProbs:
        """Log-probabilities read from a batch: continuous (batch, continuous_size) and
        discrete (batch, n_branches); either may be None or have no column. Tensors on
        ``device`` (the training device when None)."""
        continuous_tensor: torch.Tensor | None = None
        discrete_list: list[torch.Tensor] | None = None
        if continuous is not None:
            continuous_tensor = ModelUtils.list_to_tensor(continuous, device=device)
            if continuous_tensor.ndim == 2 and continuous_tensor.shape[1] == 0:
                continuous_tensor = None
        if discrete is not None:
            discrete_tensor = ModelUtils.list_to_tensor(discrete, device=device)
            if discrete_tensor.ndim == 2 and discrete_tensor.shape[1] > 0:
                discrete_list = [discrete_tensor[..., i] for i in range(discrete_tensor.shape[-1])]
        return ActionLogProbs(continuous_tensor, discrete_list, None)

    @staticmethod
    def from_buffer(buff: Any, device: torch.device | None = None) -> ActionLogProbs:
        """Log-probabilities of an AgentBuffer (or anything answering its keys), on
        ``device``."""
        # Not buff.get(key): an AgentBuffer creates a missing field on access.
        continuous = BufferKey.CONTINUOUS_LOG_PROBS
        discrete = BufferKey.DISCRETE_LOG_PROBS
        return ActionLogProbs.from_arrays(
            buff[continuous] if continuous in buff else None,  # noqa: SIM401
            buff[discrete] if discrete in buff else None,  # noqa: SIM401
            device,
        )
