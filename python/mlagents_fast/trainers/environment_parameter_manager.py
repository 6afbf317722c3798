"""Environment parameters during a run: current lesson of each curriculum, and when to move on.

The counterpart of ``mlagents.trainers.environment_parameter_manager`` (ML-Agents 1.1.0), with
the same constructor and methods. The lesson state of each parameter (its lesson number and,
unlike ML-Agents, its smoothed reward measure) is kept by the manager and mirrored into
``GlobalTrainingStatus`` under the parameter's name, so it is saved in
run_logs/training_status.json with every checkpoint, and ``restore=True`` resumes from what
``--resume`` loaded there. :meth:`EnvironmentParameterManager.export_state` and
:meth:`EnvironmentParameterManager.restore_state` give the same state as plain data.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings import (
    EnvironmentParameterSettings,
    ParameterRandomizationSettings,
)
from mlagents_fast.trainers.training_status import GlobalTrainingStatus, StatusType

if TYPE_CHECKING:
    from mlagents_fast.envs.side_channel.environment_parameters_channel import (
        EnvironmentParametersChannel,
    )

__all__ = ["LESSON_NUM_KEY", "SMOOTHED_VALUE_KEY", "EnvironmentParameterManager"]

logger = logging.getLogger(__name__)

LESSON_NUM_KEY = "lesson_num"
"""Key of a parameter's lesson number in the exported state (ML-Agents' StatusType.LESSON_NUM)."""
SMOOTHED_VALUE_KEY = "smoothed_value"
"""Key of a parameter's smoothed reward measure in the exported state."""


class EnvironmentParameterManager:
    """Holds the lessons of every environment parameter, gives the value or sampler each one
    has now, and advances lessons by their completion criteria."""

    def __init__(
        self,
        settings: dict[str, EnvironmentParameterSettings] | None = None,
        run_seed: int = -1,
        restore: bool = False,
        restored_state: Mapping[str, Any] | None = None,
    ) -> None:
        """
        :param settings: environment parameter name to its settings (``RunOptions.
            environment_parameters``). Copied: seeds filled in here do not change the caller's.
        :param run_seed: seed of the run; samplers without a seed get run_seed, run_seed + 1,
            ... in the order they appear.
        :param restore: resume lessons (a run resumed with --resume): from ``restored_state``
            when given, else from what GlobalTrainingStatus loaded from training_status.json.
        :param restored_state: what :meth:`export_state` returned when the run was saved.
            Parameters it does not mention start at lesson 0.
        """
        self._dict_settings: dict[str, EnvironmentParameterSettings] = copy.deepcopy(
            dict(settings or {})
        )
        self._lesson_numbers: dict[str, int] = dict.fromkeys(self._dict_settings, 0)
        self._smoothed_values: dict[str, float] = dict.fromkeys(self._dict_settings, 0.0)
        if restore:
            if restored_state is None:
                restored_state = {
                    name: GlobalTrainingStatus.saved_state[name]
                    for name in self._dict_settings
                    if isinstance(GlobalTrainingStatus.saved_state.get(name), Mapping)
                }
            self.restore_state(restored_state)
        for name in self._dict_settings:
            self._publish(name)
        self._set_sampler_seeds(run_seed)

    def _publish(self, name: str) -> None:
        """Mirror one parameter's state into GlobalTrainingStatus (saved with checkpoints)."""
        GlobalTrainingStatus.set_parameter_state(
            name, StatusType.LESSON_NUM, self._lesson_numbers[name]
        )
        # StatusType has no member for it; the entry sits beside lesson_num under the same name.
        GlobalTrainingStatus.saved_state[name][SMOOTHED_VALUE_KEY] = self._smoothed_values[name]

    def _set_sampler_seeds(self, seed: int) -> None:
        """Give every sampler without a seed (-1) one derived from the run seed."""
        offset = 0
        for settings in self._dict_settings.values():
            for lesson in settings.curriculum:
                if lesson.value.seed == -1:
                    lesson.value.seed = seed + offset
                    offset += 1

    def get_minimum_reward_buffer_size(self, behavior_name: str) -> int:
        """Episodes of reward history ``behavior_name``'s trainer must keep: the largest
        min_lesson_length of the criteria that measure it (at least 1)."""
        result = 1
        for settings in self._dict_settings.values():
            for lesson in settings.curriculum:
                criteria = lesson.completion_criteria
                if criteria is not None and criteria.behavior == behavior_name:
                    result = max(result, criteria.min_lesson_length)
        return result

    def get_current_samplers(self) -> dict[str, ParameterRandomizationSettings]:
        """Parameter name to the value or sampler of its current lesson."""
        return {
            name: settings.curriculum[self._lesson_numbers[name]].value
            for name, settings in self._dict_settings.items()
        }

    def get_current_lesson_number(self) -> dict[str, int]:
        """Parameter name to its current lesson number (always 0 without a curriculum)."""
        return dict(self._lesson_numbers)

    def get_current_lesson_names(self) -> dict[str, str]:
        """Parameter name to the name of its current lesson."""
        return {
            name: settings.curriculum[self._lesson_numbers[name]].name
            for name, settings in self._dict_settings.items()
        }

    def apply(self, env_channel: EnvironmentParametersChannel) -> None:
        """Send every parameter's current value or sampler through ``env_channel`` (at the
        start of a run and after a lesson change; the environment resamples on reset)."""
        for name, sampler in self.get_current_samplers().items():
            sampler.apply(name, env_channel)

    def log_current_lesson(self, parameter_name: str | None = None) -> None:
        """Log the lesson and value of ``parameter_name``, or of every parameter."""
        names = [parameter_name] if parameter_name is not None else list(self._dict_settings)
        for name in names:
            lesson = self._dict_settings[name].curriculum[self._lesson_numbers[name]]
            logger.info(
                f"Parameter '{name}' is in lesson '{lesson.name}' and has value '{lesson.value}'."
            )

    def validate_behaviors(self, behavior_names: Iterable[str]) -> list[str]:
        """Warn about each completion criteria that measures a behavior not in
        ``behavior_names`` (the behaviors training now): its lesson cannot end until that
        behavior appears. ML-Agents 1.1.0 accepts such a curriculum and keeps the lesson
        (a behavior may join the environment later), so this is not an error.

        :returns: the names of the unmeasured behaviors, sorted.
        """
        known = set(behavior_names)
        missing: set[str] = set()
        for name, settings in self._dict_settings.items():
            for lesson in settings.curriculum[:-1]:
                criteria = lesson.completion_criteria
                if criteria is not None and criteria.behavior not in known:
                    missing.add(criteria.behavior)
                    logger.warning(
                        f"Lesson '{lesson.name}' of parameter '{name}' ends on the progress of "
                        f"behavior '{criteria.behavior}', which is not training "
                        f"(behaviors: {', '.join(sorted(known)) or 'none'}); the lesson will "
                        f"not change until that behavior appears."
                    )
        return sorted(missing)

    def update_lessons(
        self,
        trainer_steps: Mapping[str, int],
        trainer_max_steps: Mapping[str, int],
        trainer_reward_buffer: Mapping[str, Sequence[float]],
    ) -> tuple[bool, bool]:
        """Advance every parameter whose current lesson's criteria are met, by one lesson.

        :param trainer_steps: behavior name to the steps its trainer has taken.
        :param trainer_max_steps: behavior name to its trainer's max_steps.
        :param trainer_reward_buffer: behavior name to its most recent episode rewards.
        :returns: (whether any lesson changed, whether the environments must reset).
        """
        must_reset = False
        updated = False
        for name, settings in self._dict_settings.items():
            lesson_num = self._lesson_numbers[name]
            lesson = settings.curriculum[lesson_num]
            criteria = lesson.completion_criteria
            if criteria is None or lesson_num + 1 >= len(settings.curriculum):
                continue
            behavior = criteria.behavior
            if behavior not in trainer_steps:
                continue
            max_steps = trainer_max_steps[behavior]
            progress = float(trainer_steps[behavior]) / float(max_steps) if max_steps else 1.0
            must_increment, new_smoothing = criteria.need_increment(
                progress, list(trainer_reward_buffer.get(behavior, [])), self._smoothed_values[name]
            )
            self._smoothed_values[name] = new_smoothing
            if must_increment:
                self._lesson_numbers[name] = lesson_num + 1
                self.log_current_lesson(name)
                updated = True
                must_reset = must_reset or criteria.require_reset
            self._publish(name)
        return updated, must_reset

    def export_state(self) -> dict[str, dict[str, float]]:
        """Lesson number and smoothed measure of every parameter, as JSON-ready dicts."""
        return {
            name: {
                LESSON_NUM_KEY: self._lesson_numbers[name],
                SMOOTHED_VALUE_KEY: self._smoothed_values[name],
            }
            for name in self._dict_settings
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Continue from what :meth:`export_state` returned. Entries of parameters this run
        does not have are ignored (with a warning); a lesson number this curriculum does not
        have is a TrainerConfigError."""
        if not isinstance(state, Mapping):
            raise TrainerConfigError(
                f"saved environment parameter state must be a mapping, got {type(state).__name__}"
            )
        restored: dict[str, tuple[int, float]] = {}
        for name, entry in state.items():
            if name not in self._dict_settings:
                logger.warning(
                    f"The saved state has environment parameter '{name}', which this run does "
                    "not configure; it is ignored."
                )
                continue
            if not isinstance(entry, Mapping):
                raise TrainerConfigError(
                    f"saved state of environment parameter '{name}' must be a mapping, got "
                    f"{entry!r}"
                )
            num_lessons = len(self._dict_settings[name].curriculum)
            lesson_num = entry.get(LESSON_NUM_KEY, 0)
            if (
                isinstance(lesson_num, bool)
                or not isinstance(lesson_num, int)
                or not 0 <= lesson_num < num_lessons
            ):
                raise TrainerConfigError(
                    f"saved lesson number {lesson_num!r} of environment parameter '{name}' is "
                    f"not a lesson of its curriculum (0 to {num_lessons - 1})"
                )
            smoothed = entry.get(SMOOTHED_VALUE_KEY, 0.0)
            if (
                isinstance(smoothed, bool)
                or not isinstance(smoothed, (int, float))
                or not math.isfinite(smoothed)
            ):
                raise TrainerConfigError(
                    f"saved smoothed value {smoothed!r} of environment parameter '{name}' is "
                    "not a finite number"
                )
            restored[name] = (lesson_num, float(smoothed))
        # Applied only once every entry is valid: a bad file changes nothing.
        for name, (lesson_num, smoothed) in restored.items():
            self._lesson_numbers[name] = lesson_num
            self._smoothed_values[name] = smoothed
            self._publish(name)
