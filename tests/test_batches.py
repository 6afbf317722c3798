"""Typed minibatches: what minibatches() and ExperienceBatch.of() cut from an AgentBuffer,
ML-Agents' keys on a typed batch, rows that never change under a holder, and optimizers and
reward signals (GAIL included) that give the same result for an AgentBuffer and for its typed batch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.batches import ExperienceBatch, minibatches
from mlagents_fast.trainers.buffer import (
    AgentBuffer,
    AgentBufferField,
    BufferKey,
    ObservationKeyPrefix,
    RewardSignalUtil,
)
from mlagents_fast.trainers.demo_loader import load_demonstration
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.sac.optimizer_torch import TorchSACOptimizer
from mlagents_fast.trainers.settings import CuriositySettings, RewardSignalType, RNDSettings
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.components.reward_providers import (
    create_reward_provider,
)
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from mlagents_fast.trainers.trajectory import ObsUtil
from policy_fixtures import behavior_spec, network_settings, single_thread_torch, vector_spec
from test_gail import BALL_DEMO, gail_settings, policy_batch
from test_torch_optimizers import make_ppo, rollout_batch, sac_batch, sac_settings

single_thread_torch()

OBS = (ObservationKeyPrefix.OBSERVATION, 0)


def update_buffer(length: int, first: int = 0) -> AgentBuffer:
    """Rows whose values encode their index, for every key a PPO update reads."""
    ids = np.arange(first, first + length)
    buffer = AgentBuffer()
    buffer[OBS].extend(np.stack([ids, -ids], axis=1).astype(np.float32))
    buffer[(ObservationKeyPrefix.OBSERVATION, 1)].extend(ids[:, None].astype(np.uint8) % 7)
    buffer[(ObservationKeyPrefix.NEXT_OBSERVATION, 0)].extend(
        np.stack([ids + 1, -ids - 1], axis=1).astype(np.float32)
    )
    buffer[BufferKey.CONTINUOUS_ACTION].extend(ids[:, None].astype(np.float32) * 0.5)
    buffer[BufferKey.DISCRETE_ACTION].extend((ids[:, None] % 3).astype(np.int32))
    buffer[BufferKey.ACTION_MASK].extend(np.ones((length, 3), np.float32))
    buffer[BufferKey.CONTINUOUS_LOG_PROBS].extend(-ids[:, None].astype(np.float32))
    buffer[BufferKey.DISCRETE_LOG_PROBS].extend(-ids[:, None].astype(np.float32) * 2)
    buffer[BufferKey.MASKS].extend(np.ones(length, np.float32))
    buffer[BufferKey.DONE].extend(ids % 5 == 4)
    buffer[BufferKey.ADVANTAGES].extend(ids.astype(np.float32))
    for signal in ("extrinsic", "curiosity"):
        buffer[RewardSignalUtil.returns_key(signal)].extend(ids.astype(np.float32) + 0.25)
        buffer[RewardSignalUtil.value_estimates_key(signal)].extend(ids.astype(np.float32))
        buffer[RewardSignalUtil.rewards_key(signal)].extend(ids.astype(np.float32) - 0.25)
    buffer[BufferKey.GROUPMATE_REWARDS].extend([[float(i)] for i in ids])
    return buffer


def assert_batch_of_rows(batch: ExperienceBatch, ids: np.ndarray) -> None:
    """Every typed field of ``batch`` holds exactly rows ``ids`` of update_buffer()."""
    assert batch.num_experiences == len(ids)
    np.testing.assert_array_equal(batch.obs[0][:, 0], ids)
    np.testing.assert_array_equal(batch.obs[1][:, 0], ids % 7)
    np.testing.assert_array_equal(batch.next_obs[0][:, 0], ids + 1)
    np.testing.assert_array_equal(batch.continuous_actions[:, 0], ids * 0.5)
    np.testing.assert_array_equal(batch.discrete_actions[:, 0], ids % 3)
    np.testing.assert_array_equal(batch.continuous_log_probs[:, 0], -ids)
    np.testing.assert_array_equal(batch.discrete_log_probs[:, 0], -2 * ids)
    np.testing.assert_array_equal(batch.done, ids % 5 == 4)
    np.testing.assert_array_equal(batch.advantages, ids)
    assert set(batch.returns) == set(batch.value_estimates) == {"extrinsic", "curiosity"}
    np.testing.assert_array_equal(batch.returns["curiosity"], ids + 0.25)
    np.testing.assert_array_equal(batch.value_estimates["extrinsic"], ids)
    np.testing.assert_array_equal(batch.rewards["extrinsic"], ids - 0.25)
    assert batch.memories is None and batch.critic_memories is None
    assert [entry[0] for entry in batch[BufferKey.GROUPMATE_REWARDS]] == ids.tolist()


def test_minibatches_cut_consecutive_rows_into_named_arrays():
    buffer = update_buffer(50)
    batches = list(minibatches(buffer, 16))
    assert len(batches) == 3  # the trailing 2 rows make no whole minibatch
    for i, batch in enumerate(batches):
        assert isinstance(batch, ExperienceBatch)
        assert_batch_of_rows(batch, np.arange(16 * i, 16 * (i + 1)))
        assert np.shares_memory(batch.obs[0], np.asarray(buffer[OBS]))  # no copy
        assert batch.obs[0].flags.writeable  # torch.from_numpy takes it without a warning
    whole = ExperienceBatch.of(buffer)
    assert_batch_of_rows(whole, np.arange(50))
    assert ExperienceBatch.of(whole) is whole
    for bad in (0, -1, 2.0, True):
        with pytest.raises(InvalidArgumentError, match="batch_size"):
            next(minibatches(buffer, bad))
    with pytest.raises(InvalidArgumentError, match="AgentBuffer or an ExperienceBatch"):
        ExperienceBatch.of({"obs": 1})


def test_typed_batches_answer_ml_agents_keys():
    batch = list(minibatches(update_buffer(20), 8))[1]
    assert OBS in batch and BufferKey.MEMORY not in batch and len(batch) == len(list(batch))
    field = batch[BufferKey.ADVANTAGES]
    assert isinstance(field, AgentBufferField) and field == list(range(8, 16))
    assert batch.get(BufferKey.MEMORY) is None
    observations = ObsUtil.from_buffer(batch, 2)
    np.testing.assert_array_equal(np.asarray(observations[0]), batch.obs[0])
    actions = AgentAction.from_buffer(batch)
    np.testing.assert_array_equal(actions.discrete_tensor[:, 0].numpy(), np.arange(8, 16) % 3)
    field[0] = 99.0  # a field of a typed batch writes to its own copy
    assert batch.advantages[0] == 8


def test_missing_fields_name_what_is_missing():
    buffer = AgentBuffer()
    buffer[OBS].extend(np.zeros((4, 2), np.float32))
    batch = ExperienceBatch.of(buffer)
    assert batch.advantages is None and batch.returns == {} and batch.next_obs == []
    with pytest.raises(InvalidArgumentError, match="no advantages"):
        batch.require("advantages")
    with pytest.raises(InvalidArgumentError, match="has 1 observations, 2 were asked"):
        batch.observations(2)
    with pytest.raises(InvalidArgumentError, match="next observations"):
        batch.next_observations(1)
    with pytest.raises(InvalidArgumentError, match="returns of reward signal 'gail'"):
        batch.signal_rows("returns", "gail")


def _snapshot(batch: ExperienceBatch) -> list[np.ndarray]:
    arrays = [*batch.obs, *batch.next_obs, *batch.returns.values(), *batch.rewards.values()]
    arrays += [batch.advantages, batch.done, batch.continuous_actions, batch.discrete_actions]
    return [np.array(a, copy=True) for a in arrays]


def test_held_typed_minibatches_never_change():
    np.random.seed(0)
    buffer = update_buffer(64)
    held = []
    for epoch in range(3):
        buffer.shuffle(sequence_length=1)
        for batch in minibatches(buffer, 16):
            held.append((batch, _snapshot(batch)))
            if epoch == 0:  # before any write below
                assert_batch_of_rows(batch, batch.obs[0][:, 0].astype(int))
        buffer[BufferKey.ADVANTAGES][0] = -1.0  # written after the rows were lent
        buffer[BufferKey.DONE][:] = np.zeros(64, dtype=bool)
    buffer.reset_agent()
    update_buffer(64, 1000).resequence_and_append(buffer)
    buffer.shuffle(sequence_length=1)
    for batch, snapshot in held:
        for now, then in zip(_snapshot(batch), snapshot):
            np.testing.assert_array_equal(now, then)


# ----------------------------------------------------------------------------- consumers


def _same_update(make, update, buffer) -> None:
    """``update`` on a copy of a fresh model with the AgentBuffer and on another copy with
    its typed batch: the same stats and the same parameters after."""
    model = make()
    twin = copy.deepcopy(model)
    torch.manual_seed(5)
    from_buffer = update(model, buffer)
    torch.manual_seed(5)
    from_typed = update(twin, ExperienceBatch.of(buffer))
    assert from_buffer == from_typed
    for name, module in model.get_modules().items():
        twin_state = twin.get_modules()[name].state_dict()
        for key, value in module.state_dict().items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, twin_state[key]), (name, key)


@pytest.mark.parametrize("memory", [None, (4, 8)])
def test_ppo_update_is_the_same_for_an_agent_buffer_and_its_typed_batch(memory):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = behavior_spec([vector_spec(4)], continuous=1, branches=(2,))
    policy, optimizer = make_ppo(spec, memory=memory)
    buffer = rollout_batch(policy, spec, 32, rng)
    _same_update(lambda: optimizer, lambda o, b: o.update(b, num_sequences=8), buffer)


def test_sac_update_is_the_same_for_an_agent_buffer_and_its_typed_batch():
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(4)], continuous=2, branches=(3,))
    settings = sac_settings()
    policy = TorchPolicy(
        0, spec, settings.network_settings, SimpleActor, {"conditional_sigma": True}
    )
    optimizer = TorchSACOptimizer(policy, settings)
    buffer = sac_batch(policy, spec, 32, np.random.default_rng(1))
    _same_update(lambda: optimizer, lambda o, b: o.update(b, num_sequences=32), buffer)


@pytest.mark.parametrize("signal", [RewardSignalType.CURIOSITY, RewardSignalType.RND])
def test_reward_signals_read_agent_buffers_and_typed_batches_alike(signal):
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(2)], continuous=1, branches=(3,))
    settings = CuriositySettings() if signal is RewardSignalType.CURIOSITY else RNDSettings()
    settings.network_settings = network_settings(hidden_units=16)
    provider = create_reward_provider(signal, spec, settings)
    twin = copy.deepcopy(provider)
    buffer = update_buffer(24)
    buffer[OBS].set(np.random.default_rng(2).standard_normal((24, 2)).astype(np.float32))
    del buffer[(ObservationKeyPrefix.OBSERVATION, 1)]
    assert provider.update(buffer) == twin.update(ExperienceBatch.of(buffer))
    np.testing.assert_array_equal(
        provider.evaluate(buffer), twin.evaluate(ExperienceBatch.of(buffer))
    )


def test_gail_reads_agent_buffers_and_typed_batches_alike():
    # GAIL samples its expert batch with numpy's global generator and draws its
    # gradient-penalty points with torch's: both seeded alike for the two runs.
    spec, _, _ = load_demonstration(BALL_DEMO)
    settings = gail_settings(BALL_DEMO, use_actions=True, use_vail=True)
    torch.manual_seed(0)
    provider = create_reward_provider(RewardSignalType.GAIL, spec, settings)
    twin = copy.deepcopy(provider)
    buffer = policy_batch(spec, 32, np.random.default_rng(4))
    results = []
    for model, batch in ((provider, buffer), (twin, ExperienceBatch.of(buffer))):
        np.random.seed(6)
        torch.manual_seed(6)
        results.append((model.update(batch), model.evaluate(batch)))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
