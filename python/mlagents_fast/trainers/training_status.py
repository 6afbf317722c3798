"""Run state that a model checkpoint does not hold (``run_logs/training_status.json``).

The counterpart of ``mlagents.trainers.training_status``: per behavior (or per environment
parameter) categories holding checkpoint lists, the final checkpoint and curriculum lesson
numbers, plus a ``metadata`` entry with the versions that wrote the file. ``--resume`` loads it.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from enum import Enum
from typing import Any, ClassVar

import attrs
import torch

from mlagents_fast import __version__
from mlagents_fast.atomic_io import write_json_atomically
from mlagents_fast.exceptions import CorruptFileError

__all__ = [
    "GlobalTrainingStatus",
    "StatusMetaData",
    "StatusType",
    "read_training_status",
    "run_folder_of",
    "write_json_atomically",
]

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


# Status entries of each category whose values this package reads back, and their types;
# a checkpoint entry needs the first two (pruning deletes file_path).
_CHECKPOINT_FIELDS: dict[str, tuple[type, ...]] = {
    "steps": (int,),
    "file_path": (str,),
    "reward": (int, float, type(None)),
    "creation_time": (int, float),
}
_REQUIRED_CHECKPOINT_FIELDS = ("steps", "file_path")
_NUMBER = (int, float)
_CATEGORY_FIELDS: dict[str, tuple[type, ...]] = {
    StatusType.LESSON_NUM.value: (int,),
    "smoothed_value": _NUMBER,  # EnvironmentParameterManager's, beside lesson_num
    StatusType.ELO.value: _NUMBER,
}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", type(None): "null"}

#: Metadata entry saying the checkpoint paths are relative to the run folder. Files of
#: ML-Agents (and of mlagents-fast before 0.2) hold the paths as they were written: absolute,
#: or relative to the folder training was started from.
CHECKPOINT_PATHS_KEY = "checkpoint_paths"
CHECKPOINT_PATHS_RELATIVE = "relative to the run folder"


def _expect(path: str, where: str, value: Any, types: tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, types):
        expected = " or ".join(dict.fromkeys(_TYPE_NAMES[t] for t in types))
        raise CorruptFileError(f"{path}: {where} is {value!r}, expected {expected}")


def _check_checkpoint_entry(path: str, where: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        raise CorruptFileError(f"{path}: {where} is {entry!r}, expected an object")
    for key in _REQUIRED_CHECKPOINT_FIELDS:
        if key not in entry:
            raise CorruptFileError(f"{path}: {where} has no '{key}'")
    for key, types in _CHECKPOINT_FIELDS.items():
        if key in entry:
            _expect(path, f"{where}.{key}", entry[key], types)
    auxiliary = entry.get("auxillary_file_paths", [])
    if not isinstance(auxiliary, list):
        raise CorruptFileError(
            f"{path}: {where}.auxillary_file_paths is {auxiliary!r}, expected a list"
        )
    for i, item in enumerate(auxiliary):
        _expect(path, f"{where}.auxillary_file_paths[{i}]", item, (str,))


def read_training_status(path: str) -> dict[str, Any]:
    """The content of a ``training_status.json``, checked: an object with a ``metadata``
    object and, per category, the entries this package reads back (checkpoint lists, lesson
    numbers) of the right types. Raises FileNotFoundError when there is no file and
    :class:`CorruptFileError` naming the file and the entry for anything else."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise CorruptFileError(f"{path}: cannot be read ({err.strerror or err})") from err
    try:
        loaded = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CorruptFileError(f"{path} is damaged: byte {err.start} is not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise CorruptFileError(f"{path} is not valid JSON ({err})") from err
    if not isinstance(loaded, dict):
        raise CorruptFileError(f"{path} holds {type(loaded).__name__}, expected a JSON object")
    metadata = loaded.get(StatusType.STATS_METADATA.value)
    if not isinstance(metadata, dict):
        raise CorruptFileError(
            f"{path} has no '{StatusType.STATS_METADATA.value}' object: it was not written by a "
            "compatible trainer"
        )
    for category, values in loaded.items():
        if category == StatusType.STATS_METADATA.value:
            continue
        if not isinstance(values, dict):
            raise CorruptFileError(f"{path}: {category} is {values!r}, expected an object")
        for key, types in _CATEGORY_FIELDS.items():
            if key in values:
                _expect(path, f"{category}.{key}", values[key], types)
        checkpoints = values.get(StatusType.CHECKPOINTS.value)
        if checkpoints is not None:
            if not isinstance(checkpoints, list):
                raise CorruptFileError(
                    f"{path}: {category}.checkpoints is {checkpoints!r}, expected a list"
                )
            for i, entry in enumerate(checkpoints):
                _check_checkpoint_entry(path, f"{category}.checkpoints[{i}]", entry)
        final = values.get(StatusType.FINAL_CHECKPOINT.value)
        if final is not None:
            _check_checkpoint_entry(path, f"{category}.final_checkpoint", final)
    return loaded


def run_folder_of(status_path: str) -> str:
    """``results/<run-id>`` for ``results/<run-id>/run_logs/training_status.json`` (the
    status file's own folder when it is not in a ``run_logs`` folder)."""
    folder = os.path.dirname(status_path)
    return os.path.dirname(folder) if os.path.basename(folder) == "run_logs" else folder


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def _map_checkpoint_paths(
    state: dict[str, Any], convert: Callable[[str, str], str]
) -> dict[str, Any]:
    """A copy of ``state`` with ``convert(category, path)`` applied to every checkpoint path."""
    mapped: dict[str, Any] = {}
    for category, values in state.items():
        if not isinstance(values, dict):
            mapped[category] = values
            continue
        values = dict(values)
        entries = values.get(StatusType.CHECKPOINTS.value)
        if isinstance(entries, list):
            values[StatusType.CHECKPOINTS.value] = [
                _map_entry(category, entry, convert) for entry in entries
            ]
        final = values.get(StatusType.FINAL_CHECKPOINT.value)
        if isinstance(final, dict):
            values[StatusType.FINAL_CHECKPOINT.value] = _map_entry(category, final, convert)
        mapped[category] = values
    return mapped


def _map_entry(category: str, entry: Any, convert: Callable[[str, str], str]) -> Any:
    if not isinstance(entry, dict):
        return entry
    entry = dict(entry)
    if isinstance(entry.get("file_path"), str):
        entry["file_path"] = convert(category, entry["file_path"])
    if isinstance(entry.get("auxillary_file_paths"), list):
        entry["auxillary_file_paths"] = [
            convert(category, p) if isinstance(p, str) else p for p in entry["auxillary_file_paths"]
        ]
    return entry


def _resolver(run_folder: str, relative_to_run: bool) -> Callable[[str, str], str]:
    """How a path read from the file becomes a path to open (see :meth:`load_state`)."""

    def resolve(category: str, path: str) -> str:
        if relative_to_run and not os.path.isabs(path):
            return os.path.join(run_folder, path)
        if _inside(path, run_folder):
            return path
        # Written where the run folder used to be (a copied or moved results folder): the
        # same file of this run folder, <behavior>/<file> or the final <behavior>.onnx.
        parent, name = os.path.split(path)
        if os.path.basename(parent) == category:
            return os.path.join(run_folder, category, name)
        if name.startswith(category + "."):
            return os.path.join(run_folder, name)
        return path

    return resolve


class GlobalTrainingStatus:
    """Process-wide store of the training status, saved with each checkpoint and loaded on resume.

    Checkpoint paths are kept in memory as they are opened (under the run folder) and written
    relative to the run folder (``<Behavior>/<Behavior>-<step>.onnx``), so a copied or moved
    results folder resumes on its own files.
    """

    saved_state: ClassVar[dict[str, dict[str, Any]]] = defaultdict(dict)

    @staticmethod
    def load_state(path: str) -> None:
        """Merge the state saved in ``path`` into :attr:`saved_state`.

        A missing file only warns (as ML-Agents); a damaged file, or one that is not a
        training status, raises :class:`CorruptFileError` naming the file (and the entry) and
        changes nothing. Relative checkpoint paths are resolved against the run folder
        (the folder above ``run_logs``); paths of files written by ML-Agents stay as they are,
        or, when they point to where a moved run folder used to be, to the same file here.
        """
        try:
            loaded = read_training_status(path)
        except FileNotFoundError:
            logger.warning(
                "Training status file %s not found. Not all functions will resume properly.", path
            )
            return
        metadata = loaded[StatusType.STATS_METADATA.value]
        StatusMetaData.from_dict(metadata).check_compatibility(StatusMetaData())
        relative = metadata.get(CHECKPOINT_PATHS_KEY) == CHECKPOINT_PATHS_RELATIVE
        resolved = _map_checkpoint_paths(loaded, _resolver(run_folder_of(path), relative))
        for category, values in resolved.items():
            GlobalTrainingStatus.saved_state[category] = values

    @staticmethod
    def save_state(path: str) -> None:
        """Write :attr:`saved_state` (plus version metadata) to ``path`` atomically, with
        checkpoint paths relative to the run folder."""
        metadata: dict[str, str] = StatusMetaData().to_dict()
        metadata[CHECKPOINT_PATHS_KEY] = CHECKPOINT_PATHS_RELATIVE
        GlobalTrainingStatus.saved_state[StatusType.STATS_METADATA.value] = metadata
        run_folder = run_folder_of(path)

        def relative(category: str, file_path: str) -> str:
            if not _inside(file_path, run_folder):
                return os.path.abspath(file_path)
            return os.path.relpath(os.path.abspath(file_path), os.path.abspath(run_folder))

        state = dict(GlobalTrainingStatus.saved_state)
        write_json_atomically(path, _map_checkpoint_paths(state, relative))

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
