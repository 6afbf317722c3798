"""TorchOptimizer: reward signals and critic value estimates shared by PPO and SAC."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

import numpy as np
import torch

from mlagents_fast.trainers.batches import ExperienceBatch
from mlagents_fast.trainers.buffer import AgentBuffer, AgentBufferField
from mlagents_fast.trainers.optimizer.optimizer import Optimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.torch_entities.components.bc.module import BCModule
from mlagents_fast.trainers.torch_entities.components.reward_providers import (
    create_reward_provider,
)
from mlagents_fast.trainers.torch_entities.utils import ModelUtils
from mlagents_fast.trainers.trajectory import ObsUtil

__all__ = ["BatchValueEstimates", "TorchOptimizer"]


class TorchOptimizer(Optimizer):
    def __init__(self, policy: TorchPolicy, trainer_settings: Any):
        super().__init__()
        self.policy = policy
        self.trainer_settings = trainer_settings
        self.update_dict: dict[str, torch.Tensor] = {}
        self.value_heads: dict[str, torch.Tensor] = {}
        self.memory_in: torch.Tensor | None = None
        self.memory_out: torch.Tensor | None = None
        self.m_size: int = 0
        self.global_step = torch.tensor(0)
        self.bc_module: BCModule | None = None
        self.create_reward_signals(trainer_settings.reward_signals)
        self.critic_memory_dict: dict[str, torch.Tensor] = {}
        if getattr(trainer_settings, "behavioral_cloning", None) is not None:
            self.bc_module = BCModule(
                self.policy,
                trainer_settings.behavioral_cloning,
                policy_learning_rate=trainer_settings.hyperparameters.learning_rate,
                default_batch_size=trainer_settings.hyperparameters.batch_size,
                default_num_epoch=3,
            )

    @property
    def critic(self) -> Any:
        raise NotImplementedError

    def update(self, batch: ExperienceBatch | AgentBuffer, num_sequences: int) -> dict[str, float]:
        raise NotImplementedError

    def create_reward_signals(self, reward_signal_configs: dict[Any, Any]) -> None:
        for reward_signal, settings in reward_signal_configs.items():
            self.reward_signals[reward_signal.value] = create_reward_provider(
                reward_signal, self.policy.behavior_spec, settings
            )

    def update_reward_signals(self, batch: ExperienceBatch | AgentBuffer) -> dict[str, float]:
        update_stats: dict[str, float] = {}
        for reward_provider in self.reward_signals.values():
            update_stats.update(reward_provider.update(batch))
        return update_stats

    def _evaluate_by_sequence(
        self, tensor_obs: list[torch.Tensor], initial_memory: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], Any, torch.Tensor]:
        """Critic values of a trajectory, sequence by sequence, carrying the memory.

        Returns the values per stream, the memory at the start of each experience's sequence
        (what the update feeds the critic) and the memory after the trajectory. A final short
        sequence (trajectory length not a multiple of sequence_length) starts from the memory
        at the end of the full sequences, as the buffer pads it at its end.
        """
        sequence_length = self.policy.sequence_length
        num_experiences = tensor_obs[0].shape[0]
        all_next_memories = AgentBufferField()
        leftover_seq_len = num_experiences % sequence_length
        all_values: dict[str, list[torch.Tensor]] = defaultdict(list)
        memory = initial_memory
        for seq_num in range(num_experiences // sequence_length):
            memory_np = ModelUtils.to_numpy(memory.squeeze())
            for _ in range(sequence_length):
                all_next_memories.append(memory_np)
            start = seq_num * sequence_length
            seq_obs = [obs[start : start + sequence_length] for obs in tensor_obs]
            values, memory = self.critic.critic_pass(
                seq_obs, memory, sequence_length=sequence_length
            )
            for signal_name, value in values.items():
                all_values[signal_name].append(value)
        if leftover_seq_len > 0:
            seq_obs = [obs[-leftover_seq_len:] for obs in tensor_obs]
            memory_np = ModelUtils.to_numpy(memory.squeeze())
            for _ in range(leftover_seq_len):
                all_next_memories.append(memory_np)
            values, memory = self.critic.critic_pass(
                seq_obs, memory, sequence_length=leftover_seq_len
            )
            for signal_name, value in values.items():
                all_values[signal_name].append(value)
        all_value_tensors = {
            name: torch.cat(value_list, dim=0) for name, value_list in all_values.items()
        }
        return all_value_tensors, all_next_memories, memory

    def get_batch_value_estimates(
        self,
        batch: Any,
        offsets: np.ndarray,
        next_obs: list[np.ndarray],
        agent_ids: list[str],
        episode_ended: np.ndarray,
    ) -> BatchValueEstimates:
        """Critic values of trajectories laid one after another in ``batch``.

        :param batch: an AgentBuffer with the observations of every step.
        :param offsets: (N + 1,) row where each trajectory starts, then the row count.
        :param next_obs: per observation, (N, *obs_shape): the observation after each
            trajectory (its value bootstraps the trajectory).
        :param agent_ids: the agent of each trajectory: a recurrent critic continues from
            the memory that agent's previous trajectory ended with.
        :param episode_ended: (N,) bool: the trajectory ends its agent's episode (terminated
            or truncated), so that agent's next trajectory starts from a fresh memory.

        Without memory: one critic pass over every step and one over the next observations.
        With memory: each trajectory in turn, sequence by sequence, carrying its agent's
        memory. The next values are not zeroed for terminal ends: that is the caller's call.
        """
        n_obs = len(next_obs)
        device = self.policy.device
        obs = ModelUtils.list_to_tensor_list(ObsUtil.from_buffer(batch, n_obs), device=device)
        next_tensors = ModelUtils.list_to_tensor_list(next_obs, device=device)
        with torch.no_grad():
            if not self.policy.use_recurrent:
                values, _ = self.critic.critic_pass(obs, None, sequence_length=obs[0].shape[0])
                next_values, _ = self.critic.critic_pass(next_tensors, None, sequence_length=1)
                return BatchValueEstimates(
                    {name: _flat(v) for name, v in values.items()},
                    {name: _flat(v) for name, v in next_values.items()},
                    None,
                )
            value_parts: dict[str, list[np.ndarray]] = defaultdict(list)
            next_parts: dict[str, list[np.ndarray]] = defaultdict(list)
            memory_parts: list[np.ndarray] = []
            for index, agent_id in enumerate(agent_ids):
                start, end = int(offsets[index]), int(offsets[index + 1])
                memory = self.critic_memory_dict.get(agent_id)
                if memory is None:
                    memory = torch.zeros((1, 1, self.critic.memory_size), device=device)
                values, step_memories, memory = self._evaluate_by_sequence(
                    [tensor[start:end] for tensor in obs], memory
                )
                next_values, _ = self.critic.critic_pass(
                    [tensor[index : index + 1] for tensor in next_tensors],
                    memory,
                    sequence_length=1,
                )
                if episode_ended[index]:
                    self.critic_memory_dict.pop(agent_id, None)
                else:
                    self.critic_memory_dict[agent_id] = memory
                for name, v in values.items():
                    value_parts[name].append(_flat(v))
                for name, v in next_values.items():
                    next_parts[name].append(_flat(v))
                memory_parts.append(
                    np.asarray(step_memories.get_batch(), dtype=np.float32).reshape(end - start, -1)
                )
        return BatchValueEstimates(
            {name: np.concatenate(parts) for name, parts in value_parts.items()},
            {name: np.concatenate(parts) for name, parts in next_parts.items()},
            np.concatenate(memory_parts),
        )

    def get_trajectory_value_estimates(
        self,
        batch: Any,
        next_obs: list[np.ndarray],
        done: bool,
        agent_id: str = "",
    ) -> tuple[dict[str, np.ndarray], dict[str, float], Any | None]:
        """Critic values for one trajectory (ML-Agents' API; trainers use
        :meth:`get_batch_value_estimates`).

        :param batch: the trajectory as an AgentBuffer.
        :param next_obs: the observations after its last step (one array per sensor, no batch dim).
        :param done: whether the trajectory ended its episode (then the bootstrap value is 0 for
            signals that do not ignore done, and the agent's critic memory starts over).
        :param agent_id: the agent, to carry the critic's LSTM memory across trajectories.
        :returns: values per stream (trajectory_len,), the bootstrap value per stream, and with
            LSTM the critic memories per experience (an AgentBufferField), else None.
        """
        steps = batch.num_experiences
        estimates = self.get_batch_value_estimates(
            batch,
            np.array([0, steps], dtype=np.int64),
            [np.asarray(obs)[np.newaxis] for obs in next_obs],
            [agent_id],
            np.array([done]),
        )
        # One bootstrap value per stream, as a plain float (the documented return type).
        next_values: dict[str, float] = {
            name: float(v[0]) for name, v in estimates.next_values.items()
        }
        if done:
            for name in next_values:
                if not self.reward_signals[name].ignore_done:
                    next_values[name] = 0.0
        memories = None
        if estimates.memories is not None:
            memories = AgentBufferField()
            memories.extend(estimates.memories)
        return estimates.values, next_values, memories


class BatchValueEstimates(NamedTuple):
    """What :meth:`TorchOptimizer.get_batch_value_estimates` returns."""

    values: dict[str, np.ndarray]
    """Per reward stream, (L,) float32: the value of every step."""
    next_values: dict[str, np.ndarray]
    """Per reward stream, (N,) float32: the value of the observation after each trajectory."""
    memories: np.ndarray | None
    """(L, M) float32 critic memory each step's sequence starts from (recurrent critics
    only; the update feeds it to the critic), else None."""


def _flat(values: torch.Tensor) -> np.ndarray:
    return ModelUtils.to_numpy(values).astype(np.float32, copy=False).reshape(-1)
