"""Exceptions of the environment API, with the names and hierarchy of ``mlagents_envs.exception``.

Every class also derives from :class:`mlagents_fast.exceptions.MlagentsFastError`, so one
``except MlagentsFastError`` catches errors from the trainers and the environments alike.

Bytes received from Unity that break the protocol (malformed messages, sizes above the
decoder limits, observations that do not match their spec, NaN rewards, unreadable
side-channel messages) raise a subclass of :class:`UnityProtocolException`, whatever the
bytes: the decoder never crashes the process. Each subclass also keeps the base classes of
the error ML-Agents raises in the same situation (``UnityCommunicationException``,
``UnityEnvironmentException``, ``ValueError``, ``RuntimeError``), so code written against
ML-Agents catches them as before.
"""

from __future__ import annotations

from mlagents_fast.exceptions import MessageDecodeError, MlagentsFastError, RunStoppedError

__all__ = [
    "UnityActionException",
    "UnityCommunicationException",
    "UnityCommunicatorStoppedException",
    "UnityEnvironmentException",
    "UnityException",
    "UnityMessageDecodeException",
    "UnityMessageLimitException",
    "UnityNonFiniteValueException",
    "UnityObservationException",
    "UnityProtocolException",
    "UnitySideChannelException",
    "UnitySideChannelMessageException",
    "UnityTimeOutException",
    "UnityWorkerInUseException",
]


class UnityException(MlagentsFastError):
    """Any error related to ml-agents environment."""


class UnityEnvironmentException(UnityException):
    """The environment could not be started, answered wrongly or shut down."""


class UnityCommunicationException(UnityException):
    """The link with the environment failed."""


class UnityCommunicatorStoppedException(UnityException):
    """The environment closed the link (it sent a non-200 status or exited)."""


class UnityProtocolException(UnityException, MessageDecodeError):
    """Bytes received from Unity break the protocol; the message names what is wrong.

    The base of every error the decoder raises on received bytes (it is also a ValueError).
    """


class UnityMessageDecodeException(UnityCommunicationException, UnityProtocolException):
    """Bytes received from the other side are not a valid communicator message."""


class UnityMessageLimitException(UnityMessageDecodeException):
    """A message declares a size above the decoder limits (huge shapes, PNG images, branch
    counts or decoded sizes). The message names the limit; ``MLAGENTS_FAST_DECODE_LIMITS``
    raises it (docs/protocol.md, "Decoder limits")."""


class UnityNonFiniteValueException(UnityProtocolException, RuntimeError):
    """A reward or vector observation is NaN or infinite (ML-Agents raises RuntimeError)."""


class UnityObservationException(UnityProtocolException):
    """An observation received from the environment does not match its declared shape."""


class UnityActionException(UnityException):
    """Actions given to the environment have the wrong shape for the behavior."""


class UnityTimeOutException(UnityException, RunStoppedError):
    """The environment did not answer within ``timeout_wait`` seconds (the command line
    prints it on one line)."""


class UnitySideChannelException(UnityException):
    """A side channel was used wrongly (for example width set without height)."""


class UnitySideChannelMessageException(
    UnityCommunicationException, UnityEnvironmentException, UnityProtocolException
):
    """A side-channel record or message received from Unity cannot be read (truncated
    record, bad length, non-ASCII string, unknown enum value, a message on a channel that
    only sends). The message names the channel. ML-Agents raises UnityEnvironmentException
    for bad records and UnityCommunicationException for messages on send-only channels:
    this class is both."""


class UnityWorkerInUseException(UnityException, RunStoppedError):
    """The port of this worker id is already taken by another process (the command line
    prints it on one line)."""

    MESSAGE_TEMPLATE = (
        "Couldn't start socket communication because worker number {} is still in use. "
        "You may need to manually close a previously opened environment "
        "or use a different worker number."
    )

    def __init__(self, worker_id: int) -> None:
        super().__init__(self.MESSAGE_TEMPLATE.format(str(worker_id)))
