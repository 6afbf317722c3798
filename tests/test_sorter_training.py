"""Training on builtin:Sorter, whose buffer sensor needs the attention body: ML-Agents' own
Sorter_curriculum.yaml runs on it (lessons change num_tiles), and a seeded PPO run learns to
visit the tiles in order (``-m learning``)."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.envs.builtin import BuiltinEnv
from mlagents_fast.envs.side_channel import EnvironmentParametersChannel
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from mlagents_fast.trainers.settings.config_file import load_config
from repo_paths import CONFIG_DIR

SORTER = "Sorter?team=0"


def test_mlagents_sorter_curriculum_config_trains_on_the_builtin(tmp_path):
    config = load_config(os.path.join(CONFIG_DIR, "ppo", "Sorter_curriculum.yaml"))
    # The shipped settings, with a run short enough for the default test suite.
    behavior = config["behaviors"]["Sorter"]
    behavior["max_steps"] = 1200
    behavior["summary_freq"] = 200
    behavior["hyperparameters"].update({"buffer_size": 128, "batch_size": 128})
    for lesson in config["environment_parameters"]["num_tiles"]["curriculum"][:-1]:
        lesson["completion_criteria"]["min_lesson_length"] = 10
    result = train(
        "builtin:Sorter",
        RunOptions.from_dict(config),
        run_id="sorter",
        results_dir=str(tmp_path),
        seed=3,
    )
    assert result.steps["Sorter"] >= 1200
    # Progress lessons at 30 %, 40 %, ... of max_steps (each after 10 more episodes).
    lessons = [lesson for _, lesson in result.lesson_history["num_tiles"]]
    assert lessons[0] == 0 and lessons[-1] >= 1, lessons
    model = onnx.load(os.path.join(result.run_dir, "Sorter.onnx"))
    inputs = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }
    assert inputs == {
        "obs_0": ["batch", 2],
        "obs_1": ["batch", 20, 23],
        "action_masks": ["batch", 4],
    }


def random_play_return(num_tiles: float, seed: int) -> float:
    """Mean episode return of uniformly random allowed moves."""
    channel = EnvironmentParametersChannel()
    channel.set_float_parameter("num_tiles", num_tiles)
    env = BuiltinEnv("Sorter", seed=seed, num_areas=4, side_channels=[channel])
    rng = np.random.default_rng(seed)
    env.reset()
    decisions, _ = env.get_steps(SORTER)
    running: dict[int, float] = {}
    returns = []
    for _ in range(1000):
        allowed = ~decisions.action_mask[0]
        actions = np.argmax(rng.random(allowed.shape) * allowed, axis=1)[:, None]
        env.set_actions(SORTER, ActionTuple(discrete=actions.astype(np.int32)))
        env.step()
        decisions, terminals = env.get_steps(SORTER)
        for agent, reward in zip(terminals.agent_id, terminals.reward):
            returns.append(running.pop(int(agent), 0.0) + float(reward))
        for agent, reward in zip(decisions.agent_id, decisions.reward):
            running[int(agent)] = running.get(int(agent), 0.0) + float(reward)
    return float(np.mean(returns))


@pytest.mark.learning
def test_ppo_with_attention_learns_to_sort(tmp_path):
    behavior = {
        "trainer_type": "ppo",
        "hyperparameters": {
            "batch_size": 128,
            "buffer_size": 1024,
            "learning_rate": 1.0e-3,
            "beta": 5.0e-3,
            "num_epoch": 3,
            "learning_rate_schedule": "constant",
        },
        "network_settings": {"hidden_units": 64, "num_layers": 2, "normalize": False},
        "reward_signals": {"extrinsic": {"gamma": 0.95, "strength": 1.0}},
        "max_steps": 20_000,
        "time_horizon": 64,
        "summary_freq": 2000,
    }
    options = RunOptions.from_dict(
        {
            "behaviors": {"Sorter": behavior},
            "environment_parameters": {"num_tiles": 3.0},
            "env_settings": {"num_areas": 4},
        }
    )
    result = train("builtin:Sorter", options, run_id="sort", results_dir=str(tmp_path), seed=1)
    history = result.reward_history["Sorter"]
    final = np.mean([reward for _, reward in history[-2:]])
    # 1 to 3 tiles: a perfect player scores about 1.95, random moves about -0.2.
    random_return = random_play_return(3.0, seed=1)
    assert random_return < 0.0
    assert final >= random_return + 1.0, history
