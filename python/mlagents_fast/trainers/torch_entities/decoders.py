"""Value heads: one linear output per reward stream."""

from __future__ import annotations

import torch
from torch import nn

from mlagents_fast.trainers.torch_entities.layers import linear_layer

__all__ = ["ValueHeads"]


class ValueHeads(nn.Module):
    def __init__(self, stream_names: list[str], input_size: int, output_size: int = 1):
        super().__init__()
        self.stream_names = list(stream_names)
        self.value_heads = nn.ModuleDict(
            {name: linear_layer(input_size, output_size) for name in self.stream_names}
        )

    def forward(self, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        """Map each stream name to its values, shape (batch,) (or (batch, output_size) when > 1)."""
        return {name: head(hidden).squeeze(-1) for name, head in self.value_heads.items()}
