"""Unit tests of mlagents_fast.trainers.settings: resolution rules and every bad-input case."""

import copy
import logging
import pickle
import struct

import attr
import pytest
import yaml
from mlagents_fast.exceptions import MlagentsFastError
from mlagents_fast.trainers import cli_utils
from mlagents_fast.trainers.exception import TrainerConfigError, TrainerConfigWarning
from mlagents_fast.trainers.settings import (
    BehavioralCloningSettings,
    CheckpointSettings,
    CompletionCriteriaSettings,
    ConstantSettings,
    CuriositySettings,
    EncoderType,
    EnvironmentParameterSettings,
    EnvironmentSettings,
    GAILSettings,
    GaussianSettings,
    HyperparamSettings,
    Lesson,
    MultiRangeUniformSettings,
    NetworkSettings,
    ParameterRandomizationSettings,
    POCASettings,
    PPOSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
    RunOptions,
    SACSettings,
    ScheduleType,
    SelfPlaySettings,
    TrainerSettings,
    UniformSettings,
    all_trainer_settings,
    deep_update_dict,
    register_trainer_type,
)


def _behavior(**overrides):
    config = {"trainer_type": "ppo"}
    config.update(overrides)
    return config


def _load(config):
    return RunOptions.from_dict(config)


def _error(config):
    with pytest.raises(TrainerConfigError) as info:
        _load(config)
    return info.value


class FakeChannel:
    """Records the calls an EnvironmentParametersChannel would get."""

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


# deep_update_dict ########################################################################
def test_deep_update_dict_merges_nested_mappings_and_replaces_the_rest():
    base = {"a": {"x": 1, "y": {"p": 1}}, "b": [1, 2], "c": 3}
    deep_update_dict(base, {"a": {"y": {"q": 2}, "z": 4}, "b": [3], "d": 5})
    assert base == {"a": {"x": 1, "y": {"p": 1, "q": 2}, "z": 4}, "b": [3], "c": 3, "d": 5}


# Errors ##################################################################################
def test_trainer_config_error_is_a_value_error_and_ours():
    assert issubclass(TrainerConfigError, ValueError)
    assert issubclass(TrainerConfigError, MlagentsFastError)
    assert issubclass(TrainerConfigWarning, Warning)


@pytest.mark.parametrize(
    "name, bases",
    [
        ("TrainerError", (MlagentsFastError,)),
        ("TrainerConfigError", (MlagentsFastError, ValueError)),
        ("CurriculumError", ("TrainerError",)),
        ("CurriculumLoadingError", ("CurriculumError",)),
        ("CurriculumConfigError", ("CurriculumError",)),
        ("MetaCurriculumError", ("TrainerError",)),
        ("SamplerException", ("TrainerError",)),
        ("UnityTrainerException", ("TrainerError",)),
    ],
)
def test_trainer_exceptions_keep_mlagents_names_and_hierarchy(name, bases):
    from mlagents_fast.trainers import exception

    cls = getattr(exception, name)
    for base in bases:
        base = getattr(exception, base) if isinstance(base, str) else base
        assert issubclass(cls, base)
    assert issubclass(cls, MlagentsFastError)


def test_error_message_names_the_key_path():
    error = _error({"behaviors": {"3DBall": _behavior(hyperparameters={"batch_szie": 64})}})
    assert error.key_path == ["behaviors", "3DBall", "hyperparameters", "batch_szie"]
    assert "behaviors.3DBall.hyperparameters.batch_szie" in str(error)
    assert "batch_size" in str(error)  # the valid options are listed


def test_error_message_names_the_file(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("behaviors:\n  Ball:\n    network_settings:\n      hidden_unit: 3\n")
    with pytest.raises(TrainerConfigError) as info:
        cli_utils.parse_command_line([str(config)])
    message = str(info.value)
    assert str(config) in message
    assert "behaviors.Ball.network_settings.hidden_unit" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "section, key",
    [
        ("env_settings", "num_env"),
        ("engine_settings", "fullscreen"),
        ("checkpoint_settings", "runid"),
        ("torch_settings", "gpu"),
    ],
)
def test_unknown_keys_in_each_section_are_rejected(section, key):
    error = _error({section: {key: 1}})
    assert error.key_path == [section, key]


def test_unknown_top_level_key_is_rejected_by_from_dict_and_the_cli(tmp_path):
    assert _error({"behaviours": {}}).key_path == ["behaviours"]
    config = tmp_path / "top.yaml"
    config.write_text("curriculum: {}\n")
    with pytest.raises(TrainerConfigError, match="curriculum"):
        cli_utils.parse_command_line([str(config)])


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("batch_size", "abc", "expected an integer"),
        ("batch_size", True, "expected an integer"),
        ("batch_size", 1.5, "expected an integer"),
        ("batch_size", [64], "expected an integer"),
        ("learning_rate", "fast", "expected a number"),
        ("learning_rate", None, "expected a number"),
        ("learning_rate_schedule", "cosine", "'constant', 'linear'"),
    ],
)
def test_wrong_hyperparameter_types_are_rejected(field, value, expected):
    error = _error({"behaviors": {"B": _behavior(hyperparameters={field: value})}})
    assert expected in error.message
    assert error.key_path == ["behaviors", "B", "hyperparameters", field]


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("normalize", "yes please", "expected true or false"),
        ("hidden_units", "many", "expected an integer"),
        ("memory", 128, "expected a mapping"),
    ],
)
def test_wrong_network_types_are_rejected(field, value, expected):
    error = _error({"behaviors": {"B": _behavior(network_settings={field: value})}})
    assert expected in error.message
    assert error.key_path == ["behaviors", "B", "network_settings", field]


def test_numbers_written_as_yaml_1_1_strings_are_read_as_numbers():
    options = _load(
        {
            "behaviors": {
                "B": _behavior(
                    hyperparameters={"learning_rate": "1e-3", "buffer_size": "1.0e4"},
                    max_steps="1.0e7",
                )
            }
        }
    )
    hyperparameters = options.behaviors["B"].hyperparameters
    assert hyperparameters.learning_rate == pytest.approx(1e-3)
    assert hyperparameters.buffer_size == 10000
    assert options.behaviors["B"].max_steps == 10_000_000


def test_max_steps_that_is_not_a_number_is_rejected():
    error = _error({"behaviors": {"B": _behavior(max_steps="forever")}})
    assert error.key_path == ["behaviors", "B", "max_steps"]


def test_a_behavior_that_is_not_a_mapping_is_rejected():
    error = _error({"behaviors": {"B": [1, 2]}})
    assert error.key_path == ["behaviors", "B"]


def test_a_behavior_with_nothing_under_it_gets_all_defaults():
    options = _load({"behaviors": {"B": None}})
    assert options.behaviors["B"] == TrainerSettings()


# Trainer types and hyperparameters #######################################################
@pytest.mark.parametrize(
    "trainer_type, cls", [("ppo", PPOSettings), ("sac", SACSettings), ("poca", POCASettings)]
)
def test_trainer_type_selects_the_hyperparameter_class(trainer_type, cls):
    options = _load({"behaviors": {"B": {"trainer_type": trainer_type}}})
    assert type(options.behaviors["B"].hyperparameters) is cls
    assert options.behaviors["B"].hyperparameters == cls()


def test_unknown_trainer_type_lists_the_known_ones():
    error = _error({"behaviors": {"B": {"trainer_type": "dqn"}}})
    assert error.key_path == ["behaviors", "B", "trainer_type"]
    for known in ("'ppo'", "'sac'", "'poca'"):
        assert known in error.message


def test_hyperparameters_without_trainer_type_are_rejected():
    error = _error({"behaviors": {"B": {"hyperparameters": {"batch_size": 32}}}})
    assert "no trainer_type" in error.message


def test_hyperparameter_of_another_trainer_type_is_rejected():
    error = _error({"behaviors": {"B": {"trainer_type": "sac", "hyperparameters": {"beta": 0.1}}}})
    assert error.key_path == ["behaviors", "B", "hyperparameters", "beta"]
    assert "SACSettings" in error.message


def test_partial_hyperparameters_take_the_rest_from_the_defaults():
    options = _load({"behaviors": {"B": _behavior(hyperparameters={"batch_size": 64})}})
    assert options.behaviors["B"].hyperparameters == PPOSettings(batch_size=64)


@pytest.mark.parametrize("trainer_type", ["ppo", "poca"])
def test_beta_and_epsilon_schedules_follow_the_learning_rate_schedule(trainer_type):
    options = _load(
        {
            "behaviors": {
                "Follow": {
                    "trainer_type": trainer_type,
                    "hyperparameters": {"learning_rate_schedule": "constant"},
                },
                "Own": {
                    "trainer_type": trainer_type,
                    "hyperparameters": {
                        "learning_rate_schedule": "constant",
                        "beta_schedule": "linear",
                    },
                },
                "Unset": {"trainer_type": trainer_type, "hyperparameters": {}},
            }
        }
    )
    follow = options.behaviors["Follow"].hyperparameters
    assert follow.beta_schedule == follow.epsilon_schedule == ScheduleType.CONSTANT
    own = options.behaviors["Own"].hyperparameters
    assert own.beta_schedule == ScheduleType.LINEAR
    assert own.epsilon_schedule == ScheduleType.CONSTANT
    unset = options.behaviors["Unset"].hyperparameters
    assert unset.learning_rate_schedule == unset.beta_schedule == ScheduleType.LINEAR


def test_sac_reward_signal_steps_per_update_defaults_to_steps_per_update():
    assert SACSettings(steps_per_update=10).reward_signal_steps_per_update == 10
    assert SACSettings().reward_signal_steps_per_update == 1
    assert SACSettings(steps_per_update=10, reward_signal_steps_per_update=3)


def test_framework_option_is_dropped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        options = _load({"behaviors": {"B": _behavior(framework="tensorflow")}})
    assert options.behaviors["B"] == TrainerSettings()
    assert "Framework option was deprecated" in caplog.text


def test_even_checkpoints_spreads_checkpoints_over_max_steps():
    options = _load(
        {"behaviors": {"B": _behavior(even_checkpoints=True, max_steps=1000, keep_checkpoints=4)}}
    )
    assert options.behaviors["B"].checkpoint_interval == 250


def test_even_checkpoints_with_no_checkpoints_kept_is_rejected():
    error = _error({"behaviors": {"B": _behavior(even_checkpoints=True, keep_checkpoints=0)}})
    assert "keep_checkpoints" in error.message


# Custom trainer types ####################################################################
@attr.s(auto_attribs=True)
class _MyHyperparameters(HyperparamSettings):
    temperature: float = 0.5


@pytest.fixture
def custom_trainer_type():
    register_trainer_type("my_trainer", _MyHyperparameters)
    yield "my_trainer"
    del all_trainer_settings["my_trainer"]


def test_a_registered_trainer_type_structures_its_own_hyperparameters(custom_trainer_type):
    options = _load(
        {
            "behaviors": {
                "B": {"trainer_type": custom_trainer_type, "hyperparameters": {"temperature": 2}}
            }
        }
    )
    assert options.behaviors["B"].hyperparameters == _MyHyperparameters(temperature=2.0)
    assert options.as_dict()["behaviors"]["B"]["hyperparameters"]["temperature"] == 2.0
    assert TrainerSettings(trainer_type=custom_trainer_type).hyperparameters == (
        _MyHyperparameters()
    )


@pytest.mark.parametrize("bad", [dict, PPOSettings(), "ppo"])
def test_registering_something_that_is_not_a_hyperparameter_class_fails(bad):
    with pytest.raises(TrainerConfigError):
        register_trainer_type("broken", bad)
    assert "broken" not in all_trainer_settings


# default_settings ########################################################################
def test_default_settings_apply_to_unnamed_behaviors_and_under_named_ones():
    options = _load(
        {
            "default_settings": {
                "trainer_type": "sac",
                "hyperparameters": {"batch_size": 32},
                "max_steps": 1000,
            },
            "behaviors": {"Named": {"hyperparameters": {"buffer_size": 500}, "max_steps": 9}},
        }
    )
    named = options.behaviors["Named"]
    assert named.trainer_type == "sac"
    assert named.hyperparameters == SACSettings(batch_size=32, buffer_size=500)
    assert named.max_steps == 9
    unnamed = options.behaviors["NeverMentioned"]
    assert unnamed.hyperparameters == SACSettings(batch_size=32)
    assert unnamed.max_steps == 1000
    assert unnamed is not options.behaviors["AlsoNew"]


def test_default_settings_do_not_leak_into_the_next_load():
    _load({"default_settings": {"max_steps": 7}, "behaviors": {}})
    later = _load({"behaviors": {"B": {}}})
    assert later.behaviors["B"].max_steps == 500000
    assert TrainerSettings.default_override is None


def test_behavior_not_in_the_file_is_an_error_without_default_settings(tmp_path):
    config = tmp_path / "one.yaml"
    config.write_text("behaviors:\n  Known:\n    trainer_type: ppo\n")
    options = cli_utils.parse_command_line([str(config)])
    with pytest.raises(TrainerConfigError, match="Unknown"):
        options.behaviors["Unknown"]


def test_without_a_file_any_behavior_gets_the_defaults(caplog):
    options = cli_utils.parse_command_line([])
    with caplog.at_level(logging.WARNING):
        assert options.behaviors["Anything"] == TrainerSettings()
    assert "A default configuration will be used" in caplog.text


def test_run_options_survive_deepcopy_and_pickle():
    # In memory only: multiprocessing pickles the options it hands to environment workers.
    options = _load(
        {
            "default_settings": {"max_steps": 11},
            "behaviors": {"B": {"hyperparameters": {"batch_size": 8}}},
            "environment_parameters": {"gravity": 9.8},
        }
    )
    for clone in (copy.deepcopy(options), pickle.loads(pickle.dumps(options))):
        assert clone == options
        assert clone.behaviors["Other"].max_steps == 11


# Network settings ########################################################################
@pytest.mark.parametrize("encoder", ["fully_connected", "match3", "simple", "nature_cnn", "resnet"])
def test_all_five_visual_encoders_are_accepted(encoder):
    options = _load({"behaviors": {"B": {"network_settings": {"vis_encode_type": encoder}}}})
    assert options.behaviors["B"].network_settings.vis_encode_type == EncoderType(encoder)


def test_unknown_visual_encoder_lists_the_valid_ones():
    error = _error({"behaviors": {"B": {"network_settings": {"vis_encode_type": "vit"}}}})
    assert "'resnet'" in error.message and "'match3'" in error.message


def test_memory_settings_are_structured_with_defaults():
    options = _load({"behaviors": {"B": {"network_settings": {"memory": {"memory_size": 64}}}}})
    memory = options.behaviors["B"].network_settings.memory
    assert memory == NetworkSettings.MemorySettings(sequence_length=64, memory_size=64)


@pytest.mark.parametrize("memory_size, expected", [(0, "greater than 0"), (7, "divisible by 2")])
def test_bad_memory_size_is_rejected(memory_size, expected):
    error = _error(
        {"behaviors": {"B": {"network_settings": {"memory": {"memory_size": memory_size}}}}}
    )
    assert expected in error.message
    assert error.key_path[:4] == ["behaviors", "B", "network_settings", "memory"]


def test_sequence_length_larger_than_batch_size_is_rejected():
    error = _error(
        {
            "behaviors": {
                "B": _behavior(
                    hyperparameters={"batch_size": 32},
                    network_settings={"memory": {"sequence_length": 64}},
                )
            }
        }
    )
    assert "sequence length must be less than or equal to batch size" in error.message
    assert "sequence_length=64" in error.message and "batch_size=32" in error.message


def test_goal_conditioning_and_deterministic_are_read():
    options = _load(
        {
            "behaviors": {
                "B": {"network_settings": {"goal_conditioning_type": "none", "deterministic": True}}
            }
        }
    )
    network = options.behaviors["B"].network_settings
    assert network.goal_conditioning_type.value == "none"
    assert network.deterministic is True


# Reward signals and behavioral cloning ###################################################
def test_every_reward_signal_type_gets_its_settings_class():
    signals = RewardSignalSettings.structure(
        {
            "extrinsic": {"gamma": 0.9},
            "curiosity": {"strength": 0.1, "learning_rate": 1e-3},
            "gail": {"demo_path": "expert.demo", "use_actions": True, "use_vail": True},
            "rnd": {"network_settings": {"hidden_units": 32}},
        },
        dict,
    )
    assert signals[RewardSignalType.EXTRINSIC] == RewardSignalSettings(gamma=0.9)
    assert signals[RewardSignalType.CURIOSITY] == CuriositySettings(
        strength=0.1, learning_rate=1e-3
    )
    assert signals[RewardSignalType.GAIL] == GAILSettings(
        demo_path="expert.demo", use_actions=True, use_vail=True
    )
    assert signals[RewardSignalType.RND].network_settings.hidden_units == 32
    assert signals[RewardSignalType.RND].learning_rate == RNDSettings().learning_rate == 1e-4


def test_deprecated_encoding_size_becomes_hidden_units_unless_network_settings_given(caplog):
    with caplog.at_level(logging.WARNING):
        signals = RewardSignalSettings.structure(
            {
                "curiosity": {"encoding_size": 256},
                "rnd": {"encoding_size": 16, "network_settings": {"hidden_units": 8}},
            },
            dict,
        )
    assert signals[RewardSignalType.CURIOSITY].network_settings.hidden_units == 256
    assert signals[RewardSignalType.RND].network_settings.hidden_units == 8
    assert "'encoding_size' was deprecated" in caplog.text


def test_unknown_reward_signal_lists_the_known_ones():
    error = _error({"behaviors": {"B": {"reward_signals": {"extrinsc": {}}}}})
    assert error.key_path == ["behaviors", "B", "reward_signals", "extrinsc"]
    assert "'extrinsic'" in error.message and "'gail'" in error.message


def test_gail_without_demo_path_is_rejected():
    error = _error({"behaviors": {"B": {"reward_signals": {"gail": {"strength": 0.1}}}}})
    assert "demo_path" in error.message
    assert error.key_path == ["behaviors", "B", "reward_signals", "gail"]


def test_behavioral_cloning_without_demo_path_is_rejected():
    error = _error({"behaviors": {"B": {"behavioral_cloning": {"strength": 0.5}}}})
    assert "demo_path" in error.message
    assert error.key_path == ["behaviors", "B", "behavioral_cloning"]


def test_behavioral_cloning_defaults():
    options = _load({"behaviors": {"B": {"behavioral_cloning": {"demo_path": "d.demo"}}}})
    assert options.behaviors["B"].behavioral_cloning == BehavioralCloningSettings(
        demo_path="d.demo", steps=0, strength=1.0, samples_per_update=0
    )


def test_self_play_team_change_defaults_to_five_save_steps():
    options = _load({"behaviors": {"B": {"self_play": {"save_steps": 100}}}})
    assert options.behaviors["B"].self_play == SelfPlaySettings(save_steps=100, team_change=500)


# Samplers ################################################################################
def test_a_plain_number_is_a_constant():
    assert ParameterRandomizationSettings.structure(3.5, ParameterRandomizationSettings) == (
        ConstantSettings(value=3.5)
    )


@pytest.mark.parametrize(
    "config, expected, text",
    [
        (
            {"sampler_type": "uniform", "sampler_parameters": {"min_value": 1, "max_value": 2}},
            UniformSettings(min_value=1.0, max_value=2.0),
            "Uniform sampler: min=1.0, max=2.0",
        ),
        (
            {"sampler_type": "gaussian", "sampler_parameters": {"mean": 3, "st_dev": 0.5}},
            GaussianSettings(mean=3.0, st_dev=0.5),
            "Gaussian sampler: mean=3.0, stddev=0.5",
        ),
        (
            {
                "sampler_type": "multirangeuniform",
                "sampler_parameters": {"intervals": [[1, 2], [4, 5]], "seed": 3},
            },
            MultiRangeUniformSettings(intervals=[(1.0, 2.0), (4.0, 5.0)], seed=3),
            "MultiRangeUniform sampler: intervals=[(1.0, 2.0), (4.0, 5.0)]",
        ),
        (
            {"sampler_type": "constant", "sampler_parameters": {"value": 7}},
            ConstantSettings(value=7.0),
            "Float: value=7.0",
        ),
    ],
)
def test_samplers_structure_print_and_round_trip(config, expected, text):
    sampler = ParameterRandomizationSettings.structure(config, ParameterRandomizationSettings)
    assert sampler == expected
    assert str(sampler) == text
    unstructured = ParameterRandomizationSettings.unstructure(sampler)
    assert unstructured["sampler_type"] == config["sampler_type"]
    assert unstructured["sampler_parameters"]["seed"] == sampler.seed
    again = ParameterRandomizationSettings.structure(
        yaml.safe_load(yaml.safe_dump(unstructured)), ParameterRandomizationSettings
    )
    assert again == sampler


@pytest.mark.parametrize(
    "sampler, expected_call",
    [
        (ConstantSettings(value=2.0), ("float", "p", 2.0)),
        (UniformSettings(min_value=1.0, max_value=3.0, seed=5), ("uniform", "p", 1.0, 3.0, 5)),
        (GaussianSettings(mean=0.0, st_dev=2.0, seed=6), ("gaussian", "p", 0.0, 2.0, 6)),
        (
            MultiRangeUniformSettings(intervals=[[0.0, 1.0], [2.0, 3.0]], seed=7),
            ("multirange", "p", [(0.0, 1.0), (2.0, 3.0)], 7),
        ),
    ],
)
def test_apply_calls_the_matching_channel_method(sampler, expected_call):
    channel = FakeChannel()
    sampler.apply("p", channel)
    assert channel.calls == [expected_call]


def test_apply_through_the_real_environment_parameters_channel():
    from mlagents_fast.envs.side_channel.environment_parameters_channel import (
        EnvironmentParametersChannel,
    )

    channel = EnvironmentParametersChannel()
    UniformSettings(min_value=1.0, max_value=2.0, seed=3).apply("mass", channel)
    ConstantSettings(value=1.5).apply("gravity", channel)
    MultiRangeUniformSettings(intervals=[[0.0, 1.0], [2.0, 3.0]], seed=4).apply("s", channel)
    data_types = EnvironmentParametersChannel.EnvironmentDataTypes
    sampler_types = EnvironmentParametersChannel.SamplerTypes
    assert [bytes(message) for message in channel.message_queue] == [
        struct.pack("<i4siiiff", 4, b"mass", data_types.SAMPLER, 3, sampler_types.UNIFORM, 1, 2),
        struct.pack("<i7sif", 7, b"gravity", data_types.FLOAT, 1.5),
        struct.pack(
            "<i1siiii4f",
            1,
            b"s",
            data_types.SAMPLER,
            4,
            sampler_types.MULTIRANGEUNIFORM,
            4,
            0,
            1,
            2,
            3,
        ),
    ]


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"sampler_parameters": {}}, "does not contain sampler_type"),
        ({"sampler_type": "uniform"}, "does not contain sampler_parameters"),
        ({"sampler_type": "poisson", "sampler_parameters": {}}, "'uniform'"),
        (
            {"sampler_type": "uniform", "sampler_parameters": {"min_value": 3, "max_value": 1}},
            "Minimum value is greater than maximum value",
        ),
        (
            {"sampler_type": "uniform", "sampler_parameters": {"minimum": 3}},
            "unknown option 'minimum'",
        ),
        ({"sampler_type": "gaussian", "sampler_parameters": {"st_dev": -1}}, "cannot be negative"),
        (
            {"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": []}},
            "at least one interval",
        ),
        (
            {"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": [[3, 1]]}},
            "Minimum value is greater than maximum value in interval",
        ),
        (
            {
                "sampler_type": "multirangeuniform",
                "sampler_parameters": {"intervals": [[0, 2], [1, 3]]},
            },
            "overlap",
        ),
        (
            {"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": [[1, 2, 3]]}},
            "exactly 2 values",
        ),
        ({"sampler_type": "uniform", "sampler_parameters": {}, "seed": 1}, "unknown option"),
        # NaN passes min <= max comparisons; it must be refused on its own.
        (
            {"sampler_type": "uniform", "sampler_parameters": {"min_value": "NAN", "max_value": 2}},
            "min_value must be finite",
        ),
        (
            {"sampler_type": "gaussian", "sampler_parameters": {"mean": "inf"}},
            "mean must be finite",
        ),
        (
            {
                "sampler_type": "multirangeuniform",
                "sampler_parameters": {"intervals": [[0, "nan"]]},
            },
            "intervals must be finite",
        ),
        ("high", "expected a number or a sampler"),
        (True, "expected a number or a sampler"),
    ],
)
def test_bad_samplers_are_rejected(config, expected):
    error = _error({"environment_parameters": {"param": config}})
    assert expected in error.message
    assert error.key_path[:2] == ["environment_parameters", "param"]


def test_touching_intervals_do_not_overlap():
    sampler = MultiRangeUniformSettings(intervals=[[1.0, 2.0], [0.0, 1.0]])
    assert len(sampler.intervals) == 2


# Completion criteria #####################################################################
def _criteria(**kwargs):
    kwargs.setdefault("behavior", "B")
    return CompletionCriteriaSettings(**kwargs)


def test_progress_measure_compares_progress_with_the_threshold():
    criteria = _criteria(measure=CompletionCriteriaSettings.MeasureType.PROGRESS, threshold=0.5)
    assert criteria.need_increment(0.5, [], 0.0) == (False, 0.0)
    assert criteria.need_increment(0.51, [], 0.0) == (True, 0.0)


def test_reward_measure_is_smoothed_with_a_quarter_of_the_previous_value():
    criteria = _criteria(threshold=0.9)
    # 0.25 * 0.4 + 0.75 * mean([1.0, 0.0]) = 0.475
    assert criteria.need_increment(0.0, [1.0, 0.0], 0.4) == (False, pytest.approx(0.475))
    # 0.25 * 0.6 + 0.75 * 1.0 = 0.9 is not above 0.9
    assert criteria.need_increment(0.0, [1.0], 0.6) == (False, pytest.approx(0.9))
    assert criteria.need_increment(0.0, [1.0], 0.7) == (True, pytest.approx(0.925))


def test_reward_measure_without_smoothing_uses_the_mean():
    criteria = _criteria(threshold=0.4, signal_smoothing=False)
    assert criteria.need_increment(0.0, [0.0, 1.0], 123.0) == (True, 123.0)
    assert criteria.need_increment(0.0, [0.0, 0.8], 123.0) == (False, 123.0)


def test_min_lesson_length_holds_the_lesson_until_enough_episodes():
    criteria = _criteria(threshold=0.0, min_lesson_length=3, signal_smoothing=False)
    assert criteria.need_increment(1.0, [5.0, 5.0], 0.0) == (False, 0.0)
    assert criteria.need_increment(1.0, [5.0, 5.0, 5.0], 0.0) == (True, 0.0)


def test_reward_measure_waits_for_an_episode_and_ignores_nan():
    criteria = _criteria(threshold=-10.0)
    assert criteria.need_increment(1.0, [], 0.0) == (False, 0.0)
    assert criteria.need_increment(1.0, [float("nan")], 0.0) == (False, 0.0)


@pytest.mark.parametrize("threshold", [1.5, -0.1])
def test_progress_threshold_outside_zero_one_is_rejected(threshold):
    with pytest.raises(TrainerConfigError, match="progress"):
        _criteria(measure=CompletionCriteriaSettings.MeasureType.PROGRESS, threshold=threshold)


def test_negative_min_lesson_length_is_rejected():
    with pytest.raises(TrainerConfigError, match="min_lesson_length"):
        _criteria(min_lesson_length=-1)


# Environment parameters and curricula ####################################################
def _lesson(name, value, behavior="B", threshold=0.5, **criteria):
    lesson = {"name": name, "value": value}
    if behavior is not None:
        lesson["completion_criteria"] = {
            "behavior": behavior,
            "measure": "progress",
            "threshold": threshold,
            **criteria,
        }
    return lesson


def test_environment_parameters_accept_numbers_samplers_and_curricula():
    parameters = EnvironmentParameterSettings.structure(
        {
            "plain": 2,
            "sampled": {"sampler_type": "gaussian", "sampler_parameters": {"mean": 1}},
            "taught": {"curriculum": [_lesson("easy", 1.0), _lesson("hard", 2.0, behavior=None)]},
        },
        dict,
    )
    assert parameters["plain"].curriculum == [
        Lesson(value=ConstantSettings(value=2), name="plain", completion_criteria=None)
    ]
    assert parameters["sampled"].curriculum[0].value == GaussianSettings(mean=1.0)
    taught = parameters["taught"].curriculum
    assert [lesson.name for lesson in taught] == ["easy", "hard"]
    assert taught[0].completion_criteria.measure == CompletionCriteriaSettings.MeasureType.PROGRESS
    assert taught[1].completion_criteria is None


def test_environment_parameter_names_are_strings_as_unity_receives_them():
    # YAML reads `0: 1.0` as an int key; the name Unity gets (and a round trip) is "0".
    options = RunOptions.from_dict({"environment_parameters": {0: 1.0}})
    assert list(options.environment_parameters) == ["0"]
    assert options.environment_parameters["0"].curriculum[0].name == "0"
    reloaded = RunOptions.from_dict(yaml.safe_load(yaml.safe_dump(options.as_dict())))
    assert reloaded == options
    error = _error({"environment_parameters": {0: 1.0, "0": 2.0}})
    assert "'0' is given twice" in str(error)


def test_a_lesson_without_criteria_before_the_last_is_rejected():
    error = _error(
        {
            "behaviors": {"B": {}},
            "environment_parameters": {
                "wall": {"curriculum": [_lesson("a", 1.0, behavior=None), _lesson("b", 2.0)]}
            },
        }
    )
    assert "non-terminal lesson does not have a completion_criteria for wall" in error.message
    assert error.key_path == ["environment_parameters", "wall", "curriculum", "[0]"]


def test_criteria_on_the_last_lesson_warn_that_they_are_ignored():
    with pytest.warns(TrainerConfigWarning, match="final lesson"):
        _load(
            {
                "behaviors": {"B": {}},
                "environment_parameters": {
                    "wall": {"curriculum": [_lesson("a", 1.0), _lesson("b", 2.0)]}
                },
            }
        )


def test_an_empty_curriculum_is_rejected():
    assert "no lessons" in _error({"environment_parameters": {"w": {"curriculum": []}}}).message


def test_a_lesson_without_a_name_is_rejected():
    error = _error({"environment_parameters": {"w": {"curriculum": [{"value": 1.0}]}}})
    assert "'name'" in error.message
    assert error.key_path == ["environment_parameters", "w", "curriculum", "[0]"]


def test_a_criteria_behavior_that_is_not_configured_loads_as_in_mlagents():
    # ML-Agents 1.1.0 loads it (the behavior may be a typo or join the environment later);
    # training then keeps that lesson until the behavior trains.
    options = _load(
        {
            "behaviors": {"Walker": {}},
            "environment_parameters": {
                "wall": {
                    "curriculum": [_lesson("a", 1.0, behavior="Walkr"), _lesson("b", 2.0, None)]
                }
            },
        }
    )
    criteria = options.environment_parameters["wall"].curriculum[0].completion_criteria
    assert criteria.behavior == "Walkr"
    assert options.default_settings is None and list(options.behaviors) == ["Walker"]


def test_with_default_settings_any_criteria_behavior_is_accepted():
    options = _load(
        {
            "default_settings": {},
            "behaviors": {"Walker": {}},
            "environment_parameters": {
                "wall": {
                    "curriculum": [_lesson("a", 1.0, behavior="Other"), _lesson("b", 2.0, None)]
                }
            },
        }
    )
    assert options.environment_parameters["wall"].curriculum[0].completion_criteria.behavior == (
        "Other"
    )


def test_curriculum_round_trips_through_as_dict_and_yaml():
    options = _load(
        {
            "behaviors": {"B": {}},
            "environment_parameters": {
                "wall": {
                    "curriculum": [
                        _lesson("a", {"sampler_type": "uniform", "sampler_parameters": {}}),
                        _lesson(
                            "b",
                            {
                                "sampler_type": "multirangeuniform",
                                "sampler_parameters": {"intervals": [[0, 1], [2, 3]]},
                            },
                            require_reset=True,
                        ),
                        _lesson("c", 3.0, behavior=None),
                    ]
                }
            },
        }
    )
    dumped = yaml.safe_dump(options.as_dict())
    assert RunOptions.from_dict(yaml.safe_load(dumped)) == options


# Command-line sections ###################################################################
def test_checkpoint_paths_are_derived_from_results_dir_and_run_id():
    checkpoint = CheckpointSettings(run_id="r", results_dir="out", initialize_from="old")
    assert checkpoint.write_path.replace("\\", "/") == "out/r"
    assert checkpoint.run_logs_dir.replace("\\", "/") == "out/r/run_logs"
    assert checkpoint.maybe_init_path.replace("\\", "/") == "out/old"
    assert CheckpointSettings().maybe_init_path is None


def test_resume_and_initialize_from_both_in_the_file_resume_wins(caplog):
    cli_utils.parse_args([])  # nothing given on the command line
    checkpoint = CheckpointSettings(resume=True, initialize_from="old")
    with caplog.at_level(logging.WARNING):
        checkpoint.prioritize_resume_init()
    assert checkpoint.resume is True and checkpoint.initialize_from is None
    assert "resumed ignoring initialization" in caplog.text


def test_several_environments_need_an_executable():
    error = _error({"env_settings": {"num_envs": 2}})
    assert "num_envs must be 1 if env_path is not set" in error.message
    assert _load({"env_settings": {"num_envs": 2, "env_path": "x"}}).env_settings.num_envs == 2


def test_num_areas_must_be_positive():
    assert "num_areas" in _error({"env_settings": {"num_areas": 0}}).message


def test_environment_settings_defaults_match_the_parser():
    assert EnvironmentSettings() == EnvironmentSettings(
        env_path=None,
        env_args=None,
        base_port=5005,
        num_envs=1,
        num_areas=1,
        timeout_wait=60,
        seed=-1,
        max_lifetime_restarts=10,
        restarts_rate_limit_n=1,
        restarts_rate_limit_period_s=60,
    )


def test_every_settings_field_has_a_docstring():
    import ast
    import inspect

    from mlagents_fast.trainers import settings as module

    tree = ast.parse(inspect.getsource(module))
    undocumented = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for index, statement in enumerate(body):
            if isinstance(statement, ast.AnnAssign) and "ClassVar" not in ast.unparse(
                statement.annotation
            ):
                following = body[index + 1] if index + 1 < len(body) else None
                documented = (
                    isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                )
                if not documented:
                    undocumented.append(f"{node.name}.{ast.unparse(statement.target)}")
    assert undocumented == []
