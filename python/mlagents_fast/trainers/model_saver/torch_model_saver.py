"""TorchModelSaver: checkpoints (``<Behavior>/checkpoint.pt``, ``<Behavior>-<step>.pt``) and ONNX
exports in the ML-Agents run layout.

A checkpoint is ``torch.save`` of a dict holding only state dicts (tensors, numbers, strings,
lists) and a small metadata record, sealed with the SHA-256 of the file in the zip archive
comment (``docs/file-format.md``); it is read back with ``weights_only=True``, so loading a
checkpoint never runs pickled code, and a damaged one is refused. Files are written with
:mod:`mlagents_fast.atomic_io`, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import os
import shutil
import struct
from typing import Any

import torch

from mlagents_fast.atomic_io import atomic_write_with, write_bytes_atomically
from mlagents_fast.exceptions import CorruptFileError, StorageIOError
from mlagents_fast.trainers.exception import ResultsFileError, UnityTrainerException
from mlagents_fast.trainers.model_saver.model_saver import BaseModelSaver
from mlagents_fast.trainers.optimizer.torch_optimizer import TorchOptimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.torch_entities.model_serialization import ModelSerializer

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_CHECKPOINT_NAME",
    "TorchModelSaver",
    "load_checkpoint_file",
    "load_training_checkpoint",
    "save_checkpoint_file",
]

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_NAME = "checkpoint.pt"
#: Value of the metadata "format" entry in every checkpoint this package writes.
CHECKPOINT_FORMAT = "mlagents-fast-checkpoint"
#: Format 2 adds the SHA-256 seal in the zip comment; format 1 files (no seal) still load.
CHECKPOINT_VERSION = 2
_FIRST_SEALED_VERSION = 2
_METADATA_KEY = "__mlagents_fast__"
_POLICY_KEY = "Policy"
# Zip end-of-central-directory record: 22 bytes, the last two the comment length.
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SIZE = 22
# The archive comment of a sealed checkpoint: this prefix, then 64 hex digits of SHA-256.
_SEAL_PREFIX = b"mlagents-fast-sha256:"
_SEAL_LEN = len(_SEAL_PREFIX) + 64


def _seal(data: bytes) -> bytes:
    """Put the SHA-256 of the whole file into the zip archive comment of ``data`` (a
    ``torch.save`` output, whose end-of-central-directory record has no comment yet)."""
    if len(data) < _EOCD_SIZE or data[-_EOCD_SIZE : -_EOCD_SIZE + 4] != _EOCD_SIGNATURE:
        raise StorageIOError("torch.save wrote no zip archive: cannot add the checkpoint checksum")
    if data[-2:] != b"\0\0":
        raise StorageIOError("torch.save wrote a zip comment: cannot add the checkpoint checksum")
    body = data[:-2] + struct.pack("<H", _SEAL_LEN)
    return body + _SEAL_PREFIX + hashlib.sha256(body).hexdigest().encode("ascii")


def _check_seal(path: str, data: bytes) -> bool:
    """True when ``data`` carries a checksum and it matches; False when it carries none (a
    checkpoint of ML-Agents or of mlagents-fast before format 2). A mismatch raises."""
    if len(data) < _EOCD_SIZE + _SEAL_LEN or not data[-_SEAL_LEN:].startswith(_SEAL_PREFIX):
        return False
    recorded = data[-_SEAL_LEN + len(_SEAL_PREFIX) :]
    if hashlib.sha256(data[:-_SEAL_LEN]).hexdigest().encode("ascii") != recorded:
        raise CorruptFileError(
            f"checkpoint {path} is damaged: its SHA-256 does not match the one recorded when it "
            "was written"
        )
    return True


def _on_cpu(value: Any) -> Any:
    """``value`` with every tensor in it (nested dicts, lists, tuples) copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()  # the same tensor when it is on the CPU already
    if isinstance(value, dict):
        copied = copy.copy(value)  # keeps the type and a state dict's _metadata
        for key, item in value.items():
            copied[key] = _on_cpu(item)
        return copied
    if type(value) in (list, tuple):
        return type(value)(_on_cpu(item) for item in value)
    return value


def save_checkpoint_file(
    path: str, state_dict: dict[str, Any], behavior_name: str, step: int
) -> None:
    """Write a checkpoint atomically: ``state_dict`` maps module names to their state dicts.

    The file is a plain ``torch.save`` zip archive (``torch.load(..., weights_only=True)``
    reads it) whose archive comment holds the SHA-256 of every other byte
    (``docs/file-format.md``), so that :func:`load_checkpoint_file` refuses any damage.
    """
    # CPU tensors: a checkpoint of a GPU run loads on any machine, even without map_location.
    payload = _on_cpu(dict(state_dict))
    payload[_METADATA_KEY] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "behavior_name": behavior_name,
        "step": int(step),
    }
    serialized = io.BytesIO()
    torch.save(payload, serialized)
    write_bytes_atomically(path, _seal(serialized.getvalue()))


def load_checkpoint_file(path: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint_file` (or by ML-Agents).

    Raises StorageIOError when the file cannot be read, CorruptFileError when it is damaged
    (checksum mismatch), truncated, not a torch checkpoint, or a torch file that is not a
    trainer checkpoint. Loading never runs pickled code (``weights_only``).
    """
    if not os.path.isfile(path):
        raise StorageIOError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise StorageIOError(f"cannot read checkpoint {path}: {err}") from err
    sealed = _check_seal(path, data)
    try:
        # weights_only: the unpickler only rebuilds tensors and plain containers, never code.
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch reports damage with many types (zip, pickle, OSError)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CorruptFileError(
            f"checkpoint {path} is corrupt, truncated or not a torch checkpoint: {reason}"
        ) from err
    if not isinstance(loaded, dict) or _POLICY_KEY not in loaded:
        raise CorruptFileError(
            f"{path} is not a trainer checkpoint: expected a dict of module states with a "
            f"'{_POLICY_KEY}' entry, found {type(loaded).__name__}"
        )
    metadata = loaded.get(_METADATA_KEY)
    if metadata is not None and (
        not isinstance(metadata, dict) or metadata.get("format") != CHECKPOINT_FORMAT
    ):
        raise CorruptFileError(f"checkpoint {path} has unreadable metadata: {metadata!r}")
    version = metadata.get("version", 0) if metadata is not None else 0
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CorruptFileError(
            f"checkpoint {path} was written by a newer mlagents-fast "
            f"(format version {version!r}, this one reads {CHECKPOINT_VERSION})"
        )
    if version >= _FIRST_SEALED_VERSION and not sealed:
        raise CorruptFileError(
            f"checkpoint {path} is damaged: the checksum recorded when it was written is missing"
        )
    return loaded


def _step_of(file_name: str, behavior_name: str) -> int | None:
    """The step of a ``<behavior>-<step>.pt`` file name; None for other names."""
    if not (file_name.startswith(behavior_name + "-") and file_name.endswith(".pt")):
        return None
    stem = file_name[len(behavior_name) + 1 : -len(".pt")]
    return int(stem) if stem.isdigit() else None


def _newest_intact_checkpoint(folder: str, behavior_name: str) -> str | None:
    """The newest ``<behavior>-<step>.pt`` in ``folder`` that loads, if any."""
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    by_step = sorted(
        ((step, name) for name in names if (step := _step_of(name, behavior_name)) is not None),
        reverse=True,
    )
    for _, name in by_step:
        try:
            load_checkpoint_file(os.path.join(folder, name))
        except (CorruptFileError, StorageIOError):
            continue
        return name
    return None


def _what_to_do(path: str, behavior_name: str, resume: bool) -> str:
    if not resume:
        return (
            "Initialize from another run or checkpoint (--initialize-from, the behavior's "
            "init_path), or start without one."
        )
    folder = os.path.dirname(path)
    intact = _newest_intact_checkpoint(folder, behavior_name)
    if intact is not None:
        return (
            f"To resume from the newest intact checkpoint, copy {os.path.join(folder, intact)} "
            f"over {os.path.basename(path)}; or start a new run id."
        )
    return (
        "Restore it from a backup, or start a new run id (--initialize-from starts from "
        "another run's weights)."
    )


def load_training_checkpoint(path: str, behavior_name: str, resume: bool) -> dict[str, Any]:
    """:func:`load_checkpoint_file` for ``--resume`` (``resume``) or ``--initialize-from``:
    a missing or damaged file raises :class:`ResultsFileError` (one line naming the file and
    what to do: for a resume, which intact ``<behavior>-<step>.pt`` to copy over it)."""
    try:
        return load_checkpoint_file(path)
    except (CorruptFileError, StorageIOError) as err:
        message = " ".join(str(err).split())
        if path not in message:
            message = f"{path}: {message}"
        raise ResultsFileError(
            f"{message}. {_what_to_do(path, behavior_name, resume)}", path
        ) from err


class TorchModelSaver(BaseModelSaver):
    def __init__(self, trainer_settings: Any, model_path: str, load: bool = False):
        """
        :param trainer_settings: the behavior's TrainerSettings (init_path, keep_checkpoints).
        :param model_path: the behavior's folder, ``results/<run-id>/<Behavior>``.
        :param load: resume from ``model_path/checkpoint.pt``.
        """
        super().__init__()
        self.model_path = model_path
        self.initialize_path = getattr(trainer_settings, "init_path", None)
        self._keep_checkpoints = getattr(trainer_settings, "keep_checkpoints", 5)
        self.load = load
        self.policy: TorchPolicy | None = None
        self.exporter: ModelSerializer | None = None
        self.modules: dict[str, Any] = {}

    def register(self, module: Any) -> None:
        """Save and load ``module``'s modules with the checkpoints: a TorchPolicy, a
        TorchOptimizer, or any object whose ``get_modules()`` names objects with
        ``state_dict()`` / ``load_state_dict()`` (self-play snapshots)."""
        if isinstance(module, (TorchPolicy, TorchOptimizer)) or callable(
            getattr(module, "get_modules", None)
        ):
            self.modules.update(module.get_modules())
        else:
            raise UnityTrainerException(
                f"Registering Object of unsupported type {type(module)} to ModelSaver "
            )
        if self.policy is None and isinstance(module, TorchPolicy):
            self.policy = module
            self.exporter = ModelSerializer(self.policy)

    def _state_dict(self) -> dict[str, Any]:
        return {name: module.state_dict() for name, module in self.modules.items()}

    def save_checkpoint(self, behavior_name: str, step: int) -> tuple[str, list[str]]:
        checkpoint_path = os.path.join(self.model_path, f"{behavior_name}-{step}")
        pytorch_ckpt_path = f"{checkpoint_path}.pt"
        export_ckpt_path = f"{checkpoint_path}.onnx"
        state_dict = self._state_dict()
        save_checkpoint_file(pytorch_ckpt_path, state_dict, behavior_name, step)
        save_checkpoint_file(
            os.path.join(self.model_path, DEFAULT_CHECKPOINT_NAME), state_dict, behavior_name, step
        )
        self.export(checkpoint_path, behavior_name)
        return export_ckpt_path, [pytorch_ckpt_path]

    def export(self, output_filepath: str, behavior_name: str) -> None:
        if self.exporter is not None:
            self.exporter.export_policy_model(output_filepath)

    def initialize_or_load(self, policy: TorchPolicy | None = None) -> None:
        """``--initialize-from`` (init_path) wins over ``--resume``; without either, nothing."""
        reset_steps = not self.load
        if self.initialize_path is not None:
            logger.info("Initializing from %s.", self.initialize_path)
            self._load_model(self.initialize_path, policy, reset_global_steps=reset_steps)
        elif self.load:
            logger.info("Resuming from %s.", self.model_path)
            self._load_model(
                os.path.join(self.model_path, DEFAULT_CHECKPOINT_NAME),
                policy,
                reset_global_steps=reset_steps,
            )

    def _load_model(
        self,
        load_path: str,
        policy: TorchPolicy | None = None,
        reset_global_steps: bool = False,
    ) -> None:
        saved_state_dict = load_training_checkpoint(
            load_path,
            os.path.basename(os.path.normpath(self.model_path)),
            resume=load_path != self.initialize_path,
        )
        if policy is None:
            modules = self.modules
            policy = self.policy
        else:
            modules = policy.get_modules()
        for name, module in modules.items():
            if name not in saved_state_dict:
                logger.warning("Checkpoint %s has no state for %s. Initializing.", load_path, name)
                continue
            try:
                if isinstance(module, torch.nn.Module):
                    missing, unexpected = module.load_state_dict(
                        saved_state_dict[name], strict=False
                    )
                    if missing:
                        logger.warning(
                            "Did not find these keys %s in checkpoint. Initializing.", missing
                        )
                    if unexpected:
                        logger.warning(
                            "Did not expect these keys %s in checkpoint. Ignoring.", unexpected
                        )
                else:
                    module.load_state_dict(saved_state_dict[name])
            except (KeyError, ValueError, RuntimeError) as err:
                # A changed network shape: keep the fresh initialisation, as ML-Agents does.
                logger.warning("Failed to load for module %s. Initializing (%s)", name, err)
        if policy is None:
            return
        if reset_global_steps:
            policy.set_step(0)
            logger.info("Starting training from step 0 and saving to %s.", self.model_path)
        else:
            logger.info("Resuming training from step %d.", policy.get_current_step())

    def copy_final_model(self, source_nn_path: str) -> None:
        """Copy ``<name>.onnx`` (the last checkpoint's export) to ``<model_path>.onnx``."""
        final_model_name = os.path.splitext(source_nn_path)[0]
        source_path = f"{final_model_name}.onnx"
        destination_path = f"{self.model_path}.onnx"
        if not os.path.isfile(source_path):
            logger.warning("No exported model at %s to copy to %s.", source_path, destination_path)
            return
        atomic_write_with(destination_path, lambda tmp: shutil.copyfile(source_path, tmp))
        logger.info("Copied %s to %s.", source_path, destination_path)
