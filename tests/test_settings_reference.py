"""Every ML-Agents example config loads here exactly as in ML-Agents 1.1.0.

The ground truth, tests/fixtures/mlagents-1.1.0-settings.json, was written by
tests/fixtures/make_mlagents_settings_reference.py running ML-Agents 1.1.0 itself (the anchor
venv) over the example configs shipped in config/ (byte-for-byte copies of ML-Agents' own,
see config/README.md).
"""

import json
import logging
import os

import attr
import pytest
import yaml
from mlagents_fast.trainers import cli_utils
from mlagents_fast.trainers.settings import (
    CheckpointSettings,
    EngineSettings,
    EnvironmentSettings,
    RunOptions,
    TorchSettings,
    TrainerSettings,
)
from mlagents_fast.trainers.settings.converter import EXTENSION_METADATA
from repo_paths import CONFIG_DIR, FIXTURES

with open(os.path.join(FIXTURES, "mlagents-1.1.0-settings.json"), encoding="utf-8") as _file:
    REFERENCE = json.load(_file)

CONFIG_NAMES = sorted(REFERENCE["configs"])


def _plain(value):
    """What a value looks like after a trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _config_path(name):
    return os.path.join(CONFIG_DIR, name)


def test_reference_covers_every_config_file():
    on_disk = sorted(
        os.path.relpath(os.path.join(root, name), CONFIG_DIR)
        for root, _, names in os.walk(CONFIG_DIR)
        for name in names
        if name.endswith(".yaml")
    )
    assert len(on_disk) == 33
    assert CONFIG_NAMES == on_disk


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_from_dict_matches_mlagents(name, caplog):
    expected = REFERENCE["configs"][name]
    with caplog.at_level(logging.WARNING):
        options = RunOptions.from_dict(cli_utils.load_config(_config_path(name)))
    assert _plain(options.as_dict()) == expected["from_dict"]
    warned = [record.getMessage() for record in caplog.records]
    assert warned == expected["from_dict_warnings"]


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_parse_command_line_matches_mlagents(name):
    options = cli_utils.parse_command_line([_config_path(name)])
    assert _plain(options.as_dict()) == REFERENCE["configs"][name]["parse_command_line"]


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_as_dict_yaml_round_trip_gives_equal_options(name, tmp_path):
    options = cli_utils.parse_command_line([_config_path(name)])
    written = tmp_path / "configuration.yaml"
    written.write_text(yaml.safe_dump(options.as_dict(), sort_keys=False))
    reloaded = RunOptions.from_dict(cli_utils.load_config(str(written)))
    assert reloaded == options
    assert reloaded.as_dict() == options.as_dict()


@pytest.mark.parametrize(
    "case", REFERENCE["command_lines"], ids=lambda case: " ".join(case["argv"]) or "(none)"
)
def test_command_line_matches_mlagents(case, caplog):
    argv = [_config_path(arg[1:-1]) if arg.startswith("{") else arg for arg in case["argv"]]
    with caplog.at_level(logging.WARNING):
        options = cli_utils.parse_command_line(argv)
    assert _plain(options.as_dict()) == case["as_dict"]
    warned = [record.getMessage() for record in caplog.records]
    assert warned == case["warnings"]


def _extension_options():
    """mlagents-fast's own options (metadata EXTENSION_METADATA) and their defaults."""
    return {
        field.name: field.default
        for section in (EnvironmentSettings, EngineSettings, CheckpointSettings, TorchSettings)
        for field in attr.fields(section)
        if field.metadata.get(EXTENSION_METADATA)
    }


def test_parser_defaults_match_mlagents():
    namespace = cli_utils.parse_args([])
    ours = {key: value for key, value in vars(namespace).items() if not key.startswith("_")}
    extensions = _extension_options()
    assert set(extensions) == {"env_workers", "ray_address", "ray_cpus_per_env"}
    # Every mlagents-learn flag with its default, and the extensions with theirs.
    assert {k: v for k, v in ours.items() if k not in extensions} == REFERENCE["defaults"]["parser"]
    assert {k: v for k, v in ours.items() if k in extensions} == extensions


def test_extension_options_are_written_only_when_set_and_round_trip(tmp_path):
    options = cli_utils.parse_command_line(
        ["--env", "builtin:3DBall", "--env-workers", "ray", "--ray-address", "auto"]
    )
    written = options.as_dict()["env_settings"]
    assert written["env_workers"] == "ray" and written["ray_address"] == "auto"
    assert "ray_cpus_per_env" not in written  # at its default: as ML-Agents writes the section
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump(options.as_dict(), sort_keys=False))
    reloaded = RunOptions.from_dict(cli_utils.load_config(str(path)))
    assert reloaded == options
    assert "env_workers" not in RunOptions().as_dict()["env_settings"]


@pytest.mark.parametrize("trainer_type", ["ppo", "sac", "poca"])
def test_trainer_defaults_match_mlagents(trainer_type):
    ours = TrainerSettings(trainer_type=trainer_type).as_dict()
    assert _plain(ours) == REFERENCE["defaults"]["trainer_settings"][trainer_type]


def test_run_options_defaults_match_mlagents():
    assert _plain(RunOptions().as_dict()) == REFERENCE["defaults"]["run_options"]
