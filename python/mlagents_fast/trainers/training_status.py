"""Run state that a model checkpoint does not hold (``run_logs/training_status.json``).

The counterpart of ``mlagents.trainers.training_status``: per behavior (or per environment
parameter) categories holding checkpoint lists, the final checkpoint and curriculum lesson
numbers, plus a ``metadata`` entry with the versions that wrote the file. ``--resume`` loads it.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from enum import Enum
from typing import Any, ClassVar

import attrs
import torch

from mlagents_fast import __version__
from mlagents_fast.atomic_io import write_json_atomically
from mlagents_fast.exceptions import CorruptFileError

__all__ = ["GlobalTrainingStatus", "StatusMetaData", "StatusType", "write_json_atomically"]

logger = logging.getLogger(__name__)

STATUS_FORMAT_VERSION = "0.3.0"


class StatusType(Enum):
    """Keys of the per-category entries in training_status.json (ML-Agents' names)."""

    LESSON_NUM = "lesson_num"
    STATS_METADATA = "metadata"
    CHECKPOINTS = "checkpoints"
    FINAL_CHECKPOINT = "final_checkpoint"
    ELO = "elo"


@attrs.define
class StatusMetaData:
    """Versions that wrote a training_status.json; compared on resume."""

    stats_format_version: str = attrs.field(default=STATUS_FORMAT_VERSION)
    """Version of the training_status.json layout."""
    mlagents_version: str = attrs.field(default=__version__)
    """Version of mlagents-fast that wrote the file."""
    torch_version: str = attrs.field(default=torch.__version__)
    """Version of PyTorch that wrote the checkpoints."""

    def to_dict(self) -> dict[str, str]:
        return attrs.asdict(self)

    @staticmethod
    def from_dict(import_dict: dict[str, str]) -> StatusMetaData:
        known = {field.name for field in attrs.fields(StatusMetaData)}
        return StatusMetaData(**{k: str(v) for k, v in import_dict.items() if k in known})

    def check_compatibility(self, other: StatusMetaData) -> None:
        """Warn when resuming from a run written by other versions."""
        if self.mlagents_version != other.mlagents_version:
            logger.warning(
                "Checkpoint was written by mlagents-fast %s (this is %s); "
                "some things may not resume properly.",
                self.mlagents_version,
                other.mlagents_version,
            )
        if self.torch_version != other.torch_version:
            logger.warning(
                "Checkpoint was saved with PyTorch %s (this is %s); the model may not resume properly.",
                self.torch_version,
                other.torch_version,
            )


class GlobalTrainingStatus:
    """Process-wide store of the training status, saved with each checkpoint and loaded on resume."""

    saved_state: ClassVar[dict[str, dict[str, Any]]] = defaultdict(dict)

    @staticmethod
    def load_state(path: str) -> None:
        """Merge the state saved in ``path`` into :attr:`saved_state`.

        A missing file only warns (as ML-Agents); a file that is not a training status raises
        :class:`CorruptFileError` naming the file.
        """
        try:
            with open(path) as f:
                loaded = json.load(f)
        except FileNotFoundError:
            logger.warning(
                "Training status file %s not found. Not all functions will resume properly.", path
            )
            return
        except json.JSONDecodeError as err:
            raise CorruptFileError(
                f"{path} is not valid JSON ({err}); cannot resume from it"
            ) from err
        if not isinstance(loaded, dict) or not isinstance(
            loaded.get(StatusType.STATS_METADATA.value), dict
        ):
            raise CorruptFileError(
                f"{path} has no '{StatusType.STATS_METADATA.value}' entry: it was not written by a "
                "compatible trainer"
            )
        StatusMetaData.from_dict(loaded[StatusType.STATS_METADATA.value]).check_compatibility(
            StatusMetaData()
        )
        for category, values in loaded.items():
            GlobalTrainingStatus.saved_state[category] = values

    @staticmethod
    def save_state(path: str) -> None:
        """Write :attr:`saved_state` (plus version metadata) to ``path`` atomically."""
        GlobalTrainingStatus.saved_state[StatusType.STATS_METADATA.value] = (
            StatusMetaData().to_dict()
        )
        write_json_atomically(path, dict(GlobalTrainingStatus.saved_state))

    @staticmethod
    def set_parameter_state(category: str, key: StatusType, value: Any) -> None:
        """Store ``value`` under ``category`` (a behavior or parameter name) and ``key``."""
        GlobalTrainingStatus.saved_state[category][key.value] = value

    @staticmethod
    def get_parameter_state(category: str, key: StatusType) -> Any:
        """The stored value, or None when nothing was stored."""
        return GlobalTrainingStatus.saved_state.get(category, {}).get(key.value)

    @staticmethod
    def reset() -> None:
        """Forget everything (a new run in the same process starts clean)."""
        GlobalTrainingStatus.saved_state.clear()
