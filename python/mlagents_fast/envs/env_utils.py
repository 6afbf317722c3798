"""Find and launch a Unity executable (``mlagents_envs.env_utils``, docs/protocol.md section 9)."""

from __future__ import annotations

import glob
import logging
import os
import subprocess
import sys

from mlagents_fast.envs.exception import UnityEnvironmentException

__all__ = ["get_platform", "launch_executable", "validate_environment_path"]

logger = logging.getLogger(__name__)

_EXECUTABLE_SUFFIXES = (".app", ".exe", ".x86_64", ".x86")


def get_platform() -> str:
    """``sys.platform``, behind a function so tests can pretend another OS."""
    return sys.platform


def _strip_executable_suffix(env_path: str) -> str:
    env_path = env_path.strip()
    for suffix in _EXECUTABLE_SUFFIXES:
        if env_path.endswith(suffix):
            return env_path[: -len(suffix)]
    return env_path


def validate_environment_path(env_path: str) -> str | None:
    """The executable that ``env_path`` names on this platform, or None.

    Linux tries ``cwd/name.x86_64``, ``cwd/name.x86``, ``name.x86_64``, ``name.x86`` and then
    ``name`` itself if it is a file; macOS looks inside ``name.app/Contents/MacOS``; Windows
    tries ``name.exe`` and then any ``*.exe`` in the folder ``name`` except the crash handler.
    """
    env_path = _strip_executable_suffix(env_path)
    if not (glob.glob(glob.escape(env_path)) or glob.glob(glob.escape(env_path) + ".*")):
        return None
    cwd = os.getcwd()
    true_filename = os.path.basename(os.path.normpath(env_path))
    escaped = glob.escape(env_path)
    escaped_in_cwd = glob.escape(os.path.join(cwd, env_path))
    candidates: list[str] = []
    platform = get_platform()
    if platform.startswith("linux"):
        for pattern in (
            escaped_in_cwd + ".x86_64",
            escaped_in_cwd + ".x86",
            escaped + ".x86_64",
            escaped + ".x86",
        ):
            candidates = glob.glob(pattern)
            if candidates:
                break
        if not candidates and os.path.isfile(env_path):
            candidates = [env_path]
    elif platform == "darwin":
        for base in (escaped_in_cwd, escaped):
            candidates = glob.glob(
                os.path.join(base + ".app", "Contents", "MacOS", glob.escape(true_filename))
            )
            if not candidates:
                candidates = glob.glob(os.path.join(base + ".app", "Contents", "MacOS", "*"))
            if candidates:
                break
    elif platform == "win32":
        candidates = glob.glob(escaped_in_cwd + ".exe") or glob.glob(escaped + ".exe")
        if not candidates:
            candidates = [
                path
                for path in glob.glob(os.path.join(escaped, "*.exe"))
                if not os.path.basename(path).startswith("UnityCrashHandler")
            ]
    return candidates[0] if candidates else None


def launch_executable(file_name: str, args: list[str]) -> subprocess.Popen:
    """Start the environment executable with ``args``, in its own session.

    Its output goes to the terminal only when this module logs at DEBUG level.
    """
    launch_string = validate_environment_path(file_name)
    if launch_string is None:
        raise UnityEnvironmentException(
            f"Couldn't launch the {file_name} environment. "
            "Provided filename does not match any environments."
        )
    logger.debug("The launch string is %s", launch_string)
    logger.debug("Running with args %s", args)
    output = subprocess.DEVNULL if logger.getEffectiveLevel() > logging.DEBUG else None
    try:
        # A new session: Ctrl-C in the trainer does not kill the environment before it can
        # be closed properly.
        return subprocess.Popen(
            [launch_string, *args], start_new_session=True, stdout=output, stderr=output
        )
    except PermissionError as error:
        raise UnityEnvironmentException(
            "Error when trying to launch environment - make sure permissions are set "
            f'correctly. For example "chmod -R 755 {launch_string}"'
        ) from error
    except OSError as error:
        raise UnityEnvironmentException(
            f"Error when trying to launch environment {launch_string}: {error}"
        ) from error
