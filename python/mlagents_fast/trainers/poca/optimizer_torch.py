"""MA-POCA's optimizer (the counterpart of ``mlagents.trainers.poca.optimizer_torch``).

Multi-Agent POsthumous Credit Assignment (Cohen et al. 2021, https://arxiv.org/abs/2111.05992):
a PPO-style clipped policy update, a centralized critic over the whole group (self-attention
over a variable number of agents, so agents may leave or join mid-episode) and, per agent, a
counterfactual baseline: the same network fed the agent's observation alone and its mates'
observations *with* their actions, so the advantage ``lambda return - baseline`` credits the
agent's own action. Loss: ``policy + 0.5 * (value + 0.5 * baseline) - beta * entropy``, with
ML-Agents' schedules for learning rate, epsilon and beta.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, NamedTuple

import numpy as np
import torch

from mlagents_fast.trainers.buffer import BufferKey, RewardSignalUtil
from mlagents_fast.trainers.optimizer.torch_optimizer import BatchValueEstimates, TorchOptimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import _sequence_starts, ppo_decay_schedules
from mlagents_fast.trainers.settings import POCASettings, RewardSignalType
from mlagents_fast.trainers.torch_entities.action_log_probs import ActionLogProbs
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.components.reward_providers.extrinsic_reward_provider import (
    ExtrinsicRewardProvider,
)
from mlagents_fast.trainers.torch_entities.decoders import ValueHeads
from mlagents_fast.trainers.torch_entities.networks import Critic, MultiAgentNetworkBody
from mlagents_fast.trainers.torch_entities.utils import ModelUtils
from mlagents_fast.trainers.trajectory import GroupObsUtil, ObsUtil

__all__ = ["BatchBaselineEstimates", "POCASettings", "TorchPOCAOptimizer"]

logger = logging.getLogger(__name__)

# Per agent of the group, its observations (one tensor per sensor).
GroupObs = list[list[torch.Tensor]]


class BatchBaselineEstimates(NamedTuple):
    """What :meth:`TorchPOCAOptimizer.get_batch_value_and_baseline_estimates` returns."""

    values: dict[str, np.ndarray]
    """Per reward stream, (L,) float32: the group's value at every step."""
    baselines: dict[str, np.ndarray]
    """Per reward stream, (L,) float32: the agent's counterfactual baseline at every step."""
    next_values: dict[str, np.ndarray]
    """Per reward stream, (N,) float32: the group's value after each trajectory."""
    value_memories: np.ndarray | None
    """(L, M) critic memory each step's sequence starts from (recurrent only)."""
    baseline_memories: np.ndarray | None
    """(L, M) baseline memory each step's sequence starts from (recurrent only)."""


def _flat(values: torch.Tensor) -> np.ndarray:
    return ModelUtils.to_numpy(values).astype(np.float32, copy=False).reshape(-1)


def _rows(group: GroupObs, start: int, end: int) -> GroupObs:
    return [[obs[start:end] for obs in agent] for agent in group]


class TorchPOCAOptimizer(TorchOptimizer):
    class POCAValueNetwork(torch.nn.Module, Critic):
        """The centralized critic and the per-agent baseline: one MultiAgentNetworkBody and
        one value head per reward stream (its input is the encoding plus the scaled agent
        count)."""

        def __init__(
            self,
            stream_names: list[str],
            observation_specs: list[Any],
            network_settings: Any,
            action_spec: Any,
        ):
            torch.nn.Module.__init__(self)
            self.network_body = MultiAgentNetworkBody(
                observation_specs, network_settings, action_spec
            )
            if network_settings.memory is not None:
                encoding_size = network_settings.memory.memory_size // 2
            else:
                encoding_size = network_settings.hidden_units
            self.value_heads = ValueHeads(stream_names, encoding_size + 1, 1)

        @property
        def memory_size(self) -> int:
            return self.network_body.memory_size

        def update_normalization(self, buffer: Any) -> None:
            self.network_body.update_normalization(buffer)

        def baseline(
            self,
            obs_without_actions: list[torch.Tensor],
            obs_with_actions: tuple[GroupObs, list[AgentAction]],
            memories: torch.Tensor | None = None,
            sequence_length: int = 1,
        ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
            """Values of the group with this agent's action left out: the agent is seen by its
            observations only, its mates with their actions."""
            mates_obs, mates_actions = obs_with_actions
            encoding, memories = self.network_body(
                obs_only=[obs_without_actions],
                obs=mates_obs,
                actions=mates_actions,
                memories=memories,
                sequence_length=sequence_length,
            )
            return self.forward(encoding, memories, sequence_length)

        def critic_pass(
            self,
            obs: GroupObs,  # type: ignore[override]
            memories: torch.Tensor | None = None,
            sequence_length: int = 1,
        ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
            """Values of the group from everyone's observations (no actions)."""
            encoding, memories = self.network_body(
                obs_only=obs,
                obs=[],
                actions=[],
                memories=memories,
                sequence_length=sequence_length,
            )
            return self.forward(encoding, memories, sequence_length)

        def forward(
            self,
            encoding: torch.Tensor,
            memories: torch.Tensor | None = None,
            sequence_length: int = 1,
        ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
            return self.value_heads(encoding), memories

    def __init__(self, policy: TorchPolicy, trainer_settings: Any):
        """POCA around ``policy``; ``trainer_settings.hyperparameters`` is a POCASettings."""
        super().__init__(policy, trainer_settings)
        stream_names = [key.value for key in trainer_settings.reward_signals]
        self._critic = TorchPOCAOptimizer.POCAValueNetwork(
            stream_names,
            policy.behavior_spec.observation_specs,
            network_settings=trainer_settings.network_settings,
            action_spec=policy.behavior_spec.action_spec,
        )
        self._critic.to(policy.device)
        params = list(self.policy.actor.parameters()) + list(self._critic.parameters())
        self.hyperparameters: POCASettings = trainer_settings.hyperparameters
        max_steps = trainer_settings.max_steps
        self.decay_learning_rate, self.decay_epsilon, self.decay_beta = ppo_decay_schedules(
            self.hyperparameters, max_steps
        )
        self.optimizer = ModelUtils.create_adam(params, lr=self.hyperparameters.learning_rate)
        self.stats_name_to_update_name = {
            "Losses/Value Loss": "value_loss",
            "Losses/Policy Loss": "policy_loss",
        }
        self.stream_names = list(self.reward_signals.keys())
        self.value_memory_dict: dict[str, torch.Tensor] = {}
        self.baseline_memory_dict: dict[str, torch.Tensor] = {}

    def create_reward_signals(self, reward_signal_configs: dict[Any, Any]) -> None:
        """As the base class, and the extrinsic signal also pays each agent its group mates'
        individual rewards (so agents learn to help each other earn them)."""
        for reward_signal in reward_signal_configs:
            if reward_signal != RewardSignalType.EXTRINSIC:
                logger.warning(
                    "Reward signal %s is not supported with the POCA trainer; results may be "
                    "unexpected.",
                    reward_signal.value.capitalize(),
                )
        super().create_reward_signals(reward_signal_configs)
        for reward_provider in self.reward_signals.values():
            if isinstance(reward_provider, ExtrinsicRewardProvider):
                reward_provider.add_groupmate_rewards = True

    @property
    def critic(self) -> Any:
        return self._critic

    def _group_tensors(self, batch: Any) -> tuple[list[torch.Tensor], GroupObs, list[AgentAction]]:
        """The agent's observations, its mates' observations and its mates' actions."""
        n_obs = len(self.policy.behavior_spec.observation_specs)
        device = self.policy.device
        current_obs = ModelUtils.list_to_tensor_list(
            ObsUtil.from_buffer(batch, n_obs), device=device
        )
        mates_obs = [
            ModelUtils.list_to_tensor_list(mate, device=device)
            for mate in GroupObsUtil.from_buffer(batch, n_obs)
        ]
        return current_obs, mates_obs, AgentAction.group_from_buffer(batch, device)

    def update(self, batch: Any, num_sequences: int) -> dict[str, float]:
        """One gradient step on a minibatch: the clipped policy loss on the advantages, and
        trust-region losses of the value and of the baseline towards the lambda returns."""
        step = self.policy.get_current_step()
        decay_lr = self.decay_learning_rate.get_value(step)
        decay_eps = self.decay_epsilon.get_value(step)
        decay_bet = self.decay_beta.get_value(step)
        device = self.policy.device
        returns = {}
        old_values = {}
        old_baselines = {}
        for name in self.reward_signals:
            old_values[name] = ModelUtils.list_to_tensor(
                batch[RewardSignalUtil.value_estimates_key(name)], device=device
            )
            returns[name] = ModelUtils.list_to_tensor(
                batch[RewardSignalUtil.returns_key(name)], device=device
            )
            old_baselines[name] = ModelUtils.list_to_tensor(
                batch[RewardSignalUtil.baseline_estimates_key(name)], device=device
            )

        current_obs, mates_obs, mates_actions = self._group_tensors(batch)
        act_masks = (
            ModelUtils.list_to_tensor(batch[BufferKey.ACTION_MASK], device=device)
            if BufferKey.ACTION_MASK in batch
            else None
        )
        actions = AgentAction.from_buffer(batch, device)
        sequence_length = self.policy.sequence_length
        memories = value_memories = baseline_memories = None
        if self.policy.use_recurrent:
            memories = _sequence_starts(batch[BufferKey.MEMORY], sequence_length, device)
            if BufferKey.CRITIC_MEMORY in batch:
                value_memories = _sequence_starts(
                    batch[BufferKey.CRITIC_MEMORY], sequence_length, device
                )
            if BufferKey.BASELINE_MEMORY in batch:
                baseline_memories = _sequence_starts(
                    batch[BufferKey.BASELINE_MEMORY], sequence_length, device
                )

        run_out = self.policy.actor.get_stats(
            current_obs,
            actions,
            masks=act_masks,
            memories=memories,
            sequence_length=sequence_length,
        )
        log_probs = run_out["log_probs"].flatten()
        entropy = run_out["entropy"]
        values, _ = self.critic.critic_pass(
            [current_obs, *mates_obs], memories=value_memories, sequence_length=sequence_length
        )
        baselines, _ = self.critic.baseline(
            current_obs,
            (mates_obs, mates_actions),
            memories=baseline_memories,
            sequence_length=sequence_length,
        )
        old_log_probs = ActionLogProbs.from_buffer(batch, device).flatten()
        loss_masks = ModelUtils.list_to_tensor(
            batch[BufferKey.MASKS], dtype=torch.bool, device=device
        )
        baseline_loss = ModelUtils.trust_region_value_loss(
            baselines, old_baselines, returns, decay_eps, loss_masks
        )
        value_loss = ModelUtils.trust_region_value_loss(
            values, old_values, returns, decay_eps, loss_masks
        )
        policy_loss = ModelUtils.trust_region_policy_loss(
            ModelUtils.list_to_tensor(batch[BufferKey.ADVANTAGES], device=device),
            log_probs,
            old_log_probs,
            loss_masks,
            decay_eps,
        )
        loss = (
            policy_loss
            + 0.5 * (value_loss + 0.5 * baseline_loss)
            - decay_bet * ModelUtils.masked_mean(entropy, loss_masks)
        )
        ModelUtils.update_learning_rate(self.optimizer, decay_lr)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {
            # abs() as ML-Agents reports it (a TensorFlow-era convention).
            "Losses/Policy Loss": torch.abs(policy_loss).item(),
            "Losses/Value Loss": value_loss.item(),
            "Losses/Baseline Loss": baseline_loss.item(),
            "Policy/Learning Rate": decay_lr,
            "Policy/Epsilon": decay_eps,
            "Policy/Beta": decay_bet,
        }

    def get_modules(self) -> dict[str, Any]:
        modules: dict[str, Any] = {
            "Optimizer:adam": self.optimizer,
            "Optimizer:critic": self._critic,
        }
        for reward_provider in self.reward_signals.values():
            modules.update(reward_provider.get_modules())
        return modules

    # -- value estimates ------------------------------------------------------------------

    def _evaluate_by_sequence_team(
        self,
        self_obs: list[torch.Tensor],
        mates_obs: GroupObs,
        mates_actions: list[AgentAction],
        value_memory: torch.Tensor,
        baseline_memory: torch.Tensor,
    ) -> tuple[
        dict[str, torch.Tensor],
        dict[str, torch.Tensor],
        np.ndarray,
        np.ndarray,
        torch.Tensor,
        torch.Tensor,
    ]:
        """Values and baselines of one trajectory, sequence by sequence, carrying both
        memories: returns them, the memories each step's sequence starts from (what the update
        feeds the critic) and the memories after the trajectory. A final short sequence starts
        from the memories after the full ones (the buffer pads it at its end)."""
        sequence_length = self.policy.sequence_length
        steps = self_obs[0].shape[0]
        spans = [
            (start, start + sequence_length)
            for start in range(0, steps - sequence_length + 1, sequence_length)
        ]
        if steps % sequence_length:
            spans.append((steps - steps % sequence_length, steps))
        values: dict[str, list[torch.Tensor]] = defaultdict(list)
        baselines: dict[str, list[torch.Tensor]] = defaultdict(list)
        value_starts: list[np.ndarray] = []
        baseline_starts: list[np.ndarray] = []
        for start, end in spans:
            length = end - start
            value_starts.append(
                np.repeat(ModelUtils.to_numpy(value_memory.reshape(1, -1)), length, axis=0)
            )
            baseline_starts.append(
                np.repeat(ModelUtils.to_numpy(baseline_memory.reshape(1, -1)), length, axis=0)
            )
            seq_self = [obs[start:end] for obs in self_obs]
            seq_mates = _rows(mates_obs, start, end)
            seq_actions = [action.slice(start, end) for action in mates_actions]
            seq_values, value_memory = self.critic.critic_pass(
                [seq_self, *seq_mates], value_memory, sequence_length=length
            )
            seq_baselines, baseline_memory = self.critic.baseline(
                seq_self, (seq_mates, seq_actions), baseline_memory, sequence_length=length
            )
            for name, value in seq_values.items():
                values[name].append(value)
            for name, value in seq_baselines.items():
                baselines[name].append(value)
        return (
            {name: torch.cat(parts) for name, parts in values.items()},
            {name: torch.cat(parts) for name, parts in baselines.items()},
            np.concatenate(value_starts).astype(np.float32, copy=False),
            np.concatenate(baseline_starts).astype(np.float32, copy=False),
            value_memory,
            baseline_memory,
        )

    def get_batch_value_and_baseline_estimates(
        self,
        batch: Any,
        offsets: np.ndarray,
        next_obs: list[np.ndarray],
        next_group_obs: list[np.ndarray] | None,
        agent_ids: list[str],
        episode_ended: np.ndarray,
    ) -> BatchBaselineEstimates:
        """Values, baselines and bootstrap values of trajectories laid one after another in
        ``batch`` (with the group columns: ``TrajectoryBatch.from_trajectories(...,
        group_fields=True)``).

        :param offsets: (N + 1,) row where each trajectory starts, then the row count.
        :param next_obs: per observation, (N, *obs_shape): each trajectory's next observation.
        :param next_group_obs: per observation, (N, W, *obs_shape): the mates after each
            trajectory (NaN where absent); None: no mates.
        :param agent_ids: each trajectory's agent (recurrent critics carry its memories).
        :param episode_ended: (N,) the trajectory ends its agent's episode: its agent's next
            trajectory starts from fresh memories.

        The next values are not zeroed for terminal ends: that is the caller's call.
        """
        current_obs, mates_obs, mates_actions = self._group_tensors(batch)
        device = self.policy.device
        next_self = ModelUtils.list_to_tensor_list(next_obs, device=device)
        next_mates: GroupObs = []
        if next_group_obs is not None and len(next_group_obs) and next_group_obs[0].ndim >= 2:
            tensors = ModelUtils.list_to_tensor_list(next_group_obs, device=device)
            next_mates = [[obs[:, j] for obs in tensors] for j in range(tensors[0].shape[1])]
        with torch.no_grad():
            if not self.policy.use_recurrent:
                steps = current_obs[0].shape[0]
                values, _ = self.critic.critic_pass(
                    [current_obs, *mates_obs], None, sequence_length=steps
                )
                baselines, _ = self.critic.baseline(
                    current_obs, (mates_obs, mates_actions), None, sequence_length=steps
                )
                next_values, _ = self.critic.critic_pass(
                    [next_self, *next_mates], None, sequence_length=1
                )
                return BatchBaselineEstimates(
                    {name: _flat(v) for name, v in values.items()},
                    {name: _flat(v) for name, v in baselines.items()},
                    {name: _flat(v) for name, v in next_values.items()},
                    None,
                    None,
                )
            parts: dict[str, dict[str, list[np.ndarray]]] = {
                "values": defaultdict(list),
                "baselines": defaultdict(list),
                "next": defaultdict(list),
            }
            value_memories: list[np.ndarray] = []
            baseline_memories: list[np.ndarray] = []
            for index, agent_id in enumerate(agent_ids):
                start, end = int(offsets[index]), int(offsets[index + 1])
                fresh = torch.zeros((1, 1, self.critic.memory_size), device=device)
                value_memory = self.value_memory_dict.get(agent_id, fresh)
                baseline_memory = self.baseline_memory_dict.get(agent_id, fresh)
                (
                    values,
                    baselines,
                    value_starts,
                    baseline_starts,
                    value_memory,
                    baseline_memory,
                ) = self._evaluate_by_sequence_team(
                    [obs[start:end] for obs in current_obs],
                    _rows(mates_obs, start, end),
                    [action.slice(start, end) for action in mates_actions],
                    value_memory,
                    baseline_memory,
                )
                next_values, _ = self.critic.critic_pass(
                    [
                        [obs[index : index + 1] for obs in next_self],
                        *_rows(next_mates, index, index + 1),
                    ],
                    value_memory,
                    sequence_length=1,
                )
                if episode_ended[index]:
                    self.value_memory_dict.pop(agent_id, None)
                    self.baseline_memory_dict.pop(agent_id, None)
                else:
                    self.value_memory_dict[agent_id] = value_memory
                    self.baseline_memory_dict[agent_id] = baseline_memory
                for name, value in values.items():
                    parts["values"][name].append(_flat(value))
                for name, value in baselines.items():
                    parts["baselines"][name].append(_flat(value))
                for name, value in next_values.items():
                    parts["next"][name].append(_flat(value))
                value_memories.append(value_starts)
                baseline_memories.append(baseline_starts)
        joined = {
            kind: {name: np.concatenate(chunks) for name, chunks in by_name.items()}
            for kind, by_name in parts.items()
        }
        return BatchBaselineEstimates(
            joined["values"],
            joined["baselines"],
            joined["next"],
            np.concatenate(value_memories),
            np.concatenate(baseline_memories),
        )

    def get_batch_value_estimates(
        self,
        batch: Any,
        offsets: np.ndarray,
        next_obs: list[np.ndarray],
        agent_ids: list[str],
        episode_ended: np.ndarray,
    ) -> BatchValueEstimates:
        """The group's values (the base class's API; see
        :meth:`get_batch_value_and_baseline_estimates`, which also gives the baselines)."""
        estimates = self.get_batch_value_and_baseline_estimates(
            batch, offsets, next_obs, None, agent_ids, episode_ended
        )
        return BatchValueEstimates(
            estimates.values, estimates.next_values, estimates.value_memories
        )

    def get_trajectory_and_baseline_value_estimates(
        self,
        batch: Any,
        next_obs: list[np.ndarray],
        next_groupmate_obs: list[list[np.ndarray]],
        done: bool,
        agent_id: str = "",
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, np.ndarray],
        dict[str, float],
        np.ndarray | None,
        np.ndarray | None,
    ]:
        """ML-Agents' API for one trajectory (an AgentBuffer with its group fields, the next
        observation, the mates' next observations in ML-Agents' layout): values, baselines,
        the bootstrap value per stream (0 for a ``done`` trajectory unless the signal ignores
        done), and with memory the critic and baseline memories per step."""
        steps = batch.num_experiences
        next_group = None
        if next_groupmate_obs:
            next_group = [
                np.stack([np.asarray(mate[k], np.float32) for mate in next_groupmate_obs])[
                    np.newaxis
                ]
                for k in range(len(next_obs))
            ]
        estimates = self.get_batch_value_and_baseline_estimates(
            batch,
            np.array([0, steps], dtype=np.int64),
            [np.asarray(obs)[np.newaxis] for obs in next_obs],
            next_group,
            [agent_id],
            np.array([done]),
        )
        next_values = {name: float(v[0]) for name, v in estimates.next_values.items()}
        if done:
            for name in next_values:
                if not self.reward_signals[name].ignore_done:
                    next_values[name] = 0.0
        return (
            estimates.values,
            estimates.baselines,
            next_values,
            estimates.value_memories,
            estimates.baseline_memories,
        )
