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
from mlagents_fast.envs.builtin.experts import expert_for
from mlagents_fast.envs.demo_policies import OnnxPolicy, RandomPolicy
from mlagents_fast.envs.demo_writer import record_demonstration
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from policy_fixtures import single_thread_torch
from repo_paths import FIXTURES
from test_learning_trainers import final_reward, ppo_goal_seeker

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


def test_gail_with_extrinsic_learns_a_sparse_goal_faster_than_extrinsic_alone(tmp_path):
    """GoalSeeker1DDiscrete with the goal 6 away: +1 only at the goal, which needs 29 of
    the 40 decisions spent moving towards it, so random moves never get there (-0.39 per
    episode, the step costs). The demonstration is the scripted expert's, recorded here.

    GAIL (use_actions: the discriminator pays for the expert's move in each state) at
    gamma 0.5: each step is paid for the expert-like move itself, not for a long episode,
    which would teach the agent to dawdle before the goal (GAIL's rewards are positive).
    Same seed and 12,000 steps each; the best return is 0.71. Seeds 1, 2, 3 gave GAIL
    0.65, 0.25, 0.01 and extrinsic alone 0.24, -0.39, -0.39 (mean of the last two
    summaries)."""
    behavior = "GoalSeeker1DDiscrete"
    distance = 6.0
    channel = EnvironmentParametersChannel()
    channel.set_float_parameter("goal_distance", distance)
    env = make_env(f"builtin:{behavior}", seed=5, side_channels=[channel])
    try:
        demo = record_demonstration(env, expert_for(behavior), str(tmp_path / "goal.demo"), 1000)
    finally:
        env.close()
    assert demo.mean_reward > 0.5  # the expert reaches the goal (episodes cut at the end aside)

    def train_with(reward_signals: dict, run_id: str):
        settings = ppo_goal_seeker(12_000)
        settings["reward_signals"] = reward_signals
        options = RunOptions.from_dict(
            {
                "behaviors": {behavior: settings},
                "environment_parameters": {"goal_distance": distance},
            }
        )
        result = train(
            f"builtin:{behavior}", options, run_id=run_id, results_dir=str(tmp_path), seed=1
        )
        return final_reward(result, behavior), result.reward_history[behavior]

    extrinsic = {"extrinsic": {"gamma": 0.95, "strength": 1.0}}
    gail = {
        "demo_path": demo.path,
        "strength": 1.0,
        "gamma": 0.5,
        "use_actions": True,
        "learning_rate": 3.0e-3,
        "network_settings": {"hidden_units": 32, "num_layers": 2},
    }
    alone, alone_history = train_with(extrinsic, "extrinsic")
    with_gail, gail_history = train_with({**extrinsic, "gail": gail}, "gail")
    assert with_gail >= alone + 0.2, (gail_history, alone_history)
    assert with_gail >= 0.0, gail_history
