"""ActionModel: turns a network encoding into continuous, discrete or hybrid actions."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from mlagents_fast.trainers.torch_entities.action_log_probs import ActionLogProbs
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.distributions import (
    CategoricalDistInstance,
    GaussianDistInstance,
    GaussianDistribution,
    MultiCategoricalDistribution,
)

__all__ = ["ActionModel", "DistInstances"]


class DistInstances(NamedTuple):
    continuous: GaussianDistInstance | None
    discrete: list[CategoricalDistInstance] | None


class ActionModel(nn.Module):
    """Continuous part: a Gaussian (``tanh_squash`` for SAC; otherwise actions are sent to the
    environment as clip(a, -3, 3) / 3). Discrete part: one masked categorical per branch.
    ``deterministic``: take the mean / argmax instead of sampling (``--deterministic``)."""

    def __init__(
        self,
        hidden_size: int,
        action_spec: object,
        conditional_sigma: bool = False,
        tanh_squash: bool = False,
        deterministic: bool = False,
    ):
        super().__init__()
        self.encoding_size = hidden_size
        self.action_spec = action_spec
        continuous_size = int(action_spec.continuous_size)  # type: ignore[attr-defined]
        discrete_branches = [int(b) for b in action_spec.discrete_branches]  # type: ignore[attr-defined]
        self._continuous_distribution: GaussianDistribution | None = None
        self._discrete_distribution: MultiCategoricalDistribution | None = None
        if continuous_size > 0:
            self._continuous_distribution = GaussianDistribution(
                hidden_size,
                continuous_size,
                conditional_sigma=conditional_sigma,
                tanh_squash=tanh_squash,
            )
        if len(discrete_branches) > 0:
            self._discrete_distribution = MultiCategoricalDistribution(
                hidden_size, discrete_branches
            )
        # Training sends clipped actions to the environment; the export clips in the graph.
        self.clip_action = not tanh_squash
        self._deterministic = deterministic

    def _sample_action(self, dists: DistInstances) -> AgentAction:
        continuous_action: torch.Tensor | None = None
        discrete_action: list[torch.Tensor] | None = None
        if dists.continuous is not None:
            continuous_action = (
                dists.continuous.deterministic_sample()
                if self._deterministic
                else dists.continuous.sample()
            )
        if dists.discrete is not None:
            discrete_action = [
                dist.deterministic_sample() if self._deterministic else dist.sample()
                for dist in dists.discrete
            ]
        return AgentAction(continuous_action, discrete_action)

    def _get_dists(self, inputs: torch.Tensor, masks: torch.Tensor | None) -> DistInstances:
        continuous_dist = None
        discrete_dist = None
        if self._continuous_distribution is not None:
            continuous_dist = self._continuous_distribution(inputs)
        if self._discrete_distribution is not None:
            if masks is None:
                masks = torch.ones(
                    (inputs.shape[0], sum(self._discrete_distribution.act_sizes)),
                    dtype=inputs.dtype,
                    device=inputs.device,
                )
            discrete_dist = self._discrete_distribution(inputs, masks)
        return DistInstances(continuous_dist, discrete_dist)

    def _get_probs_and_entropy(
        self, actions: AgentAction, dists: DistInstances
    ) -> tuple[ActionLogProbs, torch.Tensor]:
        entropies_list: list[torch.Tensor] = []
        continuous_log_prob: torch.Tensor | None = None
        discrete_log_probs: list[torch.Tensor] | None = None
        all_discrete_log_probs: list[torch.Tensor] | None = None
        if dists.continuous is not None:
            continuous_log_prob = dists.continuous.log_prob(actions.continuous_tensor)  # type: ignore[arg-type]
            entropies_list.append(dists.continuous.entropy())
        if dists.discrete is not None:
            discrete_log_probs = []
            all_discrete_log_probs = []
            for discrete_action, discrete_dist in zip(actions.discrete_list, dists.discrete):  # type: ignore[arg-type]
                discrete_log_probs.append(discrete_dist.log_prob(discrete_action))
                entropies_list.append(discrete_dist.entropy())
                all_discrete_log_probs.append(discrete_dist.all_log_prob())
        log_probs = ActionLogProbs(continuous_log_prob, discrete_log_probs, all_discrete_log_probs)
        return log_probs, torch.cat(entropies_list, dim=1)

    def evaluate(
        self, inputs: torch.Tensor, masks: torch.Tensor | None, actions: AgentAction
    ) -> tuple[ActionLogProbs, torch.Tensor]:
        """Log-probabilities of ``actions`` and the entropy, summed over action parts (batch,)."""
        dists = self._get_dists(inputs, masks)
        log_probs, entropies = self._get_probs_and_entropy(actions, dists)
        return log_probs, torch.sum(entropies, dim=1)

    def get_action_out(
        self, inputs: torch.Tensor, masks: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        """The export outputs: (continuous, discrete, deprecated action, deterministic continuous,
        deterministic discrete); see docs/onnx.md §4."""
        dists = self._get_dists(inputs, masks)
        continuous_out = discrete_out = action_out_deprecated = None
        deterministic_continuous_out = deterministic_discrete_out = None
        if dists.continuous is not None:
            continuous_out = dists.continuous.exported_model_output()
            deterministic_continuous_out = dists.continuous.deterministic_sample()
            if self.clip_action:
                continuous_out = torch.clamp(continuous_out, -3, 3) / 3
                deterministic_continuous_out = torch.clamp(deterministic_continuous_out, -3, 3) / 3
            action_out_deprecated = continuous_out
        if dists.discrete is not None:
            discrete_out = torch.cat([d.exported_model_output() for d in dists.discrete], dim=1)
            deterministic_discrete_out = torch.cat(
                [d.deterministic_sample() for d in dists.discrete], dim=1
            )
            action_out_deprecated = discrete_out
        if dists.continuous is not None and dists.discrete is not None:
            action_out_deprecated = None
        return (
            continuous_out,
            discrete_out,
            action_out_deprecated,
            deterministic_continuous_out,
            deterministic_discrete_out,
        )

    def forward(
        self, inputs: torch.Tensor, masks: torch.Tensor | None
    ) -> tuple[AgentAction, ActionLogProbs, torch.Tensor]:
        """Sampled actions, their log-probabilities and the summed entropy (batch,)."""
        dists = self._get_dists(inputs, masks)
        actions = self._sample_action(dists)
        log_probs, entropies = self._get_probs_and_entropy(actions, dists)
        return actions, log_probs, torch.sum(entropies, dim=1)
