"""trainers.upgrade_config: old (<= 0.18) configurations become files mlagents-fast-learn loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from mlagents_fast.trainers.cli_utils import load_config
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings import (
    GaussianSettings,
    MultiRangeUniformSettings,
    RunOptions,
    UniformSettings,
)
from mlagents_fast.trainers.upgrade_config import (
    convert,
    convert_behaviors,
    convert_samplers,
    main,
    remove_nones,
)
from repo_paths import FIXTURES

OLD = Path(FIXTURES) / "old_configs"
ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)


def upgrade(tmp_path, *args):
    out = tmp_path / "new.yaml"
    main([*(str(a) for a in args), str(out)])
    return RunOptions.from_dict(load_config(str(out))), load_config(str(out))


def test_016_files_with_curriculum_and_sampler_load_as_run_options(tmp_path, capsys):
    options, raw = upgrade(
        tmp_path,
        OLD / "trainer_config_0.16.yaml",
        "--curriculum",
        OLD / "curricula_0.16.yaml",
        "--sampler",
        OLD / "sampler_0.16.yaml",
    )
    assert "resampling-interval" in capsys.readouterr().out  # told it is dropped
    assert set(options.behaviors) == {"3DBall", "Pyramids", "Hallway"}
    ball = options.behaviors["3DBall"]
    # Own values override default; the rest comes from default.
    assert ball.trainer_type == "ppo" and ball.hyperparameters.batch_size == 64
    assert ball.hyperparameters.beta == 0.001 and ball.hyperparameters.epsilon == 0.2
    assert ball.network_settings.normalize is True and ball.network_settings.memory is None
    assert ball.time_horizon == 1000 and ball.max_steps == 500000
    pyramids = options.behaviors["Pyramids"]
    assert pyramids.network_settings.hidden_units == 512
    assert pyramids.network_settings.memory.sequence_length == 64
    assert pyramids.network_settings.memory.memory_size == 128
    assert {s.value for s in pyramids.reward_signals} == {"extrinsic", "curiosity"}
    hallway = options.behaviors["Hallway"]
    assert hallway.trainer_type == "sac"
    assert hallway.hyperparameters.init_entcoef == 0.1 and hallway.hyperparameters.tau == 0.005
    assert "beta" not in raw["behaviors"]["Hallway"]["hyperparameters"]  # a PPO-only key

    parameters = options.environment_parameters
    mass = parameters["mass"].curriculum[0].value
    assert isinstance(mass, UniformSettings) and (mass.min_value, mass.max_value) == (0.5, 10)
    gravity = parameters["gravity"].curriculum[0].value  # sampler wins over the curriculum
    assert isinstance(gravity, MultiRangeUniformSettings)
    assert [list(i) for i in gravity.intervals] == [[7, 10], [15, 20]]
    assert isinstance(parameters["length"].curriculum[0].value, GaussianSettings)
    lessons = parameters["scale"].curriculum
    assert [lesson.name for lesson in lessons] == ["Lesson0", "Lesson1", "Lesson2"]
    assert [lesson.value.value for lesson in lessons] == [0.5, 1.0, 2.0]
    first = lessons[0].completion_criteria
    assert first.behavior == "3DBall" and first.measure.value == "reward"
    assert first.threshold == 0.5 and first.min_lesson_length == 100 and first.signal_smoothing
    assert lessons[1].completion_criteria.threshold == 1.0
    assert lessons[2].completion_criteria is None


def test_018_layout_moves_curriculum_and_samplers_into_environment_parameters(tmp_path):
    options, raw = upgrade(tmp_path, OLD / "trainer_config_0.18.yaml")
    assert set(raw) == {"behaviors", "environment_parameters"}
    wall = options.behaviors["WallJump"]
    assert wall.hyperparameters.batch_size == 128 and wall.network_settings.hidden_units == 256
    mass = raw["environment_parameters"]["mass"]
    assert mass == {
        "sampler_type": "uniform",
        "sampler_parameters": {"min_value": 0.5, "max_value": 10},
    }
    height = options.environment_parameters["big_wall_height"].curriculum
    assert [lesson.value.value for lesson in height] == [0.0, 4.0, 8.0]
    assert height[0].completion_criteria.measure.value == "progress"
    # scale has a sampler and a curriculum: the sampler stays.
    assert isinstance(options.environment_parameters["scale"].curriculum[0].value, GaussianSettings)


def test_a_current_config_only_gets_its_behaviors_resolved():
    current = {"behaviors": {"Ball": {"trainer_type": "sac", "max_steps": 1000}}}
    converted = convert(current, None, None)
    assert set(converted) == {"behaviors"}
    assert converted["behaviors"]["Ball"]["max_steps"] == 1000
    assert converted["behaviors"]["Ball"]["hyperparameters"]["buffer_size"] == 50000


def test_a_behavior_without_trainer_is_refused():
    with pytest.raises(TrainerConfigError, match="'Ball' names no trainer"):
        convert_behaviors({"Ball": {"batch_size": 32}})


def test_cli_reports_a_bad_config_in_one_line_and_exits_2(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text("Ball:\n  trainer: ppo\n  batch_size: not-a-number\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(old), str(tmp_path / "new.yaml")])
    assert exit_info.value.code == 2
    assert "batch_size" in capsys.readouterr().err
    assert not (tmp_path / "new.yaml").exists()


def test_sampler_and_none_helpers():
    assert convert_samplers(
        {"resampling-interval": 10, "x": {"sampler-type": "gaussian", "mean": 1}}
    ) == {"x": {"sampler_type": "gaussian", "sampler_parameters": {"mean": 1}}}
    assert remove_nones({"a": None, "b": {"c": None, "d": 1}}) == {"b": {"d": 1}}


def test_runs_as_a_module(tmp_path):
    out = tmp_path / "new.yaml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlagents_fast.trainers.upgrade_config",
            str(OLD / "trainer_config_0.18.yaml"),
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert "WallJump" in yaml.safe_load(out.read_text())["behaviors"]


ANCHOR_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from mlagents.plugins.trainer_type import register_trainer_plugins
    register_trainer_plugins()
    from mlagents.trainers.cli_utils import load_config
    from mlagents.trainers.upgrade_config import convert, remove_nones
    config = convert(load_config(sys.argv[1]), None, None)
    print(json.dumps(remove_nones(config)["behaviors"]))
    """
)


@pytest.mark.skipif(not ANCHOR_PYTHON.exists(), reason="ML-Agents 1.1.0 anchor venv not built")
def test_converted_behaviors_equal_ml_agents_conversion(tmp_path):
    script = tmp_path / "convert.py"
    script.write_text(ANCHOR_SCRIPT)
    theirs = subprocess.run(
        [str(ANCHOR_PYTHON), str(script), str(OLD / "trainer_config_0.16.yaml")],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    ours = remove_nones(convert(load_config(str(OLD / "trainer_config_0.16.yaml")), None, None))
    expected = json.loads(theirs.stdout.strip().splitlines()[-1])
    assert json.loads(json.dumps(ours["behaviors"])) == expected
