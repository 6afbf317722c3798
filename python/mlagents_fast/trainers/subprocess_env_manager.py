"""N environment workers in subprocesses (the counterpart of ``mlagents.trainers.subprocess_env_manager``).

Each worker process owns one environment. The main process computes actions for every worker
whose step came back and sends them; workers step concurrently. A worker whose environment
crashes (a Unity exception, or the process died) is restarted, at most ``--max-lifetime-restarts``
times and at most ``--restarts-rate-limit-n`` times per ``--restarts-rate-limit-period-s``;
beyond that the failure is raised. After a restart every environment is reset so no trajectory
mixes data from before and after.

``env_factory`` is any callable ``(worker_id, side_channels) -> BaseEnv``, as in ML-Agents: a
lambda, a local function or an :class:`EnvFactory`. It is sent to the workers with cloudpickle,
so closures travel with what they capture. Workers are started with the ``spawn`` method: the
parent holds PyTorch threads, which must not be forked.

The stepping, restarts and the environment side are shared with the Ray workers
(:mod:`mlagents_fast.trainers.env_workers`); this module is the transport: a process and two
pipes per worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import queue as queue_module
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

from mlagents_fast.trainers.env_workers import (
    DEFAULT_TIMEOUT_WAIT,
    EnvChannels,
    EnvFactory,
    EnvironmentCommand,
    EnvironmentRequest,
    EnvironmentResponse,
    EnvWorker,
    StepResponse,
    StepSource,
    WorkerDied,
    WorkerHandle,
    WorkerPoolEnvManager,
    engine_settings_of,
)

__all__ = [
    "DEFAULT_TIMEOUT_WAIT",
    "EnvChannels",
    "EnvFactory",
    "EnvironmentCommand",
    "EnvironmentRequest",
    "EnvironmentResponse",
    "StepResponse",
    "SubprocessEnvManager",
    "engine_settings_of",
]

logger = logging.getLogger(__name__)


def _worker(
    parent_conn: Connection,
    step_conn: Connection,
    pickled_factory: bytes,
    worker_id: int,
    engine_settings: dict[str, Any] | None,
    run_options: Any = None,
) -> None:
    """Worker process main: create the environment, then serve requests until CLOSE."""
    worker = None
    try:
        worker = EnvWorker(pickled_factory, worker_id, engine_settings, run_options)
        while True:
            request: EnvironmentRequest = parent_conn.recv()
            response = worker.handle(request)
            if request.cmd == EnvironmentCommand.CLOSE:
                break
            if response is not None:
                # Steps go on their own pipe, which the parent waits on for all workers.
                conn = step_conn if request.cmd == EnvironmentCommand.STEP else parent_conn
                conn.send(response)
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    except Exception as err:  # noqa: BLE001 - reported to the parent, which decides whether to restart
        # The parent reports it (restart, or the one-line error past the limits).
        logger.debug("Environment worker %d failed: %s", worker_id, err)
        try:
            step_conn.send(EnvironmentResponse(EnvironmentCommand.ENV_EXITED, worker_id, err))
        except (BrokenPipeError, OSError):
            pass  # the parent stopped listening (it is closing or already failed)
    finally:
        if worker is not None:
            worker.close()
        step_conn.close()
        parent_conn.close()


class _Worker(WorkerHandle):
    """The parent's handle on one worker process."""

    def __init__(self, process: Any, worker_id: int, conn: Connection) -> None:
        super().__init__(worker_id)
        self.process = process
        self.conn = conn

    def send(self, cmd: EnvironmentCommand, payload: Any = None) -> None:
        try:
            self.conn.send(EnvironmentRequest(cmd, payload))
        except (BrokenPipeError, EOFError, OSError) as err:
            raise WorkerDied(self.worker_id, err) from err

    def recv(self, timeout_seconds: float) -> EnvironmentResponse:
        try:
            if not self.conn.poll(timeout_seconds):
                raise WorkerDied(
                    self.worker_id, TimeoutError(f"no answer within {timeout_seconds} s")
                )
            response: EnvironmentResponse = self.conn.recv()
        except (BrokenPipeError, EOFError, OSError) as err:
            raise WorkerDied(self.worker_id, err) from err
        return response

    def exit_reason(self) -> BaseException | None:
        if self.process.is_alive():
            return None
        return RuntimeError(f"process exited with code {self.process.exitcode}")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.conn.send(EnvironmentRequest(EnvironmentCommand.CLOSE))
        except (BrokenPipeError, EOFError, OSError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)


class _StepResponses(StepSource):
    """Step responses and failure reports of every worker, one simplex pipe each.

    A shared ``multiprocessing.Queue`` would deadlock: a worker killed while holding the
    queue's cross-process write lock leaves every other worker's writes blocked forever.
    A pipe per worker has one writer and no shared lock; a dead worker's pipe reads EOF.
    """

    def __init__(self) -> None:
        self.readers: dict[int, Connection] = {}

    def add(self, worker_id: int, reader: Connection) -> None:
        """Listen to ``reader`` for ``worker_id``, replacing a previous worker's pipe."""
        old = self.readers.pop(worker_id, None)
        if old is not None:
            old.close()
        self.readers[worker_id] = reader

    def get(self, timeout: float) -> EnvironmentResponse:
        """The next response from any worker; ``queue.Empty`` when none came in ``timeout``."""
        ready = multiprocessing.connection.wait(list(self.readers.values()), timeout)
        # wait() returns some of the objects it was given: here, Connections.
        for reader in cast(list[Connection], ready):
            try:
                response: EnvironmentResponse = reader.recv()
                return response
            except (EOFError, OSError):
                # The worker is gone: stop polling its pipe (it would read EOF forever);
                # the manager notices the dead process itself.
                for worker_id, known in list(self.readers.items()):
                    if known is reader:
                        del self.readers[worker_id]
                reader.close()
        raise queue_module.Empty

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()


class SubprocessEnvManager(WorkerPoolEnvManager):
    """Steps ``n_env`` environments in worker processes."""

    def __init__(
        self,
        env_factory: Callable[[int, list[Any]], Any],
        run_options: Any = None,
        n_env: int = 1,
    ) -> None:
        """``env_factory`` and ``run_options`` as :class:`WorkerPoolEnvManager` takes them;
        ``n_env`` worker processes (--num-envs)."""
        super().__init__(env_factory, run_options)
        self._context = multiprocessing.get_context("spawn")
        self._step_responses = _StepResponses()
        self._start_workers(n_env)

    @property
    def step_queue(self) -> _StepResponses:
        return self._step_responses

    def _create_worker(self, worker_id: int) -> _Worker:
        parent_conn, child_conn = self._context.Pipe()
        step_reader, step_writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker,
            args=(
                child_conn,
                step_writer,
                self._pickled_factory,
                worker_id,
                self._engine_settings,
                self._analytics_run_options(worker_id),
            ),
            daemon=True,
        )
        process.start()
        # Only the worker may hold the write ends: then its death closes them (EOF here).
        child_conn.close()
        step_writer.close()
        self._step_responses.add(worker_id, step_reader)
        return _Worker(process, worker_id, parent_conn)
