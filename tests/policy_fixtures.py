"""Builders shared by the torch policy/optimizer tests: specs, settings, decision steps and
hand-made training batches in the ML-Agents buffer layout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from mlagents_fast.envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, RewardSignalUtil
from mlagents_fast.trainers.settings import NetworkSettings
from mlagents_fast.trainers.trajectory import ObsUtil


def vector_spec(size: int, name: str = "vector") -> ObservationSpec:
    return ObservationSpec(
        shape=(size,),
        dimension_property=(DimensionProperty.NONE,),
        observation_type=ObservationType.DEFAULT,
        name=name,
    )


def visual_spec(channels: int, height: int, width: int, name: str = "camera") -> ObservationSpec:
    return ObservationSpec(
        shape=(channels, height, width),
        dimension_property=(
            DimensionProperty.NONE,
            DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
            DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        ),
        observation_type=ObservationType.DEFAULT,
        name=name,
    )


def behavior_spec(
    obs_specs: Sequence[ObservationSpec], continuous: int = 0, branches: tuple[int, ...] = ()
) -> BehaviorSpec:
    return BehaviorSpec(list(obs_specs), ActionSpec(continuous, tuple(branches)))


def network_settings(
    hidden_units: int = 16,
    num_layers: int = 2,
    normalize: bool = False,
    memory: tuple[int, int] | None = None,
    deterministic: bool = False,
    **kwargs: object,
) -> NetworkSettings:
    """``memory``: (sequence_length, memory_size) or None."""
    memory_settings = None
    if memory is not None:
        memory_settings = NetworkSettings.MemorySettings(
            sequence_length=memory[0], memory_size=memory[1]
        )
    return NetworkSettings(
        normalize=normalize,
        hidden_units=hidden_units,
        num_layers=num_layers,
        memory=memory_settings,
        deterministic=deterministic,
        **kwargs,
    )


def random_obs(spec: BehaviorSpec, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [
        rng.standard_normal((n,) + tuple(o.shape)).astype(np.float32)
        for o in spec.observation_specs
    ]


def decision_steps(
    spec: BehaviorSpec,
    obs: list[np.ndarray],
    agent_ids: Sequence[int] | None = None,
    masked: list[np.ndarray] | None = None,
) -> DecisionSteps:
    """``masked``: per branch, a bool (n, branch_size) array, True = action not allowed."""
    n = obs[0].shape[0]
    ids = np.arange(n, dtype=np.int32) if agent_ids is None else np.asarray(agent_ids, np.int32)
    return DecisionSteps(
        obs,
        np.zeros(n, dtype=np.float32),
        ids,
        masked,
        np.zeros(n, dtype=np.int32),
        np.zeros(n, dtype=np.float32),
    )


def fill_buffer(buffer: AgentBuffer, key: object, rows: np.ndarray) -> None:
    for row in rows:
        buffer[key].append(row)


def training_batch(
    spec: BehaviorSpec,
    obs: list[np.ndarray],
    continuous_actions: np.ndarray | None,
    discrete_actions: np.ndarray | None,
    continuous_log_probs: np.ndarray | None,
    discrete_log_probs: np.ndarray | None,
    advantages: np.ndarray,
    returns: dict[str, np.ndarray],
    old_values: dict[str, np.ndarray],
    memories: np.ndarray | None = None,
    action_masks: np.ndarray | None = None,
    next_obs: list[np.ndarray] | None = None,
    rewards: dict[str, np.ndarray] | None = None,
    dones: np.ndarray | None = None,
) -> AgentBuffer:
    """An AgentBuffer holding the keys the PPO and SAC updates read."""
    n = obs[0].shape[0]
    buffer = AgentBuffer()
    for i, o in enumerate(obs):
        fill_buffer(buffer, ObsUtil.get_name_at(i), o)
    if next_obs is not None:
        for i, o in enumerate(next_obs):
            fill_buffer(buffer, ObsUtil.get_name_at_next(i), o)
    n_cont = spec.action_spec.continuous_size
    n_branches = len(spec.action_spec.discrete_branches)
    fill_buffer(
        buffer,
        BufferKey.CONTINUOUS_ACTION,
        continuous_actions if continuous_actions is not None else np.zeros((n, 0), np.float32),
    )
    fill_buffer(
        buffer,
        BufferKey.DISCRETE_ACTION,
        discrete_actions if discrete_actions is not None else np.zeros((n, 0), np.int32),
    )
    fill_buffer(
        buffer,
        BufferKey.CONTINUOUS_LOG_PROBS,
        continuous_log_probs
        if continuous_log_probs is not None
        else np.zeros((n, n_cont), np.float32),
    )
    fill_buffer(
        buffer,
        BufferKey.DISCRETE_LOG_PROBS,
        discrete_log_probs
        if discrete_log_probs is not None
        else np.zeros((n, n_branches), np.float32),
    )
    total_branches = int(sum(spec.action_spec.discrete_branches))
    fill_buffer(
        buffer,
        BufferKey.ACTION_MASK,
        action_masks if action_masks is not None else np.ones((n, total_branches), np.float32),
    )
    fill_buffer(buffer, BufferKey.ADVANTAGES, advantages.astype(np.float32))
    fill_buffer(buffer, BufferKey.MASKS, np.ones(n, np.float32))
    for name, values in returns.items():
        fill_buffer(buffer, RewardSignalUtil.returns_key(name), values.astype(np.float32))
    for name, values in old_values.items():
        fill_buffer(buffer, RewardSignalUtil.value_estimates_key(name), values.astype(np.float32))
    if rewards is not None:
        for name, values in rewards.items():
            fill_buffer(buffer, RewardSignalUtil.rewards_key(name), values.astype(np.float32))
    if dones is not None:
        fill_buffer(buffer, BufferKey.DONE, dones.astype(np.float32))
    if memories is not None:
        fill_buffer(buffer, BufferKey.MEMORY, memories)
        fill_buffer(buffer, BufferKey.CRITIC_MEMORY, memories)
    return buffer


def single_thread_torch() -> None:
    """The test machine is shared; one intra-op thread avoids oversubscription stalls."""
    import torch

    torch.set_num_threads(1)


def tensorboard_event_bytes(behavior_dir) -> bytes:
    """The raw bytes of every TensorBoard event file in a behavior's results folder: enough
    to check which stats a run wrote (their names appear as plain text)."""
    folder = Path(behavior_dir)
    return b"".join(path.read_bytes() for path in sorted(folder.glob("events.out.tfevents*")))
