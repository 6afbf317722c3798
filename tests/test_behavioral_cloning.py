"""Behavioral cloning (torch_entities.components.bc): the BC module alone, its settings
(strength, steps annealing, batch_size, num_epoch, samples_per_update), recurrent policies,
and BC inside PPO and SAC training."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from mlagents_fast.envs.builtin.experts import expert_for
from mlagents_fast.envs.demo_writer import record_demonstration
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.trainers.buffer import BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.demo_loader import demo_to_buffer, load_demonstration
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import BehavioralCloningSettings, RunOptions
from mlagents_fast.trainers.torch_entities.components.bc import BCModule
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import network_settings, single_thread_torch, tensorboard_event_bytes
from repo_paths import FIXTURES

single_thread_torch()

BALL_DEMO = os.path.join(FIXTURES, "demos", "Expert3DBall.demo")
PYRAMID_DEMO = os.path.join(FIXTURES, "demos", "ExpertPyramid.demo")
PPO_KWARGS = {"conditional_sigma": False, "tanh_squash": False}


def make_policy(demo: str, **settings) -> TorchPolicy:
    spec, _, _ = load_demonstration(demo)
    return TorchPolicy(
        0, spec, network_settings(hidden_units=32, **settings), SimpleActor, PPO_KWARGS
    )


def bc_module(policy: TorchPolicy, demo: str, lr: float = 3e-3, **settings) -> BCModule:
    return BCModule(
        policy,
        BehavioralCloningSettings(demo_path=demo, **settings),
        policy_learning_rate=lr,
        default_batch_size=64,
        default_num_epoch=3,
    )


def deterministic_discrete(policy: TorchPolicy, obs: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        encoding, _ = policy.actor.network_body([torch.from_numpy(o) for o in obs])
        dists = policy.actor.action_model._get_dists(encoding, None)
        return torch.cat([d.deterministic_sample() for d in dists.discrete], dim=1).numpy()


def test_bc_clones_discrete_expert_actions():
    torch.manual_seed(0)
    policy = make_policy(PYRAMID_DEMO)
    module = bc_module(policy, PYRAMID_DEMO, num_epoch=1, batch_size=128)
    _, demo = demo_to_buffer(PYRAMID_DEMO, 1)
    obs = [np.asarray(demo[ObservationKeyPrefix.OBSERVATION, i]) for i in range(4)]
    expert = np.asarray(demo[BufferKey.DISCRETE_ACTION])
    before = (deterministic_discrete(policy, obs) == expert).mean()
    losses = [module.update()["Losses/Pretraining Loss"] for _ in range(4)]
    after = (deterministic_discrete(policy, obs) == expert).mean()
    assert losses[-1] < 0.7 * losses[0]
    assert after > max(0.6, before + 0.2)
    assert module.has_updated


def test_bc_clones_continuous_expert_actions():
    torch.manual_seed(1)
    policy = make_policy(BALL_DEMO)
    module = bc_module(policy, BALL_DEMO, batch_size=128)
    first = module.update()["Losses/Pretraining Loss"]
    for _ in range(10):
        last = module.update()["Losses/Pretraining Loss"]
    assert last < 0.6 * first


def _adam_steps(module: BCModule) -> int:
    states = list(module.optimizer.state.values())
    return int(states[0]["step"]) if states else 0


def test_batch_size_num_epoch_and_samples_per_update():
    policy = make_policy(BALL_DEMO)  # 548 demonstration rows
    module = bc_module(policy, BALL_DEMO)  # defaults: batch 64, 3 epochs
    assert (module.batch_size, module.num_epoch, module.n_sequences) == (64, 3, 64)
    module.update()
    assert _adam_steps(module) == 3 * (548 // 64)
    limited = bc_module(
        make_policy(BALL_DEMO), BALL_DEMO, batch_size=100, num_epoch=2, samples_per_update=250
    )
    limited.update()
    assert _adam_steps(limited) == 2 * (250 // 100)


def test_strength_and_steps_anneal_the_learning_rate():
    policy = make_policy(BALL_DEMO)
    module = bc_module(policy, BALL_DEMO, lr=1e-3, strength=0.5, steps=100)
    assert module.current_lr == pytest.approx(5e-4)
    policy.set_step(50)
    module.update()
    assert module.current_lr == pytest.approx(2.5e-4, rel=1e-3)
    assert module.optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-4, rel=1e-3)
    policy.set_step(100)
    module.update()
    weights = {k: v.clone() for k, v in policy.actor.state_dict().items()}
    assert module.update() == {"Losses/Pretraining Loss": 0.0}  # decayed to nothing: no step
    assert all(torch.equal(v, policy.actor.state_dict()[k]) for k, v in weights.items())
    constant = bc_module(make_policy(BALL_DEMO), BALL_DEMO, lr=1e-3, strength=2.0)
    constant.policy.set_step(10**6)
    constant.update()
    assert constant.current_lr == pytest.approx(2e-3)


def test_recurrent_policy_trains_on_sequences():
    torch.manual_seed(2)
    policy = make_policy(PYRAMID_DEMO, memory=(8, 16))
    assert policy.use_recurrent and policy.sequence_length == 8
    module = bc_module(policy, PYRAMID_DEMO, batch_size=64, num_epoch=1)
    assert module.n_sequences == 8
    # The demonstration is cut into episodes padded to whole sequences of 8.
    assert module.demonstration_buffer.num_experiences % 8 == 0
    first = module.update()["Losses/Pretraining Loss"]
    for _ in range(4):
        last = module.update()["Losses/Pretraining Loss"]
    assert np.isfinite(first) and last < first


def test_demonstration_problems_are_config_errors(tmp_path):
    policy = make_policy(PYRAMID_DEMO)
    with pytest.raises(TrainerConfigError, match=r"behavioral_cloning\.demo_path: .*nope\.demo"):
        bc_module(policy, str(tmp_path / "nope.demo"))
    with pytest.raises(TrainerConfigError, match=r"behavioral_cloning\.demo_path: .*The actions"):
        bc_module(policy, BALL_DEMO)


def test_optimizer_builds_the_bc_module_from_trainer_settings():
    spec, _, _ = load_demonstration(PYRAMID_DEMO)
    settings = RunOptions.from_dict(
        {
            "behaviors": {
                "B": {
                    "trainer_type": "ppo",
                    "hyperparameters": {"learning_rate": 1e-3, "batch_size": 32},
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "behavioral_cloning": {"demo_path": PYRAMID_DEMO, "strength": 0.5},
                }
            }
        }
    ).behaviors["B"]
    policy = TorchPolicy(0, spec, settings.network_settings, SimpleActor, PPO_KWARGS)
    optimizer = TorchPPOOptimizer(policy, settings)
    module = optimizer.bc_module
    assert isinstance(module, BCModule)
    assert module.current_lr == pytest.approx(5e-4)
    assert (module.batch_size, module.num_epoch) == (32, 3)


@pytest.fixture(scope="module")
def hybrid_demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "hybrid.demo"
    env = make_env("builtin:GoalSeeker1DHybrid", seed=5)
    try:
        record_demonstration(env, expert_for("GoalSeeker1DHybrid"), str(path), 300)
    finally:
        env.close()
    return str(path)


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_bc_runs_inside_ppo_and_sac(tmp_path, hybrid_demo, trainer_type):
    hyperparameters = {"batch_size": 32, "buffer_size": 256, "learning_rate": 3e-3}
    if trainer_type == "sac":
        hyperparameters.update(buffer_init_steps=64, steps_per_update=16)
    options = RunOptions.from_dict(
        {
            "behaviors": {
                "GoalSeeker1DHybrid": {
                    "trainer_type": trainer_type,
                    "hyperparameters": hyperparameters,
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "behavioral_cloning": {
                        "demo_path": hybrid_demo,
                        "strength": 0.5,
                        "num_epoch": 1,
                        "samples_per_update": 64,
                    },
                    "max_steps": 400,
                    "time_horizon": 16,
                    "summary_freq": 200,
                }
            }
        }
    )
    env = make_env("builtin:GoalSeeker1DHybrid", seed=1, num_areas=1)
    result = train(env, options, run_id="bc", results_dir=str(tmp_path), seed=1)
    assert result.steps["GoalSeeker1DHybrid"] >= 400
    behavior_dir = tmp_path / "bc" / "GoalSeeker1DHybrid"
    data = tensorboard_event_bytes(behavior_dir)
    assert b"Losses/Pretraining Loss" in data


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_recurrent_training_with_bc_and_gail(tmp_path, hybrid_demo, trainer_type):
    """An LSTM policy trained by BC and rewarded by GAIL; the discriminator has no memory
    (ML-Agents drops it from GAIL's network settings) and is saved with the checkpoint."""
    hyperparameters = {"batch_size": 32, "buffer_size": 128, "learning_rate": 3e-3}
    if trainer_type == "sac":
        hyperparameters.update(buffer_init_steps=64, steps_per_update=16)
    memory = {"sequence_length": 8, "memory_size": 16}
    options = RunOptions.from_dict(
        {
            "behaviors": {
                "GoalSeeker1DHybrid": {
                    "trainer_type": trainer_type,
                    "hyperparameters": hyperparameters,
                    "network_settings": {"hidden_units": 16, "num_layers": 1, "memory": memory},
                    "reward_signals": {
                        "extrinsic": {"strength": 1.0},
                        "gail": {
                            "demo_path": hybrid_demo,
                            "strength": 0.1,
                            "network_settings": {"hidden_units": 16, "memory": memory},
                        },
                    },
                    "behavioral_cloning": {
                        "demo_path": hybrid_demo,
                        "strength": 0.5,
                        "num_epoch": 1,
                        "samples_per_update": 64,
                    },
                    "max_steps": 300,
                    "time_horizon": 16,
                    "summary_freq": 300,
                }
            }
        }
    )
    env = make_env("builtin:GoalSeeker1DHybrid", seed=1, num_areas=1)
    result = train(env, options, run_id="lstm", results_dir=str(tmp_path), seed=1)
    assert result.steps["GoalSeeker1DHybrid"] >= 300
    behavior_dir = tmp_path / "lstm" / "GoalSeeker1DHybrid"
    data = tensorboard_event_bytes(behavior_dir)
    assert b"Losses/Pretraining Loss" in data and b"Losses/GAIL Loss" in data
    state = torch.load(behavior_dir / "checkpoint.pt", weights_only=True)
    assert any("lstm" in name for name in state["Policy"])
    assert state["Module:GAIL"] and not any("lstm" in name for name in state["Module:GAIL"])
