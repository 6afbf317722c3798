"""PPO and SAC optimizers on hand-made batches, value estimates and reward providers."""

import numpy as np
import pytest
import torch
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.sac.optimizer_torch import TorchSACOptimizer
from mlagents_fast.trainers.settings import (
    CuriositySettings,
    PPOSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
    SACSettings,
    ScheduleType,
    TrainerSettings,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers import (
    create_reward_provider,
)
from mlagents_fast.trainers.torch_entities.networks import SharedActorCritic, SimpleActor
from mlagents_fast.trainers.torch_entities.utils import ModelUtils
from mlagents_fast.trainers.trajectory import ObsUtil
from policy_fixtures import (
    behavior_spec,
    decision_steps,
    network_settings,
    random_obs,
    single_thread_torch,
    training_batch,
    vector_spec,
)

single_thread_torch()


def ppo_settings(shared_critic=False, memory=None, **hyper):
    hyperparameters = PPOSettings(
        batch_size=32,
        buffer_size=64,
        learning_rate=3e-3,
        shared_critic=shared_critic,
        learning_rate_schedule=ScheduleType.CONSTANT,
        **hyper,
    )
    return TrainerSettings(
        trainer_type="ppo",
        hyperparameters=hyperparameters,
        network_settings=network_settings(memory=memory),
        max_steps=1000,
    )


def sac_settings(tau=0.005):
    return TrainerSettings(
        trainer_type="sac",
        hyperparameters=SACSettings(batch_size=32, learning_rate=3e-3, tau=tau),
        network_settings=network_settings(),
        max_steps=1000,
    )


def make_ppo(spec, shared_critic=False, memory=None, **hyper):
    settings = ppo_settings(shared_critic=shared_critic, memory=memory, **hyper)
    actor_cls, kwargs = SimpleActor, {}
    if shared_critic:
        actor_cls, kwargs = SharedActorCritic, {"stream_names": ["extrinsic"]}
    policy = TorchPolicy(0, spec, settings.network_settings, actor_cls, kwargs)
    return policy, TorchPPOOptimizer(policy, settings)


def rollout_batch(policy, spec, n, rng, advantage_of=None):
    """Act with the policy, then build a PPO batch whose advantages favour some actions."""
    obs = random_obs(spec, n, rng)
    info = policy.get_action(decision_steps(spec, obs))
    cont = info.action.continuous if spec.action_spec.continuous_size else None
    disc = info.action.discrete if spec.action_spec.discrete_branches else None
    advantages = advantage_of(info) if advantage_of else rng.standard_normal(n)
    returns = {"extrinsic": np.ones(n, np.float32)}
    # Within epsilon of the returns, so that value clipping does not bound the loss.
    old_values = {"extrinsic": np.full(n, 0.9, np.float32)}
    memories = info.outputs.get("memory_out")
    if memories is not None:
        memories = np.zeros_like(memories)
    return training_batch(
        spec,
        obs,
        cont,
        disc,
        info.outputs["log_probs"].continuous if cont is not None else None,
        info.outputs["log_probs"].discrete if disc is not None else None,
        advantages.astype(np.float32),
        returns,
        old_values,
        memories=memories,
    )


def test_trust_region_policy_loss_by_hand():
    advantages = torch.tensor([1.0, -1.0])
    old = torch.log(torch.tensor([[0.5], [0.5]]))
    new = torch.log(torch.tensor([[0.9], [0.9]]))  # ratio 1.8 for both
    loss = ModelUtils.trust_region_policy_loss(advantages, new, old, torch.ones(2), 0.2)
    # row 0: min(1.8, 1.2) * 1 = 1.2; row 1: min(-1.8, -1.2) = -1.8; mean -0.3, negated 0.3.
    assert loss.item() == pytest.approx(0.3, abs=1e-5)


def test_trust_region_value_loss_by_hand():
    values = {"s": torch.tensor([2.0, 0.0])}
    old = {"s": torch.tensor([0.0, 0.0])}
    returns = {"s": torch.tensor([2.0, 1.0])}
    loss = ModelUtils.trust_region_value_loss(values, old, returns, 0.5, torch.ones(2))
    # row 0: unclipped error 0, clipped value 0.5 -> error 2.25, max 2.25; row 1: 1 vs 1 -> 1.
    assert loss.item() == pytest.approx((2.25 + 1.0) / 2)


@pytest.mark.parametrize(
    "continuous,branches,shared",
    [(2, (), False), (0, (3, 2), False), (1, (2,), False), (2, (), True)],
)
def test_ppo_update_lowers_the_loss_on_a_fixed_batch(continuous, branches, shared):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = behavior_spec([vector_spec(4)], continuous=continuous, branches=branches)
    policy, optimizer = make_ppo(spec, shared_critic=shared)
    batch = rollout_batch(policy, spec, 64, rng)
    first = optimizer.update(batch, num_sequences=64)
    for _ in range(20):
        last = optimizer.update(batch, num_sequences=64)
    assert set(first) == {
        "Losses/Policy Loss",
        "Losses/Value Loss",
        "Policy/Learning Rate",
        "Policy/Epsilon",
        "Policy/Beta",
    }
    assert last["Losses/Value Loss"] < 0.5 * first["Losses/Value Loss"]
    if shared:
        assert optimizer.critic is policy.actor


def test_ppo_raises_probability_of_positive_advantage_actions():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = behavior_spec([vector_spec(4)], branches=(3,))
    policy, optimizer = make_ppo(spec, beta=0.0)
    # Action 1 gets advantage +1, the others -1.
    batch = rollout_batch(
        policy, spec, 128, rng, lambda info: np.where(info.action.discrete[:, 0] == 1, 1.0, -1.0)
    )
    obs = [torch.as_tensor(np.asarray(batch[ObsUtil.get_name_at(0)]))]

    def prob_of_action_1():
        with torch.no_grad():
            enc, _ = policy.actor.network_body(obs)
            dist = policy.actor.action_model._get_dists(enc, torch.ones(128, 3)).discrete[0]
            return dist.probs[:, 1].mean().item()

    before = prob_of_action_1()
    for _ in range(10):
        optimizer.update(batch, num_sequences=128)
    assert prob_of_action_1() > before + 0.03


def test_ppo_value_clipping_bounds_the_value_loss():
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(4)], continuous=1)
    policy, optimizer = make_ppo(spec)
    batch = rollout_batch(policy, spec, 32, np.random.default_rng(0))
    from mlagents_fast.trainers.buffer import RewardSignalUtil

    key = RewardSignalUtil.value_estimates_key("extrinsic")
    batch[key].set([np.float32(0.0)] * 32)  # old values 0, returns 1, epsilon 0.2
    for _ in range(25):
        stats = optimizer.update(batch, num_sequences=32)
    # The clipped estimate can move at most 0.2 from 0: (1 - 0.2)^2 is the floor.
    assert stats["Losses/Value Loss"] >= 0.64 - 1e-5


def test_ppo_schedules_follow_the_policy_step():
    spec = behavior_spec([vector_spec(4)], continuous=1)
    settings = ppo_settings()
    settings.hyperparameters.learning_rate_schedule = ScheduleType.LINEAR
    policy = TorchPolicy(0, spec, settings.network_settings, SimpleActor, {})
    optimizer = TorchPPOOptimizer(policy, settings)
    batch = rollout_batch(policy, spec, 16, np.random.default_rng(0))
    policy.set_step(500)  # half of max_steps
    stats = optimizer.update(batch, num_sequences=16)
    assert stats["Policy/Learning Rate"] == pytest.approx(3e-3 / 2, rel=1e-6)
    assert stats["Policy/Epsilon"] == pytest.approx(0.1 + (0.2 - 0.1) / 2)
    assert stats["Policy/Beta"] == pytest.approx(1e-5 + (5e-3 - 1e-5) / 2)
    assert optimizer.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3 / 2)


def test_ppo_with_lstm_updates_on_sequences():
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(4)], continuous=1, branches=(2,))
    policy, optimizer = make_ppo(spec, memory=(4, 8))
    batch = rollout_batch(policy, spec, 16, np.random.default_rng(0))  # 4 sequences of 4
    first = optimizer.update(batch, num_sequences=4)
    for _ in range(20):
        last = optimizer.update(batch, num_sequences=4)
    assert last["Losses/Value Loss"] < first["Losses/Value Loss"]


def test_trajectory_value_estimates_and_bootstrap():
    spec = behavior_spec([vector_spec(4)], continuous=1)
    _policy, optimizer = make_ppo(spec)
    rng = np.random.default_rng(0)
    buffer = AgentBuffer()
    for row in random_obs(spec, 10, rng)[0]:
        buffer[ObsUtil.get_name_at(0)].append(row)
    next_obs = [rng.standard_normal(4).astype(np.float32)]
    values, next_values, memories = optimizer.get_trajectory_value_estimates(
        buffer, next_obs, done=False
    )
    assert values["extrinsic"].shape == (10,) and memories is None
    with torch.no_grad():
        expected, _ = optimizer.critic.critic_pass([torch.from_numpy(next_obs[0][None])])
    assert isinstance(next_values["extrinsic"], float)
    assert next_values["extrinsic"] == pytest.approx(float(expected["extrinsic"][0]), rel=1e-5)
    _, done_values, _ = optimizer.get_trajectory_value_estimates(buffer, next_obs, done=True)
    assert done_values["extrinsic"] == 0.0


def test_trajectory_value_estimates_with_lstm_memories():
    spec = behavior_spec([vector_spec(4)], continuous=1)
    _policy, optimizer = make_ppo(spec, memory=(4, 8))
    rng = np.random.default_rng(0)
    buffer = AgentBuffer()
    for row in random_obs(spec, 10, rng)[0]:  # two full sequences and a leftover of 2
        buffer[ObsUtil.get_name_at(0)].append(row)
    values, _, memories = optimizer.get_trajectory_value_estimates(
        buffer, [np.zeros(4, np.float32)], done=False, agent_id="a"
    )
    assert values["extrinsic"].shape == (10,)
    memories = np.asarray(memories)
    assert memories.shape == (10, 8)
    assert np.all(memories[:4] == 0)  # first sequence starts from zeros
    assert np.all(memories[4:8] == memories[4]) and not np.all(memories[4] == 0)
    assert "a" in optimizer.critic_memory_dict  # carried to the agent's next trajectory


def test_unknown_reward_signal_is_a_config_error():
    spec = behavior_spec([vector_spec(4)], continuous=1)
    with pytest.raises(TrainerConfigError, match="'empowerment' is not supported"):
        create_reward_provider("empowerment", spec, RewardSignalSettings())


def test_extrinsic_reward_provider_scales_nothing_and_adds_group_reward():
    spec = behavior_spec([vector_spec(4)], continuous=1)
    provider = create_reward_provider(
        RewardSignalType.EXTRINSIC, spec, RewardSignalSettings(gamma=0.9, strength=2.0)
    )
    assert provider.gamma == 0.9 and provider.strength == 2.0 and provider.name == "Extrinsic"
    buffer = AgentBuffer()
    for r in (1.0, -0.5):
        buffer[BufferKey.ENVIRONMENT_REWARDS].append(r)
        buffer[BufferKey.GROUP_REWARD].append(0.25)
    np.testing.assert_allclose(provider.evaluate(buffer), [1.25, -0.25])


def sac_batch(policy, spec, n, rng):
    obs = random_obs(spec, n, rng)
    info = policy.get_action(decision_steps(spec, obs))
    cont = info.action.continuous if spec.action_spec.continuous_size else None
    disc = info.action.discrete if spec.action_spec.discrete_branches else None
    return training_batch(
        spec,
        obs,
        cont,
        disc,
        None,
        None,
        np.zeros(n),
        {},
        {},
        next_obs=random_obs(spec, n, rng),
        rewards={"extrinsic": np.ones(n, np.float32)},
        # Terminal steps: the Q target is the reward alone, a fixed regression target.
        dones=np.ones(n, np.float32),
    )


@pytest.mark.parametrize("continuous,branches", [(2, ()), (0, (3, 2)), (1, (2,))])
def test_sac_update_fits_q_and_moves_target_by_tau(continuous, branches):
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(4)], continuous=continuous, branches=branches)
    settings = sac_settings(tau=0.1)
    policy = TorchPolicy(
        0,
        spec,
        settings.network_settings,
        SimpleActor,
        {"conditional_sigma": True, "tanh_squash": True},
    )
    optimizer = TorchSACOptimizer(policy, settings)
    for critic_param, target_param in zip(
        optimizer.critic.parameters(), optimizer.target_network.parameters()
    ):
        torch.testing.assert_close(critic_param, target_param)  # target starts as a copy
    batch = sac_batch(policy, spec, 64, np.random.default_rng(0))
    target_before = [p.clone() for p in optimizer.target_network.parameters()]
    first = optimizer.update(batch, num_sequences=64)
    for critic_param, target_param, before in zip(
        optimizer.critic.parameters(), optimizer.target_network.parameters(), target_before
    ):
        torch.testing.assert_close(target_param, 0.1 * critic_param + 0.9 * before)
    for _ in range(15):
        last = optimizer.update(batch, num_sequences=64)
    assert last["Losses/Q1 Loss"] < first["Losses/Q1 Loss"]
    assert np.isfinite(last["Losses/Policy Loss"]) and np.isfinite(last["Losses/Value Loss"])


def test_sac_entropy_coefficient_moves_toward_target():
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(4)], continuous=2)
    settings = sac_settings()
    policy = TorchPolicy(
        0,
        spec,
        settings.network_settings,
        SimpleActor,
        {"conditional_sigma": True, "tanh_squash": True},
    )
    optimizer = TorchSACOptimizer(policy, settings)
    batch = sac_batch(policy, spec, 64, np.random.default_rng(0))
    # A fresh policy has entropy above the target (-2): the coefficient must shrink.
    before = optimizer._log_ent_coef.continuous.item()
    for _ in range(5):
        optimizer.update(batch, num_sequences=64)
    assert optimizer._log_ent_coef.continuous.item() < before


def test_sac_refuses_shared_actor_critic():
    spec = behavior_spec([vector_spec(4)], continuous=1)
    settings = sac_settings()
    policy = TorchPolicy(
        0, spec, settings.network_settings, SharedActorCritic, {"stream_names": ["extrinsic"]}
    )
    with pytest.raises(Exception, match="SharedActorCritic"):
        TorchSACOptimizer(policy, settings)


def intrinsic_batch(spec, obs, next_obs, actions=None, discrete=None):
    n = obs[0].shape[0]
    return training_batch(
        spec,
        obs,
        actions,
        discrete,
        None,
        None,
        np.zeros(n),
        {},
        {},
        next_obs=next_obs,
    )


def test_rnd_rewards_novel_observations_more_after_training():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = behavior_spec([vector_spec(4)], continuous=1)
    settings = RNDSettings(strength=0.01, learning_rate=1e-2)
    settings.network_settings = network_settings(hidden_units=32)
    provider = create_reward_provider(RewardSignalType.RND, spec, settings)
    assert provider.ignore_done and provider.name == "RND"
    seen = [rng.normal(0.0, 0.1, (64, 4)).astype(np.float32)]
    novel = [rng.normal(0.0, 3.0, (64, 4)).astype(np.float32)]
    seen_batch = intrinsic_batch(spec, seen, seen)
    first = provider.update(seen_batch)["Losses/RND Loss"]
    for _ in range(60):
        last = provider.update(seen_batch)["Losses/RND Loss"]
    assert last < 0.5 * first
    seen_reward = provider.evaluate(seen_batch)
    novel_reward = provider.evaluate(intrinsic_batch(spec, novel, novel))
    assert seen_reward.shape == (64,) and seen_reward.dtype == np.float32
    assert novel_reward.mean() > 2 * seen_reward.mean()
    assert set(provider.get_modules()) == {"Module:RND-pred", "Module:RND-target"}


@pytest.mark.parametrize("continuous,branches", [(2, ()), (0, (3,))])
def test_curiosity_learns_the_transition_and_caps_rewards(continuous, branches):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = behavior_spec([vector_spec(4)], continuous=continuous, branches=branches)
    settings = CuriositySettings(strength=0.5, learning_rate=3e-3)
    settings.network_settings = network_settings(hidden_units=16)
    provider = create_reward_provider(RewardSignalType.CURIOSITY, spec, settings)
    obs = [rng.standard_normal((64, 4)).astype(np.float32)]
    next_obs = [obs[0] * 0.5 + 1.0]
    cont = rng.standard_normal((64, continuous)).astype(np.float32) if continuous else None
    disc = rng.integers(0, 3, (64, 1)).astype(np.int32) if branches else None
    batch = intrinsic_batch(spec, obs, next_obs, cont, disc)
    assert np.all(provider.evaluate(batch) == 0.0)  # nothing learned yet
    first = provider.update(batch)
    for _ in range(30):
        last = provider.update(batch)
    assert last["Losses/Curiosity Inverse Loss"] < first["Losses/Curiosity Inverse Loss"]
    rewards = provider.evaluate(batch)
    assert rewards.shape == (64,) and np.all(rewards >= 0.0) and np.all(rewards <= 1.0 / 0.5)


def test_curiosity_accepts_mask_rows_of_shape_one():
    # ML-Agents' buffers may hold each step's mask as a (1,) array; the losses must equal
    # those of the same batch with scalar mask rows, padded steps excluded either way.
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    spec = behavior_spec([vector_spec(3)], continuous=1, branches=(2,))
    settings = CuriositySettings(strength=0.5, learning_rate=3e-3)
    settings.network_settings = network_settings(hidden_units=8)
    provider = create_reward_provider(RewardSignalType.CURIOSITY, spec, settings)
    obs = [rng.standard_normal((10, 3)).astype(np.float32)]
    cont = rng.standard_normal((10, 1)).astype(np.float32)
    disc = rng.integers(0, 2, (10, 1)).astype(np.int32)
    flat = intrinsic_batch(spec, obs, [obs[0] + 1.0], cont, disc)
    kept = np.array([1, 1, 0, 1, 0, 1, 1, 1, 1, 0], np.float32)
    flat[BufferKey.MASKS].set(list(kept))
    column = intrinsic_batch(spec, obs, [obs[0] + 1.0], cont, disc)
    column[BufferKey.MASKS].set([np.array([m], np.float32) for m in kept])
    network = provider._network
    with torch.no_grad():
        rewards = network.compute_reward(flat)
        expected_forward = rewards[torch.from_numpy(kept) == 1].mean()
        assert torch.allclose(network.compute_forward_loss(column), expected_forward)
        assert torch.allclose(network.compute_forward_loss(flat), expected_forward)
        assert torch.allclose(
            network.compute_inverse_loss(column), network.compute_inverse_loss(flat)
        )
    stats = provider.update(column)
    assert np.isfinite(stats["Losses/Curiosity Forward Loss"])
    assert np.isfinite(stats["Losses/Curiosity Inverse Loss"])
