"""Networks, distributions, normaliser, schedules and helpers of the torch policy."""

import math

import numpy as np
import pytest
import torch
from mlagents_fast.trainers.exception import UnityTrainerException
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.settings import EncoderType, ScheduleType
from mlagents_fast.trainers.torch_entities.distributions import (
    GaussianDistInstance,
    TanhGaussianDistInstance,
)
from mlagents_fast.trainers.torch_entities.encoders import Normalizer
from mlagents_fast.trainers.torch_entities.layers import LSTM
from mlagents_fast.trainers.torch_entities.networks import SimpleActor, ValueNetwork
from mlagents_fast.trainers.torch_entities.utils import ModelUtils
from policy_fixtures import (
    behavior_spec,
    decision_steps,
    network_settings,
    random_obs,
    vector_spec,
    visual_spec,
)


def numpy_normalizer(batches):
    """ML-Agents' update rule, written with numpy."""
    steps, mean, var = 1, None, None
    for batch in batches:
        if mean is None:
            mean = np.zeros(batch.shape[1])
            var = np.ones(batch.shape[1])
        total = steps + batch.shape[0]
        to_old = batch - mean
        new_mean = mean + (to_old / total).sum(0)
        var = var + ((batch - new_mean) * to_old).sum(0)
        mean, steps = new_mean, total
    return steps, mean, var


def test_normalizer_matches_mlagents_update_rule_and_clips():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, (n, 3)).astype(np.float32) for n in (1, 7, 64)]
    norm = Normalizer(3)
    for b in batches:
        norm.update(torch.from_numpy(b))
    steps, mean, var = numpy_normalizer([b.astype(np.float64) for b in batches])
    assert int(norm.normalization_steps) == steps == 73
    np.testing.assert_allclose(norm.running_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(norm.running_variance.numpy(), var, rtol=1e-4)
    x = torch.tensor([[3.0, 3.0, 1000.0]])
    out = norm(x).numpy()
    expected = np.clip((x.numpy() - mean) / np.sqrt(var / steps), -5, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-4)
    assert out[0, 2] == 5.0  # far outliers are clipped


def test_normalizer_one_sample_at_a_time_is_welford():
    rng = np.random.default_rng(2)
    data = rng.normal(-1.0, 0.5, (200, 2))
    norm = Normalizer(2)
    for row in data:
        norm.update(torch.tensor(row[None, :], dtype=torch.float32))
    # Starting state counts as one sample at 0 with M2 = 1.
    full = np.vstack([np.zeros((1, 2)), data])
    np.testing.assert_allclose(norm.running_mean.numpy(), full.mean(0), rtol=1e-4)
    m2 = ((full - full.mean(0)) ** 2).sum(0) + 1.0
    np.testing.assert_allclose(norm.running_variance.numpy(), m2, rtol=1e-3)


@pytest.mark.parametrize(
    "encoder,min_res",
    [
        (EncoderType.SIMPLE, 20),
        (EncoderType.NATURE_CNN, 36),
        (EncoderType.RESNET, 15),
        (EncoderType.MATCH3, 5),
        (EncoderType.FULLY_CONNECTED, 1),
    ],
)
def test_visual_encoders_at_and_below_minimum_resolution(encoder, min_res):
    settings = network_settings(hidden_units=8, vis_encode_type=encoder)
    spec = behavior_spec([visual_spec(2, min_res, min_res)], continuous=1)
    actor = SimpleActor(spec.observation_specs, settings, spec.action_spec)
    obs = [torch.rand(3, 2, min_res, min_res)]
    action, _run_out, _ = actor.get_action_and_stats(obs)
    assert action.continuous_tensor.shape == (3, 1)
    assert ModelUtils.MIN_RESOLUTION_FOR_ENCODER[encoder] == min_res
    if min_res > 1:
        small = behavior_spec([visual_spec(2, min_res - 1, min_res)], continuous=1)
        with pytest.raises(UnityTrainerException, match="too small"):
            SimpleActor(small.observation_specs, settings, small.action_spec)


def test_lstm_memory_is_h_then_c():
    torch.manual_seed(0)
    lstm = LSTM(input_size=3, memory_size=8)
    x = torch.randn(2, 5, 3)
    h0 = torch.randn(1, 2, 4)
    c0 = torch.randn(1, 2, 4)
    out, mem = lstm(x, torch.cat([h0, c0], dim=-1))
    ref_out, (h_n, c_n) = lstm.lstm(x, (h0, c0))
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(mem[..., :4], h_n)
    torch.testing.assert_close(mem[..., 4:], c_n)
    assert lstm.memory_size == 8


def test_forget_gate_bias_is_one():
    lstm = LSTM(input_size=3, memory_size=8)
    bias = lstm.lstm.bias_ih_l0.detach()
    assert torch.all(bias[4:8] == 1.0) and torch.all(bias[:4] == 0.0)


def test_masked_discrete_actions_are_never_chosen():
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(3)], branches=(4, 3))
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, {})
    rng = np.random.default_rng(0)
    obs = random_obs(spec, 200, rng)
    masked = [np.ones((200, 4), bool), np.zeros((200, 3), bool)]
    masked[0][:, 2] = False  # only action 2 of branch 0 allowed
    masked[1][:100, 0] = True  # first half: action 0 of branch 1 forbidden
    info = policy.get_action(decision_steps(spec, obs, masked=masked))
    discrete = info.action.discrete
    assert discrete.shape == (200, 2)
    assert np.all(discrete[:, 0] == 2)
    assert np.all(discrete[:100, 1] != 0)
    assert set(np.unique(discrete[100:, 1])) == {0, 1, 2}  # unmasked half still explores
    log_probs = info.outputs["log_probs"].discrete
    assert log_probs.shape == (200, 2) and np.allclose(log_probs[:, 0], 0.0, atol=1e-5)


def test_deterministic_setting_picks_mean_and_argmax():
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(3)], continuous=2, branches=(3,))
    policy = TorchPolicy(0, spec, network_settings(deterministic=True), SimpleActor, {})
    obs = random_obs(spec, 4, np.random.default_rng(0))
    first = policy.get_action(decision_steps(spec, obs))
    second = policy.get_action(decision_steps(spec, obs))
    np.testing.assert_array_equal(first.action.continuous, second.action.continuous)
    np.testing.assert_array_equal(first.action.discrete, second.action.discrete)
    with torch.no_grad():
        encoding, _ = policy.actor.network_body([torch.from_numpy(obs[0])])
        mean = policy.actor.action_model._continuous_distribution.mu(encoding)
    np.testing.assert_allclose(first.action.continuous, mean.numpy(), rtol=1e-5)


def test_ppo_env_action_is_clipped_raw_action_is_not():
    spec = behavior_spec([vector_spec(2)], continuous=1)
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, {})
    with torch.no_grad():
        policy.actor.action_model._continuous_distribution.log_sigma.fill_(math.log(10.0))
    info = policy.get_action(decision_steps(spec, random_obs(spec, 500, np.random.default_rng(0))))
    raw, env = info.action.continuous, info.env_action.continuous
    assert np.abs(raw).max() > 3.0
    np.testing.assert_allclose(env, np.clip(raw, -3, 3) / 3, rtol=1e-6)


def test_sac_actions_are_tanh_squashed_with_consistent_log_prob():
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(2)], continuous=2)
    policy = TorchPolicy(
        0, spec, network_settings(), SimpleActor, {"conditional_sigma": True, "tanh_squash": True}
    )
    info = policy.get_action(decision_steps(spec, random_obs(spec, 64, np.random.default_rng(0))))
    assert np.all(np.abs(info.action.continuous) <= 1.0)
    np.testing.assert_array_equal(info.action.continuous, info.env_action.continuous)
    # Change of variables: log p(tanh u) = log N(u) - log(1 - tanh(u)^2).
    mean, std = torch.zeros(1, 1), torch.ones(1, 1)
    dist = TanhGaussianDistInstance(mean, std)
    y = torch.tensor([[0.5]])
    u = torch.atanh(y)
    expected = GaussianDistInstance(mean, std).log_prob(u) - torch.log(1 - y**2)
    torch.testing.assert_close(dist.log_prob(y), expected, rtol=1e-4, atol=1e-4)


def test_hybrid_actions_and_memories_per_agent():
    spec = behavior_spec([vector_spec(3)], continuous=2, branches=(2, 2))
    policy = TorchPolicy(0, spec, network_settings(memory=(4, 6)), SimpleActor, {})
    obs = random_obs(spec, 3, np.random.default_rng(0))
    info = policy.get_action(decision_steps(spec, obs, agent_ids=[7, 8, 9]), worker_id=1)
    assert info.agent_ids == [7, 8, 9]
    assert info.action.continuous.shape == (3, 2) and info.action.discrete.shape == (3, 2)
    assert info.outputs["memory_out"].shape == (3, 6)
    assert policy.m_size == 6 and policy.export_memory_size == 6
    np.testing.assert_array_equal(
        policy.retrieve_memories(["agent_1-8"]), info.outputs["memory_out"][1:2]
    )
    # The second step starts from the stored memories, so it differs from a fresh start.
    second = policy.get_action(decision_steps(spec, obs, agent_ids=[7, 8, 9]), worker_id=1)
    assert not np.allclose(second.outputs["memory_out"], info.outputs["memory_out"])
    policy.remove_memories(["agent_1-7"])
    assert np.all(policy.retrieve_memories(["agent_1-7"]) == 0)


def test_empty_decision_steps_give_empty_action_info():
    spec = behavior_spec([vector_spec(3)], continuous=1)
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, {})
    obs = [np.zeros((0, 3), np.float32)]
    info = policy.get_action(decision_steps(spec, obs))
    assert info.agent_ids == [] and info.outputs == {}


def test_steps_and_weights():
    spec = behavior_spec([vector_spec(3)], continuous=1)
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, {})
    assert policy.get_current_step() == 0
    assert policy.increment_step(5) == 5
    assert policy.set_step(42) == 42 and policy.get_current_step() == 42
    other = TorchPolicy(1, spec, network_settings(), SimpleActor, {})
    other.load_weights(policy.get_weights())
    for a, b in zip(policy.actor.parameters(), other.actor.parameters()):
        torch.testing.assert_close(a, b)


def test_update_normalization_reads_the_buffer():
    from mlagents_fast.trainers.buffer import AgentBuffer
    from mlagents_fast.trainers.trajectory import ObsUtil

    spec = behavior_spec([vector_spec(2)], continuous=1)
    policy = TorchPolicy(0, spec, network_settings(normalize=True), SimpleActor, {})
    buffer = AgentBuffer()
    for row in np.full((9, 2), 10.0, np.float32):
        buffer[ObsUtil.get_name_at(0)].append(row)
    policy.update_normalization(buffer)
    normalizer = policy.actor.network_body.processors[0].normalizer
    assert int(normalizer.normalization_steps) == 10
    np.testing.assert_allclose(normalizer.running_mean.numpy(), [9.0, 9.0], rtol=1e-6)


def test_decayed_value_schedules():
    linear = ModelUtils.DecayedValue(ScheduleType.LINEAR, 1.0, 0.1, 100)
    assert linear.get_value(0) == pytest.approx(1.0)
    assert linear.get_value(50) == pytest.approx(0.55)
    assert linear.get_value(100) == pytest.approx(0.1)
    assert linear.get_value(10_000) == pytest.approx(0.1)
    constant = ModelUtils.DecayedValue(ScheduleType.CONSTANT, 0.3, 0.0, 100)
    assert constant.get_value(0) == constant.get_value(99) == 0.3


def test_masked_mean_ignores_masked_rows():
    values = torch.tensor([[1.0, 3.0], [100.0, 100.0], [5.0, 7.0]])
    masks = torch.tensor([True, False, True])
    assert ModelUtils.masked_mean(values, masks).item() == pytest.approx(4.0)
    assert ModelUtils.masked_mean(values[:, 0], masks).item() == pytest.approx(3.0)
    assert ModelUtils.masked_mean(values, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_soft_update_blends_by_tau():
    spec = behavior_spec([vector_spec(3)], continuous=1)
    source = ValueNetwork(["extrinsic"], spec.observation_specs, network_settings())
    target = ValueNetwork(["extrinsic"], spec.observation_specs, network_settings())
    before = [p.clone() for p in target.parameters()]
    ModelUtils.soft_update(source, target, 0.25)
    for s, t, b in zip(source.parameters(), target.parameters(), before):
        torch.testing.assert_close(t, 0.25 * s + 0.75 * b)


def test_actions_to_onehot_and_branches():
    onehots = ModelUtils.actions_to_onehot(torch.tensor([[1, 0], [2, 1]]), [3, 2])
    torch.testing.assert_close(onehots[0], torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(onehots[1], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    parts = ModelUtils.break_into_branches(torch.arange(10.0).reshape(2, 5), [3, 2])
    assert [p.shape for p in parts] == [(2, 3), (2, 2)]


def test_create_adam_matches_plain_adam():
    torch.manual_seed(0)
    first = torch.nn.Linear(4, 3)
    second = torch.nn.Linear(4, 3)
    second.load_state_dict(first.state_dict())
    fast = ModelUtils.create_adam(first.parameters(), lr=1e-2)
    plain = torch.optim.Adam(second.parameters(), lr=1e-2)
    assert fast.param_groups[0]["fused"] is True
    x = torch.randn(16, 4)
    for _ in range(5):
        for net, opt in ((first, fast), (second, plain)):
            opt.zero_grad()
            (net(x) ** 2).mean().backward()
            opt.step()
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_read_only_observations_are_accepted_without_warning():
    from mlagents_fast.trainers.buffer import AgentBuffer
    from mlagents_fast.trainers.trajectory import ObsUtil

    spec = behavior_spec([vector_spec(3)], continuous=1, branches=(2,))
    policy = TorchPolicy(0, spec, network_settings(normalize=True), SimpleActor, {})
    obs = np.arange(6, dtype=np.float32).reshape(2, 3)
    obs.setflags(write=False)
    masked = np.array([[True, False], [False, False]])
    masked.setflags(write=False)
    info = policy.get_action(decision_steps(spec, [obs], masked=[masked]))  # warnings are errors
    assert np.all(info.action.discrete[0] == 1)
    tensor = ModelUtils.list_to_tensor(obs)
    assert torch.equal(tensor, torch.from_numpy(obs.copy()))
    buffer = AgentBuffer()
    for row in obs:
        buffer[ObsUtil.get_name_at(0)].append(row)
    policy.update_normalization(buffer)
