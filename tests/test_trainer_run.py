"""The Python API (``mlagents_fast.trainers.run.train``) end to end on a tiny pure-Python env:
results layout, checkpoints, resume, refusal of an existing run id, SAC."""

import json
import logging
import os

import numpy as np
import pytest
import yaml
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey
from mlagents_fast.trainers.directory_utils import RunFolderError
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from trainer_fixtures import SignEnv


def ppo_options(max_steps=400, **overrides):
    behavior = {
        "trainer_type": "ppo",
        "hyperparameters": {
            "batch_size": 32,
            "buffer_size": 128,
            "num_epoch": 2,
            "learning_rate": 3e-3,
        },
        "network_settings": {"hidden_units": 16, "num_layers": 1},
        "max_steps": max_steps,
        "time_horizon": 8,
        "summary_freq": 100,
        "checkpoint_interval": 200,
        "keep_checkpoints": 5,
    }
    behavior.update(overrides)
    return RunOptions.from_dict({"behaviors": {"Sign": behavior}})


def test_ppo_run_writes_mlagents_results_layout(tmp_path):
    env = SignEnv(num_agents=4, episode_length=5, seed=1)
    result = train(env, ppo_options(), run_id="sign", results_dir=str(tmp_path), seed=3)
    run_dir = tmp_path / "sign"
    assert result.run_dir == str(run_dir)
    assert result.steps["Sign"] >= 400
    assert env.closed

    config = yaml.safe_load((run_dir / "configuration.yaml").read_text())
    assert config["behaviors"]["Sign"]["max_steps"] == 400
    assert config["checkpoint_settings"]["run_id"] == "sign"

    status = json.loads((run_dir / "run_logs" / "training_status.json").read_text())
    checkpoints = status["Sign"]["checkpoints"]
    # A checkpoint is written when a trajectory crosses the interval, at the step before it
    # (as ML-Agents), so within one trajectory (time_horizon 8) of 200 and 400; plus the final.
    steps = [c["steps"] for c in checkpoints]
    assert 192 <= steps[0] <= 200 and 392 <= steps[1] <= 400 and steps[-1] >= 400
    # Paths relative to the run folder, so a copied results folder resumes on its own files.
    assert status["Sign"]["final_checkpoint"]["file_path"] == "Sign.onnx"
    assert [c["file_path"] for c in checkpoints] == [
        os.path.join("Sign", f"Sign-{step}.onnx") for step in steps
    ]
    assert [c["auxillary_file_paths"] for c in checkpoints] == [
        [os.path.join("Sign", f"Sign-{step}.pt")] for step in steps
    ]
    assert "metadata" in status
    timers = json.loads((run_dir / "run_logs" / "timers.json").read_text())
    assert timers["name"] == "root" and "children" in timers

    behavior_dir = run_dir / "Sign"
    assert (behavior_dir / "checkpoint.pt").is_file()
    for step in steps:
        assert (behavior_dir / f"Sign-{step}.pt").is_file()
        assert (behavior_dir / f"Sign-{step}.onnx").is_file()
        assert any(c["file_path"].endswith(f"Sign-{step}.onnx") for c in checkpoints)
    assert (run_dir / "Sign.onnx").is_file()
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(behavior_dir))
    assert (run_dir / "learning_curves.png").is_file()
    # Summaries every 100 steps, with episodes in each.
    assert [step for step, _ in result.reward_history["Sign"]][:3] == [100, 200, 300]


def test_resume_continues_the_step_count(tmp_path):
    train(
        SignEnv(seed=1), ppo_options(max_steps=200), run_id="r", results_dir=str(tmp_path), seed=3
    )
    status = json.loads((tmp_path / "r" / "run_logs" / "training_status.json").read_text())
    first_steps = status["Sign"]["final_checkpoint"]["steps"]
    assert first_steps >= 200
    # Temp files of writes interrupted by a kill are removed when the run starts again.
    leftovers = [
        tmp_path / "r" / "Sign" / ".checkpoint.pt.999999-3.tmp",
        tmp_path / "r" / "Sign" / ".export-abcd1234.onnx.tmp",
        tmp_path / "r" / "run_logs" / ".tmp-abcd1234.json",
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    result = train(
        SignEnv(seed=2),
        ppo_options(max_steps=400),
        run_id="r",
        results_dir=str(tmp_path),
        seed=3,
        resume=True,
    )
    assert result.steps["Sign"] >= 400
    assert not any(leftover.exists() for leftover in leftovers)
    status = json.loads((tmp_path / "r" / "run_logs" / "training_status.json").read_text())
    steps = [c["steps"] for c in status["Sign"]["checkpoints"]]
    # The first run's checkpoints are kept and the new ones continue after them.
    assert steps[0] <= 200 and steps[-1] >= 400 and steps == sorted(steps)
    # The resumed run's first summary is past the old step count.
    assert result.reward_history["Sign"][0][0] > first_steps


def test_existing_run_id_is_refused_without_resume_or_force(tmp_path):
    train(SignEnv(), ppo_options(max_steps=100), run_id="x", results_dir=str(tmp_path), seed=1)
    with pytest.raises(RunFolderError, match="--resume"):
        train(SignEnv(), ppo_options(max_steps=100), run_id="x", results_dir=str(tmp_path), seed=1)
    result = train(
        SignEnv(),
        ppo_options(max_steps=100),
        run_id="x",
        results_dir=str(tmp_path),
        seed=1,
        force=True,
    )
    assert result.steps["Sign"] >= 100


def test_resume_of_missing_run_is_refused(tmp_path):
    with pytest.raises(RunFolderError, match="was not found"):
        train(
            SignEnv(),
            ppo_options(max_steps=100),
            run_id="nope",
            results_dir=str(tmp_path),
            resume=True,
        )


def _sac_options(max_steps, memory=None):
    network = {"hidden_units": 16, "num_layers": 1}
    if memory is not None:
        network["memory"] = memory
    return RunOptions.from_dict(
        {
            "behaviors": {
                "Sign": {
                    "trainer_type": "sac",
                    "hyperparameters": {
                        "batch_size": 16,
                        "buffer_size": 1000,
                        "buffer_init_steps": 50,
                        "steps_per_update": 4,
                        "save_replay_buffer": True,
                    },
                    "network_settings": network,
                    "max_steps": max_steps,
                    "time_horizon": 8,
                    "summary_freq": 100,
                }
            }
        }
    )


def _replay_rows(path):
    return _replay_buffer(path).num_experiences


def _replay_buffer(path):
    buffer = AgentBuffer()
    buffer.load_from_file(str(path))
    return buffer


def test_sac_run_saves_model_and_replay_buffer(tmp_path, caplog):
    """At max_steps the replay buffer is saved with its rows (it was saved empty: the
    trainer cleared it when training stopped), and --resume loads those rows."""
    result = train(
        SignEnv(discrete=True), _sac_options(200), run_id="sac", results_dir=str(tmp_path), seed=2
    )
    assert result.steps["Sign"] >= 200
    assert (tmp_path / "sac" / "Sign.onnx").is_file()
    replay_file = tmp_path / "sac" / "Sign" / "last_replay_buffer.hdf5"
    rows = _replay_rows(replay_file)
    # Every step up to max_steps is in it (buffer_size 1000 truncates nothing); a trajectory
    # processed after training stopped is not added, as in ML-Agents.
    assert 200 - 8 <= rows <= result.steps["Sign"]
    caplog.set_level(logging.INFO, logger="mlagents_fast")
    resumed = train(
        SignEnv(discrete=True),
        _sac_options(300),
        run_id="sac",
        results_dir=str(tmp_path),
        seed=2,
        resume=True,
    )
    assert f"Experience replay buffer has {rows} experiences." in caplog.text
    assert resumed.steps["Sign"] >= 300
    added = _replay_rows(replay_file) - rows
    assert 300 - result.steps["Sign"] - 8 <= added <= resumed.steps["Sign"] - result.steps["Sign"]


def test_recurrent_sac_learns_from_padded_sequences_and_resumes_them(tmp_path, caplog):
    """SAC with an LSTM: its replay buffer holds each trajectory padded to whole sequences
    (masks 0 on padding), with the actor's and critic's memories; updates run on them, and
    --resume loads them back."""
    memory = {"sequence_length": 4, "memory_size": 8}
    result = train(
        SignEnv(discrete=True),
        _sac_options(120, memory),
        run_id="lstm",
        results_dir=str(tmp_path),
        seed=2,
    )
    replay_file = tmp_path / "lstm" / "Sign" / "last_replay_buffer.hdf5"
    saved = _replay_buffer(replay_file)
    rows = saved.num_experiences
    assert rows % 4 == 0 and rows >= 120 - 8
    masks = np.asarray(saved[BufferKey.MASKS])
    assert 0 < masks.sum() < rows  # real steps and padding
    for key in (BufferKey.MEMORY, BufferKey.CRITIC_MEMORY):
        assert np.asarray(saved[key]).shape == (rows, 8)
    assert np.abs(np.asarray(saved[BufferKey.CRITIC_MEMORY])).sum() > 0
    caplog.set_level(logging.INFO, logger="mlagents_fast")
    resumed = train(
        SignEnv(discrete=True),
        _sac_options(170, memory),
        run_id="lstm",
        results_dir=str(tmp_path),
        seed=2,
        resume=True,
    )
    assert f"Experience replay buffer has {rows} experiences." in caplog.text
    assert resumed.steps["Sign"] >= 170 > result.steps["Sign"]
    assert _replay_rows(replay_file) > rows


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"behavioral_cloning": {"demo_path": "x.demo"}}, "behavioral_cloning.demo_path: .*x.demo"),
        ({"reward_signals": {"gail": {"demo_path": "x.demo"}}}, "gail.demo_path: .*x.demo"),
    ],
)
def test_unsupported_features_are_refused_with_the_key(tmp_path, overrides, message):
    from mlagents_fast.trainers.exception import TrainerConfigError

    options = ppo_options(max_steps=100, **overrides)
    with pytest.raises(TrainerConfigError, match=message):
        train(SignEnv(), options, run_id="u", results_dir=str(tmp_path), seed=1)
    assert not (tmp_path / "u" / "Sign.onnx").exists()
