"""--initialize-from as in ML-Agents 1.1.0: setup_init_path resolves each behavior's
checkpoint (``<results>/<run>/<behavior>/checkpoint.pt``, a bare file name in that folder, a
path kept), a missing one raises UnityTrainerException, and a new run starts from the old
run's weights at step 0. Also: training_status.json paths are relative to the run folder, so
a copied results folder resumes on its own files and never deletes the original's."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlagents_fast.trainers.directory_utils import setup_init_path
from mlagents_fast.trainers.exception import ResultsFileError, UnityTrainerException
from mlagents_fast.trainers.model_saver.torch_model_saver import load_checkpoint_file
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions, TrainerSettings
from trainer_fixtures import SignEnv

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)


def ppo_options(max_steps, keep_checkpoints=5, initialize_from=None):
    options = RunOptions.from_dict(
        {
            "behaviors": {
                "Sign": {
                    "trainer_type": "ppo",
                    "hyperparameters": {"batch_size": 32, "buffer_size": 128, "num_epoch": 2},
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "max_steps": max_steps,
                    "time_horizon": 8,
                    "summary_freq": 1000,
                    "checkpoint_interval": 200,
                    "keep_checkpoints": keep_checkpoints,
                }
            }
        }
    )
    options.checkpoint_settings.initialize_from = initialize_from
    return options


def _layout(tmp_path):
    """results/old with Sign/checkpoint.pt and Sign/Sign-100.pt (empty files do for paths)."""
    behavior = tmp_path / "old" / "Sign"
    behavior.mkdir(parents=True)
    for name in ("checkpoint.pt", "Sign-100.pt"):
        (behavior / name).write_bytes(b"x")
    return tmp_path / "old"


def _resolve(init_dir, init_paths):
    behaviors = {name: SimpleNamespace(init_path=path) for name, path in init_paths.items()}
    setup_init_path(behaviors, str(init_dir))
    return {name: settings.init_path for name, settings in behaviors.items()}


def test_setup_init_path_resolves_as_mlagents(tmp_path):
    init_dir = _layout(tmp_path)
    full = str(init_dir / "Sign" / "Sign-100.pt")
    assert _resolve(init_dir, {"Sign": None}) == {
        "Sign": os.path.join(init_dir, "Sign", "checkpoint.pt")
    }
    assert _resolve(init_dir, {"Sign": "Sign-100.pt"}) == {
        "Sign": os.path.join(init_dir, "Sign", "Sign-100.pt")
    }
    assert _resolve(init_dir, {"Sign": full}) == {"Sign": full}
    for missing in ({"Other": None}, {"Sign": "nope.pt"}, {"Sign": "Sign"}):
        with pytest.raises(UnityTrainerException, match="Could not initialize") as info:
            _resolve(init_dir, missing)
        assert isinstance(info.value, ResultsFileError)
    # TrainerSettings objects are changed in place, as ML-Agents' caller expects.
    settings = TrainerSettings()
    setup_init_path({"Sign": settings}, str(init_dir))
    assert settings.init_path == os.path.join(init_dir, "Sign", "checkpoint.pt")


_MLAGENTS_SCRIPT = """
import json, sys
from types import SimpleNamespace
from mlagents.trainers.directory_utils import setup_init_path
init_dir, cases = sys.argv[1], json.loads(sys.argv[2])
out = []
for case in cases:
    behaviors = {name: SimpleNamespace(init_path=path) for name, path in case.items()}
    try:
        setup_init_path(behaviors, init_dir)
        out.append({name: s.init_path for name, s in behaviors.items()})
    except Exception as err:
        out.append(type(err).__name__)
print(json.dumps(out))
"""


@pytest.mark.skipif(not ANCHOR_PYTHON.exists(), reason="ML-Agents anchor venv not installed")
def test_setup_init_path_agrees_with_mlagents(tmp_path):
    init_dir = _layout(tmp_path)
    cases = [
        {"Sign": None},
        {"Sign": "Sign-100.pt"},
        {"Sign": str(init_dir / "Sign" / "Sign-100.pt")},
        {"Other": None},
        {"Sign": "nope.pt"},
    ]
    completed = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", _MLAGENTS_SCRIPT, str(init_dir), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    theirs = json.loads(completed.stdout.strip().splitlines()[-1])
    ours = []
    for case in cases:
        try:
            ours.append(_resolve(init_dir, case))
        except UnityTrainerException:
            ours.append("UnityTrainerException")
    assert ours == theirs


def _policy_weights(path):
    return load_checkpoint_file(str(path))["Policy"]


def test_a_new_run_starts_from_the_old_runs_weights(tmp_path):
    train(SignEnv(seed=1), ppo_options(1000), run_id="old", results_dir=str(tmp_path), seed=3)
    old = _policy_weights(tmp_path / "old" / "Sign" / "checkpoint.pt")
    # max_steps 0: the new run saves right after initialization, before any update.
    result = train(
        SignEnv(seed=2),
        ppo_options(0, initialize_from="old"),
        run_id="new",
        results_dir=str(tmp_path),
        seed=4,
    )
    new_checkpoint = load_checkpoint_file(str(tmp_path / "new" / "Sign" / "checkpoint.pt"))
    assert new_checkpoint["__mlagents_fast__"]["step"] == result.steps["Sign"] < 100
    assert old.keys() == new_checkpoint["Policy"].keys()
    for key, value in old.items():
        torch.testing.assert_close(new_checkpoint["Policy"][key], value, msg=key)
    # A fresh run with another seed has other weights (so the comparison above can fail).
    train(SignEnv(seed=2), ppo_options(0), run_id="fresh", results_dir=str(tmp_path), seed=4)
    fresh = _policy_weights(tmp_path / "fresh" / "Sign" / "checkpoint.pt")
    assert any(not torch.equal(fresh[key], value) for key, value in old.items())


def test_a_copied_results_folder_resumes_on_its_own_files(tmp_path):
    original = tmp_path / "original"
    train(
        SignEnv(seed=1),
        ppo_options(400, keep_checkpoints=2),
        run_id="r",
        results_dir=str(original),
        seed=3,
    )
    before = sorted(p.name for p in (original / "r" / "Sign").iterdir())
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    train(
        SignEnv(seed=2),
        ppo_options(1000, keep_checkpoints=2),
        run_id="r",
        results_dir=str(copy),
        seed=3,
        resume=True,
    )
    # The original is untouched; the copy pruned its own old checkpoints.
    assert sorted(p.name for p in (original / "r" / "Sign").iterdir()) == before
    status = json.loads((copy / "r" / "run_logs" / "training_status.json").read_text())
    kept = [entry["file_path"] for entry in status["Sign"]["checkpoints"]]
    assert len(kept) == 2 and all(not os.path.isabs(path) for path in kept)
    onnx_files = sorted(p.name for p in (copy / "r" / "Sign").glob("Sign-*.onnx"))
    assert onnx_files == sorted(os.path.basename(path) for path in kept)


def test_absolute_paths_of_a_moved_folder_are_mapped_into_it_and_others_never_deleted(tmp_path):
    """ML-Agents (and earlier versions) wrote absolute or start-folder paths: those of a
    folder that was moved are read as the same files of this folder; a path elsewhere is
    kept but never deleted."""
    run = tmp_path / "results" / "r"
    train(
        SignEnv(seed=1),
        ppo_options(400, keep_checkpoints=5),
        run_id="r",
        results_dir=str(run.parent),
        seed=3,
    )
    status_path = run / "run_logs" / "training_status.json"
    status = json.loads(status_path.read_text())
    outside = tmp_path / "elsewhere" / "Sign-1.onnx"
    outside.parent.mkdir()
    outside.write_bytes(b"keep me")
    moved_from = "/somewhere/else/results/r"
    checkpoints = status["Sign"]["checkpoints"]
    for entry in checkpoints:
        entry["file_path"] = os.path.join(moved_from, entry["file_path"])
        entry["auxillary_file_paths"] = [
            os.path.join(moved_from, p) for p in entry["auxillary_file_paths"]
        ]
    checkpoints.insert(0, {**checkpoints[0], "file_path": str(outside), "auxillary_file_paths": []})
    del status["metadata"]["checkpoint_paths"]  # as ML-Agents writes it
    status_path.write_text(json.dumps(status))
    train(
        SignEnv(seed=2),
        ppo_options(1000, keep_checkpoints=2),
        run_id="r",
        results_dir=str(run.parent),
        seed=3,
        resume=True,
    )
    assert outside.read_bytes() == b"keep me"
    status = json.loads(status_path.read_text())
    kept = [entry["file_path"] for entry in status["Sign"]["checkpoints"]]
    assert len(kept) == 2
    onnx_files = sorted(p.name for p in (run / "Sign").glob("Sign-*.onnx"))
    assert onnx_files == sorted(os.path.basename(path) for path in kept)
