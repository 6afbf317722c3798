"""The mlagents-learn command line: flags, defaults, overriding the YAML, errors."""

import logging
import os
import subprocess
import sys
import textwrap

import pytest
from mlagents_fast.trainers import cli_utils
from mlagents_fast.trainers.cli_utils import parse_args, parse_command_line
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings import RunOptions
from repo_paths import CONFIG_DIR

BALL = os.path.join(CONFIG_DIR, "ppo", "3DBall.yaml")


@pytest.fixture
def yaml_with_run_settings(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            behaviors:
              Ball:
                trainer_type: ppo
            env_settings:
              env_path: from_yaml
              seed: 5
              num_envs: 3
            checkpoint_settings:
              run_id: yaml_run
              results_dir: yaml_results
            engine_settings:
              time_scale: 1.0
            torch_settings:
              device: cuda
            debug: true
            """
        )
    )
    return str(config)


# (flag and its arguments, section of RunOptions or None for the top level, field, value)
FLAG_CASES = [
    (["--env", "path/to/env"], "env_settings", "env_path", "path/to/env"),
    (["--resume"], "checkpoint_settings", "resume", True),
    (["--force"], "checkpoint_settings", "force", True),
    (["--run-id", "abc"], "checkpoint_settings", "run_id", "abc"),
    (["--initialize-from", "old"], "checkpoint_settings", "initialize_from", "old"),
    (["--seed", "42"], "env_settings", "seed", 42),
    (["--inference"], "checkpoint_settings", "inference", True),
    (["--base-port", "7000"], "env_settings", "base_port", 7000),
    (["--env", "e", "--num-envs", "4"], "env_settings", "num_envs", 4),
    (["--num-areas", "2"], "env_settings", "num_areas", 2),
    (["--debug"], None, "debug", True),
    (["--max-lifetime-restarts", "-1"], "env_settings", "max_lifetime_restarts", -1),
    (["--restarts-rate-limit-n", "5"], "env_settings", "restarts_rate_limit_n", 5),
    (
        ["--restarts-rate-limit-period-s", "30"],
        "env_settings",
        "restarts_rate_limit_period_s",
        30,
    ),
    (["--results-dir", "out"], "checkpoint_settings", "results_dir", "out"),
    (["--timeout-wait", "120"], "env_settings", "timeout_wait", 120),
    (["--width", "640"], "engine_settings", "width", 640),
    (["--height", "480"], "engine_settings", "height", 480),
    (["--quality-level", "0"], "engine_settings", "quality_level", 0),
    (["--time-scale", "1.5"], "engine_settings", "time_scale", 1.5),
    (["--target-frame-rate", "30"], "engine_settings", "target_frame_rate", 30),
    (["--capture-frame-rate", "24"], "engine_settings", "capture_frame_rate", 24),
    (["--no-graphics"], "engine_settings", "no_graphics", True),
    (["--no-graphics-monitor"], "engine_settings", "no_graphics_monitor", True),
    (["--torch-device", "cpu"], "torch_settings", "device", "cpu"),
    (["--load"], "checkpoint_settings", "load_model", True),
    (["--train"], "checkpoint_settings", "train_model", True),
]


@pytest.mark.parametrize("argv, section, field, value", FLAG_CASES, ids=lambda v: str(v))
def test_each_flag_lands_in_its_setting(argv, section, field, value):
    options = parse_command_line([BALL, *argv])
    holder = options if section is None else getattr(options, section)
    assert getattr(holder, field) == value
    assert type(getattr(holder, field)) is type(value)


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--help"])
    assert info.value.code == 0
    shown = capsys.readouterr().out
    flags = {flag for argv, _, _, _ in FLAG_CASES for flag in argv if flag.startswith("--")}
    flags -= {"--load", "--train"}  # deprecated: accepted but hidden, as in ML-Agents
    flags |= {"--env-args", "--deterministic", "--torch", "--tensorflow"}
    missing = sorted(flag for flag in flags if flag not in shown)
    assert missing == []
    assert "--load" not in shown and "--train " not in shown


def test_defaults_without_flags_or_file():
    options = parse_command_line([])
    assert options.checkpoint_settings.run_id == "ppo"
    assert options.checkpoint_settings.results_dir == "results"
    assert options.env_settings.seed == -1
    assert options.env_settings.base_port == 5005
    assert options.engine_settings.time_scale == 20
    assert options.engine_settings.width == options.engine_settings.height == 84
    assert options.torch_settings.device is None
    assert options.debug is False
    assert dict(options.behaviors) == {}


def test_the_yaml_values_stay_when_no_flag_is_given(yaml_with_run_settings):
    options = parse_command_line([yaml_with_run_settings])
    assert options.env_settings.env_path == "from_yaml"
    assert options.env_settings.seed == 5
    assert options.env_settings.num_envs == 3
    assert options.checkpoint_settings.run_id == "yaml_run"
    assert options.engine_settings.time_scale == 1.0
    assert options.torch_settings.device == "cuda"
    assert options.debug is True
    # Untouched fields of a section the file sets keep their defaults.
    assert options.env_settings.base_port == 5005


def test_only_flags_the_user_gave_override_the_yaml(yaml_with_run_settings):
    options = parse_command_line(
        [yaml_with_run_settings, "--seed", "9", "--time-scale", "3", "--run-id", "ppo"]
    )
    assert options.env_settings.seed == 9
    assert options.engine_settings.time_scale == 3.0
    # Given explicitly, even a value equal to the flag's default wins over the file.
    assert options.checkpoint_settings.run_id == "ppo"
    # Not given: the file's values stay.
    assert options.env_settings.num_envs == 3
    assert options.checkpoint_settings.results_dir == "yaml_results"
    assert options.torch_settings.device == "cuda"


def test_earlier_parses_do_not_leak_into_later_ones(yaml_with_run_settings):
    parse_command_line([yaml_with_run_settings, "--seed", "9"])
    options = parse_command_line([yaml_with_run_settings])
    assert options.env_settings.seed == 5


def test_env_args_take_the_rest_of_the_line():
    options = parse_command_line(
        [BALL, "--env", "e", "--env-args", "--seed", "3", "-batchmode", "--run-id", "x"]
    )
    assert options.env_settings.env_args == ["--seed", "3", "-batchmode", "--run-id", "x"]
    assert options.env_settings.seed == -1
    assert options.checkpoint_settings.run_id == "ppo"


def test_deprecated_load_is_recorded_but_does_not_resume_as_in_mlagents():
    # ML-Agents 1.1.0 computes resume = resume or load_model but applies it only when --resume
    # itself was given, so --load alone leaves resume False (the reference test pins this).
    options = parse_command_line([BALL, "--load"])
    assert options.checkpoint_settings.load_model is True
    assert options.checkpoint_settings.resume is False
    assert parse_command_line([BALL, "--load", "--resume"]).checkpoint_settings.resume is True


def test_removed_flags_only_warn(caplog):
    with caplog.at_level(logging.WARNING):
        options = parse_command_line([BALL, "--torch", "--tensorflow"])
    assert "The command line argument --torch was removed." in caplog.text
    assert "The command line argument --tensorflow was removed." in caplog.text
    assert options == parse_command_line([BALL])


def test_deterministic_flag_applies_to_every_behavior():
    wall_jump = os.path.join(CONFIG_DIR, "ppo", "WallJump.yaml")
    options = parse_command_line([wall_jump, "--deterministic"])
    assert len(options.behaviors) == 2
    assert all(b.network_settings.deterministic for b in options.behaviors.values())
    assert not any(
        b.network_settings.deterministic for b in parse_command_line([wall_jump]).behaviors.values()
    )


def test_command_line_resume_beats_initialize_from_in_the_file(tmp_path, caplog):
    config = tmp_path / "init.yaml"
    config.write_text("checkpoint_settings:\n  initialize_from: older\n")
    with caplog.at_level(logging.WARNING):
        options = parse_command_line([str(config), "--resume"])
    assert options.checkpoint_settings.resume is True
    assert options.checkpoint_settings.initialize_from is None


def test_resume_priority_uses_the_flags_of_the_namespace_being_converted(tmp_path):
    config = tmp_path / "init.yaml"
    config.write_text("checkpoint_settings:\n  initialize_from: older\n  resume: true\n")
    given_resume = parse_args([str(config), "--initialize-from", "newer"])
    parse_args([str(config), "--resume"])  # a later parse must not change the first one's flags
    options = RunOptions.from_argparse(given_resume)
    assert options.checkpoint_settings.initialize_from == "newer"
    assert options.checkpoint_settings.resume is False


def test_command_line_initialize_from_beats_resume_in_the_file(tmp_path):
    config = tmp_path / "resume.yaml"
    config.write_text("checkpoint_settings:\n  resume: true\n")
    options = parse_command_line([str(config), "--initialize-from", "older"])
    assert options.checkpoint_settings.resume is False
    assert options.checkpoint_settings.initialize_from == "older"


def test_several_envs_without_an_executable_is_a_config_error():
    with pytest.raises(TrainerConfigError, match="num_envs must be 1"):
        parse_command_line([BALL, "--num-envs", "2"])


def test_untyped_flags_with_text_that_is_not_a_number_are_config_errors():
    with pytest.raises(TrainerConfigError) as info:
        parse_command_line([BALL, "--timeout-wait", "soon"])
    assert info.value.key_path == ["env_settings", "timeout_wait"]


def test_typed_flag_with_a_bad_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--seed", "abc"])
    assert info.value.code == 2
    assert "--seed" in capsys.readouterr().err


def test_unknown_flag_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        parse_args(["--learning-rate", "3"])
    assert info.value.code == 2


# load_config #############################################################################
def test_missing_config_file_names_the_absolute_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TrainerConfigError) as info:
        cli_utils.load_config(str(missing))
    assert str(missing) in str(info.value)


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("behaviors:\n  Ball: [unclosed\n")
    with pytest.raises(TrainerConfigError) as info:
        cli_utils.load_config(str(broken))
    message = str(info.value)
    assert str(broken) in message and "line" in message


def test_config_that_is_not_utf8_is_rejected(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("behaviors:\n  B\xe4ll: {}\n".encode("latin-1"))
    with pytest.raises(TrainerConfigError, match="UTF-8"):
        cli_utils.load_config(str(latin))


def test_a_file_whose_top_is_not_a_mapping_is_rejected(tmp_path):
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(TrainerConfigError, match="mapping"):
        parse_command_line([str(listing)])


def test_an_empty_file_configures_nothing(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert parse_command_line([str(empty)]) == parse_command_line([])


# run_cli_or_exit, in a subprocess as the CLI runs ##########################################
def _run_cli(argv, body="print('ran', options.checkpoint_settings.run_id)"):
    script = textwrap.dedent(
        f"""\
        import sys
        from mlagents_fast.trainers.cli_utils import run_cli_or_exit

        def main(options):
            {body}

        run_cli_or_exit(main, sys.argv[1:], prog="mlagents-learn")
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.smoke
def test_cli_runs_main_with_the_parsed_options():
    result = _run_cli([BALL, "--run-id", "cli_run"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran cli_run"


@pytest.mark.smoke
def test_cli_config_error_is_one_line_and_exit_code_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("behaviors:\n  Ball:\n    trainer_type: dqn\n")
    result = _run_cli([str(config)])
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mlagents-learn: error: ")
    assert str(config) in lines[0] and "'dqn'" in lines[0] and "'ppo'" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.smoke
def test_cli_missing_file_is_one_line_and_exit_code_2(tmp_path):
    result = _run_cli([str(tmp_path / "absent.yaml")])
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "could not be found" in result.stderr


@pytest.mark.smoke
def test_cli_config_error_raised_by_main_is_reported_the_same_way():
    body = "options.behaviors['NotInTheFile']"
    result = _run_cli([BALL], body=body)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "NotInTheFile" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.smoke
def test_cli_warns_about_deprecated_load_and_train():
    result = _run_cli([BALL, "--load", "--train"], body="pass")
    assert result.returncode == 0
    assert "--load option has been deprecated" in result.stderr
    assert "--train option has been deprecated" in result.stderr
