"""Trainer settings: the YAML configuration and command line of ``mlagents-learn``.

The counterpart of ``mlagents.trainers.settings`` (ML-Agents 1.1.0): the same class and field
names, defaults and resolution rules (``default_settings`` merged under each behavior, schedules
that follow ``learning_rate_schedule``, the plain-float sampler shorthand, ``max_steps`` given as
``1.0e7``), so an ML-Agents configuration loads here without one edit.

What differs is inside: structuring goes through a ``cattrs.Converter`` of this module's own
(no global ``cattr`` hooks), unknown keys are rejected everywhere (top level included), and
every error is a :class:`TrainerConfigError` that names the key path, and the file when known,
instead of a cattrs traceback.

Where the result differs from ML-Agents 1.1.0 (every example config loads identically; see
tests/test_settings_reference.py):

- Refused here, accepted there: unknown top-level keys in ``RunOptions.from_dict`` (1.1.0 checks
  them only on the command-line path); ``true``/``1.5`` for an integer and text for a bool
  (1.1.0 casts them); an empty or overlapping ``multirangeuniform`` interval list; a negative
  gaussian ``st_dev`` or ``min_lesson_length``; an empty curriculum; ``num_envs`` below 1; and
  a curriculum criteria naming a behavior the file does not configure when there is no
  ``default_settings`` (its lesson could never end).
- Accepted here, refused there: an integer PyYAML reads as text (``buffer_size: 1.0e4``; a
  float such as ``1e-3`` loads in both), and ``MyBehavior:`` with nothing under it (all
  defaults).
- ``default_settings`` apply to one load only (1.1.0 keeps them in a class attribute for the
  rest of the process).
"""

import abc
import argparse
import collections
import contextlib
import contextvars
import copy
import enum
import itertools
import logging
import math
import os.path
import typing
import warnings
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Optional,
)

import attr
import cattrs
import numpy as np

from mlagents_fast.trainers.cli_utils import (
    DetectDefault,
    StoreConfigFile,
    load_config,
    parser,
)
from mlagents_fast.trainers.exception import TrainerConfigError, TrainerConfigWarning

if TYPE_CHECKING:  # the channel lives in the envs package; only its interface is needed here
    from mlagents_fast.envs.side_channel.environment_parameters_channel import (
        EnvironmentParametersChannel,
    )

__all__ = [
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
    "TrainerSettings",
    "UniformSettings",
    "all_trainer_settings",
    "check_and_structure",
    "check_hyperparam_schedules",
    "deep_update_dict",
    "register_trainer_type",
    "settings_converter",
    "strict_to_cls",
]

logger = logging.getLogger(__name__)


# STRUCTURING HELPERS ##################################################################
@contextlib.contextmanager
def _at_key(key: Any) -> Iterator[None]:
    """Prefix the key path of a TrainerConfigError raised inside with ``key``."""
    try:
        yield
    except TrainerConfigError as error:
        error.key_path.insert(0, str(key))
        raise


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _structure_int(value: Any, _: type) -> int:
    # bool is an int subclass; `batch_size: true` is a mistake, not 1.
    if isinstance(value, bool):
        raise TrainerConfigError(f"expected an integer, got {_describe(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        # Command-line values without a type (--timeout-wait 30) and YAML 1.1 numbers such as
        # `1.0e4` (a string to PyYAML) arrive as text.
        try:
            return int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise TrainerConfigError(f"expected an integer, got {_describe(value)}") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TrainerConfigError(f"expected an integer, got {_describe(value)}")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool):
        raise TrainerConfigError(f"expected a number, got {_describe(value)}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        # `1e-3` has no dot, so PyYAML (YAML 1.1) reads it as a string.
        try:
            return float(value)
        except ValueError:
            pass
    raise TrainerConfigError(f"expected a number, got {_describe(value)}")


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TrainerConfigError(f"expected true or false, got {_describe(value)}")


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    # A run id or lesson name written as a number (`run_id: 42`) is meant as text.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TrainerConfigError(f"expected a string, got {_describe(value)}")


def _structure_enum(value: Any, enum_type: type[Enum]) -> Enum:
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum_type)
        raise TrainerConfigError(f"invalid value {value!r}; expected one of {allowed}") from None


def _structure_list(value: Any, list_type: type) -> list:
    (item_type,) = typing.get_args(list_type) or (Any,)
    if not isinstance(value, (list, tuple)):
        raise TrainerConfigError(f"expected a list, got {_describe(value)}")
    result = []
    for index, item in enumerate(value):
        with _at_key(f"[{index}]"):
            result.append(settings_converter.structure(item, item_type))
    return result


def _structure_tuple(value: Any, tuple_type: type) -> tuple:
    item_types = typing.get_args(tuple_type)
    if not isinstance(value, (list, tuple)):
        raise TrainerConfigError(
            f"expected a list of {len(item_types)} values, got {_describe(value)}"
        )
    if len(item_types) == 2 and item_types[1] is Ellipsis:
        item_types = (item_types[0],) * len(value)
    if len(value) != len(item_types):
        raise TrainerConfigError(
            f"expected exactly {len(item_types)} values, got {len(value)}: {value!r}"
        )
    result = []
    for index, (item, item_type) in enumerate(zip(value, item_types)):
        with _at_key(f"[{index}]"):
            result.append(settings_converter.structure(item, item_type))
    return tuple(result)


def _structure_dict(value: Any, dict_type: type) -> dict:
    key_type, value_type = typing.get_args(dict_type) or (Any, Any)
    if not isinstance(value, Mapping):
        raise TrainerConfigError(f"expected a mapping, got {_describe(value)}")
    result = {}
    for key, item in value.items():
        with _at_key(key):
            result[settings_converter.structure(key, key_type)] = settings_converter.structure(
                item, value_type
            )
    return result


def _structure_max_steps(value: Any) -> int:
    # Old configs write max_steps as a float, or as `1.0e7` (a string to PyYAML):
    # ML-Agents takes int(float(value)).
    if not isinstance(value, bool):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            pass
    raise TrainerConfigError(f"expected a number of steps, got {_describe(value)}")


def _structure_any(value: Any, _: type) -> Any:
    return value


def check_and_structure(key: str, value: Any, class_type: type) -> Any:
    """Structure the value of option ``key`` of attrs class ``class_type``.

    Raises TrainerConfigError when ``class_type`` has no such option; the message lists the
    options it has.
    """
    fields = attr.fields_dict(class_type)
    if key not in fields:
        known = ", ".join(sorted(fields))
        raise TrainerConfigError(
            f"unknown option {key!r} for {class_type.__name__} (valid options: {known})",
            key_path=[key],
        )
    with _at_key(key):
        return settings_converter.structure(value, fields[key].type)


def _instantiate(cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)``, with a missing required field or a failed validator reported as
    a TrainerConfigError."""
    missing = [
        field.name
        for field in attr.fields(cls)
        if field.init and field.default is attr.NOTHING and field.name not in values
    ]
    if missing:
        raise TrainerConfigError(
            f"missing required option{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(name) for name in missing)} for {cls.__name__}"
        )
    try:
        return cls(**values)
    except TrainerConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise TrainerConfigError(f"invalid {cls.__name__}: {error}") from None


def strict_to_cls(d: Mapping, t: type) -> Any:
    """Build attrs class ``t`` from mapping ``d``, rejecting keys ``t`` does not have."""
    if not isinstance(d, Mapping):
        raise TrainerConfigError(f"expected a mapping for {t.__name__}, got {_describe(d)}")
    values: dict[str, Any] = {}
    for key, val in d.items():
        values[key] = check_and_structure(key, val, t)
    return _instantiate(t, values)


def check_hyperparam_schedules(val: dict, trainer_type: str) -> dict:
    """For PPO and POCA, ``beta_schedule`` and ``epsilon_schedule`` not given follow a
    given ``learning_rate_schedule`` (ML-Agents' rule)."""
    if trainer_type in ("ppo", "poca") and isinstance(val, Mapping):
        val = dict(val)
        if "learning_rate_schedule" in val:
            val.setdefault("beta_schedule", val["learning_rate_schedule"])
            val.setdefault("epsilon_schedule", val["learning_rate_schedule"])
    return val


def defaultdict_to_dict(d: collections.defaultdict) -> dict:
    return {key: settings_converter.unstructure(val) for key, val in d.items()}


def deep_update_dict(d: dict, update_d: Mapping) -> None:
    """Like ``dict.update()``, but merges nested mappings key by key instead of replacing them."""
    for key, val in update_d.items():
        if key in d and isinstance(d[key], Mapping) and isinstance(val, Mapping):
            deep_update_dict(d[key], val)
        else:
            d[key] = val


class SerializationSettings:
    """How policies are exported for inference."""

    convert_to_onnx = True
    onnx_opset = 9


@attr.s(auto_attribs=True)
class ExportableSettings:
    """Settings that can be written out as plain dicts (``configuration.yaml``)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and numbers; loading it again gives equal settings."""
        return settings_converter.unstructure(self)


class EncoderType(Enum):
    """Encoder of visual observations."""

    FULLY_CONNECTED = "fully_connected"
    MATCH3 = "match3"
    SIMPLE = "simple"
    NATURE_CNN = "nature_cnn"
    RESNET = "resnet"


class ScheduleType(Enum):
    """How a hyperparameter changes over training."""

    CONSTANT = "constant"
    LINEAR = "linear"


class ConditioningType(Enum):
    """How goal observations condition the policy network."""

    HYPER = "hyper"
    NONE = "none"


# NETWORK ##############################################################################
@attr.s(auto_attribs=True)
class NetworkSettings:
    """Shape of a policy, value or reward-signal network."""

    @attr.s(auto_attribs=True)
    class MemorySettings:
        """Recurrent (LSTM) memory of a network."""

        sequence_length: int = attr.ib(default=64)
        """Length of the sequences of experience the LSTM is trained on."""
        memory_size: int = attr.ib(default=128)
        """Size of the memory the agent keeps; a positive even number."""

        @memory_size.validator
        def _check_valid_memory_size(self, attribute: Any, value: int) -> None:
            if value <= 0:
                raise TrainerConfigError(
                    "When using a recurrent network, memory size must be greater than 0.",
                    key_path=["memory_size"],
                )
            elif value % 2 != 0:
                raise TrainerConfigError(
                    "When using a recurrent network, memory size must be divisible by 2.",
                    key_path=["memory_size"],
                )

    normalize: bool = False
    """Normalize vector observations with running statistics."""
    hidden_units: int = 128
    """Units in each hidden layer."""
    num_layers: int = 2
    """Number of hidden layers."""
    vis_encode_type: EncoderType = EncoderType.SIMPLE
    """Encoder of visual observations."""
    memory: MemorySettings | None = None
    """Recurrent memory; None for a feed-forward network."""
    goal_conditioning_type: ConditioningType = ConditioningType.HYPER
    """How goal observations condition the network."""
    deterministic: bool = parser.get_default("deterministic")
    """Pick the most likely action instead of sampling (``--deterministic``)."""


@attr.s(auto_attribs=True)
class BehavioralCloningSettings:
    """Behavioral cloning from demonstrations, used alongside reinforcement learning."""

    demo_path: str
    """Path to a .demo file or a folder of them (required)."""
    steps: int = 0
    """Steps over which the BC strength decays to zero; 0 keeps it constant."""
    strength: float = 1.0
    """Learning-rate multiplier of the BC loss."""
    samples_per_update: int = 0
    """Demonstration samples per update; 0 uses all of them."""
    num_epoch: int | None = None
    """Epochs per update; None takes the trainer's."""
    batch_size: int | None = None
    """Minibatch size; None takes the trainer's."""


# HYPERPARAMETERS ######################################################################
@attr.s(auto_attribs=True)
class HyperparamSettings:
    """Hyperparameters every trainer type has."""

    batch_size: int = 1024
    """Experiences per gradient step."""
    buffer_size: int = 10240
    """Experiences collected before updating (PPO) or kept in the replay buffer (SAC)."""
    learning_rate: float = 3.0e-4
    """Initial learning rate."""
    learning_rate_schedule: ScheduleType = ScheduleType.CONSTANT
    """How the learning rate changes over training."""


@attr.s(auto_attribs=True)
class OnPolicyHyperparamSettings(HyperparamSettings):
    """Hyperparameters of on-policy trainers."""

    num_epoch: int = 3
    """Passes over the buffer per update."""


@attr.s(auto_attribs=True)
class OffPolicyHyperparamSettings(HyperparamSettings):
    """Hyperparameters of off-policy trainers."""

    batch_size: int = 128
    """Experiences per gradient step."""
    buffer_size: int = 50000
    """Capacity of the replay buffer."""
    buffer_init_steps: int = 0
    """Experiences collected with a random policy before training starts."""
    steps_per_update: float = 1
    """Agent steps per policy update."""
    save_replay_buffer: bool = False
    """Save the replay buffer with checkpoints, to resume with it."""
    reward_signal_steps_per_update: float = 4
    """Agent steps per reward-signal update."""


@attr.s(auto_attribs=True)
class PPOSettings(OnPolicyHyperparamSettings):
    """Hyperparameters of PPO (``trainer_type: ppo``)."""

    beta: float = 5.0e-3
    """Entropy regularization strength."""
    epsilon: float = 0.2
    """Clipping range of the policy ratio."""
    lambd: float = 0.95
    """GAE lambda."""
    num_epoch: int = 3
    """Passes over the buffer per update."""
    shared_critic: bool = False
    """Policy and value share one network body."""
    learning_rate_schedule: ScheduleType = ScheduleType.LINEAR
    """How the learning rate changes over training."""
    beta_schedule: ScheduleType = ScheduleType.LINEAR
    """How beta changes over training (follows learning_rate_schedule when not given)."""
    epsilon_schedule: ScheduleType = ScheduleType.LINEAR
    """How epsilon changes over training (follows learning_rate_schedule when not given)."""


@attr.s(auto_attribs=True)
class SACSettings(OffPolicyHyperparamSettings):
    """Hyperparameters of SAC (``trainer_type: sac``)."""

    batch_size: int = 128
    """Experiences per gradient step."""
    buffer_size: int = 50000
    """Capacity of the replay buffer."""
    buffer_init_steps: int = 0
    """Experiences collected with a random policy before training starts."""
    tau: float = 0.005
    """Soft-update rate of the target network."""
    steps_per_update: float = 1
    """Agent steps per policy update."""
    save_replay_buffer: bool = False
    """Save the replay buffer with checkpoints, to resume with it."""
    init_entcoef: float = 1.0
    """Initial entropy coefficient."""
    reward_signal_steps_per_update: float = attr.ib()
    """Agent steps per reward-signal update; defaults to steps_per_update."""

    @reward_signal_steps_per_update.default
    def _reward_signal_steps_per_update_default(self) -> float:
        return self.steps_per_update


@attr.s(auto_attribs=True)
class POCASettings(OnPolicyHyperparamSettings):
    """Hyperparameters of MA-POCA (``trainer_type: poca``)."""

    beta: float = 5.0e-3
    """Entropy regularization strength."""
    epsilon: float = 0.2
    """Clipping range of the policy ratio."""
    lambd: float = 0.95
    """GAE lambda."""
    num_epoch: int = 3
    """Passes over the buffer per update."""
    learning_rate_schedule: ScheduleType = ScheduleType.LINEAR
    """How the learning rate changes over training."""
    beta_schedule: ScheduleType = ScheduleType.LINEAR
    """How beta changes over training (follows learning_rate_schedule when not given)."""
    epsilon_schedule: ScheduleType = ScheduleType.LINEAR
    """How epsilon changes over training (follows learning_rate_schedule when not given)."""


all_trainer_settings: dict[str, type] = {
    "ppo": PPOSettings,
    "sac": SACSettings,
    "poca": POCASettings,
}
"""Hyperparameter class of each trainer type, by the name used in ``trainer_type``."""


def register_trainer_type(trainer_type: str, hyperparameters_class: type) -> None:
    """Make ``trainer_type: <trainer_type>`` valid, with ``hyperparameters_class`` (an attrs
    class deriving from HyperparamSettings) as the type of its ``hyperparameters``.

    This is what ML-Agents' ``mlagents.trainer_type`` plugins provide; a package with its own
    trainer calls it at import time.
    """
    if not isinstance(trainer_type, str) or not trainer_type:
        raise TrainerConfigError(f"trainer type must be a non-empty string, got {trainer_type!r}")
    if not (
        isinstance(hyperparameters_class, type)
        and attr.has(hyperparameters_class)
        and issubclass(hyperparameters_class, HyperparamSettings)
    ):
        raise TrainerConfigError(
            f"hyperparameters class for {trainer_type!r} must be an attrs class deriving from "
            f"HyperparamSettings, got {hyperparameters_class!r}"
        )
    all_trainer_settings[trainer_type] = hyperparameters_class


def _hyperparameters_class(trainer_type: str) -> type:
    try:
        return all_trainer_settings[trainer_type]
    except KeyError:
        known = ", ".join(repr(name) for name in all_trainer_settings)
        raise TrainerConfigError(
            f"unknown trainer_type {trainer_type!r}; known trainer types: {known}",
            key_path=["trainer_type"],
        ) from None


# INTRINSIC REWARD SIGNALS #############################################################
class RewardSignalType(Enum):
    """Reward signals, by their key under ``reward_signals``."""

    EXTRINSIC = "extrinsic"
    GAIL = "gail"
    CURIOSITY = "curiosity"
    RND = "rnd"

    def to_settings(self) -> type:
        return {
            RewardSignalType.EXTRINSIC: RewardSignalSettings,
            RewardSignalType.GAIL: GAILSettings,
            RewardSignalType.CURIOSITY: CuriositySettings,
            RewardSignalType.RND: RNDSettings,
        }[self]


@attr.s(auto_attribs=True)
class RewardSignalSettings:
    """A reward signal (the extrinsic one uses exactly these fields)."""

    gamma: float = 0.99
    """Discount factor of the signal."""
    strength: float = 1.0
    """Multiplier of the signal's reward."""
    network_settings: NetworkSettings = attr.ib(factory=NetworkSettings)
    """Network of the signal's model (intrinsic signals)."""

    @staticmethod
    def structure(d: Mapping, t: type) -> Any:
        """Structure the ``reward_signals`` mapping: each key selects its settings class.

        A deprecated ``encoding_size`` given without ``network_settings`` becomes
        ``network_settings.hidden_units`` (with a warning), as in ML-Agents.
        """
        if not isinstance(d, Mapping):
            raise TrainerConfigError(f"expected a mapping of reward signals, got {_describe(d)}")
        d_final: dict[RewardSignalType, RewardSignalSettings] = {}
        for key, val in d.items():
            with _at_key(key):
                enum_key = _structure_enum(key, RewardSignalType)
                d_final[enum_key] = strict_to_cls(val, enum_key.to_settings())
            if "encoding_size" in val:
                logger.warning(
                    "'encoding_size' was deprecated for RewardSignals. Please use network_settings."
                )
                if "network_settings" not in val and val["encoding_size"] is not None:
                    d_final[enum_key].network_settings.hidden_units = d_final[
                        enum_key
                    ].encoding_size
        return d_final


@attr.s(auto_attribs=True)
class GAILSettings(RewardSignalSettings):
    """GAIL: reward for behaving like the demonstrations."""

    learning_rate: float = 3e-4
    """Learning rate of the discriminator."""
    encoding_size: int | None = None
    """Deprecated: use network_settings.hidden_units."""
    use_actions: bool = False
    """The discriminator also sees actions."""
    use_vail: bool = False
    """Use a variational information bottleneck in the discriminator."""
    demo_path: str = attr.ib(kw_only=True)
    """Path to a .demo file or a folder of them (required)."""


@attr.s(auto_attribs=True)
class CuriositySettings(RewardSignalSettings):
    """Curiosity: reward for transitions the agent cannot yet predict."""

    learning_rate: float = 3e-4
    """Learning rate of the forward and inverse models."""
    encoding_size: int | None = None
    """Deprecated: use network_settings.hidden_units."""


@attr.s(auto_attribs=True)
class RNDSettings(RewardSignalSettings):
    """Random network distillation: reward for observations not seen often."""

    learning_rate: float = 1e-4
    """Learning rate of the predictor network."""
    encoding_size: int | None = None
    """Deprecated: use network_settings.hidden_units."""


# SAMPLERS #############################################################################
class ParameterRandomizationType(Enum):
    """Samplers of environment parameters, by their ``sampler_type``."""

    UNIFORM = "uniform"
    GAUSSIAN = "gaussian"
    MULTIRANGEUNIFORM = "multirangeuniform"
    CONSTANT = "constant"

    def to_settings(self) -> type:
        return {
            ParameterRandomizationType.UNIFORM: UniformSettings,
            ParameterRandomizationType.GAUSSIAN: GaussianSettings,
            ParameterRandomizationType.MULTIRANGEUNIFORM: MultiRangeUniformSettings,
            ParameterRandomizationType.CONSTANT: ConstantSettings,
        }[self]


@attr.s(auto_attribs=True)
class ParameterRandomizationSettings(abc.ABC):
    """The value of an environment parameter: a constant or a sampler the environment draws
    from at each reset."""

    seed: int = parser.get_default("seed")
    """Seed of the sampler; -1 lets the run seed pick one."""

    def __attrs_post_init__(self) -> None:
        # NaN slips through every ordering check (nan > x is False) and an infinite bound
        # cannot be sampled, so neither may reach the environment.
        for field in attr.fields(type(self)):
            if field.name == "seed":
                continue
            value = getattr(self, field.name)
            numbers = [x for pair in value for x in pair] if field.name == "intervals" else [value]
            if not all(math.isfinite(x) for x in numbers):
                raise TrainerConfigError(
                    f"{type(self).__name__}.{field.name} must be finite, got {value!r}.",
                    key_path=[field.name],
                )

    def __str__(self) -> str:
        raise TrainerConfigError(f"__str__ not implemented for type {self.__class__}.")

    @staticmethod
    def structure(d: Mapping | float, t: type) -> "ParameterRandomizationSettings":
        """A plain number is a constant; otherwise ``{sampler_type, sampler_parameters}``."""
        if isinstance(d, (float, int)) and not isinstance(d, bool):
            return ConstantSettings(value=d)
        if not isinstance(d, Mapping):
            raise TrainerConfigError(
                f"expected a number or a sampler (sampler_type, sampler_parameters), "
                f"got {_describe(d)}"
            )
        unknown = sorted(set(d) - {"sampler_type", "sampler_parameters"}, key=str)
        if unknown:
            raise TrainerConfigError(
                f"unknown option {unknown[0]!r} for a sampler (valid options: "
                "sampler_parameters, sampler_type)",
                key_path=[unknown[0]],
            )
        if "sampler_type" not in d:
            raise TrainerConfigError(f"Sampler configuration does not contain sampler_type : {d}.")
        if "sampler_parameters" not in d:
            raise TrainerConfigError(
                f"Sampler configuration does not contain sampler_parameters : {d}."
            )
        with _at_key("sampler_type"):
            enum_key = _structure_enum(d["sampler_type"], ParameterRandomizationType)
        with _at_key("sampler_parameters"):
            return strict_to_cls(d["sampler_parameters"], enum_key.to_settings())

    @staticmethod
    def unstructure(d: "ParameterRandomizationSettings") -> Mapping:
        """``{sampler_type, sampler_parameters}``, the form ``structure`` reads back."""
        sampler_type = _SAMPLER_TYPE_OF_CLASS[type(d)].value
        return {"sampler_type": sampler_type, "sampler_parameters": attr.asdict(d)}

    @abc.abstractmethod
    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        """Send this value or sampler for parameter ``key`` through ``env_channel``."""


@attr.s(auto_attribs=True)
class ConstantSettings(ParameterRandomizationSettings):
    """A fixed value."""

    value: float = 0.0
    """The value."""

    def __str__(self) -> str:
        return f"Float: value={self.value}"

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_float_parameter(key, self.value)


@attr.s(auto_attribs=True)
class UniformSettings(ParameterRandomizationSettings):
    """Uniform over [min_value, max_value]."""

    min_value: float = attr.ib()
    """Lower bound."""
    max_value: float = 1.0
    """Upper bound."""

    def __str__(self) -> str:
        return f"Uniform sampler: min={self.min_value}, max={self.max_value}"

    @min_value.default
    def _min_value_default(self) -> float:
        return 0.0

    @min_value.validator
    def _check_min_value(self, attribute: Any, value: float) -> None:
        if self.min_value > self.max_value:
            raise TrainerConfigError(
                f"Minimum value is greater than maximum value in uniform sampler "
                f"(min_value={self.min_value}, max_value={self.max_value})."
            )

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_uniform_sampler_parameters(key, self.min_value, self.max_value, self.seed)


@attr.s(auto_attribs=True)
class GaussianSettings(ParameterRandomizationSettings):
    """Normal with the given mean and standard deviation."""

    mean: float = 1.0
    """Mean."""
    st_dev: float = attr.ib(default=1.0)
    """Standard deviation."""

    def __str__(self) -> str:
        return f"Gaussian sampler: mean={self.mean}, stddev={self.st_dev}"

    @st_dev.validator
    def _check_st_dev(self, attribute: Any, value: float) -> None:
        if value < 0:
            raise TrainerConfigError(
                f"Standard deviation of a gaussian sampler cannot be negative (st_dev={value})."
            )

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_gaussian_sampler_parameters(key, self.mean, self.st_dev, self.seed)


@attr.s(auto_attribs=True)
class MultiRangeUniformSettings(ParameterRandomizationSettings):
    """Uniform over the union of disjoint intervals (each picked in proportion to its width)."""

    intervals: list[tuple[float, float]] = attr.ib()
    """The [min, max] intervals; at least one, none overlapping."""

    def __str__(self) -> str:
        return f"MultiRangeUniform sampler: intervals={self.intervals}"

    @intervals.default
    def _intervals_default(self) -> list[tuple[float, float]]:
        return [(0.0, 1.0)]

    @intervals.validator
    def _check_intervals(self, attribute: Any, value: list[tuple[float, float]]) -> None:
        if len(self.intervals) == 0:
            raise TrainerConfigError(
                "The multirangeuniform sampler needs at least one interval.",
                key_path=["intervals"],
            )
        for interval in self.intervals:
            if len(interval) != 2:
                raise TrainerConfigError(
                    f"The sampling interval {interval} must contain exactly two values.",
                    key_path=["intervals"],
                )
            min_value, max_value = interval
            if min_value > max_value:
                raise TrainerConfigError(
                    f"Minimum value is greater than maximum value in interval {interval}.",
                    key_path=["intervals"],
                )
        ordered = sorted(self.intervals)
        for previous, following in itertools.pairwise(ordered):
            if following[0] < previous[1]:
                raise TrainerConfigError(
                    f"The sampling intervals {list(previous)} and {list(following)} overlap.",
                    key_path=["intervals"],
                )

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_multirangeuniform_sampler_parameters(
            key, [tuple(interval) for interval in self.intervals], self.seed
        )


_SAMPLER_TYPE_OF_CLASS: dict[type, ParameterRandomizationType] = {
    UniformSettings: ParameterRandomizationType.UNIFORM,
    GaussianSettings: ParameterRandomizationType.GAUSSIAN,
    MultiRangeUniformSettings: ParameterRandomizationType.MULTIRANGEUNIFORM,
    ConstantSettings: ParameterRandomizationType.CONSTANT,
}


# ENVIRONMENT PARAMETERS ###############################################################
@attr.s(auto_attribs=True)
class CompletionCriteriaSettings:
    """When a lesson is complete and the next one starts."""

    class MeasureType(Enum):
        """What the threshold is compared with."""

        PROGRESS = "progress"
        REWARD = "reward"

    behavior: str
    """Behavior whose training progress or reward is measured (required)."""
    measure: MeasureType = attr.ib(default=MeasureType.REWARD)
    """``progress`` (steps / max_steps of the behavior) or ``reward`` (mean episode reward)."""
    min_lesson_length: int = attr.ib(default=0)
    """Episodes the lesson lasts at least (the reward buffer holds this many)."""
    signal_smoothing: bool = True
    """Smooth the reward measure: 0.25 * previous + 0.75 * current."""
    threshold: float = attr.ib(default=0.0)
    """The lesson is complete once the measure is above this (progress: within [0, 1])."""
    require_reset: bool = False
    """Reset every environment when the lesson changes."""

    @threshold.validator
    def _check_threshold_value(self, attribute: Any, value: float) -> None:
        if self.measure == self.MeasureType.PROGRESS:
            if self.threshold > 1.0:
                raise TrainerConfigError(
                    "Threshold for next lesson cannot be greater than 1 when the measure is "
                    "progress.",
                    key_path=["threshold"],
                )
            if self.threshold < 0.0:
                raise TrainerConfigError(
                    "Threshold for next lesson cannot be negative when the measure is progress.",
                    key_path=["threshold"],
                )

    @min_lesson_length.validator
    def _check_min_lesson_length(self, attribute: Any, value: int) -> None:
        if value < 0:
            raise TrainerConfigError(
                f"min_lesson_length cannot be negative (got {value}).",
                key_path=["min_lesson_length"],
            )

    def need_increment(
        self, progress: float, reward_buffer: list[float], smoothing: float
    ) -> tuple[bool, float]:
        """Whether the lesson must change now, and the new smoothed reward measure.

        :param progress: fraction of the behavior's max_steps done.
        :param reward_buffer: the behavior's most recent episode rewards.
        :param smoothing: the smoothed measure returned by the previous call.
        """
        if len(reward_buffer) < self.min_lesson_length:
            return False, smoothing
        if (
            self.measure == CompletionCriteriaSettings.MeasureType.PROGRESS
            and progress > self.threshold
        ):
            return True, smoothing
        if self.measure == CompletionCriteriaSettings.MeasureType.REWARD:
            if len(reward_buffer) < 1:
                return False, smoothing
            measure = float(np.mean(reward_buffer))
            if math.isnan(measure):
                return False, smoothing
            if self.signal_smoothing:
                measure = 0.25 * smoothing + 0.75 * measure
                smoothing = measure
            if measure > self.threshold:
                return True, smoothing
        return False, smoothing


@attr.s(auto_attribs=True)
class Lesson:
    """One lesson of a parameter's curriculum. The last lesson has no completion criteria."""

    value: ParameterRandomizationSettings
    """Value or sampler of the parameter during this lesson."""
    name: str
    """Name shown in logs and statistics."""
    completion_criteria: CompletionCriteriaSettings | None = attr.ib(default=None)
    """When the lesson ends; None for the last lesson."""


@attr.s(auto_attribs=True)
class EnvironmentParameterSettings:
    """The ordered lessons of one environment parameter (one lesson when no curriculum)."""

    curriculum: list[Lesson]
    """The lessons, in order."""

    @staticmethod
    def _check_lesson_chain(lessons: list[Lesson], parameter_name: str) -> None:
        """Every lesson but the last needs completion criteria; the last one's are ignored."""
        if len(lessons) == 0:
            raise TrainerConfigError(
                f"The curriculum of {parameter_name} has no lessons.", key_path=["curriculum"]
            )
        num_lessons = len(lessons)
        for index, lesson in enumerate(lessons):
            if index < num_lessons - 1 and lesson.completion_criteria is None:
                raise TrainerConfigError(
                    f"A non-terminal lesson does not have a completion_criteria for "
                    f"{parameter_name} (lesson {index} {lesson.name!r}: only the last lesson "
                    f"may leave it out).",
                    key_path=["curriculum", f"[{index}]"],
                )
            if index == num_lessons - 1 and lesson.completion_criteria is not None:
                warnings.warn(
                    f"Your final lesson definition contains completion_criteria for "
                    f"{parameter_name}. It will be ignored.",
                    TrainerConfigWarning,
                    stacklevel=2,
                )

    @staticmethod
    def structure(d: Mapping, t: type) -> dict[str, "EnvironmentParameterSettings"]:
        """Structure ``environment_parameters``: each entry is a number, a sampler, or a
        ``curriculum`` list of lessons."""
        if not isinstance(d, Mapping):
            raise TrainerConfigError(
                f"expected a mapping of environment parameters, got {_describe(d)}"
            )
        d_final: dict[str, EnvironmentParameterSettings] = {}
        for environment_parameter, environment_parameter_config in d.items():
            with _at_key(environment_parameter):
                if (
                    isinstance(environment_parameter_config, Mapping)
                    and "curriculum" in environment_parameter_config
                ):
                    settings = strict_to_cls(
                        environment_parameter_config, EnvironmentParameterSettings
                    )
                    EnvironmentParameterSettings._check_lesson_chain(
                        settings.curriculum, environment_parameter
                    )
                else:
                    sampler = ParameterRandomizationSettings.structure(
                        environment_parameter_config, ParameterRandomizationSettings
                    )
                    settings = EnvironmentParameterSettings(
                        curriculum=[
                            Lesson(
                                completion_criteria=None,
                                value=sampler,
                                name=environment_parameter,
                            )
                        ]
                    )
            d_final[environment_parameter] = settings
        return d_final


# TRAINERS #############################################################################
@attr.s(auto_attribs=True)
class SelfPlaySettings:
    """Self-play: training against past versions of the policy."""

    save_steps: int = 20000
    """Trainer steps between snapshots of the policy."""
    team_change: int = attr.ib()
    """Steps between changes of the learning team; defaults to 5 * save_steps."""

    @team_change.default
    def _team_change_default(self) -> int:
        return self.save_steps * 5

    swap_steps: int = 2000
    """Steps between swaps of the opponent's snapshot."""
    window: int = 10
    """Number of past snapshots opponents are drawn from."""
    play_against_latest_model_ratio: float = 0.5
    """Probability of playing against the current policy."""
    initial_elo: float = 1200.0
    """Starting ELO rating."""


# The default_settings in effect while a RunOptions is being structured. A context variable
# instead of ML-Agents' class attribute, so loading one file cannot leak its defaults into
# the next load.
_active_default_settings: contextvars.ContextVar[Optional["TrainerSettings"]] = (
    contextvars.ContextVar("_active_default_settings", default=None)
)


def _default_trainer_settings() -> Optional["TrainerSettings"]:
    active = _active_default_settings.get()
    return active if active is not None else TrainerSettings.default_override


@attr.s(auto_attribs=True)
class TrainerSettings(ExportableSettings):
    """Everything about how one behavior is trained."""

    default_override: ClassVar[Optional["TrainerSettings"]] = None
    trainer_type: str = "ppo"
    """Trainer: ``ppo``, ``sac``, ``poca`` or a registered custom type."""
    hyperparameters: HyperparamSettings = attr.ib()
    """Hyperparameters; their class depends on trainer_type."""
    checkpoint_interval: int = attr.ib()
    """Trainer steps between checkpoints."""

    @hyperparameters.default
    def _set_default_hyperparameters(self) -> HyperparamSettings:
        return _hyperparameters_class(self.trainer_type)()

    @checkpoint_interval.default
    def _set_default_checkpoint_interval(self) -> int:
        return 500000

    network_settings: NetworkSettings = attr.ib(factory=NetworkSettings)
    """Policy (and value) network."""
    reward_signals: dict[RewardSignalType, RewardSignalSettings] = attr.ib(
        factory=lambda: {RewardSignalType.EXTRINSIC: RewardSignalSettings()}
    )
    """Reward signals by type; extrinsic only by default."""
    init_path: str | None = None
    """Checkpoint to initialize the policy from."""
    keep_checkpoints: int = 5
    """Number of checkpoints kept."""
    even_checkpoints: bool = False
    """Spread keep_checkpoints evenly over max_steps (overrides checkpoint_interval)."""
    max_steps: int = 500000
    """Steps to train for."""
    time_horizon: int = 64
    """Steps of experience per agent before adding it to the buffer."""
    summary_freq: int = 50000
    """Steps between statistics summaries."""
    threaded: bool = False
    """Update the policy while the environment steps."""
    self_play: SelfPlaySettings | None = None
    """Self-play; None for none."""
    behavioral_cloning: BehavioralCloningSettings | None = None
    """Behavioral cloning; None for none."""

    @network_settings.validator
    def _check_batch_size_seq_length(self, attribute: Any, value: NetworkSettings) -> None:
        memory = self.network_settings.memory
        if memory is not None and memory.sequence_length > self.hyperparameters.batch_size:
            raise TrainerConfigError(
                f"When using memory, sequence length must be less than or equal to batch "
                f"size (sequence_length={memory.sequence_length}, "
                f"batch_size={self.hyperparameters.batch_size}).",
                key_path=["network_settings", "memory", "sequence_length"],
            )

    @checkpoint_interval.validator
    def _set_checkpoint_interval(self, attribute: Any, value: int) -> None:
        # ML-Agents replaces checkpoint_interval here, so configuration.yaml shows the
        # interval actually used.
        if self.even_checkpoints:
            if self.keep_checkpoints <= 0:
                raise TrainerConfigError(
                    "even_checkpoints needs keep_checkpoints > 0.", key_path=["keep_checkpoints"]
                )
            self.checkpoint_interval = int(self.max_steps / self.keep_checkpoints)

    @staticmethod
    def dict_to_trainerdict(d: dict, t: type) -> "TrainerSettings.DefaultTrainerDict":
        """Structure ``behaviors``: behavior name to TrainerSettings."""
        if not isinstance(d, Mapping):
            raise TrainerConfigError(f"expected a mapping of behavior names, got {_describe(d)}")
        result = TrainerSettings.DefaultTrainerDict()
        result.default_settings = _default_trainer_settings()
        for behavior_name, behavior_config in d.items():
            with _at_key(behavior_name):
                result[str(behavior_name)] = TrainerSettings.structure(
                    behavior_config, TrainerSettings
                )
        return result

    @staticmethod
    def structure(d: Mapping, t: type) -> Any:
        """Structure one behavior's settings, merged over ``default_settings`` when given."""
        if isinstance(d, TrainerSettings):
            return d
        if d is None:
            d = {}  # `MyBehavior:` with nothing under it means all defaults
        if not isinstance(d, Mapping):
            raise TrainerConfigError(f"expected a mapping for TrainerSettings, got {_describe(d)}")

        d_copy: dict[str, Any] = {}
        default_settings = _default_trainer_settings()
        if default_settings is not None:
            d_copy.update(settings_converter.unstructure(default_settings))
        deep_update_dict(d_copy, d)

        if "framework" in d_copy:
            logger.warning("Framework option was deprecated but was specified")
            d_copy.pop("framework", None)

        if "trainer_type" in d_copy:
            with _at_key("trainer_type"):
                trainer_type = _structure_str(d_copy["trainer_type"], str)
            _hyperparameters_class(trainer_type)  # unknown types fail here, listing known ones
            d_copy["trainer_type"] = trainer_type

        values: dict[str, Any] = {}
        for key, val in d_copy.items():
            if attr.has(type(val)):
                values[key] = val
            elif key == "hyperparameters":
                if "trainer_type" not in d_copy:
                    raise TrainerConfigError(
                        "Hyperparameters were specified but no trainer_type was given.",
                        key_path=["hyperparameters"],
                    )
                trainer_type = d_copy["trainer_type"]
                with _at_key(key):
                    values[key] = strict_to_cls(
                        check_hyperparam_schedules(val, trainer_type),
                        _hyperparameters_class(trainer_type),
                    )
            elif key == "max_steps":
                with _at_key(key):
                    values[key] = _structure_max_steps(val)
            else:
                values[key] = check_and_structure(key, val, TrainerSettings)
        return _instantiate(t if isinstance(t, type) else TrainerSettings, values)

    class DefaultTrainerDict(collections.defaultdict):
        """Behavior name to TrainerSettings; a behavior not named gets ``default_settings``,
        or an error when the configuration file names behaviors but not this one."""

        def __init__(self, *args: Any) -> None:
            if args and args[0] == TrainerSettings:
                super().__init__(*args)
            else:
                super().__init__(TrainerSettings, *args)
            self._config_specified = True
            self.default_settings: TrainerSettings | None = None

        def set_config_specified(self, require_config_specified: bool) -> None:
            self._config_specified = require_config_specified

        def __missing__(self, key: Any) -> "TrainerSettings":
            default_settings = self.default_settings or TrainerSettings.default_override
            if default_settings is not None:
                self[key] = copy.deepcopy(default_settings)
            elif self._config_specified:
                raise TrainerConfigError(
                    f"The behavior name {key} has not been specified in the trainer "
                    f"configuration. Please add an entry in the configuration file for {key}, "
                    f"or set default_settings."
                )
            else:
                logger.warning(
                    f"Behavior name {key} does not match any behaviors specified "
                    f"in the trainer configuration file. A default configuration will be used."
                )
                self[key] = TrainerSettings()
            return self[key]

        def __deepcopy__(self, memo: dict[int, Any]) -> "TrainerSettings.DefaultTrainerDict":
            result = TrainerSettings.DefaultTrainerDict()
            result._config_specified = self._config_specified
            result.default_settings = copy.deepcopy(self.default_settings, memo)
            for key, value in self.items():
                result[key] = copy.deepcopy(value, memo)
            return result

        def __reduce__(self) -> Any:
            return (
                TrainerSettings.DefaultTrainerDict,
                (),
                {
                    "_config_specified": self._config_specified,
                    "default_settings": self.default_settings,
                },
                None,
                iter(self.items()),
            )


# COMMAND LINE #########################################################################
@attr.s(auto_attribs=True)
class CheckpointSettings:
    """Where results go and how a run starts (fresh, resumed, initialized from another)."""

    run_id: str = parser.get_default("run_id")
    """Name of the run: results go to results_dir/run_id."""
    initialize_from: str | None = parser.get_default("initialize_from")
    """Run id to initialize the model from."""
    load_model: bool = parser.get_default("load_model")
    """Deprecated --load; means resume."""
    resume: bool = parser.get_default("resume")
    """Resume the run from its last checkpoint."""
    force: bool = parser.get_default("force")
    """Overwrite an existing run with the same run_id."""
    train_model: bool = parser.get_default("train_model")
    """Deprecated --train; training is the default."""
    inference: bool = parser.get_default("inference")
    """Run the policy without training."""
    results_dir: str = parser.get_default("results_dir")
    """Base directory of results."""

    @property
    def write_path(self) -> str:
        return os.path.join(self.results_dir, self.run_id)

    @property
    def maybe_init_path(self) -> str | None:
        return (
            os.path.join(self.results_dir, self.initialize_from)
            if self.initialize_from is not None
            else None
        )

    @property
    def run_logs_dir(self) -> str:
        return os.path.join(self.write_path, "run_logs")

    def prioritize_resume_init(self, non_default_args: set[str] | None = None) -> None:
        """When both resume and initialize_from are set, keep the one given on the command
        line; when both come from the same place, resume wins."""
        if non_default_args is None:
            non_default_args = DetectDefault.non_default_args
        if "resume" in non_default_args:
            if self.initialize_from is not None:
                logger.warning(
                    f"Both 'resume' and 'initialize_from={self.initialize_from}' are set!"
                    f" Current run will be resumed ignoring initialization."
                )
                self.initialize_from = parser.get_default("initialize_from")
        elif "initialize_from" in non_default_args:
            if self.resume:
                logger.warning(
                    f"Both 'resume' and 'initialize_from={self.initialize_from}' are set!"
                    f" {self.run_id} is initialized_from {self.initialize_from} and resume "
                    f"will be ignored."
                )
                self.resume = parser.get_default("resume")
        elif self.resume and self.initialize_from is not None:
            logger.warning(
                f"Both 'resume' and 'initialize_from={self.initialize_from}' are set in yaml "
                f"file! Current run will be resumed ignoring initialization."
            )
            self.initialize_from = parser.get_default("initialize_from")


@attr.s(auto_attribs=True)
class EnvironmentSettings:
    """Which environment runs, how many copies, and how they are restarted."""

    env_path: str | None = parser.get_default("env_path")
    """Unity executable; None connects to the Editor."""
    env_args: list[str] | None = parser.get_default("env_args")  # noqa: RUF009 (None)
    """Extra command-line arguments for the executable."""
    base_port: int = parser.get_default("base_port")
    """First port; worker i uses base_port + i."""
    num_envs: int = attr.ib(default=parser.get_default("num_envs"))
    """Concurrent environment instances."""
    num_areas: int = attr.ib(default=parser.get_default("num_areas"))
    """Training areas per instance."""
    timeout_wait: int = attr.ib(default=parser.get_default("timeout_wait"))
    """Seconds to wait for an environment to start."""
    seed: int = parser.get_default("seed")
    """Run seed; -1 picks one at random."""
    max_lifetime_restarts: int = parser.get_default("max_lifetime_restarts")
    """Crashes an environment may have over the run; -1 for no limit."""
    restarts_rate_limit_n: int = parser.get_default("restarts_rate_limit_n")
    """Crashes allowed per restarts_rate_limit_period_s; -1 for no limit."""
    restarts_rate_limit_period_s: int = parser.get_default("restarts_rate_limit_period_s")
    """Period of the restart rate limit, in seconds."""

    @num_envs.validator
    def validate_num_envs(self, attribute: Any, value: int) -> None:
        if value > 1 and self.env_path is None:
            raise TrainerConfigError(
                "num_envs must be 1 if env_path is not set.", key_path=["num_envs"]
            )
        if value < 1:
            raise TrainerConfigError(
                f"num_envs must be at least 1 (got {value}).", key_path=["num_envs"]
            )

    @num_areas.validator
    def validate_num_area(self, attribute: Any, value: int) -> None:
        if value <= 0:
            raise TrainerConfigError(
                "num_areas must be set to a positive number >= 1.", key_path=["num_areas"]
            )


@attr.s(auto_attribs=True)
class EngineSettings:
    """Unity engine settings sent to every environment."""

    width: int = parser.get_default("width")
    """Window width in pixels."""
    height: int = parser.get_default("height")
    """Window height in pixels."""
    quality_level: int = parser.get_default("quality_level")
    """QualitySettings level."""
    time_scale: float = parser.get_default("time_scale")
    """Time.timeScale."""
    target_frame_rate: int = parser.get_default("target_frame_rate")
    """Application.targetFrameRate."""
    capture_frame_rate: int = parser.get_default("capture_frame_rate")
    """Time.captureFramerate."""
    no_graphics: bool = parser.get_default("no_graphics")
    """Run without initializing graphics."""
    no_graphics_monitor: bool = parser.get_default("no_graphics_monitor")
    """Only the first environment renders graphics."""


@attr.s(auto_attribs=True)
class TorchSettings:
    """PyTorch settings."""

    device: str | None = parser.get_default("device")
    """Default torch device (``cpu``, ``cuda``, ``cuda:0``); None picks one."""


@attr.s(auto_attribs=True)
class RunOptions(ExportableSettings):
    """Everything a run of ``mlagents-learn`` is configured with."""

    default_settings: TrainerSettings | None = None
    """Settings for behaviors not named, and the base named ones are merged over."""
    behaviors: TrainerSettings.DefaultTrainerDict = attr.ib(
        factory=TrainerSettings.DefaultTrainerDict
    )
    """Settings of each behavior, by name."""
    env_settings: EnvironmentSettings = attr.ib(factory=EnvironmentSettings)
    """Environment settings."""
    engine_settings: EngineSettings = attr.ib(factory=EngineSettings)
    """Unity engine settings."""
    environment_parameters: dict[str, EnvironmentParameterSettings] | None = None
    """Environment parameters (constants, samplers, curricula) by name."""
    checkpoint_settings: CheckpointSettings = attr.ib(factory=CheckpointSettings)
    """Results and checkpoint settings."""
    torch_settings: TorchSettings = attr.ib(factory=TorchSettings)
    """PyTorch settings."""
    debug: bool = parser.get_default("debug")
    """Debug-level logging."""

    @staticmethod
    def from_argparse(args: argparse.Namespace) -> "RunOptions":
        """Load the YAML file named on the command line and apply the flags the user gave
        over it (a flag left at its default never overrides the file)."""
        argparse_args = {key: val for key, val in vars(args).items() if not key.startswith("_")}
        config_path = getattr(args, "_trainer_config_path", StoreConfigFile.trainer_config_path)
        non_default_args = getattr(args, "_non_default_args", DetectDefault.non_default_args)

        configured_dict: dict[str, Any] = {
            "checkpoint_settings": {},
            "env_settings": {},
            "engine_settings": {},
            "torch_settings": {},
        }
        require_all_behaviors = True
        try:
            if config_path is not None:
                loaded = load_config(config_path)
                if loaded is None:
                    loaded = {}  # an empty file configures nothing
                if not isinstance(loaded, Mapping):
                    raise TrainerConfigError(
                        f"expected a mapping at the top of the file, got {_describe(loaded)}"
                    )
                for key, val in loaded.items():
                    if key in configured_dict and isinstance(val, Mapping):
                        configured_dict[key].update(val)
                    else:
                        configured_dict[key] = val
            else:
                require_all_behaviors = False

            for key in configured_dict:
                if key not in attr.fields_dict(RunOptions):
                    known = ", ".join(attr.fields_dict(RunOptions))
                    raise TrainerConfigError(
                        f"The option {key} was specified in your YAML file, but is invalid "
                        f"(valid top-level options: {known}).",
                        key_path=[key],
                    )

            # Deprecated --load still means --resume.
            argparse_args["resume"] = argparse_args.get("resume", False) or argparse_args.get(
                "load_model", False
            )
            for key, val in argparse_args.items():
                if key not in non_default_args:
                    continue
                for section, section_cls in _COMMAND_LINE_SECTIONS:
                    if key in attr.fields_dict(section_cls):
                        if not isinstance(configured_dict.get(section), dict):
                            configured_dict[section] = {}
                        configured_dict[section][key] = val
                        break
                else:
                    if key in attr.fields_dict(RunOptions):
                        configured_dict[key] = val

            final_runoptions = RunOptions.from_dict(configured_dict)
        except TrainerConfigError as error:
            if error.config_file is None and config_path is not None:
                error.config_file = config_path
            raise
        final_runoptions.checkpoint_settings.prioritize_resume_init(non_default_args)
        final_runoptions.behaviors.set_config_specified(require_all_behaviors)

        if "deterministic" in non_default_args:
            for behavior_settings in final_runoptions.behaviors.values():
                behavior_settings.network_settings.deterministic = argparse_args["deterministic"]
        return final_runoptions

    @staticmethod
    def from_dict(options_dict: dict[str, Any]) -> "RunOptions":
        """Structure a whole configuration (the YAML file's contents, or ``as_dict()``)."""
        if not isinstance(options_dict, Mapping):
            raise TrainerConfigError(
                f"expected a mapping of run options, got {_describe(options_dict)}"
            )
        default_settings: TrainerSettings | None = None
        if options_dict.get("default_settings") is not None:
            with _at_key("default_settings"):
                default_settings = TrainerSettings.structure(
                    options_dict["default_settings"], TrainerSettings
                )
        token = _active_default_settings.set(default_settings)
        try:
            run_options = strict_to_cls(options_dict, RunOptions)
        finally:
            _active_default_settings.reset(token)
        run_options.behaviors.default_settings = default_settings
        run_options._check_curriculum_behaviors()
        return run_options

    def _check_curriculum_behaviors(self) -> None:
        # A criteria naming a behavior that can never be trained would keep its lesson
        # forever; without default_settings only the behaviors named in the file train.
        if not self.environment_parameters or self.default_settings is not None:
            return
        if not self.behaviors:
            return
        for parameter_name, parameter_settings in self.environment_parameters.items():
            for index, lesson in enumerate(parameter_settings.curriculum):
                criteria = lesson.completion_criteria
                if criteria is not None and criteria.behavior not in self.behaviors:
                    known = ", ".join(sorted(self.behaviors))
                    raise TrainerConfigError(
                        f"completion_criteria of lesson {lesson.name!r} names behavior "
                        f"{criteria.behavior!r}, which is not configured (behaviors: {known})",
                        key_path=[
                            "environment_parameters",
                            parameter_name,
                            "curriculum",
                            f"[{index}]",
                            "completion_criteria",
                            "behavior",
                        ],
                    )


_COMMAND_LINE_SECTIONS: tuple[tuple[str, type], ...] = (
    ("checkpoint_settings", CheckpointSettings),
    ("env_settings", EnvironmentSettings),
    ("engine_settings", EngineSettings),
    ("torch_settings", TorchSettings),
)


# CONVERTER ############################################################################
def _unstructure_attrs(obj: Any) -> dict[str, Any]:
    # By the runtime class: `hyperparameters` is declared HyperparamSettings but holds a
    # PPOSettings, whose fields must all be written.
    return {
        field.name: settings_converter.unstructure(getattr(obj, field.name))
        for field in attr.fields(type(obj))
    }


def _unstructure_mapping(obj: Mapping) -> dict[Any, Any]:
    return {
        settings_converter.unstructure(key): settings_converter.unstructure(value)
        for key, value in obj.items()
    }


def _unstructure_sequence(obj: Any) -> list[Any]:
    return [settings_converter.unstructure(item) for item in obj]


def _is_enum_type(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=False)
    # Generic rules first: cattrs tries the most recently registered predicate first.
    converter.register_structure_hook_func(
        lambda t: isinstance(t, type) and attr.has(t), lambda d, t: strict_to_cls(d, t)
    )
    converter.register_structure_hook_func(lambda t: typing.get_origin(t) is list, _structure_list)
    converter.register_structure_hook_func(
        lambda t: typing.get_origin(t) is tuple, _structure_tuple
    )
    converter.register_structure_hook_func(lambda t: typing.get_origin(t) is dict, _structure_dict)
    converter.register_structure_hook_func(_is_enum_type, _structure_enum)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook_func(lambda t: t is Any, _structure_any)
    # ML-Agents' special cases.
    converter.register_structure_hook_func(
        lambda t: t == dict[RewardSignalType, RewardSignalSettings],
        RewardSignalSettings.structure,
    )
    converter.register_structure_hook_func(
        lambda t: t is ParameterRandomizationSettings, ParameterRandomizationSettings.structure
    )
    converter.register_structure_hook_func(
        lambda t: t == dict[str, EnvironmentParameterSettings],
        EnvironmentParameterSettings.structure,
    )
    converter.register_structure_hook_func(
        lambda t: t is TrainerSettings, TrainerSettings.structure
    )
    converter.register_structure_hook_func(
        lambda t: t is TrainerSettings.DefaultTrainerDict, TrainerSettings.dict_to_trainerdict
    )

    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and attr.has(t), _unstructure_attrs
    )
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, ParameterRandomizationSettings),
        ParameterRandomizationSettings.unstructure,
    )
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Mapping), _unstructure_mapping
    )
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, (list, tuple)), _unstructure_sequence
    )
    converter.register_unstructure_hook_func(_is_enum_type, lambda e: e.value)
    return converter


settings_converter: cattrs.Converter = _make_converter()
"""The converter every settings class is structured and unstructured with."""
