"""Goal conditioning by hypernetwork: the last layer of the network body gets weights generated
from the goal observations (``goal_conditioning_type: hyper``)."""

from __future__ import annotations

import math

import torch

from mlagents_fast.trainers.torch_entities.layers import (
    Initialization,
    LayerNorm,
    Swish,
    linear_layer,
)

__all__ = ["ConditionalEncoder", "HyperNetwork"]


class ConditionalEncoder(torch.nn.Module):
    """``num_layers`` Swish layers of ``hidden_size``; the last ``num_conditional_layers`` take
    their weights from a HyperNetwork of the goal encoding."""

    def __init__(
        self,
        input_size: int,
        goal_size: int,
        hidden_size: int,
        num_layers: int,
        num_conditional_layers: int,
        kernel_init: Initialization = Initialization.KaimingHeNormal,
        kernel_gain: float = 1.0,
    ):
        super().__init__()
        layers: list[torch.nn.Module] = []
        prev_size = input_size
        for i in range(max(num_layers, 1)):
            if num_layers - i <= num_conditional_layers:
                layers.append(HyperNetwork(prev_size, hidden_size, goal_size, hidden_size, 2))
            else:
                layers.append(
                    linear_layer(
                        prev_size, hidden_size, kernel_init=kernel_init, kernel_gain=kernel_gain
                    )
                )
            layers.append(Swish())
            prev_size = hidden_size
        self.layers = torch.nn.ModuleList(layers)

    def forward(self, input_tensor: torch.Tensor, goal_tensor: torch.Tensor) -> torch.Tensor:
        activation = input_tensor
        for layer in self.layers:
            if isinstance(layer, HyperNetwork):
                activation = layer(activation, goal_tensor)
            else:
                activation = layer(activation)
        return activation


class HyperNetwork(torch.nn.Module):
    """A linear layer (input_size -> output_size) whose weight matrix is the output of an MLP
    of ``hyper_input``; the bias is an ordinary parameter."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hyper_input_size: int,
        layer_size: int,
        num_layers: int,
    ):
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        layers: list[torch.nn.Module] = []
        layer_in_size = hyper_input_size
        for _ in range(num_layers):
            layers.append(
                linear_layer(
                    layer_in_size,
                    layer_size,
                    kernel_init=Initialization.KaimingHeNormal,
                    kernel_gain=1.0,
                    bias_init=Initialization.Zero,
                )
            )
            layers.append(Swish())
            layer_in_size = layer_size
        flat_output = linear_layer(
            layer_size,
            input_size * output_size,
            kernel_init=Initialization.KaimingHeNormal,
            kernel_gain=0.1,
            bias_init=Initialization.Zero,
        )
        # Generated weights start at the scale of an ordinary layer's uniform initialisation.
        bound = math.sqrt(1 / (layer_size * input_size))
        with torch.no_grad():
            flat_output.weight.uniform_(-bound, bound)
        self.hypernet = torch.nn.Sequential(*layers, LayerNorm(), flat_output)
        self.bias = torch.nn.Parameter(torch.zeros(output_size))

    def forward(self, input_activation: torch.Tensor, hyper_input: torch.Tensor) -> torch.Tensor:
        output_weights = self.hypernet(hyper_input).view(-1, self.input_size, self.output_size)
        return torch.bmm(input_activation.unsqueeze(1), output_weights).squeeze(1) + self.bias
