"""Run-folder checks (the counterpart of ``mlagents.trainers.directory_utils``).

Besides ML-Agents' two functions, the checks of what ``--resume`` and ``--initialize-from``
read from a previous run (configuration.yaml, run_logs/training_status.json, each behavior's
checkpoint.pt and replay buffer file), run before anything is written to the results folder,
so a missing or damaged file stops the run with one :class:`ResultsFileError` naming the file
and what to do (the command line prints it on one line and exits with status 2), and a failed
resume leaves the folder as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlagents_fast import _native
from mlagents_fast.exceptions import CorruptFileError, StorageIOError
from mlagents_fast.trainers.exception import (
    ResultsFileError,
    TrainerConfigError,
    UnityTrainerException,
)
from mlagents_fast.trainers.model_saver.torch_model_saver import (
    DEFAULT_CHECKPOINT_NAME,
    load_training_checkpoint,
)
from mlagents_fast.trainers.settings import RunOptions, TrainerSettings
from mlagents_fast.trainers.settings.config_file import load_config
from mlagents_fast.trainers.trainer.off_policy_trainer import (
    REPLAY_BUFFER_FILE,
    REPLAY_BUFFER_FILE_KIND,
)
from mlagents_fast.trainers.training_status import StatusType, read_training_status

__all__ = [
    "ResultsFileError",
    "RunFolderError",
    "check_behavior_can_resume",
    "check_init_files",
    "check_resume_files",
    "setup_init_path",
    "validate_existing_directories",
]


class RunFolderError(TrainerConfigError, UnityTrainerException):
    """The results folder of a run conflicts with --resume/--force/--initialize-from (also an
    UnityTrainerException, what ML-Agents raises here)."""


def validate_existing_directories(
    output_path: str, resume: bool, force: bool, init_path: str | None = None
) -> None:
    """Refuse to overwrite a previous run, or to resume / initialize from one that is not there.

    :param output_path: results/<run-id>
    :param resume: --resume given
    :param force: --force given
    :param init_path: results/<initialize-from run-id>, if given
    """
    output_path_exists = os.path.isdir(output_path)
    if output_path_exists:
        if not resume and not force:
            raise RunFolderError(
                f"Previous data from this run ID was found at {output_path}. "
                "Either specify a new run ID, use --resume to resume this run, "
                "or use the --force parameter to overwrite existing data."
            )
    elif resume:
        raise RunFolderError(
            f"Previous data from this run ID ({output_path}) was not found. "
            "Train a new run by removing the --resume flag."
        )
    if init_path is not None and not os.path.isdir(init_path):
        raise RunFolderError(
            f"Could not initialize from {init_path}. Make sure models have already been saved "
            "with that run ID."
        )


def setup_init_path(behaviors: Mapping[str, Any], init_dir: str) -> None:
    """Set the full ``init_path`` of every configured behavior, as ML-Agents 1.1.0 does:
    unset, it becomes ``init_dir/<behavior>/checkpoint.pt``; a bare file name becomes
    ``init_dir/<behavior>/<file>``; a path with a folder is kept.

    :param behaviors: behavior name -> TrainerSettings (modified in place).
    :param init_dir: the run folder to initialize from, ``results/<initialize-from>``.
    :raises ResultsFileError: (an ``UnityTrainerException``, as in ML-Agents) when a
        checkpoint is missing or is not a ``.pt`` file.
    """
    for behavior_name, settings in behaviors.items():
        if settings.init_path is None:
            settings.init_path = os.path.join(init_dir, behavior_name, DEFAULT_CHECKPOINT_NAME)
        elif not os.path.dirname(settings.init_path):
            settings.init_path = os.path.join(init_dir, behavior_name, settings.init_path)
        _validate_init_full_path(settings.init_path, behavior_name)


def _validate_init_full_path(init_file: str, behavior_name: str) -> None:
    if not (os.path.isfile(init_file) and init_file.endswith(".pt")):
        raise ResultsFileError(
            f"Could not initialize {behavior_name} from {init_file}: the file does not exist "
            "or is not a `.pt` file. Check the run id given to --initialize-from (its folder "
            f"must hold {behavior_name}/{DEFAULT_CHECKPOINT_NAME}) or the behavior's init_path.",
            init_file,
        )


def _settings_of(behaviors: Mapping[str, Any], behavior_name: str) -> Any:
    """The TrainerSettings a behavior will train with, without adding it to ``behaviors``."""
    if behavior_name in behaviors:
        return behaviors[behavior_name]
    default = getattr(behaviors, "default_settings", None)
    return default if default is not None else TrainerSettings.default_override


def _saves_replay_buffer(settings: Any) -> bool:
    return bool(getattr(getattr(settings, "hyperparameters", None), "save_replay_buffer", False))


def _reason(err: Exception, path: str) -> str:
    """The error's message on one line, starting with the file's name."""
    message = " ".join(str(err).split())
    return message if path in message else f"{path}: {message}"


def check_replay_buffer_file(
    run_folder: str, behavior_name: str, settings: Any, previously_saved: bool
) -> None:
    """Check the replay buffer file a resumed off-policy trainer will load.

    :param previously_saved: the run's configuration.yaml had ``save_replay_buffer`` on for
        this behavior, so the file must be there.
    """
    if not _saves_replay_buffer(settings):
        return
    path = os.path.join(run_folder, behavior_name, REPLAY_BUFFER_FILE)
    if not os.path.exists(path):
        if previously_saved:
            raise ResultsFileError(
                f"{path} is missing, but the run saved its replay buffer "
                "(save_replay_buffer: true in its configuration.yaml). Restore the file, or "
                f"set save_replay_buffer: false for {behavior_name} to resume with an empty "
                "replay buffer.",
                path,
            )
        return  # the previous run did not save one: start empty, as ML-Agents does
    try:
        _native.verify_fields(path, REPLAY_BUFFER_FILE_KIND)
    except (CorruptFileError, StorageIOError) as err:
        raise ResultsFileError(
            f"{_reason(err, path)}. Delete it to resume with an empty replay buffer, or "
            "restore it from a backup.",
            path,
        ) from err


# The sections every configuration.yaml holds (ML-Agents 1.1.0 writes the same eight): one
# missing means the file was cut short.
_CONFIGURATION_SECTIONS = (
    "default_settings",
    "behaviors",
    "env_settings",
    "engine_settings",
    "environment_parameters",
    "checkpoint_settings",
    "torch_settings",
    "debug",
)


def read_previous_configuration(run_folder: str) -> Any:
    """The RunOptions in ``<run_folder>/configuration.yaml``, which every run writes when it
    starts; a missing or damaged file (unreadable, not YAML, a section missing, settings that
    do not load) raises :class:`ResultsFileError`."""
    path = os.path.join(run_folder, "configuration.yaml")
    advice = (
        "It records the settings the run was started with: restore it from a backup, or "
        "start a new run id (--initialize-from starts from this run's weights)."
    )
    if not os.path.isfile(path):
        raise ResultsFileError(f"{path} is missing. {advice}", path)
    try:
        loaded = load_config(path)
        if not isinstance(loaded, dict):
            raise TrainerConfigError(f"it holds {type(loaded).__name__}, not the run's settings")
        missing = [section for section in _CONFIGURATION_SECTIONS if section not in loaded]
        if missing:
            raise TrainerConfigError(f"it has no {missing[0]} section (cut short?)")
        return RunOptions.from_dict(loaded)
    except TrainerConfigError as err:
        err.config_file = None
        raise ResultsFileError(
            f"{path} is damaged: {' '.join(str(err).split())}. {advice}", path
        ) from err


def read_previous_status(run_folder: str) -> dict[str, Any]:
    """The checked content of ``<run_folder>/run_logs/training_status.json``; a missing or
    damaged file raises :class:`ResultsFileError`."""
    path = os.path.join(run_folder, "run_logs", "training_status.json")
    advice = (
        "It records the run's checkpoints and curriculum lessons: restore it from a backup, "
        "or start a new run id (--initialize-from keeps this run's weights)."
    )
    try:
        return read_training_status(path)
    except FileNotFoundError:
        raise ResultsFileError(f"{path} is missing. {advice}", path) from None
    except CorruptFileError as err:
        raise ResultsFileError(f"{_reason(err, path)}. {advice}", path) from err


def check_resume_files(run_folder: str, behaviors: Mapping[str, Any]) -> None:
    """Everything ``--resume`` will read from ``run_folder``, checked before anything is
    written there: configuration.yaml, run_logs/training_status.json, and for every behavior
    the run trained (a folder with a checkpoint, or checkpoints in the status) its
    checkpoint.pt and, with ``save_replay_buffer``, its replay buffer file.

    :raises ResultsFileError: naming the first missing or damaged file and what to do.
    """
    previous = read_previous_configuration(run_folder)
    status = read_previous_status(run_folder)
    trained = {
        name
        for name in os.listdir(run_folder)
        if os.path.isfile(os.path.join(run_folder, name, DEFAULT_CHECKPOINT_NAME))
    }
    trained |= {
        category
        for category, values in status.items()
        if isinstance(values, dict)
        and (
            values.get(StatusType.CHECKPOINTS.value)
            or values.get(StatusType.FINAL_CHECKPOINT.value)
        )
    }
    for behavior_name in sorted(trained):
        check_behavior_can_resume(run_folder, behavior_name)
        settings = _settings_of(behaviors, behavior_name)
        previous_settings = _settings_of(previous.behaviors, behavior_name)
        check_replay_buffer_file(
            run_folder, behavior_name, settings, _saves_replay_buffer(previous_settings)
        )


def check_behavior_can_resume(run_folder: str, behavior_name: str, load: bool = True) -> None:
    """``<run_folder>/<behavior>/checkpoint.pt`` is there (and, with ``load``, loads), or
    ResultsFileError."""
    folder = os.path.join(run_folder, behavior_name)
    path = os.path.join(folder, DEFAULT_CHECKPOINT_NAME)
    if not os.path.isdir(folder):
        raise ResultsFileError(
            f"{folder} is missing: the run has no checkpoint of behavior {behavior_name} to "
            "resume from. Restore the folder, or start a new run id (--initialize-from starts "
            "from another run's weights).",
            folder,
        )
    if load or not os.path.isfile(path):
        load_training_checkpoint(path, behavior_name, resume=True)


def check_init_files(behaviors: Mapping[str, Any]) -> None:
    """Load every configured behavior's ``init_path`` checkpoint (``--initialize-from`` or
    the YAML's ``init_path``) before anything is written; ResultsFileError when one is
    missing or damaged."""
    for behavior_name, settings in behaviors.items():
        init_path = getattr(settings, "init_path", None)
        if init_path is not None:
            _validate_init_full_path(init_path, behavior_name)
            load_training_checkpoint(init_path, behavior_name, resume=False)
