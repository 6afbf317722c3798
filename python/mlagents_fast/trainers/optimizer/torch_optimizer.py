"""TorchOptimizer: reward signals and critic value estimates shared by PPO and SAC."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from mlagents_fast.trainers.buffer import AgentBufferField
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.optimizer.optimizer import Optimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.torch_entities.components.reward_providers import (
    create_reward_provider,
)
from mlagents_fast.trainers.torch_entities.utils import ModelUtils
from mlagents_fast.trainers.trajectory import ObsUtil

__all__ = ["TorchOptimizer"]


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
        self.bc_module = None
        if getattr(trainer_settings, "behavioral_cloning", None) is not None:
            raise TrainerConfigError(
                "behavioral_cloning is not supported yet by mlagents-fast. "
                "Remove the behavioral_cloning section from the trainer settings."
            )
        self.create_reward_signals(trainer_settings.reward_signals)
        self.critic_memory_dict: dict[str, torch.Tensor] = {}

    @property
    def critic(self) -> Any:
        raise NotImplementedError

    def update(self, batch: Any, num_sequences: int) -> dict[str, float]:
        raise NotImplementedError

    def create_reward_signals(self, reward_signal_configs: dict[Any, Any]) -> None:
        for reward_signal, settings in reward_signal_configs.items():
            self.reward_signals[reward_signal.value] = create_reward_provider(
                reward_signal, self.policy.behavior_spec, settings
            )

    def update_reward_signals(self, batch: Any) -> dict[str, float]:
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

    def get_trajectory_value_estimates(
        self,
        batch: Any,
        next_obs: list[np.ndarray],
        done: bool,
        agent_id: str = "",
    ) -> tuple[dict[str, np.ndarray], dict[str, float], Any | None]:
        """Critic values for a trajectory.

        :param batch: the trajectory as an AgentBuffer.
        :param next_obs: the observations after its last step (one array per sensor, no batch dim).
        :param done: whether the trajectory ended its episode (then the bootstrap value is 0 for
            signals that do not ignore done).
        :param agent_id: the agent, to carry the critic's LSTM memory across trajectories.
        :returns: values per stream (trajectory_len,), the bootstrap value per stream, and with
            LSTM the critic memories per experience (an AgentBufferField), else None.
        """
        n_obs = len(self.policy.behavior_spec.observation_specs)
        if agent_id in self.critic_memory_dict:
            memory = self.critic_memory_dict[agent_id]
        else:
            memory = (
                torch.zeros((1, 1, self.critic.memory_size)) if self.policy.use_recurrent else None
            )
        current_obs = [ModelUtils.list_to_tensor(obs) for obs in ObsUtil.from_buffer(batch, n_obs)]
        next_obs_tensors = [ModelUtils.list_to_tensor(obs).unsqueeze(0) for obs in next_obs]
        all_next_memories = None
        with torch.no_grad():
            if self.policy.use_recurrent:
                value_estimates, all_next_memories, next_memory = self._evaluate_by_sequence(
                    current_obs, memory
                )
            else:
                value_estimates, next_memory = self.critic.critic_pass(
                    current_obs, memory, sequence_length=current_obs[0].shape[0]
                )
            self.critic_memory_dict[agent_id] = next_memory
            next_value_estimate, _ = self.critic.critic_pass(
                next_obs_tensors, next_memory, sequence_length=1
            )
        values_np = {name: ModelUtils.to_numpy(v) for name, v in value_estimates.items()}
        # One bootstrap value per stream, as a plain float (the documented return type).
        next_values: dict[str, float] = {
            name: float(v.reshape(-1)[0]) for name, v in next_value_estimate.items()
        }
        if done:
            for name in next_values:
                if not self.reward_signals[name].ignore_done:
                    next_values[name] = 0.0
            self.critic_memory_dict.pop(agent_id, None)
        return values_np, next_values, all_next_memories
