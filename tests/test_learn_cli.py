"""``mlagents-fast-learn`` in a subprocess: results layout, resume, SIGTERM, bad configs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.smoke

TINY_CONFIG = """\
behaviors:
  GoalSeeker1D:
    trainer_type: ppo
    hyperparameters:
      batch_size: 64
      buffer_size: 256
      num_epoch: 1
    network_settings:
      hidden_units: 16
      num_layers: 1
    max_steps: {max_steps}
    time_horizon: 16
    summary_freq: 256
    checkpoint_interval: 512
"""


def learn(tmp_path, *args, max_steps=1024, config_text=None, timeout=240):
    config = tmp_path / "config.yaml"
    config.write_text(
        config_text if config_text is not None else TINY_CONFIG.format(max_steps=max_steps)
    )
    command = [
        sys.executable,
        "-m",
        "mlagents_fast.trainers.learn",
        str(config),
        "--env",
        "builtin:GoalSeeker1D",
        "--results-dir",
        str(tmp_path / "results"),
        "--seed",
        "1",
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, check=False
    )


def test_cli_trains_and_writes_the_results_layout(tmp_path):
    completed = learn(tmp_path, "--run-id", "smoke")
    assert completed.returncode == 0, completed.stderr
    run_dir = tmp_path / "results" / "smoke"
    for path in (
        "configuration.yaml",
        "run_logs/training_status.json",
        "run_logs/timers.json",
        "GoalSeeker1D/checkpoint.pt",
        "GoalSeeker1D.onnx",
        "learning_curves.png",
    ):
        assert (run_dir / path).is_file(), path
    files = os.listdir(run_dir / "GoalSeeker1D")
    assert any(f.startswith("GoalSeeker1D-") and f.endswith(".onnx") for f in files)
    assert any(f.startswith("events.out.tfevents") for f in files)
    # Progress lines every summary_freq steps.
    progress = [line for line in completed.stdout.splitlines() if "GoalSeeker1D. Step: " in line]
    assert len(progress) >= 3
    assert "Mean Reward" in progress[-1] and "Steps/s" not in progress[-1]
    # The speed has a line of its own (stdout is not a terminal here).
    assert any(
        line.startswith("[INFO] GoalSeeker1D. Steps/s: ") for line in completed.stdout.splitlines()
    )


def test_cli_resume_continues_and_existing_run_is_refused(tmp_path):
    assert learn(tmp_path, "--run-id", "r", max_steps=512).returncode == 0
    refused = learn(tmp_path, "--run-id", "r", max_steps=512)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "--resume" in refused.stderr and "--force" in refused.stderr

    resumed = learn(tmp_path, "--run-id", "r", "--resume", max_steps=1024)
    assert resumed.returncode == 0, resumed.stderr
    status = json.loads(
        (tmp_path / "results" / "r" / "run_logs" / "training_status.json").read_text()
    )
    steps = [c["steps"] for c in status["GoalSeeker1D"]["checkpoints"]]
    assert steps == sorted(steps) and steps[0] <= 512 and steps[-1] >= 1024
    first_progress = next(line for line in resumed.stdout.splitlines() if "Step: " in line)
    assert int(first_progress.split("Step: ")[1].split(".")[0]) > 512


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    bad = TINY_CONFIG.format(max_steps=100).replace("batch_size: 64", "batch_sise: 64")
    completed = learn(tmp_path, "--run-id", "bad", config_text=bad)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "batch_sise" in lines[0]
    assert not (tmp_path / "results" / "bad" / "GoalSeeker1D").exists()


def test_sigterm_saves_a_checkpoint_before_exit(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(TINY_CONFIG.format(max_steps=10_000_000))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlagents_fast.trainers.learn",
            str(config),
            "--env",
            "builtin:GoalSeeker1D",
            "--run-id",
            "term",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        # Wait until training is under way (the first progress line).
        deadline = time.time() + 120
        for line in process.stdout:
            if "GoalSeeker1D. Step: " in line or time.time() > deadline:
                break
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    run_dir = tmp_path / "results" / "term"
    assert (run_dir / "GoalSeeker1D.onnx").is_file()
    assert (run_dir / "GoalSeeker1D" / "checkpoint.pt").is_file()
    status = json.loads((run_dir / "run_logs" / "training_status.json").read_text())
    assert status["GoalSeeker1D"]["final_checkpoint"]["steps"] > 0
