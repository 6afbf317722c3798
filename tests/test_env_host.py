"""mlagents-fast-env: the Unity side of the link, in a thread, as a CLI and under ML-Agents 1.1.0."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from host_envs import BEHAVIOR, make_counter_env
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.envs.cli import UnityHost, env_factory_for, write_launcher
from mlagents_fast.envs.environment import UnityEnvironment
from mlagents_fast.envs.exception import UnityEnvironmentException

TESTS_DIR = Path(__file__).resolve().parent
ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_host_thread_serves_until_the_trainer_closes():
    port = free_port()
    exit_codes = []
    host = UnityHost(make_counter_env, f"localhost:{port}")
    thread = threading.Thread(target=lambda: exit_codes.append(host.run()), daemon=True)
    thread.start()
    env = UnityEnvironment(None, base_port=port, seed=1, timeout_wait=20)
    try:
        env.step()  # the first step is a reset, as in ML-Agents
        decision, _ = env.get_steps(BEHAVIOR)
        np.testing.assert_array_equal(decision.agent_id, [1000, 1001])
        for _ in range(10):
            env.set_action_for_agent(
                BEHAVIOR,
                int(decision.agent_id[1]),
                ActionTuple(np.full((1, 1), 0.5, np.float32), np.ones((1, 1), np.int32)),
            )
            env.step()
            decision, terminal = env.get_steps(BEHAVIOR)
            if len(terminal) == 0:
                # Agent 0 got the empty action, agent 1 the one set for it alone.
                np.testing.assert_array_equal(decision.obs[0][:, 2], [0.0, 0.5])
                np.testing.assert_array_equal(decision.obs[0][:, 3], [0.0, 1.0])
    finally:
        env.close()
    thread.join(timeout=10)
    assert exit_codes == [0]


def test_env_factory_rejects_unknown_kinds(tmp_path):
    with pytest.raises(UnityEnvironmentException, match="expected builtin"):
        env_factory_for("Unity/Game")
    with pytest.raises(UnityEnvironmentException, match="python:<module>:<callable>"):
        env_factory_for("python:only_module")
    with pytest.raises(UnityEnvironmentException, match="expected builtin"):
        write_launcher("nonsense", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.smoke
def test_cli_without_port_or_env_fails_clearly():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlagents_fast.envs.cli",
            "--env",
            "builtin:3DBall",
            "-batchmode",
            "-nographics",
            "-screen-width",
            "84",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2 and "no --mlagents-port" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "mlagents_fast.envs.cli", "--mlagents-port", "5005"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2 and "--env is required" in run.stderr


@pytest.mark.smoke
def test_cli_writes_an_executable_launcher(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlagents_fast.envs.cli",
            "--write-launcher",
            "builtin:3DBall",
            "--launcher-dir",
            str(tmp_path),
            "--num-areas",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    path = Path(run.stdout.strip())
    assert path == tmp_path / "3DBall.x86_64"
    assert os.access(path, os.X_OK)
    script = path.read_text()
    assert script.startswith("#!/bin/sh\n")
    assert "--env builtin:3DBall --num-areas 2" in script and script.rstrip().endswith('"$@"')
    assert [p.name for p in tmp_path.iterdir()] == ["3DBall.x86_64"]  # no temporary left


@pytest.mark.smoke
def test_launched_host_writes_the_player_log(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])
    )
    write_launcher("python:host_envs:make_counter_env", str(tmp_path), "Counter")
    logs = tmp_path / "logs"
    logs.mkdir()
    env = UnityEnvironment(
        str(tmp_path / "Counter"),
        worker_id=1,
        base_port=free_port() - 1,
        log_folder=str(logs),
        timeout_wait=30,
    )
    env.reset()
    env.close()
    log = (logs / "Player-1.log").read_text()
    assert "closed the link (status 400)" in log


REFERENCE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from mlagents_envs.environment import UnityEnvironment
    from mlagents_envs.side_channel.environment_parameters_channel import EnvironmentParametersChannel
    parameters = EnvironmentParametersChannel()
    parameters.set_float_parameter("reward_scale", 3.0)
    env = UnityEnvironment(sys.argv[1], base_port=int(sys.argv[2]), seed=5, no_graphics=True,
                           timeout_wait=60, side_channels=[parameters])
    env.reset()
    name = list(env.behavior_specs)[0]
    spec = env.behavior_specs[name]
    rewards, terminals = [], 0
    for step in range(12):
        decision, terminal = env.get_steps(name)
        terminals += len(terminal)
        action = spec.action_spec.empty_action(len(decision))
        action.continuous[:] = 0.5
        env.set_actions(name, action)
        env.step()
        rewards.append(float(env.get_steps(name)[0].reward.sum()))
    decision, _ = env.get_steps(name)
    print(json.dumps({
        "behavior": name,
        "continuous": spec.action_spec.continuous_size,
        "branches": list(spec.action_spec.discrete_branches),
        "shapes": [list(o.shape) for o in spec.observation_specs],
        "mask": decision.action_mask[0].tolist(),
        "obs": decision.obs[0].tolist(),
        "terminals": terminals,
        "rewards": rewards,
    }))
    env.close()
    """
)


@pytest.mark.smoke
@pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)
def test_official_mlagents_envs_trains_through_our_host(tmp_path, monkeypatch):
    """ML-Agents 1.1.0's own UnityEnvironment launches our launcher like a Unity build."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    write_launcher("python:host_envs:make_counter_env", str(tmp_path), "Counter")
    script = tmp_path / "reference.py"
    script.write_text(REFERENCE_SCRIPT)
    run = subprocess.run(
        [str(ANCHOR_PYTHON), str(script), str(tmp_path / "Counter"), str(free_port())],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["behavior"] == BEHAVIOR
    assert (result["continuous"], result["branches"], result["shapes"]) == (1, [2], [[6]])
    assert result["mask"] == [[False, False], [False, True]]
    observations = np.array(result["obs"])
    np.testing.assert_array_equal(observations[:, 4], 3.0)  # env parameter reached the host
    assert result["terminals"] == 4  # 2 agents, episodes of 5 decisions, 12 steps
    # Rewards: 3.0 * 0.5 per agent on non-terminal steps, 0 right after an episode restart.
    assert sorted(set(result["rewards"])) == [0.0, 3.0]


SHORT_3DBALL_CONFIG = """\
behaviors:
  3DBall:
    trainer_type: ppo
    hyperparameters: {batch_size: 64, buffer_size: 500, learning_rate: 0.0003, num_epoch: 3}
    network_settings: {normalize: true, hidden_units: 64, num_layers: 2}
    reward_signals: {extrinsic: {gamma: 0.99, strength: 1.0}}
    max_steps: 1000
    time_horizon: 1000
    summary_freq: 500
"""


def _learn_through_launcher(command: list[str], tmp_path: Path) -> str:
    config = tmp_path / "3DBall.yaml"
    config.write_text(SHORT_3DBALL_CONFIG)
    write_launcher("builtin:3DBall", str(tmp_path / "envs"))
    run = subprocess.run(
        [
            *command,
            str(config),
            f"--env={tmp_path / 'envs' / '3DBall'}",
            "--run-id=link",
            "--no-graphics",
            f"--base-port={free_port()}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "results" / "link" / "3DBall.onnx").exists()
    return run.stdout + run.stderr


@pytest.mark.smoke
@pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)
def test_official_mlagents_learn_trains_on_a_launcher(tmp_path):
    """ML-Agents 1.1.0's mlagents-learn trains 3DBall through our launcher, like a Unity build."""
    log = _learn_through_launcher([str(ANCHOR_PYTHON.parent / "mlagents-learn")], tmp_path)
    assert "3DBall. Step: 1000." in log


@pytest.mark.smoke
def test_our_trainer_trains_on_a_launcher(tmp_path):
    log = _learn_through_launcher([sys.executable, "-m", "mlagents_fast.trainers.learn"], tmp_path)
    assert "3DBall. Step: 1000." in log
