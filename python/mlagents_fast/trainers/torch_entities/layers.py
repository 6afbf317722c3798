"""Building blocks shared by the networks: initialised linear layers, the MLP body and the LSTM.

The LSTM keeps ML-Agents' memory layout: a memory vector of width ``memory_size`` holds the
hidden state ``h`` in its first half and the cell state ``c`` in its second half.
"""

from __future__ import annotations

import abc
from enum import Enum

import torch

from mlagents_fast.trainers.torch_entities.model_serialization import exporting_to_onnx

__all__ = [
    "LSTM",
    "Initialization",
    "LayerNorm",
    "LinearEncoder",
    "MemoryModule",
    "Swish",
    "linear_layer",
    "lstm_layer",
]


class Swish(torch.nn.Module):
    """x * sigmoid(x), written out so that the ONNX exporter emits Sigmoid + Mul at opset 9."""

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return torch.mul(data, torch.sigmoid(data))


class Initialization(Enum):
    Zero = 0
    XavierGlorotNormal = 1
    XavierGlorotUniform = 2
    KaimingHeNormal = 3
    KaimingHeUniform = 4
    Normal = 5


def _initialize(tensor: torch.Tensor, method: Initialization) -> None:
    if method == Initialization.Zero:
        torch.nn.init.zeros_(tensor)
    elif method == Initialization.XavierGlorotNormal:
        torch.nn.init.xavier_normal_(tensor)
    elif method == Initialization.XavierGlorotUniform:
        torch.nn.init.xavier_uniform_(tensor)
    elif method == Initialization.KaimingHeNormal:
        torch.nn.init.kaiming_normal_(tensor, nonlinearity="linear")
    elif method == Initialization.KaimingHeUniform:
        torch.nn.init.kaiming_uniform_(tensor, nonlinearity="linear")
    elif method == Initialization.Normal:
        torch.nn.init.normal_(tensor)
    else:  # pragma: no cover - the enum is closed
        raise ValueError(f"unknown initialization {method!r}")


def linear_layer(
    input_size: int,
    output_size: int,
    kernel_init: Initialization = Initialization.XavierGlorotUniform,
    kernel_gain: float = 1.0,
    bias_init: Initialization = Initialization.Zero,
) -> torch.nn.Linear:
    """A ``torch.nn.Linear`` whose weight is drawn by ``kernel_init`` and scaled by ``kernel_gain``."""
    layer = torch.nn.Linear(input_size, output_size)
    with torch.no_grad():
        _initialize(layer.weight, kernel_init)
        layer.weight.mul_(kernel_gain)
        _initialize(layer.bias, bias_init)
    return layer


def lstm_layer(
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    batch_first: bool = True,
    forget_bias: float = 1.0,
    kernel_init: Initialization = Initialization.XavierGlorotUniform,
    bias_init: Initialization = Initialization.Zero,
) -> torch.nn.LSTM:
    """A ``torch.nn.LSTM`` initialised gate by gate, with ``forget_bias`` added to the forget gate
    (gate order i, f, g, o), as TensorFlow did."""
    lstm = torch.nn.LSTM(input_size, hidden_size, num_layers, batch_first=batch_first)
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            block = param.shape[0] // 4
            for gate in range(4):
                part = param[gate * block : (gate + 1) * block]
                if "weight" in name:
                    _initialize(part, kernel_init)
                else:
                    _initialize(part, bias_init)
                    if gate == 1:
                        part.add_(forget_bias)
    return lstm


class MemoryModule(torch.nn.Module):
    @property
    @abc.abstractmethod
    def memory_size(self) -> int:
        """Width of the memory vector carried between steps."""

    @abc.abstractmethod
    def forward(
        self, input_tensor: torch.Tensor, memories: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a (batch, seq_len, size) sequence from the given memories; return output and new memories."""


class LayerNorm(torch.nn.Module):
    """Layer normalisation over the last axis, without the affine parameters:
    ``(x - mean) / sqrt(var + 1e-5)``.

    Training uses torch's fused kernel (several times faster on the entity tensors of the
    attention block); the ONNX export writes it out with opset-9 operators, as ML-Agents does.
    """

    EPSILON = 1e-5

    def forward(self, layer_activations: torch.Tensor) -> torch.Tensor:
        if not exporting_to_onnx.is_exporting():
            return torch.nn.functional.layer_norm(
                layer_activations, layer_activations.shape[-1:], eps=self.EPSILON
            )
        mean = torch.mean(layer_activations, dim=-1, keepdim=True)
        var = torch.mean((layer_activations - mean) ** 2, dim=-1, keepdim=True)
        return (layer_activations - mean) / torch.sqrt(var + self.EPSILON)


class LinearEncoder(torch.nn.Module):
    """``num_layers`` linear layers of width ``hidden_size``, each followed by Swish."""

    def __init__(
        self,
        input_size: int,
        num_layers: int,
        hidden_size: int,
        kernel_init: Initialization = Initialization.KaimingHeNormal,
        kernel_gain: float = 1.0,
    ):
        super().__init__()
        layers: list[torch.nn.Module] = []
        width_in = input_size
        for _ in range(max(num_layers, 1)):
            layers.append(linear_layer(width_in, hidden_size, kernel_init, kernel_gain))
            layers.append(Swish())
            width_in = hidden_size
        self.seq_layers = torch.nn.Sequential(*layers)

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.seq_layers(input_tensor)


class LSTM(MemoryModule):
    """One LSTM layer whose hidden size is ``memory_size // 2``; memories are (1, batch, memory_size)
    with h first and c second (ONNX export sees (batch, 1, memory_size), see docs/onnx.md §6)."""

    def __init__(
        self,
        input_size: int,
        memory_size: int,
        num_layers: int = 1,
        forget_bias: float = 1.0,
        kernel_init: Initialization = Initialization.XavierGlorotUniform,
        bias_init: Initialization = Initialization.Zero,
    ):
        super().__init__()
        self.hidden_size = memory_size // 2
        self.lstm = lstm_layer(
            input_size, self.hidden_size, num_layers, True, forget_bias, kernel_init, bias_init
        )

    @property
    def memory_size(self) -> int:
        return 2 * self.hidden_size

    def forward(
        self, input_tensor: torch.Tensor, memories: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        exporting = exporting_to_onnx.is_exporting()
        if exporting:
            # Unity feeds recurrent_in as (batch, 1, M); the LSTM wants (1, batch, M).
            memories = torch.transpose(memories, 0, 1)
        # Slicing rather than torch.split: Sentis does not import Split from this exporter.
        h0 = memories[:, :, : self.hidden_size].contiguous()
        c0 = memories[:, :, self.hidden_size :].contiguous()
        lstm_out, (h_n, c_n) = self.lstm(input_tensor, (h0, c0))
        output_mem = torch.cat([h_n, c_n], dim=-1)
        if exporting:
            output_mem = torch.transpose(output_mem, 0, 1)
        return lstm_out, output_mem
