"""The trainer side of the gRPC link (docs/protocol.md sections 2-3): a server Unity calls into.

Unity is the gRPC client: it calls ``Exchange`` with each of its messages and waits for the
reply, which is whatever the trainer sends next. The gRPC handler thread therefore parks each
request with a reply slot; the main thread takes the request, and its next ``exchange`` fills
the slot. Messages are raw bytes in both directions (no protobuf objects): the Rust codec
encodes and decodes them. ``close`` answers any parked call with status 400 and answers every
later call the same way, so no handler thread is ever left waiting (no hang at exit).
"""

from __future__ import annotations

import logging
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc

from mlagents_fast import _native
from mlagents_fast.envs.exception import UnityTimeOutException, UnityWorkerInUseException

__all__ = ["EXCHANGE_METHOD", "RpcCommunicator"]

logger = logging.getLogger(__name__)

SERVICE_NAME = "communicator_objects.UnityToExternalProto"
EXCHANGE_METHOD = f"/{SERVICE_NAME}/Exchange"

# Large visual batches exceed gRPC's 4 MiB default; the Unity side accepts any size it is sent.
MAX_MESSAGE_BYTES = 1 << 30
GRPC_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # ML-Agents turns SO_REUSEPORT on; off, a second trainer on the same port fails to bind
    # instead of silently sharing it.
    ("grpc.so_reuseport", 0),
)

TIMEOUT_MESSAGE = (
    "The Unity environment took too long to respond. Make sure that :\n"
    "\t The environment does not need user interaction to launch\n"
    '\t The Agents\' Behavior Parameters > Behavior Type is set to "Default"\n'
    "\t The environment and the Python interface have compatible versions.\n"
    "\t If you're running on a headless server without graphics support, turn off display "
    "by either passing --no-graphics option or build your Unity executable as server build."
)

# How often the wait for Unity checks the environment process (seconds).
POLL_INTERVAL_S = 0.05


class _PendingCall:
    """A request from Unity waiting for the trainer's reply."""

    __slots__ = ("answered", "reply", "request")

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.reply: bytes | None = None
        self.answered = threading.Event()

    def answer(self, reply: bytes) -> None:
        self.reply = reply
        self.answered.set()


class RpcCommunicator:
    """gRPC server for one environment worker, listening on ``bind_address:base_port+worker_id``.

    - worker_id: offsets the port.
    - base_port: first port.
    - timeout_wait: seconds to wait for each message from Unity.
    - bind_address: interface to listen on (127.0.0.1: only this machine can connect).
    """

    def __init__(
        self,
        worker_id: int = 0,
        base_port: int = 5005,
        timeout_wait: int = 30,
        bind_address: str = "127.0.0.1",
    ) -> None:
        self.port = base_port + worker_id
        self.worker_id = worker_id
        self.timeout_wait = timeout_wait
        self.bind_address = bind_address
        self._incoming: queue.Queue[_PendingCall] = queue.Queue()
        self._pending: _PendingCall | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._check_port()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=10, thread_name_prefix="unity-rpc"),
            options=GRPC_OPTIONS,
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Exchange": grpc.unary_unary_rpc_method_handler(
                    self._handle_exchange,
                    request_deserializer=None,
                    response_serializer=None,
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        address = (
            f"[{bind_address}]:{self.port}"
            if ":" in bind_address
            else f"{bind_address}:{self.port}"
        )
        try:
            bound_port = self._server.add_insecure_port(address)
        except RuntimeError as error:
            raise UnityWorkerInUseException(self.worker_id) from error
        if bound_port == 0:
            raise UnityWorkerInUseException(self.worker_id)
        self._server.start()

    def _check_port(self) -> None:
        """Raise UnityWorkerInUseException if the port is taken (ML-Agents' check)."""
        family = socket.AF_INET6 if ":" in self.bind_address else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_STREAM)
        if sys.platform.startswith("linux"):
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((self.bind_address, self.port))
        except OSError as error:
            raise UnityWorkerInUseException(self.worker_id) from error
        finally:
            probe.close()

    def _handle_exchange(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """gRPC thread: hand the request to the main thread and wait for its reply."""
        call = _PendingCall(request)
        with self._lock:
            if self._closed.is_set():
                return _native.encode_close()
            self._incoming.put(call)
        # If Unity goes away, stop waiting: nobody will read the reply.
        context.add_callback(call.answered.set)
        call.answered.wait()
        return call.reply if call.reply is not None else _native.encode_close()

    def _wait_for_message(self, poll_callback: Callable[[], None] | None) -> _PendingCall:
        """The next message from Unity, waiting at most ``timeout_wait`` seconds."""
        deadline = time.monotonic() + self.timeout_wait
        while True:
            remaining = deadline - time.monotonic()
            try:
                return self._incoming.get(timeout=max(0.0, min(POLL_INTERVAL_S, remaining)))
            except queue.Empty:
                pass
            if poll_callback is not None:
                poll_callback()
            if time.monotonic() >= deadline:
                raise UnityTimeOutException(TIMEOUT_MESSAGE)

    def initialize(
        self, init_message: bytes, poll_callback: Callable[[], None] | None = None
    ) -> bytes:
        """Handshake: wait for Unity's first message, answer it with ``init_message``, wait
        for the second (kept pending: the first reset answers it). Returns the first message.
        """
        first = self._wait_for_message(poll_callback)
        first.answer(init_message)
        self._pending = self._wait_for_message(poll_callback)
        return first.request

    def exchange(self, message: bytes, poll_callback: Callable[[], None] | None = None) -> bytes:
        """Answer Unity's pending call with ``message`` and return Unity's next message."""
        pending, self._pending = self._pending, None
        if pending is None:
            raise UnityTimeOutException("No message from Unity is waiting for a reply.")
        pending.answer(message)
        self._pending = self._wait_for_message(poll_callback)
        return self._pending.request

    def close(self) -> None:
        """Answer every waiting call with status 400, refuse new ones, stop the server."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        close_message = _native.encode_close()
        if self._pending is not None:
            self._pending.answer(close_message)
            self._pending = None
        while True:
            try:
                self._incoming.get_nowait().answer(close_message)
            except queue.Empty:
                break
        # A short grace lets the answered calls reach Unity before the server goes.
        self._server.stop(grace=1.0).wait(timeout=2.0)
