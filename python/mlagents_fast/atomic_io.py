"""Atomic file writes: the one way mlagents-fast writes a file that someone may read later.

Every results file (checkpoints, ONNX exports, ``configuration.yaml``,
``run_logs/training_status.json``, ``run_logs/timers.json``, plots, launchers) goes through here:

1. the bytes go to a temporary file **in the destination folder** (so the rename below stays on
   one file system), named ``.<name>.<pid>-<n>.tmp``;
2. the file is flushed and ``fsync``-ed, then renamed over the destination (``os.replace``,
   atomic on POSIX and Windows), then the folder is ``fsync``-ed so the rename itself survives a
   power cut;
3. on any failure (an exception from the writer, a full disk, Ctrl-C) the temporary file is
   removed and the destination is left as it was.

A reader therefore sees the old file or the whole new one, never a part. Files are created with
the permissions ``0o666`` minus the user's umask (``0644`` by default), as ``open()`` and
ML-Agents create them; :func:`tempfile.mkstemp` would give ``0600``.

A process killed between steps 1 and 2 leaves its temporary file behind; the name pattern is
shared with the Rust writer of buffer files (``rust/core/src/storage.rs``) so that
:func:`remove_interrupted_writes` finds them on the next start of the run.

    from mlagents_fast.atomic_io import atomic_write, write_json_atomically

    with atomic_write("results/run/notes.txt", text=True) as f:
        f.write("hello")
    write_json_atomically("results/run/run_logs/status.json", {"a": 1})
    atomic_write_with("model.onnx", lambda tmp: torch.onnx.export(net, x, tmp))
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

from mlagents_fast.exceptions import StorageIOError

__all__ = [
    "DEFAULT_PERMISSIONS",
    "atomic_write",
    "atomic_write_with",
    "is_interrupted_write",
    "remove_interrupted_writes",
    "write_bytes_atomically",
    "write_json_atomically",
    "write_text_atomically",
]

DEFAULT_PERMISSIONS = 0o666
"""Permission bits a new file asks for; the user's umask is taken off (0644 with umask 022)."""

_counter = itertools.count()

# ``.<target name>.<pid>-<n>.tmp``: what this module and storage.rs name their temporary files.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-(?P<n>\d+)\.tmp$")
# Temporary files of earlier mlagents-fast versions, before this module (mkstemp's 8 random
# characters): checkpoints, JSON and PNG files, ONNX exports and configuration.yaml.
_LEGACY_TEMP_NAMES = (
    re.compile(r"^\.tmp-[a-z0-9_]{8}.+$"),
    re.compile(r"^\.export-[a-z0-9_]{8}\.onnx\.tmp$"),
    re.compile(r"^\.configuration\.yaml\.\d+\.tmp$"),
)


def _temp_path_beside(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}-{next(_counter)}.tmp")


def _create_temp_file(path: str, permissions: int) -> tuple[int, str]:
    """Create and open a new temporary file beside ``path``: (descriptor, its path)."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise StorageIOError(f"cannot write {path}: cannot create its folder ({err})") from err
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):  # a leftover of a killed process may hold the same pid and number
        temp_path = _temp_path_beside(path)
        try:
            return os.open(temp_path, flags, permissions), temp_path
        except FileExistsError:
            continue
        except OSError as err:
            raise StorageIOError(f"cannot write {path}: {err.strerror or err}") from err
    raise StorageIOError(f"cannot write {path}: no free temporary file name beside it")


def _sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable; not every platform can open a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _commit(temp_path: str, path: str) -> None:
    """fsync ``temp_path``, rename it onto ``path``, fsync the folder."""
    fd = os.open(temp_path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp_path, path)
    _sync_folder(os.path.dirname(path))


@contextlib.contextmanager
def _replacing(path: str, permissions: int) -> Iterator[tuple[int, str]]:
    """A new temporary file beside ``path`` (open descriptor, name): committed onto ``path``
    when the block ends without an exception, removed otherwise. A refused system call
    becomes a StorageIOError naming ``path``."""
    fd, temp_path = _create_temp_file(path, permissions)
    try:
        yield fd, temp_path
        _commit(temp_path, path)
    except OSError as err:
        _remove_quietly(temp_path)
        if isinstance(err, StorageIOError):
            raise
        raise StorageIOError(f"cannot write {path}: {err.strerror or err}") from err
    except BaseException:
        _remove_quietly(temp_path)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    *,
    text: bool = False,
    encoding: str = "utf-8",
    permissions: int = DEFAULT_PERMISSIONS,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; when the block ends without an
    exception it is fsync-ed and renamed onto ``path``, otherwise removed.

    :param path: the destination; its folder is created if missing.
    :param text: yield a text file (``encoding``, ``\\n`` line ends) instead of a binary one.
    :param permissions: mode bits asked for (the umask is taken off); 0o777 for executables.
    :raises StorageIOError: (an ``OSError``) naming ``path`` when the system refuses a step.
    """
    kwargs: dict[str, Any] = {"encoding": encoding, "newline": "\n"} if text else {}
    with (
        _replacing(os.path.abspath(os.fspath(path)), permissions) as (fd, _),
        os.fdopen(fd, "w" if text else "wb", **kwargs) as f,
    ):
        yield f


def atomic_write_with(
    path: str | os.PathLike[str],
    write: Callable[[str], object],
    *,
    permissions: int = DEFAULT_PERMISSIONS,
) -> None:
    """For writers that want a file name (``torch.onnx.export``, ``shutil.copyfile``,
    ``savefig``): call ``write(temp_path)`` with a fresh empty file beside ``path``, then
    fsync and rename it onto ``path``. On any failure the temporary file is removed.

    :raises StorageIOError: naming ``path`` when the system refuses a step (or ``write``
        raises an ``OSError``); other exceptions of ``write`` pass through unchanged.
    """
    with _replacing(os.path.abspath(os.fspath(path)), permissions) as (fd, temp_path):
        os.close(fd)
        write(temp_path)


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def write_text_atomically(
    path: str | os.PathLike[str], text: str, *, permissions: int = DEFAULT_PERMISSIONS
) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, text=True, permissions=permissions) as f:
        f.write(text)


def write_json_atomically(path: str | os.PathLike[str], data: Any, *, indent: int = 4) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (see :func:`atomic_write`).
    The JSON is built in memory first, so a value that cannot be encoded leaves no file."""
    write_text_atomically(path, json.dumps(data, indent=indent))


def is_interrupted_write(name: str) -> bool:
    """Whether a file name is the temporary file of an atomic write (this module's, the Rust
    buffer writer's or an earlier version's) that never got renamed into place."""
    return _TEMP_NAME.match(name) is not None or any(
        pattern.match(name) for pattern in _LEGACY_TEMP_NAMES
    )


def remove_interrupted_writes(folder: str | os.PathLike[str]) -> list[str]:
    """Delete the temporary files that killed writers left in ``folder`` and its subfolders.

    Only names matching :func:`is_interrupted_write` are touched, symbolic links are neither
    followed nor removed, and this process's own writes in flight are kept. Call it when a run
    starts, before anything writes into its folder. Returns the paths removed.
    """
    removed: list[str] = []
    own_pid = str(os.getpid())
    for root, dirs, files in os.walk(os.fspath(folder), followlinks=False):
        for name in files:
            match = _TEMP_NAME.match(name)
            if match is not None and match.group("pid") == own_pid:
                continue
            path = os.path.join(root, name)
            if not is_interrupted_write(name) or os.path.islink(path):
                continue
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            except OSError as err:
                raise StorageIOError(
                    f"cannot remove the leftover temporary file {path}: {err.strerror or err}"
                ) from err
            removed.append(path)
    return removed
