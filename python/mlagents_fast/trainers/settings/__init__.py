"""Trainer settings: the YAML configuration of ``mlagents-learn``.

The counterpart of ``mlagents.trainers.settings`` (ML-Agents 1.1.0): the same class and field
names, defaults and resolution rules (``default_settings`` merged under each behavior, schedules
that follow ``learning_rate_schedule``, the plain-float sampler shorthand, ``max_steps`` given as
``1.0e7``), so an ML-Agents configuration loads here without one edit.

The package is a leaf of the trainers: it imports nothing of the command line, the trainers
or the environments. The command line (:mod:`mlagents_fast.trainers.cli_utils`) takes its flag
defaults from these classes. Its modules, bottom up:

- :mod:`.converter`: the cattrs converter and the helpers that name the key of a bad value;
- :mod:`.config_file`: reading the YAML file;
- :mod:`.environment_parameters`: samplers and curriculum lessons;
- :mod:`.trainer_settings`: network, hyperparameters, reward signals, the trainer-type
  registry, TrainerSettings;
- :mod:`.run_options`: environment, engine, checkpoint and torch settings, RunOptions.

What differs from ML-Agents is inside: structuring goes through a ``cattrs.Converter`` of this
package's own (no global ``cattr`` hooks), unknown keys are rejected everywhere (top level
included), and every error is a :class:`TrainerConfigError` that names the key path, and the
file when known, instead of a cattrs traceback. Where ML-Agents raises ``TypeError`` for a
missing required option, the error is also a ``TypeError``.

Where the result differs from ML-Agents 1.1.0 (every example config loads identically; see
tests/test_settings_reference.py):

- Refused here, accepted there: unknown top-level keys in ``RunOptions.from_dict`` (1.1.0 checks
  them only on the command-line path); ``true``/``1.5`` for an integer and text for a bool
  (1.1.0 casts them); an empty or overlapping ``multirangeuniform`` interval list; a negative
  gaussian ``st_dev`` or ``min_lesson_length``; an empty curriculum; ``num_envs`` below 1.
- Accepted here, refused there: an integer PyYAML reads as text (``buffer_size: 1.0e4``; a
  float such as ``1e-3`` loads in both), and ``MyBehavior:`` with nothing under it (all
  defaults).
- ``default_settings`` apply to one load only (1.1.0 keeps them in a class attribute for the
  rest of the process).
"""

# Class-defining modules do not use `from __future__ import annotations`: attrs would keep the
# field types as strings, and the converter structures each option by its field type.
from mlagents_fast.trainers.exception import TrainerConfigError, TrainerConfigWarning
from mlagents_fast.trainers.settings.config_file import load_config
from mlagents_fast.trainers.settings.converter import (
    ExportableSettings,
    check_and_structure,
    deep_update_dict,
    defaultdict_to_dict,
    settings_converter,
    strict_to_cls,
    validate_key,
)
from mlagents_fast.trainers.settings.environment_parameters import (
    CompletionCriteriaSettings,
    ConstantSettings,
    EnvironmentParameterSettings,
    GaussianSettings,
    Lesson,
    MultiRangeUniformSettings,
    ParameterRandomizationSettings,
    ParameterRandomizationType,
    UniformSettings,
)
from mlagents_fast.trainers.settings.run_options import (
    BASE_ENVIRONMENT_PORT,
    ENV_WORKER_KINDS,
    CheckpointSettings,
    EngineSettings,
    EnvironmentSettings,
    RunOptions,
    TorchSettings,
)
from mlagents_fast.trainers.settings.trainer_settings import (
    BehavioralCloningSettings,
    ConditioningType,
    CuriositySettings,
    EncoderType,
    GAILSettings,
    HyperparamSettings,
    NetworkSettings,
    OffPolicyHyperparamSettings,
    OnPolicyHyperparamSettings,
    POCASettings,
    PPOSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
    SACSettings,
    ScheduleType,
    SelfPlaySettings,
    SerializationSettings,
    TrainerSettings,
    TrainerType,
    TrainerTypeRegistry,
    all_trainer_settings,
    check_hyperparam_schedules,
    register_trainer_type,
    trainer_types,
)

__all__ = [
    "BASE_ENVIRONMENT_PORT",
    "ENV_WORKER_KINDS",
    "BehavioralCloningSettings",
    "CheckpointSettings",
    "CompletionCriteriaSettings",
    "ConditioningType",
    "ConstantSettings",
    "CuriositySettings",
    "EncoderType",
    "EngineSettings",
    "EnvironmentParameterSettings",
    "EnvironmentSettings",
    "ExportableSettings",
    "GAILSettings",
    "GaussianSettings",
    "HyperparamSettings",
    "Lesson",
    "MultiRangeUniformSettings",
    "NetworkSettings",
    "OffPolicyHyperparamSettings",
    "OnPolicyHyperparamSettings",
    "POCASettings",
    "PPOSettings",
    "ParameterRandomizationSettings",
    "ParameterRandomizationType",
    "RNDSettings",
    "RewardSignalSettings",
    "RewardSignalType",
    "RunOptions",
    "SACSettings",
    "ScheduleType",
    "SelfPlaySettings",
    "SerializationSettings",
    "TorchSettings",
    "TrainerConfigError",  # importable here as in ML-Agents
    "TrainerConfigWarning",
    "TrainerSettings",
    "TrainerType",
    "TrainerTypeRegistry",
    "UniformSettings",
    "all_trainer_settings",
    "check_and_structure",
    "check_hyperparam_schedules",
    "deep_update_dict",
    "defaultdict_to_dict",
    "load_config",
    "register_trainer_type",
    "settings_converter",
    "strict_to_cls",
    "trainer_types",
    "validate_key",
]
