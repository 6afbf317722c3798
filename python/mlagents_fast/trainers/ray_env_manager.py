"""Environments in Ray actors: ``--env-workers ray``, anywhere in a Ray cluster.

Each environment (``builtin:``, ``gym:`` or a Unity executable present on the node) runs in
one Ray actor; the trainer stays in this process. Stepping, resets, restarts within
``--max-lifetime-restarts`` / ``--restarts-rate-limit-n`` / ``--restarts-rate-limit-period-s``
and the side channels (engine configuration, environment parameters, stats) are the subprocess
workers' own (:mod:`mlagents_fast.trainers.env_workers`): only the transport differs, actor
method calls instead of pipes. A dead actor (killed, its node lost) or an environment that
raised is replaced by a fresh actor, and every environment is reset.

Actors reserve ``--ray-cpus-per-env`` CPUs each and are spread over the cluster's nodes, so
``--num-envs 64`` uses every node that has room. ``--ray-address`` joins a running cluster;
without it the cluster named by ``RAY_ADDRESS`` is joined, else a Ray instance is started on
this machine for the run (and stopped with it). Ray is an optional dependency:
``pip install mlagents-fast[ray]``. See docs/ray.md.
"""

from __future__ import annotations

import logging
import queue as queue_module
import time
from collections.abc import Callable
from typing import Any

from mlagents_fast.trainers.env_workers import (
    EnvironmentCommand,
    EnvironmentRequest,
    EnvironmentResponse,
    EnvWorker,
    StepSource,
    WorkerDied,
    WorkerHandle,
    WorkerPoolEnvManager,
)
from mlagents_fast.trainers.exception import TrainerConfigError

__all__ = ["EnvActor", "RayEnvManager", "require_ray"]

logger = logging.getLogger(__name__)

_CLOSE_GRACE_SECONDS = 5.0


def require_ray() -> Any:
    """The ``ray`` module; a TrainerConfigError (one line, exit status 2) when it is missing."""
    try:
        import ray
    except ImportError:
        raise TrainerConfigError(
            "--env-workers ray needs the Ray package, which is not installed: "
            "pip install 'mlagents-fast[ray]'"
        ) from None
    return ray


class EnvActor:
    """The Ray actor around one :class:`EnvWorker` (decorated with ``ray.remote`` when used).

    The environment is created as soon as the actor is placed, so that all environments start
    at once. A failure to create it does not kill the actor: every call raises it, so the
    trainer sees the factory's own exception.
    """

    def __init__(
        self,
        pickled_factory: bytes,
        worker_id: int,
        engine_settings: dict[str, Any] | None,
        run_options: Any = None,
    ) -> None:
        self._worker: EnvWorker | None = None
        self._start_error: BaseException | None = None
        try:
            self._worker = EnvWorker(pickled_factory, worker_id, engine_settings, run_options)
        except Exception as err:  # noqa: BLE001 - raised again by every call
            logger.error("Environment worker %d failed: %s", worker_id, err)
            self._start_error = err

    def handle(self, request: EnvironmentRequest) -> EnvironmentResponse | None:
        if self._worker is None:
            raise self._start_error or RuntimeError("the environment is closed")
        if request.cmd == EnvironmentCommand.CLOSE:
            self._worker.close()
            self._worker = None
            return None
        return self._worker.handle(request)


def _failure_of(ray: Any, worker_id: int, err: BaseException) -> WorkerDied:
    """WorkerDied for a failed actor call: the environment's own exception when it raised,
    else the actor's death (killed, node lost) or a time-out."""
    if isinstance(err, ray.exceptions.RayTaskError):
        cause = err.cause if isinstance(err.cause, BaseException) else err
        return WorkerDied(worker_id, cause, raised_by_environment=True)
    if isinstance(err, ray.exceptions.GetTimeoutError):
        return WorkerDied(worker_id, TimeoutError(str(err)))
    return WorkerDied(worker_id, err)


class _RaySteps(StepSource):
    """The pending STEP calls of every actor, answered in completion order."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self.pending: dict[Any, int] = {}  # ObjectRef -> worker id

    def watch(self, ref: Any, worker_id: int) -> None:
        self.pending[ref] = worker_id

    def forget(self, worker_id: int) -> None:
        """Drop the pending calls of a replaced actor."""
        for ref, owner in list(self.pending.items()):
            if owner == worker_id:
                del self.pending[ref]

    def get(self, timeout: float) -> EnvironmentResponse:
        if not self.pending:
            time.sleep(timeout)
            raise queue_module.Empty
        ready, _ = self._ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if not ready:
            raise queue_module.Empty
        worker_id = self.pending.pop(ready[0])
        try:
            response: EnvironmentResponse = self._ray.get(ready[0])
        except self._ray.exceptions.RayError as err:
            failure = _failure_of(self._ray, worker_id, err)
            cause = failure.cause if failure.raised_by_environment else failure
            return EnvironmentResponse(EnvironmentCommand.ENV_EXITED, worker_id, cause)
        return response

    def close(self) -> None:
        self.pending.clear()


class _RayWorker(WorkerHandle):
    """The trainer's handle on one environment actor."""

    def __init__(self, ray: Any, actor: Any, worker_id: int, steps: _RaySteps) -> None:
        super().__init__(worker_id)
        self._ray = ray
        self.actor = actor
        self._steps = steps
        self._reply: Any = None  # the pending RESET / BEHAVIOR_SPECS call
        self._unanswered: list[Any] = []  # ENVIRONMENT_PARAMETERS calls, checked for errors

    def send(self, cmd: EnvironmentCommand, payload: Any = None) -> None:
        try:
            ref = self.actor.handle.remote(EnvironmentRequest(cmd, payload))
        except self._ray.exceptions.RayError as err:
            raise _failure_of(self._ray, self.worker_id, err) from err
        if cmd == EnvironmentCommand.STEP:
            self._steps.watch(ref, self.worker_id)
        elif cmd in (EnvironmentCommand.RESET, EnvironmentCommand.BEHAVIOR_SPECS):
            self._reply = ref
        else:
            self._unanswered.append(ref)

    def recv(self, timeout_seconds: float) -> EnvironmentResponse:
        failure = self._unanswered_failure()
        if failure is not None:
            raise failure
        ref, self._reply = self._reply, None
        if ref is None:
            raise WorkerDied(self.worker_id, RuntimeError("no request awaits an answer"))
        try:
            response: EnvironmentResponse = self._ray.get(ref, timeout=timeout_seconds)
        except self._ray.exceptions.RayError as err:
            raise _failure_of(self._ray, self.worker_id, err) from err
        return response

    def _unanswered_failure(self) -> WorkerDied | None:
        """The error of a finished fire-and-forget call, if one failed."""
        if not self._unanswered:
            return None
        done, self._unanswered = self._ray.wait(
            self._unanswered, num_returns=len(self._unanswered), timeout=0
        )
        for ref in done:
            try:
                self._ray.get(ref)
            except self._ray.exceptions.RayError as err:
                return _failure_of(self._ray, self.worker_id, err)
        return None

    def exit_reason(self) -> BaseException | None:
        # A dead actor's pending step resolves with its error: the StepSource reports it.
        failure = self._unanswered_failure()
        return None if failure is None else failure.cause

    def close(self) -> None:
        _close_actors(self._ray, [self])

    def request_close(self) -> Any:
        """Ask the environment to close; the call's ref (None when already closed)."""
        if self.closed:
            return None
        self.closed = True
        try:
            return self.actor.handle.remote(EnvironmentRequest(EnvironmentCommand.CLOSE))
        except self._ray.exceptions.RayError:
            return None

    def kill(self) -> None:
        self._steps.forget(self.worker_id)
        self._unanswered.clear()
        self._reply = None
        try:
            self._ray.kill(self.actor, no_restart=True)
        except (ValueError, self._ray.exceptions.RayError) as err:
            logger.debug("Killing environment worker %d failed: %s", self.worker_id, err)


def _close_actors(ray: Any, workers: list[_RayWorker]) -> None:
    """Close every environment at once (a grace period for all), then end the actors."""
    refs = [ref for ref in (worker.request_close() for worker in workers) if ref is not None]
    if refs:
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=_CLOSE_GRACE_SECONDS)
        for ref in ready:
            try:
                ray.get(ref)
            except ray.exceptions.RayError as err:
                logger.debug("Closing an environment failed: %s", err)
    for worker in workers:
        worker.kill()


class RayEnvManager(WorkerPoolEnvManager):
    """Steps ``n_env`` environments, one Ray actor each."""

    def __init__(
        self,
        env_factory: Callable[[int, list[Any]], Any],
        run_options: Any = None,
        n_env: int = 1,
        ray_address: str | None = None,
        cpus_per_env: float | None = None,
    ) -> None:
        """
        :param env_factory: ``(worker_id, side_channels) -> BaseEnv``, creates each actor's
            environment (any callable: cloudpickle sends it to the actors; what it imports
            must be installed on every node).
        :param run_options: the RunOptions: restart limits, timeout_wait, ray_address and
            ray_cpus_per_env come from its env_settings, the engine configuration from its
            engine_settings.
        :param n_env: number of environment actors (--num-envs).
        :param ray_address: the cluster to join (overrides env_settings.ray_address).
        :param cpus_per_env: CPUs reserved per actor (overrides env_settings.ray_cpus_per_env).
        """
        ray = require_ray()
        super().__init__(env_factory, run_options)
        env_settings = getattr(run_options, "env_settings", None)
        if ray_address is None:
            ray_address = getattr(env_settings, "ray_address", None)
        if cpus_per_env is None:
            cpus_per_env = float(getattr(env_settings, "ray_cpus_per_env", 1.0))
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            # Joins ray_address, else RAY_ADDRESS, else starts a local instance.
            ray.init(address=ray_address, include_dashboard=False)
            self._owns_ray = True
        elif ray_address is not None:
            logger.info("Ray is already connected in this process; --ray-address is not used.")
        self._check_capacity(n_env, cpus_per_env, started_here=self._owns_ray and not ray_address)
        self._actor_class = ray.remote(
            num_cpus=cpus_per_env,
            max_restarts=0,  # restarts are ours, within the run's restart limits
            scheduling_strategy="SPREAD",
        )(EnvActor)
        self._steps = _RaySteps(ray)
        try:
            self._start_workers(n_env)
        except BaseException:
            self.close()
            raise

    def _check_capacity(self, n_env: int, cpus_per_env: float, started_here: bool) -> None:
        available = float(self._ray.cluster_resources().get("CPU", 0.0))
        needed = n_env * cpus_per_env
        if needed <= available:
            return
        message = (
            f"--num-envs {n_env} with --ray-cpus-per-env {cpus_per_env:g} needs {needed:g} "
            f"CPUs and the Ray cluster has {available:g}"
        )
        if started_here:
            # A local instance never grows: the actors that do not fit would wait forever.
            if self._owns_ray:
                self._ray.shutdown()
            raise TrainerConfigError(
                f"{message}; lower --ray-cpus-per-env (to {available / n_env:g} for example) or "
                "join a larger cluster with --ray-address."
            )
        logger.warning("%s: some environments start only when nodes join the cluster.", message)

    @property
    def step_queue(self) -> _RaySteps:
        return self._steps

    def _create_worker(self, worker_id: int) -> _RayWorker:
        actor = self._actor_class.remote(
            self._pickled_factory,
            worker_id,
            self._engine_settings,
            self._analytics_run_options(worker_id),
        )
        return _RayWorker(self._ray, actor, worker_id, self._steps)

    def close(self) -> None:
        try:
            _close_actors(self._ray, [w for w in self.workers if isinstance(w, _RayWorker)])
            self._steps.close()
        finally:
            if self._owns_ray:
                self._owns_ray = False
                self._ray.shutdown()
