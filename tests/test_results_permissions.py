"""Results files are readable like ML-Agents': created with the user's umask (0644 under umask
022, 0640 under 027), never 0600."""

import os
import stat

import pytest
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from trainer_fixtures import SignEnv


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def options():
    return RunOptions.from_dict(
        {
            "behaviors": {
                "Sign": {
                    "trainer_type": "ppo",
                    "hyperparameters": {"batch_size": 32, "buffer_size": 64, "num_epoch": 1},
                    "network_settings": {"hidden_units": 8, "num_layers": 1},
                    "max_steps": 200,
                    "time_horizon": 8,
                    "summary_freq": 50,
                    "checkpoint_interval": 100,
                }
            }
        }
    )


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640)])
def test_every_results_file_gets_the_users_umask(tmp_path, umask, mask, expected):
    os.umask(mask)
    train(
        SignEnv(num_agents=2, episode_length=4), options(), run_id="perm", results_dir=str(tmp_path)
    )
    run_dir = tmp_path / "perm"
    files = {
        os.path.relpath(os.path.join(folder, name), run_dir): stat.S_IMODE(
            os.stat(os.path.join(folder, name)).st_mode
        )
        for folder, _, names in os.walk(run_dir)
        for name in names
    }
    for name in (
        "Sign.onnx",
        "Sign/checkpoint.pt",
        "learning_curves.png",
        "configuration.yaml",
        "run_logs/training_status.json",
        "run_logs/timers.json",
    ):
        assert name in files, sorted(files)
    assert any(name.startswith("Sign/Sign-") and name.endswith(".pt") for name in files)
    assert any(name.startswith("Sign/events.out.tfevents") for name in files)
    wrong = {name: oct(mode) for name, mode in files.items() if mode != expected}
    assert not wrong, f"expected {oct(expected)}: {wrong}"
