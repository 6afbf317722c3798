"""Exceptions of the environment API, with the names and hierarchy of ``mlagents_envs.exception``.

Every class also derives from :class:`mlagents_fast.exceptions.MlagentsFastError`, so one
``except MlagentsFastError`` catches errors from the trainers and the environments alike.
"""

from __future__ import annotations

from mlagents_fast.exceptions import MessageDecodeError, MlagentsFastError

__all__ = [
    "UnityActionException",
    "UnityCommunicationException",
    "UnityCommunicatorStoppedException",
    "UnityEnvironmentException",
    "UnityException",
    "UnityMessageDecodeException",
    "UnityNonFiniteValueException",
    "UnityObservationException",
    "UnitySideChannelException",
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


class UnityMessageDecodeException(UnityCommunicationException, MessageDecodeError):
    """Bytes received from the other side are not a valid communicator message."""


class UnityNonFiniteValueException(UnityException, RuntimeError):
    """A reward or vector observation is NaN or infinite (ML-Agents raises RuntimeError)."""


class UnityObservationException(UnityException):
    """An observation received from the environment does not match its declared shape."""


class UnityActionException(UnityException):
    """Actions given to the environment have the wrong shape for the behavior."""


class UnityTimeOutException(UnityException):
    """The environment did not answer within ``timeout_wait`` seconds."""


class UnitySideChannelException(UnityException):
    """A side channel was used wrongly (for example width set without height)."""


class UnityWorkerInUseException(UnityException):
    """The port of this worker id is already taken by another process."""

    MESSAGE_TEMPLATE = (
        "Couldn't start socket communication because worker number {} is still in use. "
        "You may need to manually close a previously opened environment "
        "or use a different worker number."
    )

    def __init__(self, worker_id: int) -> None:
        super().__init__(self.MESSAGE_TEMPLATE.format(str(worker_id)))
