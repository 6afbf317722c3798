"""The exception hierarchy of mlagents-fast.

Every error this package raises on purpose derives from :class:`MlagentsFastError`.
Where a built-in exception fits, the class also derives from it, so callers can
catch what they already know (``except ValueError``) or everything of ours at once.
"""

from __future__ import annotations

__all__ = [
    "BufferException",
    "CorruptFileError",
    "DemonstrationError",
    "InvalidArgumentError",
    "MessageDecodeError",
    "MlagentsFastError",
    "RunStoppedError",
    "StorageIOError",
]


class MlagentsFastError(Exception):
    """Base class of every error raised by mlagents-fast."""


class InvalidArgumentError(MlagentsFastError, ValueError):
    """An argument has the wrong dtype, shape, layout or value. The message names it."""


class CorruptFileError(MlagentsFastError, ValueError):
    """A saved file (replay buffer, checkpoint) is truncated, corrupt or not ours."""


class DemonstrationError(MlagentsFastError, RuntimeError):
    """A ``.demo`` file cannot be used: missing, truncated, not a demonstration, of an
    unsupported version, corrupt, or recorded for another behavior spec. The message names
    the file. A ``RuntimeError``, as ML-Agents raises for the same problems."""


class StorageIOError(MlagentsFastError, OSError):
    """Reading or writing a file failed at the operating-system level."""


class MessageDecodeError(MlagentsFastError, ValueError):
    """Bytes received from a Unity environment are not a valid message."""


class BufferException(MlagentsFastError, ValueError):
    """An AgentBuffer operation cannot run on these fields or sizes (fields of unequal
    length, a batch larger than the field). Same name as ML-Agents' ``BufferException``."""


class RunStoppedError(MlagentsFastError):
    """Training cannot go on, for a reason the message states in full (an environment that
    keeps crashing, for example). The command line prints it as one line and exits with
    status 2 instead of showing a traceback."""
