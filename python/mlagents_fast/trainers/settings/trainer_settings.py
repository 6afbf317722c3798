"""Settings of how each behavior trains: network, hyperparameters (one class per trainer
type, in the trainer-type registry), reward signals, self-play, behavioral cloning, and the
``behaviors`` mapping with ``default_settings`` merged under each behavior.
"""

import collections
import contextvars
import copy
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from enum import Enum
from typing import Any, ClassVar, Optional

import attr

from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings.converter import (
    ExportableSettings,
    _at_key,
    _describe,
    _instantiate,
    _structure_enum,
    _structure_str,
    check_and_structure,
    deep_update_dict,
    settings_converter,
    strict_to_cls,
    validate_key,
)

__all__ = [
    "BehavioralCloningSettings",
    "ConditioningType",
    "CuriositySettings",
    "EncoderType",
    "GAILSettings",
    "HyperparamSettings",
    "NetworkSettings",
    "OffPolicyHyperparamSettings",
    "OnPolicyHyperparamSettings",
    "POCASettings",
    "PPOSettings",
    "RNDSettings",
    "RewardSignalSettings",
    "RewardSignalType",
    "SACSettings",
    "ScheduleType",
    "SelfPlaySettings",
    "SerializationSettings",
    "TrainerSettings",
    "TrainerType",
    "TrainerTypeRegistry",
    "all_trainer_settings",
    "check_hyperparam_schedules",
    "register_trainer_type",
    "trainer_types",
]

logger = logging.getLogger(__name__)


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


class SerializationSettings:
    """How policies are exported for inference."""

    convert_to_onnx = True
    onnx_opset = 9


# NETWORK ##############################################################################
@attr.s(auto_attribs=True)
class NetworkSettings:
    """Shape of a policy, value or reward-signal network."""

    @attr.s(auto_attribs=True)
    class MemorySettings:
        """Recurrent (LSTM) memory of a network."""

        sequence_length: int = attr.ib(default=64)
        """Length of the sequences of experience the LSTM is trained on."""
        memory_size: int = attr.ib(
            default=128,
            validator=validate_key(
                lambda _, value: (
                    "When using a recurrent network, memory size must be greater than 0."
                    if value <= 0
                    else None
                ),
                lambda _, value: (
                    "When using a recurrent network, memory size must be divisible by 2."
                    if value % 2 != 0
                    else None
                ),
            ),
        )
        """Size of the memory the agent keeps; a positive even number."""

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
    deterministic: bool = False
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


# TRAINER TYPES ########################################################################
@attr.s(auto_attribs=True, frozen=True)
class TrainerType:
    """What ``trainer_type: <name>`` stands for."""

    hyperparameters_class: type | None = None
    """Class of the behavior's ``hyperparameters``; None until one is registered."""
    trainer_class: type | None = None
    """Trainer class that trains the behavior; None until the trainer package registers it
    (built-ins are registered by the trainer factory when it first builds a trainer)."""


class TrainerTypeRegistry(MutableMapping[str, type]):
    """The one registry of trainer types, used by the settings (to structure
    ``hyperparameters``) and by the trainer factory (to build the trainer).

    As a mapping it is ML-Agents' ``all_trainer_settings``: trainer type name to its
    hyperparameters class. The trainer classes are in :meth:`trainer_classes`.
    """

    def __init__(self) -> None:
        self._types: dict[str, TrainerType] = {}

    def register(
        self,
        name: str,
        hyperparameters_class: type | None = None,
        trainer_class: type | None = None,
    ) -> None:
        """Register or complete trainer type ``name``; a class not given keeps its current
        registration. ``hyperparameters_class`` must be an attrs class deriving from
        HyperparamSettings; the caller checks ``trainer_class`` (this layer does not know
        the Trainer base class)."""
        if not isinstance(name, str) or not name:
            raise TrainerConfigError(f"trainer type must be a non-empty string, got {name!r}")
        if hyperparameters_class is not None and not (
            isinstance(hyperparameters_class, type)
            and attr.has(hyperparameters_class)
            and issubclass(hyperparameters_class, HyperparamSettings)
        ):
            raise TrainerConfigError(
                f"hyperparameters class for {name!r} must be an attrs class deriving from "
                f"HyperparamSettings, got {hyperparameters_class!r}"
            )
        current = self._types.get(name, TrainerType())
        self._types[name] = TrainerType(
            hyperparameters_class=hyperparameters_class or current.hyperparameters_class,
            trainer_class=trainer_class or current.trainer_class,
        )

    def hyperparameters_class(self, name: str) -> type:
        """The hyperparameters class of ``trainer_type: name``; a TrainerConfigError at
        ``trainer_type`` listing the known types when there is none."""
        try:
            return self[name]
        except KeyError:
            known = ", ".join(repr(known_name) for known_name in self)
            raise TrainerConfigError(
                f"unknown trainer_type {name!r}; known trainer types: {known}",
                key_path=["trainer_type"],
            ) from None

    def trainer_classes(self) -> dict[str, type]:
        """Trainer type name to trainer class, for the types that have one."""
        return {
            name: entry.trainer_class
            for name, entry in self._types.items()
            if entry.trainer_class is not None
        }

    def __getitem__(self, name: str) -> type:
        entry = self._types.get(name)
        if entry is None or entry.hyperparameters_class is None:
            raise KeyError(name)
        return entry.hyperparameters_class

    def __setitem__(self, name: str, hyperparameters_class: type) -> None:
        self.register(name, hyperparameters_class=hyperparameters_class)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        entry = self._types[name]
        if entry.trainer_class is None:
            del self._types[name]
        else:
            self._types[name] = TrainerType(trainer_class=entry.trainer_class)

    def __iter__(self) -> Iterator[str]:
        return (
            name for name, entry in self._types.items() if entry.hyperparameters_class is not None
        )

    def __len__(self) -> int:
        return sum(1 for _ in self)


trainer_types = TrainerTypeRegistry()
"""Every trainer type: ``ppo``, ``sac`` and ``poca`` here, plugins and custom types added."""
trainer_types.register("ppo", PPOSettings)
trainer_types.register("sac", SACSettings)
trainer_types.register("poca", POCASettings)

all_trainer_settings = trainer_types
"""ML-Agents' name for the registry: trainer type name to its hyperparameters class."""


def register_trainer_type(trainer_type: str, hyperparameters_class: type) -> None:
    """Make ``trainer_type: <trainer_type>`` valid, with ``hyperparameters_class`` (an attrs
    class deriving from HyperparamSettings) as the type of its ``hyperparameters``.

    This is what ML-Agents' ``mlagents.trainer_type`` plugins provide; a package with its own
    trainer calls it at import time (or registers trainer and settings at once with
    ``mlagents_fast.trainers.trainer.trainer_factory.register_trainer_type``).
    """
    trainer_types.register(trainer_type, hyperparameters_class=hyperparameters_class)


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
                signal = d_final[enum_key]
                if (
                    "network_settings" not in val
                    and isinstance(signal, GAILSettings | CuriositySettings | RNDSettings)
                    and signal.encoding_size is not None
                ):
                    signal.network_settings.hidden_units = signal.encoding_size
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


def _structure_max_steps(value: Any) -> int:
    # Old configs write max_steps as a float, or as `1.0e7` (a string to PyYAML):
    # ML-Agents takes int(float(value)).
    if not isinstance(value, bool):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            pass
    raise TrainerConfigError(f"expected a number of steps, got {_describe(value)}")


def check_hyperparam_schedules(val: dict, trainer_type: str) -> dict:
    """For PPO and POCA, ``beta_schedule`` and ``epsilon_schedule`` not given follow a
    given ``learning_rate_schedule`` (ML-Agents' rule)."""
    if trainer_type in ("ppo", "poca") and isinstance(val, Mapping):
        val = dict(val)
        if "learning_rate_schedule" in val:
            val.setdefault("beta_schedule", val["learning_rate_schedule"])
            val.setdefault("epsilon_schedule", val["learning_rate_schedule"])
    return val


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
        return trainer_types.hyperparameters_class(self.trainer_type)()

    @checkpoint_interval.default
    def _set_default_checkpoint_interval(self) -> int:
        return 500000

    network_settings: NetworkSettings = attr.ib(
        factory=NetworkSettings,
        validator=validate_key(
            lambda self, network: (
                f"When using memory, sequence length must be less than or equal to batch "
                f"size (sequence_length={network.memory.sequence_length}, "
                f"batch_size={self.hyperparameters.batch_size})."
                if network.memory is not None
                and network.memory.sequence_length > self.hyperparameters.batch_size
                else None
            ),
            at=("memory", "sequence_length"),
        ),
    )
    """Policy (and value) network."""
    reward_signals: dict[RewardSignalType, RewardSignalSettings] = attr.ib(
        factory=lambda: {RewardSignalType.EXTRINSIC: RewardSignalSettings()}
    )
    """Reward signals by type; extrinsic only by default."""
    init_path: str | None = None
    """Checkpoint to initialize the policy from."""
    keep_checkpoints: int = attr.ib(
        default=5,
        validator=validate_key(
            lambda self, value: (
                "even_checkpoints needs keep_checkpoints > 0."
                if self.even_checkpoints and value <= 0
                else None
            )
        ),
    )
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

    def __attrs_post_init__(self) -> None:
        # ML-Agents replaces checkpoint_interval when the settings are built, so
        # configuration.yaml shows the interval actually used.
        if self.even_checkpoints:
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
            # An unknown type fails here, listing the known ones.
            trainer_types.hyperparameters_class(trainer_type)
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
                        trainer_types.hyperparameters_class(trainer_type),
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


# ML-Agents' special YAML forms of these classes.
settings_converter.register_structure_hook_func(
    lambda t: t == dict[RewardSignalType, RewardSignalSettings],
    RewardSignalSettings.structure,
)
settings_converter.register_structure_hook_func(
    lambda t: t is TrainerSettings, TrainerSettings.structure
)
settings_converter.register_structure_hook_func(
    lambda t: t is TrainerSettings.DefaultTrainerDict, TrainerSettings.dict_to_trainerdict
)
