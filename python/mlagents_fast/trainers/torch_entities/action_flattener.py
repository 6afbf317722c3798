"""Actions as one flat tensor (the counterpart of ``mlagents.trainers.torch_entities.action_flattener``).

The continuous actions, then a one-hot of each discrete branch: what curiosity's forward
model and GAIL's discriminator take as the action input.
"""

from __future__ import annotations

import torch

from mlagents_fast.envs.base_env import ActionSpec
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.utils import ModelUtils

__all__ = ["ActionFlattener"]


class ActionFlattener:
    """Flattens an :class:`AgentAction` of ``action_spec``."""

    def __init__(self, action_spec: ActionSpec) -> None:
        self._specs = action_spec

    @property
    def flattened_size(self) -> int:
        """Continuous size plus the sum of the branch sizes."""
        return self._specs.continuous_size + sum(self._specs.discrete_branches)

    def forward(self, action: AgentAction) -> torch.Tensor:
        """``[batch, flattened_size]``: continuous actions, then one one-hot per branch."""
        parts: list[torch.Tensor] = []
        if self._specs.continuous_size > 0:
            assert action.continuous_tensor is not None  # a behavior with continuous actions
            parts.append(action.continuous_tensor)
        if self._specs.discrete_size > 0:
            discrete = action.discrete_tensor.long()
            parts.extend(
                ModelUtils.actions_to_onehot(discrete, list(self._specs.discrete_branches))
            )
        return torch.cat(parts, dim=1)
