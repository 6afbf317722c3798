"""EnvironmentParameterManager: lesson progression rules, sampler seeds, resume state."""

import json
import logging
import os

import pytest
from mlagents_fast.trainers.cli_utils import load_config
from mlagents_fast.trainers.environment_parameter_manager import (
    LESSON_NUM_KEY,
    SMOOTHED_VALUE_KEY,
    EnvironmentParameterManager,
)
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings import (
    ConstantSettings,
    ParameterRandomizationSettings,
    RunOptions,
    UniformSettings,
)
from mlagents_fast.trainers.training_status import GlobalTrainingStatus
from repo_paths import CONFIG_DIR, FIXTURES

with open(os.path.join(FIXTURES, "mlagents-1.1.0-settings.json"), encoding="utf-8") as _file:
    TRACE = json.load(_file)["curriculum_trace"]


@pytest.fixture(autouse=True)
def _clean_training_status():
    """The manager mirrors its state into the process-wide status; each test starts empty."""
    GlobalTrainingStatus.reset()
    yield
    GlobalTrainingStatus.reset()


class FakeChannel:
    def __init__(self):
        self.calls = []

    def set_float_parameter(self, key, value):
        self.calls.append(("float", key, value))

    def set_uniform_sampler_parameters(self, key, min_value, max_value, seed):
        self.calls.append(("uniform", key, min_value, max_value, seed))

    def set_gaussian_sampler_parameters(self, key, mean, st_dev, seed):
        self.calls.append(("gaussian", key, mean, st_dev, seed))

    def set_multirangeuniform_sampler_parameters(self, key, intervals, seed):
        self.calls.append(("multirange", key, intervals, seed))


def _lesson(name, value, behavior=None, **criteria):
    lesson = {"name": name, "value": value}
    if behavior is not None:
        lesson["completion_criteria"] = {"behavior": behavior, **criteria}
    return lesson


def _manager(parameters, behaviors=("A", "B"), run_seed=0, **kwargs):
    options = RunOptions.from_dict(
        {"behaviors": {name: {} for name in behaviors}, "environment_parameters": parameters}
    )
    return EnvironmentParameterManager(options.environment_parameters, run_seed, **kwargs)


def _update(manager, steps=None, max_steps=None, rewards=None):
    steps = steps if steps is not None else {"A": 0, "B": 0}
    max_steps = max_steps if max_steps is not None else dict.fromkeys(steps, 100)
    rewards = rewards if rewards is not None else {name: [] for name in steps}
    return manager.update_lessons(steps, max_steps, rewards)


def _two_lessons(behavior="A", **criteria):
    return {"curriculum": [_lesson("first", 1.0, behavior, **criteria), _lesson("second", 2.0)]}


# Matches ML-Agents 1.1.0 step by step #####################################################
def test_update_lessons_replays_mlagents_exactly():
    options = RunOptions.from_dict(TRACE["config"])
    manager = EnvironmentParameterManager(options.environment_parameters, TRACE["run_seed"])

    def snapshot():
        return {
            "lessons": manager.get_current_lesson_number(),
            "smoothed": {
                name: entry[SMOOTHED_VALUE_KEY] for name, entry in manager.export_state().items()
            },
            "samplers": {
                name: json.loads(json.dumps(ParameterRandomizationSettings.unstructure(sampler)))
                for name, sampler in manager.get_current_samplers().items()
            },
        }

    assert snapshot() == TRACE["initial"]
    for name, size in TRACE["minimum_reward_buffer_size"].items():
        assert manager.get_minimum_reward_buffer_size(name) == size
    changes = 0
    for index, call in enumerate(TRACE["calls"]):
        updated, must_reset = manager.update_lessons(**call["inputs"])
        assert (updated, must_reset) == (call["updated"], call["must_reset"]), index
        ours = snapshot()
        assert ours["lessons"] == call["lessons"], index
        assert ours["samplers"] == call["samplers"], index
        assert ours["smoothed"] == pytest.approx(call["smoothed"]), index
        changes += updated
    # The trace exercises reward and progress lessons, and resets.
    assert changes == 4
    assert any(call["must_reset"] for call in TRACE["calls"])


# Progression rules #######################################################################
def test_progress_lesson_advances_once_progress_passes_the_threshold():
    manager = _manager({"wall": _two_lessons(measure="progress", threshold=0.5)})
    assert _update(manager, steps={"A": 50}) == (False, False)
    assert manager.get_current_lesson_number() == {"wall": 0}
    assert _update(manager, steps={"A": 51}) == (True, False)
    assert manager.get_current_lesson_number() == {"wall": 1}
    assert manager.get_current_samplers() == {"wall": ConstantSettings(value=2.0, seed=1)}
    # The last lesson never ends.
    assert _update(manager, steps={"A": 100}) == (False, False)


def test_lessons_advance_one_at_a_time():
    manager = _manager(
        {
            "wall": {
                "curriculum": [
                    _lesson("a", 1.0, "A", measure="progress", threshold=0.1),
                    _lesson("b", 2.0, "A", measure="progress", threshold=0.2),
                    _lesson("c", 3.0),
                ]
            }
        }
    )
    assert _update(manager, steps={"A": 90}) == (True, False)
    assert manager.get_current_lesson_names() == {"wall": "b"}
    assert _update(manager, steps={"A": 90}) == (True, False)
    assert manager.get_current_lesson_names() == {"wall": "c"}


def test_reward_lesson_uses_the_smoothed_mean_reward():
    manager = _manager({"wall": _two_lessons(measure="reward", threshold=0.7)})
    # smoothed = 0.25 * 0 + 0.75 * 0.8 = 0.6
    assert _update(manager, rewards={"A": [0.8]}) == (False, False)
    assert manager.export_state()["wall"][SMOOTHED_VALUE_KEY] == pytest.approx(0.6)
    # smoothed = 0.25 * 0.6 + 0.75 * 0.8 = 0.75 > 0.7
    assert _update(manager, rewards={"A": [0.6, 1.0]}) == (True, False)
    assert manager.export_state()["wall"][SMOOTHED_VALUE_KEY] == pytest.approx(0.75)


def test_reward_lesson_without_smoothing_uses_the_mean_alone():
    manager = _manager(
        {"wall": _two_lessons(measure="reward", threshold=0.7, signal_smoothing=False)}
    )
    assert _update(manager, rewards={"A": [0.8]}) == (True, False)


def test_min_lesson_length_waits_for_enough_episodes():
    manager = _manager(
        {"wall": _two_lessons(measure="progress", threshold=0.0, min_lesson_length=3)}
    )
    assert _update(manager, steps={"A": 99}, rewards={"A": [1.0, 1.0]}) == (False, False)
    assert _update(manager, steps={"A": 99}, rewards={"A": [1.0, 1.0, 1.0]}) == (True, False)
    assert manager.get_minimum_reward_buffer_size("A") == 3
    assert manager.get_minimum_reward_buffer_size("B") == 1


def test_progress_and_reward_measures_differ_on_the_same_inputs():
    progress = _manager({"wall": _two_lessons(measure="progress", threshold=0.5)})
    reward = _manager({"wall": _two_lessons(measure="reward", threshold=0.5)})
    inputs = {"steps": {"A": 90}, "rewards": {"A": [0.0]}}
    assert _update(progress, **inputs)[0] is True
    assert _update(reward, **inputs)[0] is False


def test_parameters_tied_to_different_behaviors_advance_independently():
    manager = _manager(
        {
            "wall": _two_lessons("A", measure="progress", threshold=0.5),
            "goal": _two_lessons("B", measure="progress", threshold=0.5),
        }
    )
    assert _update(manager, steps={"A": 80, "B": 10}) == (True, False)
    assert manager.get_current_lesson_number() == {"wall": 1, "goal": 0}
    # B's trainer has not reported yet: its parameter waits.
    assert _update(manager, steps={"A": 100}) == (False, False)
    assert _update(manager, steps={"A": 100, "B": 60}) == (True, False)
    assert manager.get_current_lesson_number() == {"wall": 1, "goal": 1}


def test_require_reset_is_reported_only_for_lessons_that_ask_for_it():
    manager = _manager(
        {
            "wall": _two_lessons("A", measure="progress", threshold=0.5, require_reset=True),
            "goal": _two_lessons("B", measure="progress", threshold=0.5),
        }
    )
    assert _update(manager, steps={"A": 0, "B": 60}) == (True, False)
    assert _update(manager, steps={"A": 60, "B": 60}) == (True, True)


def test_a_lesson_change_is_announced(caplog):
    manager = _manager({"wall": _two_lessons(measure="progress", threshold=0.5)})
    with caplog.at_level(logging.INFO):
        _update(manager, steps={"A": 60})
    assert "Parameter 'wall' is in lesson 'second' and has value 'Float: value=2.0'" in caplog.text


def test_no_parameters_means_nothing_to_do():
    manager = EnvironmentParameterManager()
    assert manager.get_current_samplers() == {}
    assert manager.update_lessons({"A": 5}, {"A": 10}, {"A": [1.0]}) == (False, False)
    assert manager.export_state() == {}


# Seeds and sending ########################################################################
def test_samplers_without_a_seed_get_consecutive_run_seeds_and_the_settings_stay_unchanged():
    options = RunOptions.from_dict(
        {
            "environment_parameters": {
                "mass": {"sampler_type": "uniform", "sampler_parameters": {}},
                "scale": {"sampler_type": "uniform", "sampler_parameters": {"seed": 9}},
                "size": 3.0,
            }
        }
    )
    manager = EnvironmentParameterManager(options.environment_parameters, run_seed=100)
    samplers = manager.get_current_samplers()
    assert samplers["mass"].seed == 100
    assert samplers["scale"].seed == 9
    assert samplers["size"].seed == 101
    assert options.environment_parameters["mass"].curriculum[0].value.seed == -1


def test_apply_sends_the_current_lesson_of_every_parameter():
    manager = _manager(
        {
            "wall": _two_lessons(measure="progress", threshold=0.5),
            "mass": {
                "sampler_type": "uniform",
                "sampler_parameters": {"min_value": 1, "max_value": 2},
            },
        },
        run_seed=10,
    )
    channel = FakeChannel()
    manager.apply(channel)
    _update(manager, steps={"A": 60})
    manager.apply(channel)
    assert channel.calls == [
        ("float", "wall", 1.0),
        ("uniform", "mass", 1.0, 2.0, 12),
        ("float", "wall", 2.0),
        ("uniform", "mass", 1.0, 2.0, 12),
    ]
    assert isinstance(manager.get_current_samplers()["mass"], UniformSettings)


# Resume ##################################################################################
def test_exported_state_restores_lessons_and_smoothing_on_resume():
    parameters = {
        "wall": _two_lessons("A", measure="progress", threshold=0.5),
        "goal": _two_lessons("B", measure="reward", threshold=5.0),
    }
    manager = _manager(parameters)
    _update(manager, steps={"A": 60, "B": 0}, rewards={"A": [], "B": [2.0]})
    saved = json.loads(json.dumps(manager.export_state()))
    assert saved == {
        "wall": {LESSON_NUM_KEY: 1, SMOOTHED_VALUE_KEY: 0.0},
        "goal": {LESSON_NUM_KEY: 0, SMOOTHED_VALUE_KEY: 1.5},
    }
    resumed = _manager(parameters, restore=True, restored_state=saved)
    assert resumed.export_state() == saved
    # The smoothing continues from where it was: 0.25 * 1.5 + 0.75 * 2.0 = 1.875.
    _update(resumed, steps={"A": 60, "B": 0}, rewards={"A": [], "B": [2.0]})
    assert resumed.export_state()["goal"][SMOOTHED_VALUE_KEY] == pytest.approx(1.875)
    # Without restore, the saved state is not used.
    fresh = _manager(parameters, restore=False, restored_state=saved)
    assert fresh.get_current_lesson_number() == {"wall": 0, "goal": 0}


def test_lesson_state_is_saved_in_training_status_json_and_resumed_from_it(tmp_path):
    parameters = {
        "wall": _two_lessons("A", measure="progress", threshold=0.5),
        "goal": _two_lessons("B", measure="reward", threshold=5.0),
    }
    manager = _manager(parameters)
    assert GlobalTrainingStatus.saved_state["wall"] == {LESSON_NUM_KEY: 0, SMOOTHED_VALUE_KEY: 0.0}
    _update(manager, steps={"A": 60, "B": 0}, rewards={"A": [], "B": [2.0]})
    status_file = tmp_path / "run_logs" / "training_status.json"
    GlobalTrainingStatus.save_state(str(status_file))
    saved = json.loads(status_file.read_text())
    assert saved["wall"] == {LESSON_NUM_KEY: 1, SMOOTHED_VALUE_KEY: 0.0}
    assert saved["goal"] == {LESSON_NUM_KEY: 0, SMOOTHED_VALUE_KEY: 1.5}

    # A new process: --resume loads the file, then the manager is built with restore=True.
    GlobalTrainingStatus.reset()
    GlobalTrainingStatus.load_state(str(status_file))
    resumed = _manager(parameters, restore=True)
    assert resumed.get_current_lesson_number() == {"wall": 1, "goal": 0}
    assert resumed.export_state() == manager.export_state()
    assert resumed.get_current_samplers()["wall"].value == 2.0

    # Without --resume, a loaded status is not used and is overwritten with lesson 0.
    fresh = _manager(parameters, restore=False)
    assert fresh.get_current_lesson_number() == {"wall": 0, "goal": 0}
    assert GlobalTrainingStatus.saved_state["wall"][LESSON_NUM_KEY] == 0


def test_a_status_file_from_mlagents_without_smoothing_resumes_the_lessons():
    GlobalTrainingStatus.saved_state["wall"] = {LESSON_NUM_KEY: 1}
    resumed = _manager({"wall": _two_lessons()}, restore=True)
    assert resumed.export_state() == {"wall": {LESSON_NUM_KEY: 1, SMOOTHED_VALUE_KEY: 0.0}}


def test_restoring_a_parameter_the_run_does_not_have_warns_and_ignores_it(caplog):
    manager = _manager({"wall": _two_lessons()})
    with caplog.at_level(logging.WARNING):
        manager.restore_state({"gone": {LESSON_NUM_KEY: 3}})
    assert "gone" in caplog.text
    assert manager.get_current_lesson_number() == {"wall": 0}


@pytest.mark.parametrize(
    "state, expected",
    [
        ({"wall": {LESSON_NUM_KEY: 2}}, "not a lesson of its curriculum"),
        ({"wall": {LESSON_NUM_KEY: -1}}, "not a lesson of its curriculum"),
        ({"wall": {LESSON_NUM_KEY: "1"}}, "not a lesson of its curriculum"),
        ({"wall": {LESSON_NUM_KEY: True}}, "not a lesson of its curriculum"),
        ({"wall": {SMOOTHED_VALUE_KEY: float("nan")}}, "not a finite number"),
        ({"wall": 1}, "must be a mapping"),
        ([1], "must be a mapping"),
    ],
)
def test_bad_saved_state_is_rejected_and_changes_nothing(state, expected):
    manager = _manager({"wall": _two_lessons(), "goal": _two_lessons()})
    if isinstance(state, dict):
        state = {"goal": {LESSON_NUM_KEY: 1}, **state}  # valid, but must not be applied
    with pytest.raises(TrainerConfigError, match=expected):
        manager.restore_state(state)
    assert manager.get_current_lesson_number() == {"wall": 0, "goal": 0}


# Bad curricula ###########################################################################
def test_criteria_on_a_behavior_that_is_not_training_warns_and_keeps_the_lesson(caplog):
    # As ML-Agents 1.1.0: no error; the lesson cannot end while its behavior is absent.
    options = RunOptions.from_dict(
        load_config(os.path.join(CONFIG_DIR, "ppo", "WallJump_curriculum.yaml"))
    )
    manager = EnvironmentParameterManager(options.environment_parameters, 0)
    with caplog.at_level(logging.WARNING):
        assert manager.validate_behaviors(["BigWallJump", "SmallWallJump"]) == []
    assert caplog.text == ""
    with caplog.at_level(logging.WARNING):
        assert manager.validate_behaviors(["BigWallJump"]) == ["SmallWallJump"]
    assert "'SmallWallJump', which is not training" in caplog.text
    assert "small_wall_height" in caplog.text
    # BigWallJump far past every threshold: only its own parameter moves.
    steps, rewards = {"BigWallJump": 10**9}, {"BigWallJump": [1.0] * 1000}
    for _ in range(3):
        manager.update_lessons(steps, {"BigWallJump": 1}, rewards)
    lessons = manager.get_current_lesson_number()
    assert lessons["small_wall_height"] == 0
    assert lessons["big_wall_height"] > 0


def test_a_curriculum_with_a_missing_criteria_is_refused_before_a_manager_exists():
    with pytest.raises(TrainerConfigError, match="non-terminal lesson"):
        _manager({"wall": {"curriculum": [_lesson("a", 1.0), _lesson("b", 2.0)]}})


def test_the_shared_wall_jump_curriculum_advances_with_progress():
    options = RunOptions.from_dict(
        load_config(os.path.join(CONFIG_DIR, "ppo", "WallJump_curriculum.yaml"))
    )
    manager = EnvironmentParameterManager(options.environment_parameters, 0)
    max_steps = {"BigWallJump": 20_000_000, "SmallWallJump": 5_000_000}
    rewards = {"BigWallJump": [0.0] * 100, "SmallWallJump": [0.0] * 100}
    steps = {"BigWallJump": 2_000_001, "SmallWallJump": 0}
    assert manager.update_lessons(steps, max_steps, rewards) == (True, False)
    assert manager.get_current_lesson_number() == {"big_wall_height": 1, "small_wall_height": 0}
    assert manager.get_current_samplers()["big_wall_height"] == UniformSettings(
        min_value=4.0, max_value=7.0, seed=1
    )
