"""Policy: per-agent memories and previous actions around an action-choosing network."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlagents_fast.trainers.action_info import ActionInfo
from mlagents_fast.trainers.exception import UnityTrainerException

__all__ = ["Policy", "UnityPolicyException"]


class UnityPolicyException(UnityTrainerException):
    """A policy was used in a way it does not support."""


class Policy:
    def __init__(self, seed: int, behavior_spec: Any, network_settings: Any):
        self.behavior_spec = behavior_spec
        self.network_settings = network_settings
        self.seed = seed
        self.previous_action_dict: dict[str, np.ndarray] = {}
        self.previous_memory_dict: dict[str, np.ndarray] = {}
        self.memory_dict: dict[str, np.ndarray] = {}
        self.normalize = network_settings.normalize
        self.use_recurrent = network_settings.memory is not None
        self.m_size = 0
        self.sequence_length = 1
        if self.use_recurrent:
            self.m_size = network_settings.memory.memory_size
            self.sequence_length = network_settings.memory.sequence_length

    def make_empty_memory(self, num_agents: int) -> np.ndarray:
        return np.zeros((num_agents, self.m_size), dtype=np.float32)

    def save_memories(self, agent_ids: list[str], memory_matrix: np.ndarray | None) -> None:
        if memory_matrix is None:
            return
        for agent_id in agent_ids:
            if agent_id in self.memory_dict:
                self.previous_memory_dict[agent_id] = self.memory_dict[agent_id]
        for index, agent_id in enumerate(agent_ids):
            self.memory_dict[agent_id] = memory_matrix[index, :]

    def retrieve_memories(self, agent_ids: list[str]) -> np.ndarray:
        memory_matrix = np.zeros((len(agent_ids), self.m_size), dtype=np.float32)
        for index, agent_id in enumerate(agent_ids):
            memory = self.memory_dict.get(agent_id)
            if memory is not None:
                memory_matrix[index, :] = memory
        return memory_matrix

    def retrieve_previous_memories(self, agent_ids: list[str]) -> np.ndarray:
        memory_matrix = np.zeros((len(agent_ids), self.m_size), dtype=np.float32)
        for index, agent_id in enumerate(agent_ids):
            memory = self.previous_memory_dict.get(agent_id)
            if memory is not None:
                memory_matrix[index, :] = memory
        return memory_matrix

    def remove_memories(self, agent_ids: list[str]) -> None:
        for agent_id in agent_ids:
            self.memory_dict.pop(agent_id, None)
            self.previous_memory_dict.pop(agent_id, None)

    def make_empty_previous_action(self, num_agents: int) -> np.ndarray:
        return np.zeros(
            (num_agents, len(self.behavior_spec.action_spec.discrete_branches)), dtype=np.int32
        )

    def save_previous_action(self, agent_ids: list[str], action_tuple: Any) -> None:
        for index, agent_id in enumerate(agent_ids):
            self.previous_action_dict[agent_id] = action_tuple.discrete[index, :]

    def retrieve_previous_action(self, agent_ids: list[str]) -> np.ndarray:
        action_matrix = self.make_empty_previous_action(len(agent_ids))
        for index, agent_id in enumerate(agent_ids):
            if agent_id in self.previous_action_dict:
                action_matrix[index, :] = self.previous_action_dict[agent_id]
        return action_matrix

    def remove_previous_action(self, agent_ids: list[str]) -> None:
        for agent_id in agent_ids:
            self.previous_action_dict.pop(agent_id, None)

    def get_action(self, decision_requests: Any, worker_id: int = 0) -> ActionInfo:
        raise NotImplementedError

    @staticmethod
    def check_nan_action(action: Any | None) -> None:
        """Raise if any continuous action is NaN (one sum is cheaper than an elementwise scan)."""
        if action is not None and not isinstance(action, list):
            continuous = getattr(action, "continuous", None)
            if continuous is not None and np.isnan(np.sum(continuous)):
                raise RuntimeError("Continuous NaN action detected.")

    def increment_step(self, n_steps: int) -> int:
        raise NotImplementedError

    def get_current_step(self) -> int:
        raise NotImplementedError

    def load_weights(self, values: Any) -> None:
        raise NotImplementedError

    def get_weights(self) -> Any:
        return []

    def init_load_weights(self) -> None:
        pass
