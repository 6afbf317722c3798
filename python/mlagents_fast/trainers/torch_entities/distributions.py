"""Action distributions: Gaussian (PPO: clipped by the caller; SAC: tanh-squashed) and
per-branch categorical with action masks."""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

from mlagents_fast.trainers.torch_entities.layers import Initialization, linear_layer

__all__ = [
    "CategoricalDistInstance",
    "DiscreteDistInstance",
    "DistInstance",
    "GaussianDistInstance",
    "GaussianDistribution",
    "MultiCategoricalDistribution",
    "TanhGaussianDistInstance",
]

EPSILON = 1e-7  # keeps logs and divisions finite
_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


class DistInstance(abc.ABC):
    """One batch of distributions produced by a forward pass."""

    @abc.abstractmethod
    def sample(self) -> torch.Tensor:
        """A random sample."""

    @abc.abstractmethod
    def deterministic_sample(self) -> torch.Tensor:
        """The most probable value."""

    @abc.abstractmethod
    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-probability (density) of ``value``."""

    @abc.abstractmethod
    def entropy(self) -> torch.Tensor:
        """Entropy, shape (batch, 1)."""

    @abc.abstractmethod
    def exported_model_output(self) -> torch.Tensor:
        """What the ONNX model outputs as the stochastic action."""


class DiscreteDistInstance(DistInstance):
    @abc.abstractmethod
    def all_log_prob(self) -> torch.Tensor:
        """Log-probabilities of every action of the branch, shape (batch, branch_size)."""


class GaussianDistInstance(DistInstance):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.mean = mean
        self.std = std

    def sample(self) -> torch.Tensor:
        return self.mean + torch.randn_like(self.mean) * self.std

    def deterministic_sample(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        var = self.std**2
        log_scale = torch.log(self.std + EPSILON)
        return -((value - self.mean) ** 2) / (2 * var + EPSILON) - log_scale - _LOG_SQRT_2PI

    def pdf(self, value: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.log_prob(value))

    def entropy(self) -> torch.Tensor:
        # Mean over action dimensions, as ML-Agents (and its TensorFlow past) does.
        return torch.mean(
            0.5 * torch.log(2 * math.pi * math.e * self.std**2 + EPSILON), dim=1, keepdim=True
        )

    def exported_model_output(self) -> torch.Tensor:
        return self.sample()


class TanhGaussianDistInstance(GaussianDistInstance):
    """Gaussian squashed by tanh (SAC). ``log_prob`` takes squashed values and applies the
    change-of-variables correction; the deterministic sample stays the unsquashed mean, as in
    ML-Agents (docs/onnx.md §4)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__(mean, std)
        # The last sample before and after tanh: log_prob of a fresh sample uses the exact
        # pre-tanh value instead of inverting tanh, which loses precision near +-1.
        self._last_unsquashed: torch.Tensor | None = None
        self._last_squashed: torch.Tensor | None = None

    def sample(self) -> torch.Tensor:
        unsquashed = super().sample()
        squashed = torch.tanh(unsquashed)
        self._last_unsquashed, self._last_squashed = unsquashed, squashed
        return squashed

    @staticmethod
    def _inverse_tanh(value: torch.Tensor) -> torch.Tensor:
        capped = torch.clamp(value, -1 + EPSILON, 1 - EPSILON)
        return 0.5 * torch.log((1 + capped) / (1 - capped) + EPSILON)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if value is self._last_squashed and self._last_unsquashed is not None:
            unsquashed = self._last_unsquashed
        else:
            unsquashed = self._inverse_tanh(value)
        # log|d tanh(u)/du| = 2 * (log 2 - u - softplus(-2u)), numerically stable.
        log_det = 2.0 * (math.log(2.0) - unsquashed - nn.functional.softplus(-2.0 * unsquashed))
        return super().log_prob(unsquashed) - log_det


class CategoricalDistInstance(DiscreteDistInstance):
    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.probs = torch.softmax(logits, dim=-1)

    def sample(self) -> torch.Tensor:
        """Sampled indices, shape (batch, 1)."""
        return torch.multinomial(self.probs, 1)

    def deterministic_sample(self) -> torch.Tensor:
        return torch.argmax(self.probs, dim=1, keepdim=True)

    def pdf(self, value: torch.Tensor) -> torch.Tensor:
        """Probability of ``value`` (any shape holding one index per row), shape (batch,)."""
        return torch.gather(self.probs, 1, value.reshape(-1, 1).long()).squeeze(-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.log(self.pdf(value) + EPSILON)

    def all_log_prob(self) -> torch.Tensor:
        return torch.log(self.probs + EPSILON)

    def entropy(self) -> torch.Tensor:
        return -torch.sum(self.probs * torch.log(self.probs + EPSILON), dim=-1).unsqueeze(-1)

    def exported_model_output(self) -> torch.Tensor:
        return self.sample()


class GaussianDistribution(nn.Module):
    """Maps an encoding to a Gaussian over ``num_outputs`` continuous actions.

    ``conditional_sigma``: the log standard deviation is a linear head clamped to [-20, 2]
    (SAC); otherwise it is a free parameter shared by all states (PPO).
    """

    def __init__(
        self,
        hidden_size: int,
        num_outputs: int,
        conditional_sigma: bool = False,
        tanh_squash: bool = False,
    ):
        super().__init__()
        self.conditional_sigma = conditional_sigma
        self.tanh_squash = tanh_squash
        self.mu = linear_layer(
            hidden_size,
            num_outputs,
            kernel_init=Initialization.KaimingHeNormal,
            kernel_gain=0.2,
            bias_init=Initialization.Zero,
        )
        # A layer of the hidden state, or one learned vector: the checkpoint names both
        # log_sigma, as ML-Agents does.
        self.log_sigma: nn.Module | nn.Parameter
        if conditional_sigma:
            self.log_sigma = linear_layer(
                hidden_size,
                num_outputs,
                kernel_init=Initialization.KaimingHeNormal,
                kernel_gain=0.2,
                bias_init=Initialization.Zero,
            )
        else:
            self.log_sigma = nn.Parameter(torch.zeros(1, num_outputs))

    def forward(self, inputs: torch.Tensor) -> GaussianDistInstance:
        mu = self.mu(inputs)
        if isinstance(self.log_sigma, nn.Module):
            log_sigma = torch.clamp(self.log_sigma(inputs), min=-20, max=2)
        else:
            # mu * 0 broadcasts to the batch without Expand, which Sentis mishandles.
            log_sigma = mu * 0 + self.log_sigma
        if self.tanh_squash:
            return TanhGaussianDistInstance(mu, torch.exp(log_sigma))
        return GaussianDistInstance(mu, torch.exp(log_sigma))


class MultiCategoricalDistribution(nn.Module):
    """One categorical distribution per discrete branch. Masks are 1 = allowed, 0 = masked."""

    def __init__(self, hidden_size: int, act_sizes: list[int]):
        super().__init__()
        self.act_sizes = [int(size) for size in act_sizes]
        self.branches = nn.ModuleList(
            [
                linear_layer(
                    hidden_size,
                    size,
                    kernel_init=Initialization.KaimingHeNormal,
                    kernel_gain=0.1,
                    bias_init=Initialization.Zero,
                )
                for size in self.act_sizes
            ]
        )
        offsets = [0]
        for size in self.act_sizes:
            offsets.append(offsets[-1] + size)
        self._offsets = offsets

    @staticmethod
    def _mask_branch(logits: torch.Tensor, allow_mask: torch.Tensor) -> torch.Tensor:
        # Zero the masked logits and push them down by 1e8 (arXiv:2006.14171). "-1 * m + 1"
        # rather than "1 - m": Sentis may swap the operands of Sub.
        block_mask = -1.0 * allow_mask + 1.0
        return logits * allow_mask - 1e8 * block_mask

    def _split_masks(self, masks: torch.Tensor) -> list[torch.Tensor]:
        return [
            masks[:, self._offsets[i] : self._offsets[i + 1]] for i in range(len(self.act_sizes))
        ]

    def forward(self, inputs: torch.Tensor, masks: torch.Tensor) -> list[CategoricalDistInstance]:
        branch_masks = self._split_masks(masks)
        return [
            CategoricalDistInstance(self._mask_branch(branch(inputs), branch_masks[i]))
            for i, branch in enumerate(self.branches)
        ]
