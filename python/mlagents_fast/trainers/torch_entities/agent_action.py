"""Actions as tensors (AgentAction), with conversions to the environment's ActionTuple."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.torch_entities.utils import ModelUtils

__all__ = ["AgentAction"]


class AgentAction(NamedTuple):
    """``continuous_tensor``: (batch, continuous_size) or None. ``discrete_list``: one tensor of
    indices per branch, (batch, 1) when sampled by the policy or (batch,) when read from a
    buffer; None without discrete branches."""

    continuous_tensor: torch.Tensor | None
    discrete_list: list[torch.Tensor] | None

    @property
    def discrete_tensor(self) -> torch.Tensor:
        """Indices as (batch, n_branches); an empty tensor without discrete branches."""
        if self.discrete_list is not None and len(self.discrete_list) > 0:
            return torch.cat([branch.reshape(-1, 1) for branch in self.discrete_list], dim=1)
        device = self.continuous_tensor.device if self.continuous_tensor is not None else None
        return torch.empty(0, device=device)

    def slice(self, start: int, end: int) -> AgentAction:
        continuous = None if self.continuous_tensor is None else self.continuous_tensor[start:end]
        discrete = (
            None
            if self.discrete_list is None
            else [branch[start:end] for branch in self.discrete_list]
        )
        return AgentAction(continuous, discrete)

    def to_action_tuple(self, clip: bool = False) -> ActionTuple:
        """Numpy actions for the environment. ``clip``: map continuous actions through
        clip(a, -3, 3) / 3 into [-1, 1], which is what PPO's Gaussian actions are sent as."""
        continuous = None
        discrete = None
        if self.continuous_tensor is not None:
            tensor = self.continuous_tensor
            if clip:
                tensor = torch.clamp(tensor, -3, 3) / 3
            continuous = ModelUtils.to_numpy(tensor)
        if self.discrete_list is not None:
            discrete = ModelUtils.to_numpy(self.discrete_tensor)
        return ActionTuple(continuous=continuous, discrete=discrete)

    @staticmethod
    def from_arrays(
        continuous: Any | None, discrete: Any | None, device: torch.device | None = None
    ) -> AgentAction:
        """Actions read from a batch: continuous (batch, continuous_size), discrete
        (batch, n_branches) indices; either may be None. Tensors on ``device`` (the training
        device when None)."""
        continuous_tensor = (
            None if continuous is None else ModelUtils.list_to_tensor(continuous, device=device)
        )
        discrete_list: list[torch.Tensor] | None = None
        if discrete is not None:
            discrete_tensor = ModelUtils.list_to_tensor(discrete, dtype=torch.long, device=device)
            discrete_list = [discrete_tensor[..., i] for i in range(discrete_tensor.shape[-1])]
        return AgentAction(continuous_tensor, discrete_list)

    @staticmethod
    def from_buffer(buff: Any, device: torch.device | None = None) -> AgentAction:
        """Actions of an AgentBuffer (or anything answering its keys), on ``device``."""
        # Not buff.get(key): an AgentBuffer creates a missing field on access.
        continuous, discrete = BufferKey.CONTINUOUS_ACTION, BufferKey.DISCRETE_ACTION
        return AgentAction.from_arrays(
            buff[continuous] if continuous in buff else None,  # noqa: SIM401
            buff[discrete] if discrete in buff else None,  # noqa: SIM401
            device,
        )

    @staticmethod
    def _group_from_buffer(
        buff: Any, continuous_key: Any, discrete_key: Any, device: torch.device | None
    ) -> list[AgentAction]:
        """One AgentAction per group position (absent mates are 0), from numeric ``(L, W, n)``
        group columns or from ML-Agents' ragged entries."""
        per_mate_continuous = _per_mate(buff, continuous_key, np.float32)
        per_mate_discrete = _per_mate(buff, discrete_key, np.int64)
        actions = []
        for j in range(max(len(per_mate_continuous), len(per_mate_discrete))):
            continuous = None
            discrete = None
            if j < len(per_mate_continuous):
                continuous = ModelUtils.list_to_tensor(per_mate_continuous[j], device=device)
            if j < len(per_mate_discrete):
                indices = ModelUtils.list_to_tensor(
                    per_mate_discrete[j], dtype=torch.long, device=device
                )
                discrete = [indices[..., b] for b in range(indices.shape[-1])]
            actions.append(AgentAction(continuous, discrete))
        return actions

    @staticmethod
    def group_from_buffer(buff: Any, device: torch.device | None = None) -> list[AgentAction]:
        """The group mates' actions at each row, one AgentAction per group position."""
        return AgentAction._group_from_buffer(
            buff, BufferKey.GROUP_CONTINUOUS_ACTION, BufferKey.GROUP_DISCRETE_ACTION, device
        )

    @staticmethod
    def group_from_buffer_next(buff: Any, device: torch.device | None = None) -> list[AgentAction]:
        """The group mates' next actions at each row, one AgentAction per group position."""
        return AgentAction._group_from_buffer(
            buff, BufferKey.GROUP_NEXT_CONT_ACTION, BufferKey.GROUP_NEXT_DISC_ACTION, device
        )

    def to_flat(self, discrete_branches: list[int]) -> torch.Tensor:
        """Continuous actions followed by one-hot discrete actions, (batch, cont + sum(branches))."""
        parts: list[torch.Tensor] = []
        if self.continuous_tensor is not None:
            parts.append(self.continuous_tensor)
        if self.discrete_list is not None and len(self.discrete_list) > 0:
            parts.extend(ModelUtils.actions_to_onehot(self.discrete_tensor, discrete_branches))
        return torch.cat(parts, dim=-1)


def _per_mate(buff: Any, key: Any, dtype: Any) -> list[np.ndarray]:
    """Rows of group column ``key`` split by group position (contiguous arrays)."""
    if key not in buff:
        return []
    field = buff[key]
    if field.contains_lists:
        return [np.ascontiguousarray(a) for a in field.padded_to_batch(dtype=dtype)]
    rows = np.asarray(field)
    if rows.ndim < 2:
        return []
    return [np.ascontiguousarray(rows[:, j], dtype=dtype) for j in range(rows.shape[1])]
