"""Environment parameters: the samplers the environment draws a parameter from, and the
curriculum of lessons with the criteria that end each one.
"""

import abc
import itertools
import math
import warnings
from collections.abc import Callable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

import attr
import numpy as np

from mlagents_fast.trainers.exception import TrainerConfigError, TrainerConfigWarning
from mlagents_fast.trainers.settings.converter import (
    _at_key,
    _describe,
    _structure_enum,
    settings_converter,
    strict_to_cls,
    validate_key,
)

if TYPE_CHECKING:  # the channel lives in the envs package; only its interface is needed here
    from mlagents_fast.envs.side_channel.environment_parameters_channel import (
        EnvironmentParametersChannel,
    )

__all__ = [
    "CompletionCriteriaSettings",
    "ConstantSettings",
    "EnvironmentParameterSettings",
    "GaussianSettings",
    "Lesson",
    "MultiRangeUniformSettings",
    "ParameterRandomizationSettings",
    "ParameterRandomizationType",
    "UniformSettings",
]


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


def _finite(name: str) -> Callable[[Any, Any], str | None]:
    """A check that the numbers of option ``name`` are finite: NaN slips through every
    ordering check (nan > x is False) and an infinite bound cannot be sampled, so neither
    may reach the environment."""

    def check(instance: Any, value: Any) -> str | None:
        numbers = [x for pair in value for x in pair] if name == "intervals" else [value]
        if all(math.isfinite(x) for x in numbers):
            return None
        return f"{type(instance).__name__}.{name} must be finite, got {value!r}."

    return check


def _intervals_problem(_: Any, intervals: list[tuple[float, float]]) -> str | None:
    if len(intervals) == 0:
        return "The multirangeuniform sampler needs at least one interval."
    for interval in intervals:
        if len(interval) != 2:
            return f"The sampling interval {interval} must contain exactly two values."
        min_value, max_value = interval
        if min_value > max_value:
            return f"Minimum value is greater than maximum value in interval {interval}."
    for previous, following in itertools.pairwise(sorted(intervals)):
        if following[0] < previous[1]:
            return f"The sampling intervals {list(previous)} and {list(following)} overlap."
    return None


@attr.s(auto_attribs=True)
class ParameterRandomizationSettings(abc.ABC):
    """The value of an environment parameter: a constant or a sampler the environment draws
    from at each reset."""

    seed: int = -1
    """Seed of the sampler; -1 lets the run seed pick one."""

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

    value: float = attr.ib(default=0.0, validator=validate_key(_finite("value")))
    """The value."""

    def __str__(self) -> str:
        return f"Float: value={self.value}"

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_float_parameter(key, self.value)


@attr.s(auto_attribs=True)
class UniformSettings(ParameterRandomizationSettings):
    """Uniform over [min_value, max_value]."""

    min_value: float = attr.ib(
        validator=validate_key(
            lambda self, value: (
                f"Minimum value is greater than maximum value in uniform sampler "
                f"(min_value={value}, max_value={self.max_value})."
                if value > self.max_value
                else None
            ),
            _finite("min_value"),
        )
    )
    """Lower bound."""
    max_value: float = attr.ib(default=1.0, validator=validate_key(_finite("max_value")))
    """Upper bound."""

    def __str__(self) -> str:
        return f"Uniform sampler: min={self.min_value}, max={self.max_value}"

    @min_value.default
    def _min_value_default(self) -> float:
        return 0.0

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_uniform_sampler_parameters(key, self.min_value, self.max_value, self.seed)


@attr.s(auto_attribs=True)
class GaussianSettings(ParameterRandomizationSettings):
    """Normal with the given mean and standard deviation."""

    mean: float = attr.ib(default=1.0, validator=validate_key(_finite("mean")))
    """Mean."""
    st_dev: float = attr.ib(
        default=1.0,
        validator=validate_key(
            lambda _, value: (
                f"Standard deviation of a gaussian sampler cannot be negative (st_dev={value})."
                if value < 0
                else None
            ),
            _finite("st_dev"),
        ),
    )
    """Standard deviation."""

    def __str__(self) -> str:
        return f"Gaussian sampler: mean={self.mean}, stddev={self.st_dev}"

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_gaussian_sampler_parameters(key, self.mean, self.st_dev, self.seed)


@attr.s(auto_attribs=True)
class MultiRangeUniformSettings(ParameterRandomizationSettings):
    """Uniform over the union of disjoint intervals (each picked in proportion to its width)."""

    intervals: list[tuple[float, float]] = attr.ib(
        validator=validate_key(_intervals_problem, _finite("intervals"))
    )
    """The [min, max] intervals; at least one, none overlapping."""

    def __str__(self) -> str:
        return f"MultiRangeUniform sampler: intervals={self.intervals}"

    @intervals.default
    def _intervals_default(self) -> list[tuple[float, float]]:
        return [(0.0, 1.0)]

    def apply(self, key: str, env_channel: "EnvironmentParametersChannel") -> None:
        env_channel.set_multirangeuniform_sampler_parameters(
            key, [(float(low), float(high)) for low, high in self.intervals], self.seed
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
    min_lesson_length: int = attr.ib(
        default=0,
        validator=validate_key(
            lambda _, value: (
                f"min_lesson_length cannot be negative (got {value})." if value < 0 else None
            )
        ),
    )
    """Episodes the lesson lasts at least (the reward buffer holds this many)."""
    signal_smoothing: bool = True
    """Smooth the reward measure: 0.25 * previous + 0.75 * current."""
    threshold: float = attr.ib(
        default=0.0, validator=validate_key(lambda self, value: self._threshold_problem(value))
    )
    """The lesson is complete once the measure is above this (progress: within [0, 1])."""
    require_reset: bool = False
    """Reset every environment when the lesson changes."""

    def _threshold_problem(self, threshold: float) -> str | None:
        if self.measure != self.MeasureType.PROGRESS:
            return None
        if threshold > 1.0:
            return (
                "Threshold for next lesson cannot be greater than 1 when the measure is progress."
            )
        if threshold < 0.0:
            return "Threshold for next lesson cannot be negative when the measure is progress."
        return None

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
        for key, environment_parameter_config in d.items():
            # Unity receives parameter names as strings; YAML reads `0:` as an int key.
            environment_parameter = str(key)
            with _at_key(environment_parameter):
                if environment_parameter in d_final:
                    raise TrainerConfigError(
                        f"environment parameter {environment_parameter!r} is given twice"
                    )
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


# ML-Agents' special YAML forms: a plain number or {sampler_type, sampler_parameters} for a
# value, and the environment_parameters mapping (a value or a curriculum per parameter).
settings_converter.register_structure_hook_func(
    lambda t: t is ParameterRandomizationSettings, ParameterRandomizationSettings.structure
)
settings_converter.register_structure_hook_func(
    lambda t: t == dict[str, EnvironmentParameterSettings],
    EnvironmentParameterSettings.structure,
)
settings_converter.register_unstructure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, ParameterRandomizationSettings),
    ParameterRandomizationSettings.unstructure,
)
