"""Self-attention over a variable number of entities (buffer-sensor observations).

A buffer sensor sends a ``(max_entities, entity_size)`` observation whose unused rows are all
zeros. :class:`EntityEmbedding` embeds each entity (concatenated with the agent's own encoded
observations when it has some), :class:`ResidualSelfAttention` runs one multi-head self-attention
block over the embeddings with the padding rows masked out, and averages the result over the
real entities. The architecture, parameter names and initialisation scales are those of
ML-Agents 1.1.0 (after Baker et al., https://arxiv.org/abs/1909.07528, with the T-Fixup
initialisation of Huang et al., ICML 2020), so checkpoints load in both directions and the
exported graph has the operators Unity's inference imports.
"""

from __future__ import annotations

import torch

from mlagents_fast.trainers.exception import UnityTrainerException
from mlagents_fast.trainers.torch_entities.layers import (
    Initialization,
    LayerNorm,
    LinearEncoder,
    linear_layer,
)
from mlagents_fast.trainers.torch_entities.model_serialization import exporting_to_onnx

__all__ = [
    "EntityEmbedding",
    "MultiHeadAttention",
    "ResidualSelfAttention",
    "get_zero_entities_mask",
]

# Squared norm below which an entity row counts as padding.
PADDING_THRESHOLD = 0.01


def _tfixup_gain(embedding_size: int) -> float:
    """Weight scale of every attention layer (T-Fixup)."""
    return (0.125 / embedding_size) ** 0.5


def get_zero_entities_mask(entities: list[torch.Tensor]) -> list[torch.Tensor]:
    """One float mask ``(batch, n_entities)`` per entity tensor ``(batch, n_entities, size)``:
    1 where the entity row is padding (all zeros, squared sum below 0.01), 0 where it is real."""
    with torch.no_grad():
        return [(torch.sum(ent**2, dim=2) < PADDING_THRESHOLD).float() for ent in entities]


class MultiHeadAttention(torch.nn.Module):
    """Scaled dot-product attention over ``num_heads`` heads, without parameters of its own.

    Written out with reshapes and matmuls rather than ``torch.nn.MultiheadAttention``, whose
    exported operators Unity's inference does not import. ``forward`` takes query
    ``(b, n_q, emb)``, key and value ``(b, n_k, emb)`` and an optional key mask ``(b, n_k)``
    (1 = ignore), and returns the attended values ``(b, n_q, emb)`` and the attention weights
    ``(b, heads, n_q, n_k)``.
    """

    NEG_INF = -1e6

    def __init__(self, embedding_size: int, num_heads: int):
        super().__init__()
        self.n_heads = num_heads
        self.head_size: int = embedding_size // num_heads
        self.embedding_size: int = self.head_size * num_heads

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        n_q: int,
        n_k: int,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        query = query.reshape(-1, n_q, self.n_heads, self.head_size).permute([0, 2, 1, 3])
        key = key.reshape(-1, n_k, self.n_heads, self.head_size).permute([0, 2, 1, 3])
        if exporting_to_onnx.is_exporting():
            # Two permutes with arithmetic between them: the exporter would otherwise fuse them
            # into a Transpose(0, 2, 3, 1), which Unity's importer mishandles.
            key = key - 1
            key = key + 1
        key = key.permute([0, 1, 3, 2])  # (b, h, head, n_k)
        value = value.reshape(-1, n_k, self.n_heads, self.head_size).permute([0, 2, 1, 3])

        scores = torch.matmul(query, key)  # (b, h, n_q, n_k)
        if key_mask is None:
            scores = scores / (self.embedding_size**0.5)
        else:
            key_mask = key_mask.reshape(-1, 1, 1, n_k)
            scores = (1 - key_mask) * scores / (self.embedding_size**0.5) + key_mask * self.NEG_INF
        weights = torch.softmax(scores, dim=3)
        attended = torch.matmul(weights, value)  # (b, h, n_q, head)
        attended = attended.permute([0, 2, 1, 3]).reshape(-1, n_q, self.embedding_size)
        return attended, weights


class EntityEmbedding(torch.nn.Module):
    """Embeds each entity of a variable-length observation into ``embedding_size`` floats.

    - entity_size: floats per entity (the observation's last axis).
    - entity_num_max_elements: the observation's entity axis (its maximum entity count); None
      for unbounded, which trains but cannot be exported to ONNX.
    - embedding_size: width of the embeddings (ML-Agents fixes it at 128).

    After :meth:`add_self_embedding`, each entity is concatenated with the agent's own encoded
    observations before the embedding layer (ego-centric attention).
    """

    def __init__(self, entity_size: int, entity_num_max_elements: int | None, embedding_size: int):
        super().__init__()
        self.self_size: int = 0
        self.entity_size: int = entity_size
        self.entity_num_max_elements: int = (
            -1 if entity_num_max_elements is None else int(entity_num_max_elements)
        )
        self.embedding_size = embedding_size
        self.self_ent_encoder = self._embedding_layer(entity_size)

    def _embedding_layer(self, input_size: int) -> LinearEncoder:
        return LinearEncoder(
            input_size,
            1,
            self.embedding_size,
            kernel_init=Initialization.Normal,
            kernel_gain=_tfixup_gain(self.embedding_size),
        )

    def add_self_embedding(self, size: int) -> None:
        """Concatenate a ``size``-wide self encoding to every entity from now on."""
        self.self_size = size
        self.self_ent_encoder = self._embedding_layer(size + self.entity_size)

    def forward(self, x_self: torch.Tensor | None, entities: torch.Tensor) -> torch.Tensor:
        """``(batch, n_entities, embedding_size)`` from entities ``(batch, n_entities,
        entity_size)`` and, with a self embedding, ``x_self`` ``(batch, self_size)``."""
        num_entities = self.entity_num_max_elements
        if num_entities < 0:
            if exporting_to_onnx.is_exporting():
                raise UnityTrainerException(
                    "Cannot export an attention module without a fixed maximum number of entities."
                )
            num_entities = entities.shape[1]
        if self.self_size > 0:
            if x_self is None:
                raise UnityTrainerException(
                    "This entity embedding was built with a self embedding but got no x_self."
                )
            if not exporting_to_onnx.is_exporting():
                return self._embed_with_self(x_self, entities)
            expanded_self = x_self.reshape(-1, 1, self.self_size)
            # Repeated by concatenation (not expand): Tile is what the importer knows.
            expanded_self = torch.cat([expanded_self] * num_entities, dim=1)
            entities = torch.cat([expanded_self, entities], dim=2)
        return self.self_ent_encoder(entities)

    def _embed_with_self(self, x_self: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
        """The embedding layer applied to ``[x_self, entity]`` without building that
        concatenation: the self part of the product is computed once per agent and broadcast
        over its entities (same weights, same result; the export keeps the concatenation)."""
        layer, activation = self.self_ent_encoder.seq_layers
        assert isinstance(layer, torch.nn.Linear)
        self_part = torch.nn.functional.linear(x_self, layer.weight[:, : self.self_size])
        entity_part = torch.nn.functional.linear(
            entities, layer.weight[:, self.self_size :], layer.bias
        )
        return activation(entity_part + self_part.unsqueeze(1))


class ResidualSelfAttention(torch.nn.Module):
    """One residual multi-head self-attention block over entity embeddings, then a mean over
    the entities that are not padding.

    - embedding_size: width of the embeddings and of the query/key/value projections.
    - entity_num_max_elements: total entity count over every variable-length observation; None
      for unbounded (not exportable).
    - num_heads: attention heads (``embedding_size`` must be divisible by it).

    ``forward(inp, key_masks)`` takes the concatenated embeddings ``(batch, n_entities, emb)``
    and one padding mask per variable-length observation (see :func:`get_zero_entities_mask`),
    and returns ``(batch, emb)``.
    """

    EPSILON = 1e-7

    def __init__(
        self,
        embedding_size: int,
        entity_num_max_elements: int | None = None,
        num_heads: int = 4,
    ):
        super().__init__()
        self.max_num_ent: int | None = entity_num_max_elements
        self.attention = MultiHeadAttention(embedding_size=embedding_size, num_heads=num_heads)
        gain = _tfixup_gain(embedding_size)
        self.fc_q = linear_layer(
            embedding_size, embedding_size, kernel_init=Initialization.Normal, kernel_gain=gain
        )
        self.fc_k = linear_layer(
            embedding_size, embedding_size, kernel_init=Initialization.Normal, kernel_gain=gain
        )
        self.fc_v = linear_layer(
            embedding_size, embedding_size, kernel_init=Initialization.Normal, kernel_gain=gain
        )
        self.fc_out = linear_layer(
            embedding_size, embedding_size, kernel_init=Initialization.Normal, kernel_gain=gain
        )
        self.embedding_norm = LayerNorm()
        self.residual_norm = LayerNorm()

    def forward(self, inp: torch.Tensor, key_masks: list[torch.Tensor]) -> torch.Tensor:
        mask = torch.cat(key_masks, dim=1)
        inp = self.embedding_norm(inp)
        query = self.fc_q(inp)
        key = self.fc_k(inp)
        value = self.fc_v(inp)
        if self.max_num_ent is not None:
            num_ent = self.max_num_ent
        else:
            if exporting_to_onnx.is_exporting():
                raise UnityTrainerException(
                    "Cannot export an attention module without a fixed maximum number of entities."
                )
            num_ent = inp.shape[1]
        output, _ = self.attention(query, key, value, num_ent, num_ent, mask)
        output = self.residual_norm(self.fc_out(output) + inp)
        # Mean over the real entities; an observation with none gives zeros.
        numerator = torch.sum(output * (1 - mask).reshape(-1, num_ent, 1), dim=1)
        denominator = torch.sum(1 - mask, dim=1, keepdim=True) + self.EPSILON
        return numerator / denominator
