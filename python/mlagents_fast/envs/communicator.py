"""The trainer's end of the Unity link as protobuf messages (``mlagents_envs.communicator``).

:class:`Communicator` is ML-Agents' interface: ``initialize`` and ``exchange`` take a
``UnityInputProto`` and return a ``UnityOutputProto``. A UnityEnvironment subclass whose
``_get_communicator`` returns one (for example
:class:`~mlagents_fast.envs.mock_communicator.MockCommunicator` in tests) talks through it;
the default link (:class:`~mlagents_fast.envs.rpc_communicator.RpcCommunicator`) passes
encoded bytes straight to the Rust decoder instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlagents_fast.envs.exception import UnityCommunicatorStoppedException

__all__ = ["Communicator", "PollCallback", "ProtobufLink"]

PollCallback = Callable[[], None]
"""Called while waiting for Unity; raises to stop waiting."""


class Communicator:
    """Python side of the link, in protobuf messages. Subclasses implement the methods."""

    def __init__(self, worker_id: int = 0, base_port: int = 5005) -> None:
        """
        :param worker_id: offset from ``base_port``, one per environment of a run.
        :param base_port: the port of worker 0.
        """
        self.worker_id = worker_id
        self.base_port = base_port

    def initialize(self, inputs: Any, poll_callback: PollCallback | None = None) -> Any:
        """Send the initialization ``UnityInputProto``; return Unity's first
        ``UnityOutputProto`` (its behaviors and first agents)."""
        raise NotImplementedError

    def exchange(self, inputs: Any, poll_callback: PollCallback | None = None) -> Any | None:
        """Send a ``UnityInputProto``; return Unity's answer, or None when Unity stopped."""
        raise NotImplementedError

    def close(self) -> None:
        """Tell Unity to shut down and release the connection."""


class ProtobufLink:
    """A :class:`Communicator` behind the bytes interface UnityEnvironment uses."""

    def __init__(self, communicator: Communicator) -> None:
        self.communicator = communicator

    @staticmethod
    def _inputs(message: bytes) -> Any:
        from mlagents_fast.envs.communicator_objects.unity_message_pb2 import UnityMessageProto

        return UnityMessageProto.FromString(message).unity_input

    @staticmethod
    def _message(outputs: Any | None) -> bytes:
        if outputs is None:
            raise UnityCommunicatorStoppedException("Communicator has exited.")
        from mlagents_fast.envs.communicator_objects.unity_message_pb2 import UnityMessageProto

        message = UnityMessageProto()
        message.header.status = 200
        message.unity_output.CopyFrom(outputs)
        return message.SerializeToString()

    def initialize(self, message: bytes, poll_callback: PollCallback | None = None) -> bytes:
        return self._message(self.communicator.initialize(self._inputs(message), poll_callback))

    def exchange(self, message: bytes, poll_callback: PollCallback | None = None) -> bytes:
        return self._message(self.communicator.exchange(self._inputs(message), poll_callback))

    def close(self) -> None:
        self.communicator.close()
