"""make_env resolves builtin:, gym: and Unity paths."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from mlagents_fast.envs.builtin import BuiltinEnv
from mlagents_fast.envs.env_opener import environment_seed, make_env
from mlagents_fast.envs.exception import UnityEnvironmentException
from mlagents_fast.envs.side_channel import EnvironmentParametersChannel


def test_builtin_names_resolve_with_areas_and_side_channels():
    channel = EnvironmentParametersChannel()
    env = make_env("builtin:3DBall", seed=1, num_areas=2, side_channels=[channel])
    assert isinstance(env, BuiltinEnv) and env.num_agents == 24
    channel.set_float_parameter("gravity", 0.0)
    env.reset()
    for _ in range(10):
        env.step()
    np.testing.assert_array_equal(env.get_steps("3DBall?team=0")[0].obs[0][:, 3], 4.0)


def test_unknown_builtin_lists_known_names_case_sensitively():
    with pytest.raises(UnityEnvironmentException) as caught:
        make_env("builtin:3dball", seed=0)
    message = str(caught.value)
    assert "'3dball'" in message and "builtin:3DBall" in message and "builtin:GridWorld" in message


def test_builtin_rejects_unity_only_options():
    with pytest.raises(TypeError, match="no_graphics_monitor"):
        make_env("builtin:3DBall", seed=0, no_graphics_monitor=True)
    env = make_env("builtin:GoalSeeker1D", seed=0, agents_per_area=1, num_areas=3)
    assert env.num_agents == 3


def test_workers_get_different_episodes():
    def first_obs(worker_id):
        env = make_env("builtin:3DBall", seed=5, worker_id=worker_id)
        env.reset()
        return env.get_steps("3DBall?team=0")[0].obs[0]

    np.testing.assert_array_equal(first_obs(0), first_obs(0))
    assert not np.array_equal(first_obs(0), first_obs(1))
    assert environment_seed(5, 0) == 5
    assert environment_seed(-1, 0) == 2**64 - 1


def test_other_paths_go_to_unity_environment(monkeypatch):
    """A path that is neither builtin: nor gym: is handed to UnityEnvironment unchanged."""
    import types

    calls = []

    class FakeUnityEnvironment:
        def __init__(self, **kwargs):
            calls.append(kwargs)

    fake_module = types.ModuleType("mlagents_fast.envs.environment")
    fake_module.UnityEnvironment = FakeUnityEnvironment
    monkeypatch.setitem(sys.modules, "mlagents_fast.envs.environment", fake_module)
    make_env(
        "builds/3DBall",
        seed=3,
        worker_id=2,
        base_port=6000,
        timeout_wait=5,
        additional_args=("-x",),
        no_graphics=False,
        log_folder="logs",
        num_areas=4,
    )
    make_env(None, seed=0)
    assert calls[0] == {
        "file_name": "builds/3DBall",
        "worker_id": 2,
        "base_port": 6000,
        "seed": 3,
        "no_graphics": False,
        "timeout_wait": 5,
        "additional_args": ["-x"],
        "side_channels": [],
        "log_folder": "logs",
        "num_areas": 4,
    }
    assert calls[1]["file_name"] is None and calls[1]["no_graphics"] is True
