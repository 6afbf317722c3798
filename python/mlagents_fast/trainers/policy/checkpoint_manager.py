"""ModelCheckpointManager: keeps the newest ``keep_checkpoints`` checkpoints of each behavior
(recorded in training_status.json) and deletes the files of older ones."""

from __future__ import annotations

import logging
import os
from typing import Any

import attr

from mlagents_fast.trainers.training_status import GlobalTrainingStatus, StatusType

__all__ = ["ModelCheckpoint", "ModelCheckpointManager"]

logger = logging.getLogger(__name__)


@attr.s(auto_attribs=True)
class ModelCheckpoint:
    steps: int = attr.ib(metadata={"doc": "Training step at which the checkpoint was written."})
    file_path: str = attr.ib(metadata={"doc": "Path of the exported model (.onnx)."})
    reward: float | None = attr.ib(metadata={"doc": "Mean reward at that step, if known."})
    creation_time: float = attr.ib(metadata={"doc": "Unix time the checkpoint was written."})
    auxillary_file_paths: list[str] = attr.ib(
        factory=list, metadata={"doc": "Other files of the checkpoint (the .pt), removed with it."}
    )


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


class ModelCheckpointManager:
    @staticmethod
    def get_checkpoints(behavior_name: str) -> list[dict[str, Any]]:
        checkpoint_list = GlobalTrainingStatus.get_parameter_state(
            behavior_name, StatusType.CHECKPOINTS
        )
        if not checkpoint_list:
            checkpoint_list = []
            GlobalTrainingStatus.set_parameter_state(
                behavior_name, StatusType.CHECKPOINTS, checkpoint_list
            )
        return checkpoint_list

    @staticmethod
    def remove_checkpoint(checkpoint: dict[str, Any], within_folder: str | None = None) -> None:
        """Delete a checkpoint's files; files already gone are skipped.

        :param within_folder: when given, files outside this folder are never deleted (a
            training_status.json copied from elsewhere may name another run's files).
        """
        file_paths = [checkpoint["file_path"]] + list(checkpoint.get("auxillary_file_paths", []))
        for file_path in file_paths:
            if within_folder is not None and not _inside(file_path, within_folder):
                logger.warning(
                    "Not removing old checkpoint %s: it is not in %s.", file_path, within_folder
                )
            elif os.path.exists(file_path):
                os.remove(file_path)
                logger.debug("Removed checkpoint model %s.", file_path)
            else:
                logger.debug("Checkpoint at %s could not be found.", file_path)

    @classmethod
    def _cleanup_extra_checkpoints(
        cls,
        checkpoints: list[dict[str, Any]],
        keep_checkpoints: int,
        within_folder: str | None = None,
    ) -> list[dict[str, Any]]:
        while keep_checkpoints > 0 and len(checkpoints) > keep_checkpoints:
            cls.remove_checkpoint(checkpoints.pop(0), within_folder)
        return checkpoints

    @classmethod
    def add_checkpoint(
        cls, behavior_name: str, new_checkpoint: ModelCheckpoint, keep_checkpoints: int
    ) -> None:
        """Record ``new_checkpoint``; beyond ``keep_checkpoints``, delete the oldest ones'
        files, only inside the folder the new checkpoint was written to."""
        checkpoints = cls.get_checkpoints(behavior_name)
        checkpoints.append(attr.asdict(new_checkpoint))
        folder = os.path.dirname(os.path.abspath(new_checkpoint.file_path))
        cls._cleanup_extra_checkpoints(checkpoints, keep_checkpoints, folder)
        GlobalTrainingStatus.set_parameter_state(behavior_name, StatusType.CHECKPOINTS, checkpoints)

    @classmethod
    def track_final_checkpoint(cls, behavior_name: str, final_checkpoint: ModelCheckpoint) -> None:
        GlobalTrainingStatus.set_parameter_state(
            behavior_name, StatusType.FINAL_CHECKPOINT, attr.asdict(final_checkpoint)
        )
