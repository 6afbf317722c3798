"""Command-line failures that are not bugs print one line on stderr and no traceback: an
--env that names nothing (exit 2, before anything is written), a port out of range for any
kind of environment (exit 2), an environment past its restart limits (exit 2), a damaged or
missing demonstration file (exit 2), Ctrl-C while waiting for the Unity Editor (exit 130, the
shell's status for SIGINT)."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlagents_fast.exceptions import RunStoppedError
from mlagents_fast.trainers.cli_utils import run_cli_or_exit
from mlagents_fast.trainers.exception import EnvironmentRestartLimitError
from mlagents_fast.trainers.learn import main as learn_main

CONFIG = Path(__file__).parent.parent / "config" / "ppo" / "3DBall.yaml"
BALL_DEMO = Path(__file__).parent / "fixtures" / "demos" / "Expert3DBall.demo"


def run_cli(capsys, tmp_path, *flags, config=CONFIG):
    """learn.main in this process: (exit status, stderr lines)."""
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as info:
            learn_main([str(config), "--run-id", "r", "--results-dir", str(tmp_path), *flags])
    finally:
        # The CLI logs to the sys.stdout of its call, which capsys closes after the test.
        cli_logger = logging.getLogger("mlagents_fast")
        for handler in list(cli_logger.handlers):
            if getattr(handler, "_mlagents_fast_cli", False):
                cli_logger.removeHandler(handler)
        cli_logger.propagate = True
    return info.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "env, expected",
    [
        ("foo:bar", "Couldn't launch the foo:bar environment"),
        ("builtin:NoSuchEnv", "unknown built-in environment 'NoSuchEnv'"),
        ("/nonexistent", "Couldn't launch the /nonexistent environment"),
        ("gym:NoSuchGymEnv-v0", "NoSuchGymEnv"),
    ],
)
def test_an_env_that_names_nothing_is_one_line_and_writes_nothing(env, expected, tmp_path, capsys):
    status, lines = run_cli(capsys, tmp_path, "--env", env)
    assert status == 2 and len(lines) == 1, lines
    assert expected in lines[0] and "env_settings.env_path" in lines[0]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("port", ["70000", "-5", "0"])
@pytest.mark.parametrize("env", ["builtin:3DBall", "unity-build"])
def test_a_port_out_of_range_is_one_line_for_every_kind_of_environment(port, env, tmp_path, capsys):
    if env == "unity-build":
        build = tmp_path / "Build.x86_64"
        build.write_text("#!/bin/sh\nexit 0\n")
        build.chmod(0o755)
        env = str(tmp_path / "Build")
    results = tmp_path / "results"
    status, lines = run_cli(capsys, results, "--env", env, f"--base-port={port}")
    assert status == 2 and len(lines) == 1, lines
    assert f"base_port must be a TCP port from 1 to 65535 (got {port})" in lines[0]
    assert not results.exists()


def test_the_last_worker_needs_a_port_too(tmp_path, capsys):
    flags = ("--env", "builtin:3DBall", "--base-port", "65535", "--num-envs", "2")
    status, lines = run_cli(capsys, tmp_path, *flags)
    assert status == 2 and len(lines) == 1, lines
    assert "leaves no port for worker 1" in lines[0]


def test_errors_that_stop_a_run_are_one_line_exit_2(capsys):
    cause = ConnectionError("Environment shut down with return code 3.")

    def restart_limit(_options):
        raise EnvironmentRestartLimitError("environment worker 0 exceeded ...") from cause

    with pytest.raises(SystemExit) as info:
        run_cli_or_exit(restart_limit, [str(CONFIG)], prog="prog")
    assert info.value.code == 2
    assert capsys.readouterr().err == "prog: error: environment worker 0 exceeded ...\n"
    assert issubclass(EnvironmentRestartLimitError, RunStoppedError)


def _crashing_build(folder):
    build = folder / "Crash.x86_64"
    build.write_text("#!/bin/sh\nexit 3\n")
    build.chmod(0o755)
    return str(folder / "Crash")


@pytest.mark.smoke
def test_an_environment_past_its_restart_limit_is_one_line(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlagents_fast.trainers.learn",
            str(CONFIG),
            "--run-id",
            "crash",
            "--results-dir",
            str(tmp_path / "results"),
            "--env",
            _crashing_build(tmp_path),
            "--num-envs",
            "2",
            "--max-lifetime-restarts",
            "0",
            "--timeout-wait",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 2, completed.stderr
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert "exceeded the allowed number of restarts" in lines[0]
    assert "return code 3" in lines[0]


@pytest.mark.smoke
def test_ctrl_c_while_waiting_for_the_editor_is_one_line(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlagents_fast.trainers.learn",
            str(CONFIG),
            "--run-id",
            "editor",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        output = ""
        while "Listening on port" not in output and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output += line
        if "Listening on port" not in output:
            process.kill()
            _, stderr = process.communicate(timeout=30)
            if "still in use" in stderr:
                pytest.skip("the Editor port 5004 is taken by another process")
            pytest.fail(f"never started listening: {output}{stderr}")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert "interrupted while waiting for the Unity Editor on port 5004" in lines[0]


@pytest.mark.parametrize("damage", ["cut in half", "missing", "not a demonstration"])
def test_a_damaged_demonstration_file_is_one_line_exit_2(damage, tmp_path, capsys):
    """A GAIL demonstration that cannot be read stops the run when its trainer is built:
    one line naming the setting and the file (ML-Agents: a traceback)."""
    demo = tmp_path / "expert.demo"
    data = BALL_DEMO.read_bytes()
    if damage == "cut in half":
        demo.write_bytes(data[: len(data) // 2])
    elif damage == "not a demonstration":
        demo.write_bytes(b"not a demonstration file\n" * 40)
    config = tmp_path / "gail.yaml"
    gail = {"strength": 0.1, "demo_path": str(demo)}
    behavior = {"trainer_type": "ppo", "max_steps": 100, "reward_signals": {"gail": gail}}
    config.write_text(yaml.safe_dump({"behaviors": {"3DBall": behavior}}))
    status, lines = run_cli(capsys, tmp_path / "results", "--env", "builtin:3DBall", config=config)
    assert status == 2 and len(lines) == 1, lines
    assert "gail.demo_path" in lines[0] and "expert.demo" in lines[0], lines[0]
