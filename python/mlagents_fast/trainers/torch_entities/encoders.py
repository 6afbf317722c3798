"""Observation encoders: the running-statistics normaliser for vector observations and the
five visual encoders selectable by ``network_settings.vis_encode_type``."""

from __future__ import annotations

from math import floor

import torch
from torch import nn

from mlagents_fast.trainers.torch_entities.layers import Initialization, Swish, linear_layer

__all__ = [
    "FullyConnectedVisualEncoder",
    "NatureVisualEncoder",
    "Normalizer",
    "ResNetBlock",
    "ResNetVisualEncoder",
    "SimpleVisualEncoder",
    "SmallVisualEncoder",
    "VectorInput",
    "conv_output_shape",
    "pool_out_shape",
]


class Normalizer(nn.Module):
    """Running mean and variance of vector observations, with ML-Agents' exact semantics.

    State: ``normalization_steps`` (starts at 1), ``running_mean`` (starts at 0) and
    ``running_variance``, which is a running *sum* of squared deviations (starts at 1) and is
    divided by the step count only when used. ``forward`` returns
    ``clip((x - mean) / sqrt(variance / steps), -5, 5)``.
    """

    # Registered buffers (nn.Module stores them; these tell type checkers their type).
    normalization_steps: torch.Tensor
    running_mean: torch.Tensor
    running_variance: torch.Tensor

    def __init__(self, vec_obs_size: int):
        super().__init__()
        self.register_buffer("normalization_steps", torch.tensor(1))
        self.register_buffer("running_mean", torch.zeros(vec_obs_size))
        self.register_buffer("running_variance", torch.ones(vec_obs_size))
        self.update_count = 0
        """Updates so far (the statistics tensors are replaced, not written in place)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.clamp(
            (inputs - self.running_mean)
            / torch.sqrt(self.running_variance / self.normalization_steps),
            -5,
            5,
        )

    def update(self, vector_input: torch.Tensor) -> None:
        """Fold a batch of observations (batch, size) into the statistics."""
        with torch.no_grad():
            vector_input = vector_input.to(self.running_mean)
            total_new_steps = self.normalization_steps + vector_input.shape[0]
            input_to_old_mean = vector_input - self.running_mean
            new_mean = self.running_mean + (input_to_old_mean / total_new_steps).sum(0)
            input_to_new_mean = vector_input - new_mean
            new_variance = self.running_variance + (input_to_new_mean * input_to_old_mean).sum(0)
            # Rebind the buffers rather than writing in place, so that a graph built on the old
            # statistics (an optimizer step in flight) is never invalidated.
            self.running_mean = new_mean
            self.running_variance = new_variance
            self.normalization_steps = total_new_steps
            self.update_count += 1

    def copy_from(self, other_normalizer: Normalizer) -> None:
        self.normalization_steps.copy_(other_normalizer.normalization_steps)
        self.running_mean.copy_(other_normalizer.running_mean)
        self.running_variance.copy_(other_normalizer.running_variance)


def conv_output_shape(
    h_w: tuple[int, int],
    kernel_size: int | tuple[int, int] = 1,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> tuple[int, int]:
    """(height, width) after a ``torch.nn.Conv2d`` with these arguments."""
    if not isinstance(kernel_size, tuple):
        kernel_size = (int(kernel_size), int(kernel_size))
    h = floor(((h_w[0] + 2 * padding - dilation * (kernel_size[0] - 1) - 1) / stride) + 1)
    w = floor(((h_w[1] + 2 * padding - dilation * (kernel_size[1] - 1) - 1) / stride) + 1)
    return h, w


def pool_out_shape(h_w: tuple[int, int], kernel_size: int) -> tuple[int, int]:
    """(height, width) after a stride-2 ``torch.nn.MaxPool2d`` of this kernel size."""
    return (h_w[0] - kernel_size) // 2 + 1, (h_w[1] - kernel_size) // 2 + 1


class VectorInput(nn.Module):
    """A rank-1 observation, optionally normalised."""

    def __init__(self, input_size: int, normalize: bool = False):
        super().__init__()
        self.normalizer: Normalizer | None = Normalizer(input_size) if normalize else None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.normalizer is not None:
            inputs = self.normalizer(inputs)
        return inputs

    def copy_normalization(self, other_input: VectorInput) -> None:
        if self.normalizer is not None and other_input.normalizer is not None:
            self.normalizer.copy_from(other_input.normalizer)

    def update_normalization(self, inputs: torch.Tensor) -> None:
        if self.normalizer is not None:
            self.normalizer.update(inputs)


def _dense(input_size: int, output_size: int) -> nn.Module:
    return nn.Sequential(
        linear_layer(
            input_size, output_size, kernel_init=Initialization.KaimingHeNormal, kernel_gain=1.41
        ),
        nn.LeakyReLU(),
    )


class FullyConnectedVisualEncoder(nn.Module):
    """``fully_connected``: one dense layer over the flattened image (any resolution)."""

    def __init__(self, height: int, width: int, initial_channels: int, output_size: int):
        super().__init__()
        self.output_size = output_size
        self.input_size = height * width * initial_channels
        self.dense = _dense(self.input_size, output_size)

    def forward(self, visual_obs: torch.Tensor) -> torch.Tensor:
        return self.dense(visual_obs.reshape(-1, self.input_size))


class SmallVisualEncoder(nn.Module):
    """``match3``: two 3x3 stride-1 convolutions (35 and 144 channels), for boards >= 5x5."""

    def __init__(self, height: int, width: int, initial_channels: int, output_size: int):
        super().__init__()
        self.h_size = output_size
        conv_1_hw = conv_output_shape((height, width), 3, 1)
        conv_2_hw = conv_output_shape(conv_1_hw, 3, 1)
        self.final_flat = conv_2_hw[0] * conv_2_hw[1] * 144
        self.conv_layers = nn.Sequential(
            nn.Conv2d(initial_channels, 35, (3, 3), (1, 1)),
            nn.LeakyReLU(),
            nn.Conv2d(35, 144, (3, 3), (1, 1)),
            nn.LeakyReLU(),
        )
        self.dense = _dense(self.final_flat, self.h_size)

    def forward(self, visual_obs: torch.Tensor) -> torch.Tensor:
        hidden = self.conv_layers(visual_obs)
        return self.dense(hidden.reshape(-1, self.final_flat))


class SimpleVisualEncoder(nn.Module):
    """``simple``: 8x8/4 and 4x4/2 convolutions (16, 32 channels), for images >= 20x20."""

    def __init__(self, height: int, width: int, initial_channels: int, output_size: int):
        super().__init__()
        self.h_size = output_size
        conv_1_hw = conv_output_shape((height, width), 8, 4)
        conv_2_hw = conv_output_shape(conv_1_hw, 4, 2)
        self.final_flat = conv_2_hw[0] * conv_2_hw[1] * 32
        self.conv_layers = nn.Sequential(
            nn.Conv2d(initial_channels, 16, (8, 8), (4, 4)),
            nn.LeakyReLU(),
            nn.Conv2d(16, 32, (4, 4), (2, 2)),
            nn.LeakyReLU(),
        )
        self.dense = _dense(self.final_flat, self.h_size)

    def forward(self, visual_obs: torch.Tensor) -> torch.Tensor:
        hidden = self.conv_layers(visual_obs)
        return self.dense(hidden.reshape(-1, self.final_flat))


class NatureVisualEncoder(nn.Module):
    """``nature_cnn``: the DQN Nature network (8x8/4, 4x4/2, 3x3/1), for images >= 36x36."""

    def __init__(self, height: int, width: int, initial_channels: int, output_size: int):
        super().__init__()
        self.h_size = output_size
        conv_1_hw = conv_output_shape((height, width), 8, 4)
        conv_2_hw = conv_output_shape(conv_1_hw, 4, 2)
        conv_3_hw = conv_output_shape(conv_2_hw, 3, 1)
        self.final_flat = conv_3_hw[0] * conv_3_hw[1] * 64
        self.conv_layers = nn.Sequential(
            nn.Conv2d(initial_channels, 32, (8, 8), (4, 4)),
            nn.LeakyReLU(),
            nn.Conv2d(32, 64, (4, 4), (2, 2)),
            nn.LeakyReLU(),
            nn.Conv2d(64, 64, (3, 3), (1, 1)),
            nn.LeakyReLU(),
        )
        self.dense = _dense(self.final_flat, self.h_size)

    def forward(self, visual_obs: torch.Tensor) -> torch.Tensor:
        hidden = self.conv_layers(visual_obs)
        return self.dense(hidden.reshape([-1, self.final_flat]))


class ResNetBlock(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        self.layers = nn.Sequential(
            Swish(),
            nn.Conv2d(channel, channel, (3, 3), (1, 1), padding=1),
            Swish(),
            nn.Conv2d(channel, channel, (3, 3), (1, 1), padding=1),
        )

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        return input_tensor + self.layers(input_tensor)


class ResNetVisualEncoder(nn.Module):
    """``resnet``: the IMPALA network (three stacks of conv, max-pool and two residual blocks),
    for images >= 15x15."""

    def __init__(self, height: int, width: int, initial_channels: int, output_size: int):
        super().__init__()
        n_channels = [16, 32, 32]
        n_blocks = 2
        layers: list[nn.Module] = []
        last_channel = initial_channels
        for channel in n_channels:
            layers.append(nn.Conv2d(last_channel, channel, (3, 3), (1, 1), padding=1))
            layers.append(nn.MaxPool2d((3, 3), (2, 2)))
            height, width = pool_out_shape((height, width), 3)
            for _ in range(n_blocks):
                layers.append(ResNetBlock(channel))
            last_channel = channel
        layers.append(Swish())
        self.final_flat_size = n_channels[-1] * height * width
        self.dense = linear_layer(
            self.final_flat_size,
            output_size,
            kernel_init=Initialization.KaimingHeNormal,
            kernel_gain=1.41,
        )
        self.sequential = nn.Sequential(*layers)

    def forward(self, visual_obs: torch.Tensor) -> torch.Tensor:
        hidden = self.sequential(visual_obs)
        return torch.relu(self.dense(hidden.reshape(-1, self.final_flat_size)))
