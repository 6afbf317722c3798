"""The environment's own reward (plus the group reward, for agents in a group)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlagents_fast.trainers.batches import BatchOrBuffer
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.torch_entities.components.reward_providers.base_reward_provider import (
    BaseRewardProvider,
)
from mlagents_fast.trainers.torch_entities.utils import _as_ndarray

__all__ = ["ExtrinsicRewardProvider"]


class ExtrinsicRewardProvider(BaseRewardProvider):
    def __init__(self, specs: Any, settings: Any) -> None:
        super().__init__(specs, settings)
        self.add_groupmate_rewards = False

    def evaluate(self, mini_batch: BatchOrBuffer) -> np.ndarray:
        total_rewards = np.array(
            _as_ndarray(mini_batch[BufferKey.ENVIRONMENT_REWARDS]), dtype=np.float32
        )
        if BufferKey.GROUPMATE_REWARDS in mini_batch and self.add_groupmate_rewards:
            groupmate = mini_batch[BufferKey.GROUPMATE_REWARDS]
            if groupmate.contains_lists:  # ML-Agents' ragged entries
                total_rewards += np.array([np.sum(r) for r in groupmate], dtype=np.float32)
            elif len(groupmate):  # numeric (L, W) columns, 0 for absent mates
                total_rewards += (
                    np.asarray(groupmate, dtype=np.float32).reshape(len(groupmate), -1).sum(axis=1)
                )
        if BufferKey.GROUP_REWARD in mini_batch:
            total_rewards += np.asarray(
                _as_ndarray(mini_batch[BufferKey.GROUP_REWARD]), dtype=np.float32
            )
        return total_rewards

    def update(self, mini_batch: BatchOrBuffer) -> dict[str, np.ndarray]:
        return {}
