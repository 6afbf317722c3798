"""Exceptions of the trainers package (the counterpart of ``mlagents.trainers.exception``).

The names and the inheritance between them are ML-Agents 1.1.0's, so ``except TrainerError``
in user code keeps working. Every class here also derives from
:class:`mlagents_fast.exceptions.MlagentsFastError`, and :class:`TrainerConfigError` from
``ValueError`` (a bad configuration is a bad value).

Where ML-Agents raises another type for the same problem, our error derives from both, so
the ``except`` clause of code written for either keeps working: a missing required option
(:class:`MissingOptionError`, also a ``TypeError``) and an unknown schedule
(:class:`InvalidScheduleError`, also an :class:`UnityTrainerException`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mlagents_fast.exceptions import MlagentsFastError, RunStoppedError

__all__ = [
    "CurriculumConfigError",
    "CurriculumError",
    "CurriculumLoadingError",
    "EnvironmentRestartLimitError",
    "InterruptedBeforeTraining",
    "InvalidScheduleError",
    "MetaCurriculumError",
    "MissingOptionError",
    "ResultsFileError",
    "SamplerException",
    "TrainerConfigError",
    "TrainerConfigWarning",
    "TrainerError",
    "UnityTrainerException",
]


class TrainerError(MlagentsFastError):
    """Any error related to the trainers."""


class TrainerConfigError(MlagentsFastError, ValueError):
    """A trainer configuration (YAML file or command line) is invalid.

    ``key_path`` is where in the configuration the problem is (for example
    ``["behaviors", "3DBall", "hyperparameters", "batch_size"]``) and ``config_file`` the
    file it came from, when known. ``str(error)`` puts all of it on one line.
    """

    def __init__(
        self,
        message: str,
        key_path: Sequence[str] | None = None,
        config_file: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.key_path: list[str] = [str(k) for k in key_path] if key_path else []
        self.config_file = config_file

    def __str__(self) -> str:
        where = []
        if self.config_file is not None:
            where.append(f"in {self.config_file}")
        if self.key_path:
            where.append("at " + ".".join(self.key_path))
        if not where:
            return self.message
        return f"{', '.join(where)}: {self.message}"


class TrainerConfigWarning(MlagentsFastError, Warning):
    """A trainer configuration is accepted but contains something that will be ignored."""


class CurriculumError(TrainerError):
    """Any error related to training with a curriculum."""


class CurriculumLoadingError(CurriculumError):
    """Any error related to loading the curriculum configuration."""


class CurriculumConfigError(CurriculumError):
    """Any error related to processing the curriculum configuration."""


class MetaCurriculumError(TrainerError):
    """Any error related to the configuration of a metacurriculum."""


class SamplerException(TrainerError):
    """Any error related to environment parameter samplers."""


class UnityTrainerException(TrainerError):
    """Any error related to a trainer."""


class MissingOptionError(TrainerConfigError, TypeError):
    """A required option is missing from the configuration (ML-Agents raises ``TypeError``,
    from the settings class's constructor)."""


class InvalidScheduleError(TrainerConfigError, UnityTrainerException):
    """A hyperparameter schedule is not one of ScheduleType's (ML-Agents raises
    ``UnityTrainerException``)."""


class ResultsFileError(TrainerConfigError, UnityTrainerException):
    """A file of a previous run that ``--resume`` or ``--initialize-from`` reads is missing or
    damaged. The message names the file and what to do; the command line prints it on one
    line and exits with status 2, as for a configuration error. ML-Agents raises
    ``UnityTrainerException`` for a missing ``--initialize-from`` checkpoint.

    :param path: the file (or folder) at fault.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class EnvironmentRestartLimitError(RunStoppedError, UnityTrainerException):
    """An environment worker failed again after using up ``--max-lifetime-restarts`` or the
    ``--restarts-rate-limit-n`` restarts per ``--restarts-rate-limit-period-s``. ML-Agents
    re-raises the worker's last error; here it is this error's ``__cause__``."""


class InterruptedBeforeTraining(KeyboardInterrupt):
    """Ctrl-C while the environment was starting (or the Unity Editor was awaited), before
    anything was trained. Still a KeyboardInterrupt; the message says what was interrupted,
    and the command line prints it as one line."""
