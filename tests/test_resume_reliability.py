"""--resume and --initialize-from over missing and damaged results files.

Every case runs the command line (in-process: ``learn.main``, whose SystemExit and stderr are
what the console script gives; two cases also in a real subprocess) on a copy of one finished
SAC run with ``save_replay_buffer``, and checks: exit status 2, one line on stderr naming the
file, no traceback, and not one byte of the results folder changed.
"""

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from mlagents_fast import _native
from mlagents_fast.envs.exception import UnityCommunicationException
from mlagents_fast.trainers.directory_utils import read_previous_configuration, read_previous_status
from mlagents_fast.trainers.exception import ResultsFileError
from mlagents_fast.trainers.learn import main as learn_main
from mlagents_fast.trainers.model_saver.torch_model_saver import load_checkpoint_file
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from trainer_fixtures import SignEnv

RUN_ID = "base"
BEHAVIOR = "Sign"
CONFIG = {
    "behaviors": {
        BEHAVIOR: {
            "trainer_type": "sac",
            "hyperparameters": {
                "batch_size": 16,
                "buffer_size": 1000,
                "buffer_init_steps": 20,
                "steps_per_update": 4,
                "save_replay_buffer": True,
            },
            "network_settings": {"hidden_units": 8, "num_layers": 1},
            "max_steps": 120,
            "time_horizon": 8,
            "summary_freq": 1000,
            "checkpoint_interval": 60,
        }
    }
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """results/base: a finished SAC run (checkpoints, replay buffer, status, configuration)."""
    results = tmp_path_factory.mktemp("results")
    train(
        SignEnv(discrete=True),
        RunOptions.from_dict(json.loads(json.dumps(CONFIG))),
        run_id=RUN_ID,
        results_dir=str(results),
        seed=1,
    )
    return results / RUN_ID


@pytest.fixture
def results(tmp_path, finished_run):
    """A fresh copy of the finished run, and the config file the command line is given."""
    copy = tmp_path / "results"
    shutil.copytree(finished_run, copy / RUN_ID)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    return copy, config


def snapshot(folder):
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def run_cli(capsys, config, results_dir, *flags):
    """learn.main as the console script runs it: (exit status, stderr)."""
    argv = [str(config), "--results-dir", str(results_dir), "--env", "builtin:GoalSeeker1D"]
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as info:
            learn_main([*argv, *flags])
    finally:
        # The CLI logs to the sys.stdout of its call, which capsys closes after the test.
        cli_logger = logging.getLogger("mlagents_fast")
        for handler in list(cli_logger.handlers):
            if getattr(handler, "_mlagents_fast_cli", False):
                cli_logger.removeHandler(handler)
        cli_logger.propagate = True
    return info.value.code, capsys.readouterr().err


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(mask):
    def damage(path):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= mask
        path.write_bytes(bytes(data))

    return damage


def _write(content):
    def damage(path):
        path.write_bytes(content)

    return damage


def _remove(path):
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _edit_json(edit):
    def damage(path):
        status = json.loads(path.read_text())
        edit(status)
        path.write_text(json.dumps(status))

    return damage


def _edit_yaml(edit):
    def damage(path):
        config = yaml.safe_load(path.read_text())
        edit(config)
        path.write_text(yaml.safe_dump(config))

    return damage


def _other_kind_of_field_file(path):
    """An intact field file that is not an AgentBuffer (checked when the trainer loads it)."""
    _native.save_fields(str(path), "replay_buffer", {"x": np.zeros((3, 1), np.float32)})


def _foreign_checkpoint(path):
    torch.save({"weights": torch.zeros(3)}, str(path))


CHECKPOINT = f"{BEHAVIOR}/checkpoint.pt"
REPLAY = f"{BEHAVIOR}/last_replay_buffer.hdf5"
STATUS = "run_logs/training_status.json"
CONFIGURATION = "configuration.yaml"

DAMAGED_RESUME_CASES = {
    "checkpoint truncated": (CHECKPOINT, _truncate),
    "checkpoint byte flipped": (CHECKPOINT, _flip(0x01)),
    "checkpoint empty": (CHECKPOINT, _write(b"")),
    "checkpoint missing": (CHECKPOINT, _remove),
    "checkpoint foreign": (CHECKPOINT, _foreign_checkpoint),
    "checkpoint garbage": (CHECKPOINT, _write(b"not a checkpoint\n" * 20)),
    "behavior folder missing": (BEHAVIOR, _remove),
    "replay truncated": (REPLAY, _truncate),
    "replay byte flipped": (REPLAY, _flip(0x01)),
    "replay empty": (REPLAY, _write(b"")),
    "replay missing": (REPLAY, _remove),
    "replay garbage": (REPLAY, _write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)),
    "replay of another kind": (REPLAY, _other_kind_of_field_file),
    "status truncated": (STATUS, _truncate),
    "status byte damaged (not UTF-8)": (STATUS, _flip(0x80)),
    "status empty": (STATUS, _write(b"")),
    "status missing": (STATUS, _remove),
    "status is a list": (STATUS, _write(b"[1, 2]")),
    "status without metadata": (STATUS, _edit_json(lambda s: s.pop("metadata"))),
    "status checkpoints not a list": (
        STATUS,
        _edit_json(lambda s: s[BEHAVIOR].update(checkpoints="none")),
    ),
    "status step is a string": (
        STATUS,
        _edit_json(lambda s: s[BEHAVIOR]["checkpoints"][0].update(steps="60")),
    ),
    "status file_path is a number": (
        STATUS,
        _edit_json(lambda s: s[BEHAVIOR]["final_checkpoint"].update(file_path=7)),
    ),
    "status lesson is a string": (
        STATUS,
        _edit_json(lambda s: s.update(wall={"lesson_num": "two"})),
    ),
    "configuration truncated": (CONFIGURATION, _truncate),
    "configuration byte damaged (not UTF-8)": (CONFIGURATION, _flip(0x80)),
    "configuration empty": (CONFIGURATION, _write(b"")),
    "configuration missing": (CONFIGURATION, _remove),
    "configuration not YAML": (CONFIGURATION, _write(b"behaviors: [unclosed\n")),
    "configuration wrong type": (
        CONFIGURATION,
        _edit_yaml(lambda c: c["behaviors"][BEHAVIOR].update(max_steps="many")),
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_RESUME_CASES))
def test_damaged_file_on_resume_is_one_line_and_exit_2_and_changes_nothing(case, results, capsys):
    results_dir, config = results
    run_folder = results_dir / RUN_ID
    relative, damage = DAMAGED_RESUME_CASES[case]
    damage(run_folder / relative)
    before = snapshot(run_folder)
    status, stderr = run_cli(capsys, config, results_dir, "--run-id", RUN_ID, "--resume")
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("mlagents-fast-learn: error: ")
    assert os.path.normpath(relative) in lines[0], lines[0]
    assert snapshot(run_folder) == before


def test_an_environment_behavior_the_run_never_saved_fails_before_writing(results, capsys):
    """The built-in GoalSeeker1D brings a behavior with no folder in the run: found when
    its trainer would be created (not before: only the environment names it)."""
    results_dir, config = results
    config.write_text(
        yaml.safe_dump({**CONFIG, "default_settings": {"trainer_type": "sac", "max_steps": 100}})
    )
    before = snapshot(results_dir / RUN_ID)
    status, stderr = run_cli(capsys, config, results_dir, "--run-id", RUN_ID, "--resume")
    assert status == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and "GoalSeeker1D" in stderr, stderr
    assert snapshot(results_dir / RUN_ID) == before


def test_the_intact_run_resumes(results):
    """The control: the undamaged copy resumes, so the cases above fail on the damage."""
    results_dir, _ = results
    result = train(
        SignEnv(discrete=True),
        RunOptions.from_dict(_with_max_steps(CONFIG, 180)),
        run_id=RUN_ID,
        results_dir=str(results_dir),
        seed=1,
        resume=True,
    )
    assert result.steps[BEHAVIOR] >= 180


def _with_max_steps(config, max_steps):
    config = json.loads(json.dumps(config))
    config["behaviors"][BEHAVIOR]["max_steps"] = max_steps
    return config


@pytest.mark.parametrize(
    "relative, damage",
    [(CHECKPOINT, _flip(0x01)), (CHECKPOINT, _remove), (BEHAVIOR, _remove)],
    ids=["flipped", "missing", "no behavior folder"],
)
def test_damaged_source_of_initialize_from_is_one_line_and_writes_nothing(
    relative, damage, results, capsys
):
    results_dir, config = results
    damage(results_dir / RUN_ID / relative)
    before = snapshot(results_dir)
    status, stderr = run_cli(
        capsys, config, results_dir, "--run-id", "new", "--initialize-from", RUN_ID
    )
    assert status == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert os.path.join(RUN_ID, BEHAVIOR) in lines[0]
    assert snapshot(results_dir) == before  # no results/new either


def test_the_console_script_prints_one_line_and_exits_2(results):
    """A byte of training_status.json that is not UTF-8 (a raw UnicodeDecodeError before)."""
    results_dir, config = results
    relative = STATUS
    _flip(0x80)(results_dir / RUN_ID / relative)
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mlagents_fast.trainers.learn import main; main()",
            str(config),
            "--run-id",
            RUN_ID,
            "--resume",
            "--results-dir",
            str(results_dir),
            "--env",
            "builtin:GoalSeeker1D",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert os.path.normpath(relative) in completed.stderr


ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

_MLAGENTS_RUN_FILES = """
import os, sys
import mlagents.plugins.trainer_type as trainer_type
from mlagents.trainers.cli_utils import load_config
from mlagents.trainers.learn import write_run_options
from mlagents.trainers.policy.checkpoint_manager import ModelCheckpoint, ModelCheckpointManager
from mlagents.trainers.settings import RunOptions
from mlagents.trainers.training_status import GlobalTrainingStatus
trainer_type.register_trainer_plugins()
out, config = sys.argv[1], sys.argv[2]
write_run_options(out, RunOptions.from_dict(load_config(config)))
step_file = os.path.join(out, "3DBall", "3DBall-500")
checkpoint = ModelCheckpoint(500, step_file + ".onnx", 1.5, 12.0, [step_file + ".pt"])
ModelCheckpointManager.add_checkpoint("3DBall", checkpoint, 5)
checkpoint.file_path = os.path.join(out, "3DBall.onnx")
ModelCheckpointManager.track_final_checkpoint("3DBall", checkpoint)
os.makedirs(os.path.join(out, "run_logs"))
GlobalTrainingStatus.save_state(os.path.join(out, "run_logs", "training_status.json"))
"""


@pytest.mark.skipif(not ANCHOR_PYTHON.exists(), reason="ML-Agents anchor venv not installed")
@pytest.mark.parametrize("trainer", ["ppo", "sac"])
def test_run_files_written_by_mlagents_pass_the_checks(tmp_path, trainer):
    """configuration.yaml and training_status.json of an ML-Agents 1.1.0 run are read as
    intact (a resume of an upstream run is not refused as damaged)."""
    config = Path(__file__).parent.parent / "config" / trainer / "3DBall.yaml"
    subprocess.run(
        [str(ANCHOR_PYTHON), "-c", _MLAGENTS_RUN_FILES, str(tmp_path), str(config)],
        capture_output=True,
        timeout=300,
        check=True,
    )
    options = read_previous_configuration(str(tmp_path))
    assert options.behaviors["3DBall"].trainer_type == trainer
    status = read_previous_status(str(tmp_path))
    assert status["3DBall"]["checkpoints"][0]["steps"] == 500


def test_every_cut_of_configuration_yaml_is_refused(finished_run, tmp_path):
    """configuration.yaml has no checksum (it stays hand-editable), but a file cut short is
    still caught: a section goes missing or the last value is cut. Every 7th byte cut."""
    run = tmp_path / RUN_ID
    run.mkdir()
    data = (finished_run / CONFIGURATION).read_bytes()
    refused = 0
    cuts = range(0, len(data) - 1, 7)  # the last cut drops only the final newline
    for length in cuts:
        (run / CONFIGURATION).write_bytes(data[:length])
        with pytest.raises(ResultsFileError, match="configuration.yaml is (damaged|missing)"):
            read_previous_configuration(str(run))
        refused += 1
    assert refused == len(cuts) > 200
    (run / CONFIGURATION).write_bytes(data)
    read_previous_configuration(str(run))


KILL_CONFIG = """\
behaviors:
  GoalSeeker1D:
    trainer_type: sac
    hyperparameters:
      batch_size: 16
      buffer_size: 5000
      buffer_init_steps: 10
      steps_per_update: 4
      save_replay_buffer: true
    network_settings:
      hidden_units: 8
      num_layers: 1
    max_steps: 10000000
    time_horizon: 16
    summary_freq: 30
    checkpoint_interval: 30
    keep_checkpoints: 3
"""


def _assert_every_file_is_readable(run_folder):
    """What a kill at any moment may leave: old or new files, never a torn one (temp files
    of the interrupted write aside, which the next start removes)."""
    for path in run_folder.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".pt":
            load_checkpoint_file(str(path))
        elif path.suffix == ".hdf5":
            _native.verify_fields(str(path))
        elif path.suffix == ".onnx":
            onnx.load(str(path))
        elif path.suffix == ".json":
            json.loads(path.read_text())
    read_previous_configuration(str(run_folder))


def _learn_process(config, results, *flags):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlagents_fast.trainers.learn",
            str(config),
            "--env",
            "builtin:GoalSeeker1D",
            "--run-id",
            "killed",
            "--results-dir",
            str(results),
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _first_summary_step(process, deadline):
    for line in process.stdout:
        if "GoalSeeker1D. Step: " in line:
            return int(line.split("Step: ")[1].split(".")[0])
        assert time.monotonic() < deadline, "no progress line"
    raise AssertionError("the run ended without a progress line")


@pytest.mark.smoke
def test_sigkill_at_a_random_moment_never_leaves_an_unreadable_file(tmp_path, seed=7):
    """SIGKILL (no chance to save) at a random moment after the first checkpoint: every
    file left is readable, and --resume goes on from the last checkpoint."""
    config = tmp_path / "config.yaml"
    config.write_text(KILL_CONFIG)
    results = tmp_path / "results"
    run_folder = results / "killed"
    process = _learn_process(config, results)
    try:
        deadline = time.monotonic() + 180
        _first_summary_step(process, deadline)
        while not (run_folder / "run_logs" / "training_status.json").exists():
            assert time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.05)
        time.sleep(float(np.random.default_rng(seed).uniform(0.0, 2.0)))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)
    _assert_every_file_is_readable(run_folder)
    checkpoint = load_checkpoint_file(str(run_folder / "GoalSeeker1D" / "checkpoint.pt"))
    saved_step = checkpoint["__mlagents_fast__"]["step"]
    resumed = _learn_process(config, results, "--resume")
    try:
        first_step = _first_summary_step(resumed, time.monotonic() + 180)
    finally:
        resumed.kill()
        resumed.communicate(timeout=60)
    assert first_step > saved_step > 0


_KILLED_WHILE_WRITING_THE_SECOND_CHECKPOINT = """
import os, signal, sys
from mlagents_fast import atomic_io
from mlagents_fast.trainers.learn import main

commit = atomic_io._commit

def commit_or_die(temp_path, path):
    # The second checkpoint.pt: its bytes are in the temporary file, not yet renamed.
    if os.path.basename(path) == "checkpoint.pt" and os.path.exists(path):
        os.kill(os.getpid(), signal.SIGKILL)
    commit(temp_path, path)

atomic_io._commit = commit_or_die
main(sys.argv[1:])
"""


@pytest.mark.smoke
def test_sigkill_while_writing_a_checkpoint_keeps_the_old_one_and_resume_goes_on(tmp_path, caplog):
    """kill -9 in the middle of writing checkpoint.pt (deterministic, unlike the random
    kill above): the previous checkpoint stays in place, intact; the next start removes the
    temporary file and --resume continues from the previous checkpoint's step."""
    config = tmp_path / "config.yaml"
    config.write_text(KILL_CONFIG)
    results = tmp_path / "results"
    run_folder = results / "killed"
    behavior_folder = run_folder / "GoalSeeker1D"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_WHILE_WRITING_THE_SECOND_CHECKPOINT,
            str(config),
            "--env",
            "builtin:GoalSeeker1D",
            "--run-id",
            "killed",
            "--results-dir",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    leftovers = [p.name for p in behavior_folder.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.pt."), leftovers
    _assert_every_file_is_readable(run_folder)
    saved_step = load_checkpoint_file(str(behavior_folder / "checkpoint.pt"))["__mlagents_fast__"][
        "step"
    ]
    assert saved_step > 0

    _resume_for_30_more_steps(results, saved_step, caplog)
    assert not [p for p in run_folder.rglob(".*") if p.is_file()]
    resumed = load_checkpoint_file(str(behavior_folder / "checkpoint.pt"))["__mlagents_fast__"]
    assert resumed["step"] >= saved_step + 30


def _resume_for_30_more_steps(results, saved_step, caplog):
    """--resume of results/killed in this process (train() is what the command line runs),
    for 30 steps past ``saved_step``; checks that the step count went on from there."""
    options = yaml.safe_load(KILL_CONFIG)
    options["behaviors"]["GoalSeeker1D"]["max_steps"] = saved_step + 30
    caplog.set_level(logging.INFO, logger="mlagents_fast")
    result = train(
        "builtin:GoalSeeker1D",
        RunOptions.from_dict(options),
        run_id="killed",
        results_dir=str(results),
        seed=1,
        resume=True,
    )
    assert result.steps["GoalSeeker1D"] >= saved_step + 30
    summary_steps = [
        int(r.getMessage().split("Step: ")[1].split(".")[0])
        for r in caplog.records
        if r.getMessage().startswith("GoalSeeker1D. Step: ")
    ]
    assert summary_steps and summary_steps[0] > saved_step, summary_steps


@pytest.mark.smoke
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_an_interrupted_sac_run_resumes_from_its_step_with_its_replay_rows(
    tmp_path, caplog, signal_number
):
    """Ctrl-C or SIGTERM mid-training: exit 0 after saving; every file reads; --resume goes
    on from the saved step with the saved replay buffer's rows."""
    config = tmp_path / "config.yaml"
    config.write_text(KILL_CONFIG)
    results = tmp_path / "results"
    process = _learn_process(config, results)
    try:
        _first_summary_step(process, time.monotonic() + 180)
        process.send_signal(signal_number)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=60)
    assert process.returncode == 0, output
    run_folder = results / "killed"
    _assert_every_file_is_readable(run_folder)
    checkpoint = load_checkpoint_file(str(run_folder / "GoalSeeker1D" / "checkpoint.pt"))
    saved_step = checkpoint["__mlagents_fast__"]["step"]
    assert saved_step > 0
    _resume_for_30_more_steps(results, saved_step, caplog)
    loaded = re.search(r"Experience replay buffer has (\d+) experiences", caplog.text)
    assert loaded and int(loaded.group(1)) > 0, caplog.text[-2000:]


class _EnvThatDies(SignEnv):
    """SignEnv whose link breaks after ``dies_after`` steps, as a crashed Unity player's."""

    def __init__(self, dies_after):
        super().__init__(discrete=True)
        self.dies_after = dies_after

    def step(self):
        if self.steps_taken >= self.dies_after:
            raise UnityCommunicationException("the environment shut down")
        super().step()


def test_a_run_whose_environment_dies_saves_and_resumes_from_that_step(tmp_path, caplog):
    """The environment dies mid-training: the run saves before the error ends it (as
    ML-Agents), every file reads, and --resume goes on from the saved step and rows."""
    results = tmp_path / "results"
    with pytest.raises(UnityCommunicationException, match="shut down"):
        train(
            _EnvThatDies(dies_after=40),
            RunOptions.from_dict(_with_max_steps(CONFIG, 10_000)),
            run_id=RUN_ID,
            results_dir=str(results),
            seed=1,
        )
    run_folder = results / RUN_ID
    _assert_every_file_is_readable(run_folder)
    checkpoint = load_checkpoint_file(str(run_folder / BEHAVIOR / "checkpoint.pt"))
    saved_step = checkpoint["__mlagents_fast__"]["step"]
    assert saved_step >= 100  # 40 steps of 4 agents, less the last unfinished trajectories
    caplog.set_level(logging.INFO, logger="mlagents_fast")
    result = train(
        SignEnv(discrete=True),
        RunOptions.from_dict(_with_max_steps(CONFIG, saved_step + 40)),
        run_id=RUN_ID,
        results_dir=str(results),
        seed=1,
        resume=True,
    )
    assert f"Resuming training from step {saved_step}." in caplog.text
    loaded = re.search(r"Experience replay buffer has (\d+) experiences", caplog.text)
    assert loaded and int(loaded.group(1)) > 0
    assert result.steps[BEHAVIOR] >= saved_step + 40
