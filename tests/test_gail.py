"""GAIL reward provider: the discriminator, its reward, its settings, in PPO and SAC, in
checkpoints. (Same numbers as ML-Agents 1.1.0's network: tests/test_gail_mlagents.py.)"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from mlagents_fast.envs.builtin.experts import expert_for
from mlagents_fast.envs.demo_writer import record_demonstration
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.demo_loader import demo_to_buffer, load_demonstration
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.model_saver.torch_model_saver import TorchModelSaver
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import (
    GAILSettings,
    RewardSignalType,
    RunOptions,
    TrainerSettings,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers import (
    GAILRewardProvider,
    create_reward_provider,
)
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import network_settings, single_thread_torch, tensorboard_event_bytes
from repo_paths import FIXTURES

single_thread_torch()

BALL_DEMO = os.path.join(FIXTURES, "demos", "Expert3DBall.demo")
PYRAMID_DEMO = os.path.join(FIXTURES, "demos", "ExpertPyramid.demo")


def gail_settings(demo_path: str, **kwargs) -> GAILSettings:
    settings = GAILSettings(demo_path=demo_path, learning_rate=3e-3, **kwargs)
    settings.network_settings = network_settings(hidden_units=32)
    return settings


def policy_batch(spec, n: int, rng: np.random.Generator) -> AgentBuffer:
    """Steps unlike the expert's: wide random observations and actions."""
    buffer = AgentBuffer()
    for i, obs_spec in enumerate(spec.observation_specs):
        buffer[ObservationKeyPrefix.OBSERVATION, i].extend(
            rng.normal(0.0, 2.0, (n, *obs_spec.shape)).astype(np.float32)
        )
    if spec.action_spec.continuous_size:
        buffer[BufferKey.CONTINUOUS_ACTION].extend(
            rng.uniform(-1, 1, (n, spec.action_spec.continuous_size)).astype(np.float32)
        )
    if spec.action_spec.discrete_size:
        columns = [rng.integers(0, b, n) for b in spec.action_spec.discrete_branches]
        buffer[BufferKey.DISCRETE_ACTION].extend(np.stack(columns, 1).astype(np.int32))
    buffer[BufferKey.DONE].extend(np.zeros(n, bool))
    return buffer


@pytest.mark.parametrize(
    "demo, use_actions, use_vail",
    [(BALL_DEMO, False, False), (BALL_DEMO, True, True), (PYRAMID_DEMO, True, False)],
)
def test_discriminator_learns_to_tell_expert_from_policy(demo, use_actions, use_vail):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec, _, _ = load_demonstration(demo)
    provider = create_reward_provider(
        RewardSignalType.GAIL, spec, gail_settings(demo, use_actions=use_actions, use_vail=use_vail)
    )
    assert isinstance(provider, GAILRewardProvider)
    assert not provider.ignore_done and provider.name == "GAIL"
    assert set(provider.get_modules()) == {"Module:GAIL"}
    _, expert = demo_to_buffer(demo, 1)
    agent = policy_batch(spec, 128, rng)
    for _ in range(40):
        stats = provider.update(agent)
    expected = {
        "Policy/GAIL Policy Estimate",
        "Policy/GAIL Expert Estimate",
        "Losses/GAIL Loss",
        "Policy/GAIL Grad Mag Loss",
    }
    if use_vail:
        expected |= {"Policy/GAIL Beta", "Losses/GAIL KL Loss"}
    assert set(stats) == expected
    assert stats["Policy/GAIL Expert Estimate"] > stats["Policy/GAIL Policy Estimate"] + 0.2
    expert_rewards = provider.evaluate(expert.make_mini_batch(0, 128))
    agent_rewards = provider.evaluate(agent)
    assert expert_rewards.shape == agent_rewards.shape == (128,)
    assert expert_rewards.dtype == np.float32 and np.all(agent_rewards >= 0)
    assert expert_rewards.mean() > 2 * agent_rewards.mean()


def test_vail_beta_follows_the_kl_constraint():
    torch.manual_seed(1)
    spec, _, _ = load_demonstration(BALL_DEMO)
    provider = create_reward_provider(
        RewardSignalType.GAIL, spec, gail_settings(BALL_DEMO, use_vail=True)
    )
    batch = policy_batch(spec, 64, np.random.default_rng(1))
    betas = [provider.update(batch)["Policy/GAIL Beta"] for _ in range(5)]
    assert betas[0] >= 0.0 and betas == sorted(betas)  # KL above 0.5: beta rises from 0


def test_encoding_size_and_memory_settings():
    spec, _, _ = load_demonstration(BALL_DEMO)
    settings = (
        RunOptions.from_dict(
            {
                "behaviors": {
                    "B": {
                        "reward_signals": {
                            "gail": {"demo_path": BALL_DEMO, "encoding_size": 24, "strength": 0.5}
                        }
                    }
                }
            }
        )
        .behaviors["B"]
        .reward_signals[RewardSignalType.GAIL]
    )
    provider = create_reward_provider(RewardSignalType.GAIL, spec, settings)
    assert provider.strength == 0.5 and provider.gamma == 0.99
    assert provider._discriminator_network._estimator[0].in_features == 24


def test_demonstration_problems_are_config_errors_naming_the_key(tmp_path):
    spec, _, _ = load_demonstration(PYRAMID_DEMO)
    with pytest.raises(TrainerConfigError, match=r"gail\.demo_path: .*missing\.demo"):
        create_reward_provider(
            RewardSignalType.GAIL, spec, gail_settings(str(tmp_path / "missing.demo"))
        )
    with pytest.raises(TrainerConfigError, match=r"gail\.demo_path: .*Expert3DBall.demo: The"):
        create_reward_provider(RewardSignalType.GAIL, spec, gail_settings(BALL_DEMO))


def _ppo_trainer_settings(demo: str) -> TrainerSettings:
    return RunOptions.from_dict(
        {
            "behaviors": {
                "B": {
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "reward_signals": {
                        "extrinsic": {"strength": 1.0},
                        "gail": {"demo_path": demo, "strength": 0.1, "use_vail": True},
                    },
                }
            }
        }
    ).behaviors["B"]


def test_discriminator_is_saved_and_restored_with_the_checkpoint(tmp_path):
    torch.manual_seed(2)
    spec, _, _ = load_demonstration(BALL_DEMO)
    settings = _ppo_trainer_settings(BALL_DEMO)
    kwargs = {"conditional_sigma": False, "tanh_squash": False}

    def optimizer_and_saver(load: bool):
        policy = TorchPolicy(0, spec, settings.network_settings, SimpleActor, kwargs)
        optimizer = TorchPPOOptimizer(policy, settings)
        saver = TorchModelSaver(settings, str(tmp_path / "B"), load=load)
        saver.register(policy)
        saver.register(optimizer)
        return optimizer, saver

    optimizer, saver = optimizer_and_saver(load=False)
    gail = optimizer.reward_signals["gail"]
    assert "Module:GAIL" in optimizer.get_modules()
    gail.update(policy_batch(spec, 32, np.random.default_rng(2)))
    saver.save_checkpoint("B", 100)
    restored, restored_saver = optimizer_and_saver(load=True)
    before = {
        name: value.clone()
        for name, value in restored.reward_signals["gail"]
        ._discriminator_network.state_dict()
        .items()
    }
    restored_saver.initialize_or_load()
    after = restored.reward_signals["gail"]._discriminator_network.state_dict()
    saved = gail._discriminator_network.state_dict()
    assert set(after) == set(saved) and "_beta" in saved and "_z_sigma" in saved
    for name in saved:
        torch.testing.assert_close(after[name], saved[name])
    assert any(not torch.equal(before[name], saved[name]) for name in saved)


@pytest.fixture(scope="module")
def goal_seeker_demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "seeker.demo"
    env = make_env("builtin:GoalSeeker1D", seed=5)
    try:
        record_demonstration(env, expert_for("GoalSeeker1D"), str(path), 400)
    finally:
        env.close()
    return str(path)


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_gail_trains_in_ppo_and_sac(tmp_path, goal_seeker_demo, trainer_type):
    hyperparameters = {"batch_size": 32, "buffer_size": 256, "learning_rate": 3e-3}
    if trainer_type == "sac":
        hyperparameters.update(buffer_init_steps=64, steps_per_update=4)
    options = RunOptions.from_dict(
        {
            "behaviors": {
                "GoalSeeker1D": {
                    "trainer_type": trainer_type,
                    "hyperparameters": hyperparameters,
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "reward_signals": {
                        "extrinsic": {"strength": 1.0},
                        "gail": {
                            "demo_path": goal_seeker_demo,
                            "strength": 0.1,
                            "use_actions": True,
                            "network_settings": {"hidden_units": 16},
                        },
                    },
                    "max_steps": 600,
                    "time_horizon": 16,
                    "summary_freq": 300,
                }
            }
        }
    )
    env = make_env("builtin:GoalSeeker1D", seed=1, num_areas=1)
    result = train(env, options, run_id="gail", results_dir=str(tmp_path), seed=1)
    assert result.steps["GoalSeeker1D"] >= 600
    behavior_dir = tmp_path / "gail" / "GoalSeeker1D"
    data = tensorboard_event_bytes(behavior_dir)
    # The discriminator was trained (its loss reported) and its reward used (its value).
    assert b"Losses/GAIL Loss" in data
    assert b"Policy/GAIL Reward" in data or b"Policy/Gail Reward" in data
    state = torch.load(behavior_dir / "checkpoint.pt", weights_only=True)
    assert "Module:GAIL" in state
