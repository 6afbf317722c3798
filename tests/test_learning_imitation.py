"""Learning tests for imitation: behavioral cloning from a Unity-recorded demonstration, and
GAIL speeding up a sparse-reward task. Seeded; budgets and outcomes in benches/README.md.

A trained policy is scored by running its exported ONNX model (deterministic actions) on a
fresh seeded environment for a fixed window of decisions per agent: the mean return of the
episodes in the window, the ones still running at its end counted up to there (what
``record_demonstration`` reports as ``mean_reward``).
"""

from __future__ import annotations

import os

import pytest
from mlagents_fast.envs.demo_policies import OnnxPolicy, RandomPolicy
from mlagents_fast.envs.demo_writer import record_demonstration
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from policy_fixtures import single_thread_torch
from repo_paths import FIXTURES

pytestmark = pytest.mark.learning

single_thread_torch()

BALL_DEMO = os.path.join(FIXTURES, "demos", "Expert3DBall.demo")


def windowed_mean_return(env_name: str, policy_for, decisions: int, path, seed: int) -> float:
    """Mean return of ``policy_for(spec)`` over ``decisions`` decisions of every agent."""
    env = make_env(f"builtin:{env_name}", seed=seed)
    try:
        env.reset()
        (behavior_name,) = env.behavior_specs
        spec = env.behavior_specs[behavior_name]
        agents = len(env.get_steps(behavior_name)[0])
        summary = record_demonstration(env, policy_for(spec), str(path), decisions * agents)
    finally:
        env.close()
    return summary.mean_reward


def test_behavioral_cloning_alone_balances_3dball_from_the_unity_demonstration(tmp_path):
    """PPO with the extrinsic reward at strength 0 and no entropy bonus: only BC moves the
    policy, towards the 549 steps of Unity's Expert3DBall.demo. Over 300 decisions the
    random policy averages ~0.9 per episode (the ball drops in ~20 decisions), the
    scripted expert 29.9 (never drops it); the clone must keep it up most of the window."""
    behavior = {
        "trainer_type": "ppo",
        "hyperparameters": {
            "batch_size": 64,
            "buffer_size": 1200,
            "learning_rate": 1.0e-3,
            "beta": 0.0,
            "num_epoch": 1,
            "learning_rate_schedule": "constant",
        },
        "network_settings": {"hidden_units": 64, "num_layers": 2, "normalize": False},
        "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 0.0}},
        "behavioral_cloning": {"demo_path": BALL_DEMO, "strength": 1.0, "num_epoch": 10},
        "max_steps": 12_000,
        "time_horizon": 64,
        "summary_freq": 12_000,
    }
    options = RunOptions.from_dict({"behaviors": {"3DBall": behavior}})
    train("builtin:3DBall", options, run_id="bc", results_dir=str(tmp_path), seed=1)
    onnx = str(tmp_path / "bc" / "3DBall.onnx")

    cloned = windowed_mean_return(
        "3DBall", lambda spec: OnnxPolicy(onnx, spec), 300, tmp_path / "cloned.demo", seed=11
    )
    random = windowed_mean_return(
        "3DBall", lambda spec: RandomPolicy(spec, 11), 300, tmp_path / "random.demo", seed=11
    )
    assert random < 2.0, random
    assert cloned >= 10.0, (cloned, random)
