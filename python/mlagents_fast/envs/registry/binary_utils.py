"""Download, unpack and find Unity builds for registry entries (``mlagents_envs.registry.binary_utils``).

A build is a ``.zip`` at a URL holding one executable for this platform. It is fetched once
into ``<tmp>/ml-agents-binaries/binaries/<name>-<md5 of url>/`` (a lock file keeps two
processes from fetching it together) and found there afterwards. Downloads go to a
temporary file first, and archive members that would land outside the target folder are
refused.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import yaml

from mlagents_fast.envs.env_utils import validate_environment_path

__all__ = [
    "BLOCK_SIZE",
    "download_and_extract_zip",
    "get_local_binary_path",
    "get_local_binary_path_if_exists",
    "get_tmp_dirs",
    "load_local_manifest",
    "load_remote_manifest",
    "print_progress",
]

logger = logging.getLogger(__name__)

BLOCK_SIZE = 8192
DOWNLOAD_ATTEMPTS = 5
DOWNLOAD_TIMEOUT_S = 30
_FOLDER = "ml-agents-binaries"
_EXECUTABLE_PATTERNS = {"linux": "*.x86_64", "darwin": "*.app", "win32": "*.exe"}


def _platform() -> str:
    return "linux" if sys.platform.startswith("linux") else sys.platform


def _url_folder_name(name: str, url: str) -> str:
    return f"{name}-{hashlib.md5(url.encode()).hexdigest()}"


def get_tmp_dirs(tmp_dir: str | None = None) -> tuple[str, str]:
    """(folder of downloads in progress, folder of unpacked builds), created when missing."""
    root = os.path.join(tmp_dir or tempfile.gettempdir(), _FOLDER)
    zip_dir = os.path.join(root, "tmp")
    bin_dir = os.path.join(root, "binaries")
    for folder in (zip_dir, bin_dir):
        os.makedirs(folder, mode=0o755, exist_ok=True)
    return zip_dir, bin_dir


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """Exclusive lock on ``path`` between processes (a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent first downloads are not serialized
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def get_local_binary_path(name: str, url: str, tmp_dir: str | None = None) -> str:
    """The executable of build ``name`` from ``url``, downloaded first if not here yet.

    Raises the last download error after :data:`DOWNLOAD_ATTEMPTS` failed attempts, and
    FileNotFoundError when the archive holds no executable for this platform.
    """
    zip_dir, _ = get_tmp_dirs(tmp_dir)
    with _file_lock(os.path.join(zip_dir, name + ".lock")):
        path = get_local_binary_path_if_exists(name, url, tmp_dir)
        if path is None:
            logger.debug("Environment %s not found locally, downloading %s", name, url)
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            if path is not None:
                break
            try:
                download_and_extract_zip(url, name, tmp_dir)
            except (OSError, zipfile.BadZipFile) as err:
                if attempt == DOWNLOAD_ATTEMPTS or _retry_is_pointless(err):
                    raise
                logger.warning(
                    "Attempt %d / %d to download %s failed: %s",
                    attempt,
                    DOWNLOAD_ATTEMPTS,
                    url,
                    err,
                )
                continue
            path = get_local_binary_path_if_exists(name, url, tmp_dir)
            if path is None:
                break  # unpacked, but nothing to run: retrying would not help
    if path is None:
        raise FileNotFoundError(
            f"no Unity executable for this platform in {url}: it must be a .zip holding one "
            f"folder with the executable ({_EXECUTABLE_PATTERNS.get(_platform(), '?')})"
        )
    return path


def _retry_is_pointless(err: BaseException) -> bool:
    """A bad archive, or a host that cannot be resolved or reached, will not do better on
    the next attempt."""
    if isinstance(err, zipfile.BadZipFile):
        return True
    if isinstance(err, urllib.error.HTTPError):
        return 400 <= err.code < 500
    return isinstance(err, urllib.error.URLError) and isinstance(err.reason, OSError)


def get_local_binary_path_if_exists(name: str, url: str, tmp_dir: str | None = None) -> str | None:
    """The executable of an already unpacked ``name`` from ``url``, or None."""
    pattern = _EXECUTABLE_PATTERNS.get(_platform())
    if pattern is None:
        raise NotImplementedError(f"no Unity executables exist for platform {sys.platform}")
    _, bin_dir = get_tmp_dirs(tmp_dir)
    folder = os.path.join(bin_dir, _url_folder_name(name, url))
    for candidate in sorted(glob.glob(os.path.join(folder, "**", pattern), recursive=True)):
        if "UnityCrashHandler" in os.path.basename(candidate):
            continue
        if validate_environment_path(candidate) is None:
            shutil.rmtree(folder, ignore_errors=True)  # damaged: fetch again
            return None
        return candidate
    return None


def download_and_extract_zip(url: str, name: str, tmp_dir: str | None = None) -> None:
    """Fetch the .zip at ``url`` and unpack it as build ``name`` (files made executable)."""
    zip_dir, bin_dir = get_tmp_dirs(tmp_dir)
    target = os.path.join(bin_dir, _url_folder_name(name, url))
    shutil.rmtree(target, ignore_errors=True)
    zip_path = os.path.join(zip_dir, f"{uuid.uuid4()}.zip")
    try:
        _download(url, zip_path, f"  Downloading {name}")
        _extract(zip_path, target, f"  Extracting  {name}")
    finally:
        if os.path.exists(zip_path):
            os.remove(zip_path)
    for path in glob.glob(os.path.join(target, "**", "*"), recursive=True):
        mode = os.stat(path).st_mode
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IRUSR | stat.S_IXGRP | stat.S_IRGRP)


def _download(url: str, path: str, label: str) -> None:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        size = int(response.headers.get("content-length") or 0)
        done = 0
        with open(path, "wb") as out:
            while block := response.read(BLOCK_SIZE):
                out.write(block)
                done += len(block)
                if size:
                    print_progress(label, 100.0 * done / size)
    if size:
        print()


def _extract(zip_path: str, target: str, label: str) -> None:
    root = os.path.realpath(target)
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.namelist()
        for index, member in enumerate(members, start=1):
            destination = os.path.realpath(os.path.join(root, member))
            if os.path.commonpath([root, destination]) != root:
                raise zipfile.BadZipFile(f"archive member {member!r} points outside its folder")
            archive.extract(member, root)
            print_progress(label, 100.0 * index / len(members))
    if members:
        print()


def print_progress(prefix: str, percent: float) -> None:
    """One progress bar line, redrawn in place."""
    width = 20
    percent = min(100.0, max(0.0, percent))
    filled = min(int(percent / 100 * width), width)
    bar = "|" + "\u2588" * filled + " " * (width - filled) + "|"
    print(f"{prefix} : {bar} {percent:3.0f}% \r", end="", flush=True)


def load_remote_manifest(url: str) -> dict[str, Any]:
    """The YAML manifest at ``url`` as a dict."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return yaml.safe_load(response.read()) or {}


def load_local_manifest(path: str) -> dict[str, Any]:
    """The YAML manifest file ``path`` as a dict."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}
