"""Run-folder checks (the counterpart of ``mlagents.trainers.directory_utils``)."""

from __future__ import annotations

import os

from mlagents_fast.trainers.exception import TrainerConfigError, UnityTrainerException

__all__ = ["RunFolderError", "setup_init_path", "validate_existing_directories"]


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


def setup_init_path(behaviors: dict, init_dir: str | None) -> None:
    """Point every behavior without its own ``init_path`` at ``init_dir/<behavior>``.

    ``behaviors`` maps behavior names to TrainerSettings (modified in place), as in ML-Agents.
    """
    for behavior_name, settings in behaviors.items():
        if settings.init_path is None and init_dir is not None:
            settings.init_path = os.path.join(init_dir, behavior_name)
        elif settings.init_path is not None and not os.path.isabs(settings.init_path):
            # Relative init_path in a YAML is relative to the results folder's run, as in ML-Agents.
            settings.init_path = os.path.abspath(settings.init_path)
