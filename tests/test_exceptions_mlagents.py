"""Errors that ML-Agents' callers catch by type are caught the same way here.

Where ML-Agents 1.1.0 raises a type other than ours for the same problem, our error derives
from both: a missing required option is a TrainerConfigError and a TypeError; an unknown
schedule in DecayedValue and a run folder that conflicts with --resume/--force/--initialize-from
are a TrainerConfigError and an UnityTrainerException. The last test asks ML-Agents itself (in
the anchor venv, skipped without it) that these are the types it raises, and that it loads a
curriculum whose criteria name a behavior the file does not configure.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from mlagents_fast.trainers.cli_utils import parse_command_line
from mlagents_fast.trainers.directory_utils import validate_existing_directories
from mlagents_fast.trainers.exception import (
    MissingOptionError,
    TrainerConfigError,
    UnityTrainerException,
)
from mlagents_fast.trainers.settings import RunOptions, ScheduleType
from mlagents_fast.trainers.torch_entities.utils import ModelUtils

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)


def _curriculum(criteria):
    return {
        "behaviors": {"B": {}},
        "environment_parameters": {
            "p": {
                "curriculum": [
                    {"name": "a", "value": 1.0, "completion_criteria": criteria},
                    {"name": "b", "value": 2.0},
                ]
            }
        },
    }


# Each configuration lacks one required option (the same cases are run on ML-Agents below).
MISSING_OPTION_CASES = {
    "gail demo_path": {"behaviors": {"B": {"reward_signals": {"gail": {}}}}},
    "behavioral_cloning demo_path": {"behaviors": {"B": {"behavioral_cloning": {}}}},
    "criteria behavior": _curriculum({"threshold": 0.5}),
    "lesson name": {
        "behaviors": {"B": {}},
        "environment_parameters": {"p": {"curriculum": [{"value": 1.0}]}},
    },
}


@pytest.mark.parametrize("case", sorted(MISSING_OPTION_CASES))
def test_a_missing_required_option_is_a_type_error_and_a_config_error(case):
    with pytest.raises(TypeError) as info:
        RunOptions.from_dict(MISSING_OPTION_CASES[case])
    error = info.value
    assert isinstance(error, MissingOptionError) and isinstance(error, TrainerConfigError)
    assert "missing required option" in str(error)
    assert case.split()[-1] in str(error)


def test_the_command_line_reports_a_missing_option_like_any_config_error(tmp_path):
    config = tmp_path / "gail.yaml"
    config.write_text("behaviors:\n  B:\n    reward_signals:\n      gail:\n        strength: 0.1\n")
    with pytest.raises(TrainerConfigError) as info:
        parse_command_line([str(config)])
    assert info.value.config_file == str(config)
    assert info.value.key_path == ["behaviors", "B", "reward_signals", "gail"]


def test_an_unknown_schedule_fails_when_the_value_is_read_as_in_mlagents():
    decayed = ModelUtils.DecayedValue("cosine", 1.0, 0.0, 100)  # accepted until read
    for caught in (UnityTrainerException, TrainerConfigError):
        with pytest.raises(caught, match="The schedule cosine is invalid"):
            decayed.get_value(10)
    assert ModelUtils.DecayedValue(ScheduleType.LINEAR, 1.0, 0.0, 100).get_value(50) == 0.5


@pytest.mark.parametrize(
    "make_run, resume, force, init, message",
    [
        (True, False, False, None, "Previous data from this run ID was found"),
        (False, True, False, None, "was not found"),
        (False, False, False, "missing-run", "Could not initialize from"),
    ],
)
def test_run_folder_conflicts_are_unity_trainer_exceptions(
    tmp_path, make_run, resume, force, init, message
):
    run = tmp_path / "run"
    if make_run:
        run.mkdir()
    init_path = str(tmp_path / init) if init else None
    with pytest.raises(UnityTrainerException, match=message) as info:
        validate_existing_directories(str(run), resume, force, init_path)
    assert isinstance(info.value, TrainerConfigError)  # mlagents-fast-learn: one line, exit 2


MLAGENTS_SIDE = r"""
import json, os, sys, tempfile
from mlagents.plugins.trainer_type import register_trainer_plugins
register_trainer_plugins()
from mlagents.trainers.directory_utils import validate_existing_directories
from mlagents.trainers.exception import UnityTrainerException
from mlagents.trainers.settings import RunOptions
from mlagents.trainers.torch_entities.utils import ModelUtils

cases = json.loads(sys.argv[1])
out = {"missing": {}, "dirs": {}}
for name, config in cases["missing"].items():
    try:
        RunOptions.from_dict(config)
        out["missing"][name] = None
    except Exception as error:
        out["missing"][name] = type(error).__name__
try:
    ModelUtils.DecayedValue("cosine", 1.0, 0.0, 100).get_value(10)
except Exception as error:
    out["schedule"] = [type(error).__name__, isinstance(error, UnityTrainerException)]
with tempfile.TemporaryDirectory() as tmp:
    run = os.path.join(tmp, "run")
    for name, (resume, init) in {"exists": (False, None), "resume": (True, None),
                                 "init": (False, os.path.join(tmp, "nope"))}.items():
        if name == "exists":
            os.mkdir(run)
        try:
            validate_existing_directories(run, resume, False, init)
        except Exception as error:
            out["dirs"][name] = type(error).__name__
        if name == "exists":
            os.rmdir(run)
loaded = RunOptions.from_dict(cases["unknown_behavior"])
criteria = loaded.environment_parameters["p"].curriculum[0].completion_criteria
out["unknown_behavior"] = criteria.behavior
print(json.dumps(out))
"""


@pytest.mark.skipif(not ANCHOR_PYTHON.exists(), reason="ML-Agents 1.1.0 anchor venv not built")
def test_mlagents_raises_the_types_we_also_derive_from():
    unknown_behavior = _curriculum({"behavior": "Other", "threshold": 0.5})
    cases = {"missing": MISSING_OPTION_CASES, "unknown_behavior": unknown_behavior}
    done = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", MLAGENTS_SIDE, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    assert theirs["missing"] == dict.fromkeys(MISSING_OPTION_CASES, "TypeError")
    assert theirs["schedule"] == ["UnityTrainerException", True]
    assert theirs["dirs"] == dict.fromkeys(["exists", "resume", "init"], "UnityTrainerException")
    # ML-Agents loads it; so do we, with the same criteria.
    assert theirs["unknown_behavior"] == "Other"
    ours = RunOptions.from_dict(unknown_behavior)
    assert ours.environment_parameters["p"].curriculum[0].completion_criteria.behavior == "Other"
