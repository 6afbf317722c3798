"""Environment workers, whatever carries their messages.

Both :class:`~mlagents_fast.trainers.subprocess_env_manager.SubprocessEnvManager` (worker
processes on this machine, pipes) and
:class:`~mlagents_fast.trainers.ray_env_manager.RayEnvManager` (Ray actors, anywhere in a Ray
cluster) are built from the two halves here; only the transport differs:

- :class:`EnvWorker` is the environment side: it creates the environment from the pickled
  factory with its side channels (environment parameters, engine configuration, stats) and
  answers one :class:`EnvironmentRequest` at a time.
- :class:`WorkerPoolEnvManager` is the trainer side: it sends actions to every worker whose
  step came back, gathers the steps, and restarts a worker whose environment crashed (an
  exception in the environment, or the worker died) at most ``--max-lifetime-restarts`` times
  and at most ``--restarts-rate-limit-n`` times per ``--restarts-rate-limit-period-s``; beyond
  that the failure is raised. After a restart every environment is reset so no trajectory mixes
  data from before and after.

A transport supplies a :class:`WorkerHandle` per worker and a :class:`StepSource`, the stream of
step answers of all workers.
"""

from __future__ import annotations

import datetime
import enum
import logging
import queue as queue_module
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import cloudpickle

from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.envs.side_channel import SideChannel
from mlagents_fast.envs.side_channel.engine_configuration_channel import (
    EngineConfig,
    EngineConfigurationChannel,
)
from mlagents_fast.envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_fast.envs.side_channel.stats_side_channel import EnvironmentStats, StatsSideChannel
from mlagents_fast.trainers.env_manager import AllStepResult, EnvironmentStep, EnvManager
from mlagents_fast.trainers.exception import EnvironmentRestartLimitError
from mlagents_fast.trainers.training_analytics_side_channel import TrainingAnalyticsSideChannel

if TYPE_CHECKING:
    from mlagents_fast.trainers.settings import RunOptions

__all__ = [
    "DEFAULT_TIMEOUT_WAIT",
    "EnvChannels",
    "EnvFactory",
    "EnvWorker",
    "EnvironmentCommand",
    "EnvironmentRequest",
    "EnvironmentResponse",
    "StepResponse",
    "StepSource",
    "WorkerDied",
    "WorkerHandle",
    "WorkerPoolEnvManager",
    "engine_settings_of",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_WAIT = 60
"""Seconds, as ML-Agents' ``--timeout-wait`` default, for a factory that does not say."""


@attrs.define
class EnvChannels:
    """The side channels a created environment was given."""

    environment_parameters: EnvironmentParametersChannel
    """Environment parameters and samplers."""
    engine_configuration: EngineConfigurationChannel
    """Resolution, time scale, frame rates."""
    stats: StatsSideChannel
    """Stats the environment reports."""
    training_analytics: TrainingAnalyticsSideChannel | None = None
    """The analytics channel of worker 0 (None elsewhere, and once the environment said it
    does not take analytics): as in ML-Agents, only worker 0 tells Unity about the run."""

    @staticmethod
    def create(
        engine_settings: dict[str, Any] | None, with_training_analytics: bool = False
    ) -> EnvChannels:
        """Fresh channels; the engine channel carries ``engine_settings`` when given, and
        ``with_training_analytics`` adds the run's analytics channel (worker 0 only)."""
        engine_configuration = EngineConfigurationChannel()
        if engine_settings:
            engine_configuration.set_configuration(EngineConfig(**engine_settings))
        return EnvChannels(
            environment_parameters=EnvironmentParametersChannel(),
            engine_configuration=engine_configuration,
            stats=StatsSideChannel(),
            training_analytics=TrainingAnalyticsSideChannel() if with_training_analytics else None,
        )

    def as_list(self) -> list[SideChannel]:
        """In the order ML-Agents hands them to an environment factory."""
        channels = [self.environment_parameters, self.engine_configuration, self.stats]
        if self.training_analytics is not None:
            channels.append(self.training_analytics)
        return channels

    def environment_initialized(self, env: Any, run_options: Any) -> None:
        """Queue the run's analytics for ``env`` (just created) when it takes them: Unity
        declares ``trainingAnalytics`` in its capabilities. Otherwise the channel is dropped,
        so no message goes to an environment that does not know the channel."""
        capabilities = getattr(env, "academy_capabilities", None)
        # Run options that are not a RunOptions (a test's namespace) have nothing to report:
        # analytics never stop a run.
        if not getattr(capabilities, "trainingAnalytics", False) or not hasattr(
            run_options, "as_dict"
        ):
            self.training_analytics = None
        if self.training_analytics is not None:
            self.training_analytics.environment_initialized(run_options)

    def training_started(self, behavior_name: str, trainer_settings: Any) -> None:
        """Queue the analytics of the trainer just created for ``behavior_name``."""
        if self.training_analytics is not None:
            self.training_analytics.training_started(behavior_name, trainer_settings)


def engine_settings_of(run_options: Any) -> dict[str, Any] | None:
    """The engine configuration values of ``run_options`` (None when it has none)."""
    engine = getattr(run_options, "engine_settings", None)
    if engine is None:
        return None
    return {
        "width": engine.width,
        "height": engine.height,
        "quality_level": engine.quality_level,
        "time_scale": engine.time_scale,
        "target_frame_rate": engine.target_frame_rate,
        "capture_frame_rate": engine.capture_frame_rate,
    }


@attrs.define
class EnvFactory:
    """Everything needed to create one environment of the run, picklable for workers.

    Called as ``factory(worker_id, side_channels)`` like any ML-Agents environment factory.
    """

    env_path: str | None = attrs.field()
    """--env: builtin:<Name>, gym:<id>, a Unity executable, or None (the Editor)."""
    seed: int = attrs.field()
    """Run seed; worker i gets seed + i."""
    num_areas: int = attrs.field(default=1)
    """--num-areas."""
    timeout_wait: int = attrs.field(default=60)
    """--timeout-wait, seconds."""
    base_port: int | None = attrs.field(default=None)
    """--base-port (None: the default for the kind of environment)."""
    env_args: tuple[str, ...] = attrs.field(default=())
    """--env-args, passed to a Unity executable."""
    no_graphics: bool = attrs.field(default=False)
    """--no-graphics."""
    log_folder: str | None = attrs.field(default=None)
    """results/<run-id>/run_logs, where a Unity executable's Player log goes."""
    engine_settings: dict[str, Any] = attrs.field(factory=dict)
    """Engine configuration values (width, height, quality_level, time_scale, ...)."""
    no_graphics_monitor: bool = attrs.field(default=False)
    """--no-graphics-monitor, passed to a Unity executable."""

    @staticmethod
    def from_options(
        options: RunOptions, run_seed: int, num_areas: int, log_folder: str
    ) -> EnvFactory:
        env_settings = options.env_settings
        engine = options.engine_settings
        env_path = env_settings.env_path
        return EnvFactory(
            env_path=env_path,
            seed=run_seed,
            num_areas=num_areas,
            timeout_wait=env_settings.timeout_wait,
            base_port=env_settings.base_port if env_path is not None else None,
            env_args=tuple(env_settings.env_args or ()),
            no_graphics=bool(engine.no_graphics),
            log_folder=log_folder,
            engine_settings=engine_settings_of(options) or {},
            no_graphics_monitor=bool(getattr(engine, "no_graphics_monitor", False)),
        )

    def create(self, worker_id: int, run_options: Any = None) -> tuple[Any, EnvChannels]:
        """Create environment ``worker_id`` with its side channels (worker 0 also tells Unity
        about the run given by ``run_options``, see :meth:`EnvChannels.environment_initialized`)."""
        channels = EnvChannels.create(self.engine_settings, with_training_analytics=worker_id == 0)
        env = self(worker_id, channels.as_list())
        channels.environment_initialized(env, run_options)
        return env, channels

    def __call__(self, worker_id: int, side_channels: Sequence[Any]) -> Any:
        """Environment ``worker_id`` talking through ``side_channels`` (ML-Agents' factory call)."""
        extra = {"no_graphics_monitor": True} if self.no_graphics_monitor else {}
        return make_env(
            self.env_path,
            seed=self.seed + worker_id,
            worker_id=worker_id,
            side_channels=list(side_channels),
            num_areas=self.num_areas,
            base_port=self.base_port,
            timeout_wait=self.timeout_wait,
            additional_args=list(self.env_args),
            no_graphics=self.no_graphics,
            log_folder=self.log_folder,
            **extra,
        )


class EnvironmentCommand(enum.Enum):
    STEP = 1
    BEHAVIOR_SPECS = 2
    ENVIRONMENT_PARAMETERS = 3
    RESET = 4
    CLOSE = 5
    ENV_EXITED = 6
    TRAINING_STARTED = 7


class EnvironmentRequest(NamedTuple):
    cmd: EnvironmentCommand
    payload: Any = None


class EnvironmentResponse(NamedTuple):
    cmd: EnvironmentCommand
    worker_id: int
    payload: Any


class StepResponse(NamedTuple):
    all_step_result: AllStepResult
    environment_stats: EnvironmentStats


# --- the environment side -------------------------------------------------------------------


class EnvWorker:
    """One environment and its side channels, driven by :class:`EnvironmentRequest` s."""

    def __init__(
        self,
        pickled_factory: bytes,
        worker_id: int,
        engine_settings: dict[str, Any] | None,
        run_options: Any = None,
    ) -> None:
        """Create the environment: ``cloudpickle.loads(pickled_factory)(worker_id, channels)``;
        worker 0 tells Unity about the run (``run_options``), as ML-Agents' worker 0 does."""
        self.worker_id = worker_id
        self.env: Any = None
        factory = cloudpickle.loads(pickled_factory)
        self.channels = EnvChannels.create(engine_settings, with_training_analytics=worker_id == 0)
        self.env = factory(worker_id, self.channels.as_list())
        self.channels.environment_initialized(self.env, run_options)

    def handle(self, request: EnvironmentRequest) -> EnvironmentResponse | None:
        """Carry out ``request``; the answer to send back, or None for requests without one
        (ENVIRONMENT_PARAMETERS, CLOSE). Environment errors propagate to the caller."""
        cmd = request.cmd
        if cmd == EnvironmentCommand.STEP:
            for brain_name, action_info in request.payload.items():
                if action_info is not None and len(action_info.agent_ids) > 0:
                    self.env.set_actions(brain_name, action_info.env_action)
            self.env.step()
            stats = self.channels.stats.get_and_reset_stats()
            return EnvironmentResponse(
                cmd, self.worker_id, StepResponse(self._all_step_result(), stats)
            )
        if cmd == EnvironmentCommand.BEHAVIOR_SPECS:
            return EnvironmentResponse(cmd, self.worker_id, dict(self.env.behavior_specs))
        if cmd == EnvironmentCommand.ENVIRONMENT_PARAMETERS:
            self._apply_parameters(request.payload)
            return None
        if cmd == EnvironmentCommand.RESET:
            self._apply_parameters(request.payload)
            self.env.reset()
            return EnvironmentResponse(cmd, self.worker_id, self._all_step_result())
        if cmd == EnvironmentCommand.TRAINING_STARTED:
            self.channels.training_started(*request.payload)
            return None
        if cmd == EnvironmentCommand.CLOSE:
            return None
        raise ValueError(f"environment worker {self.worker_id}: unknown command {cmd!r}")

    def close(self) -> None:
        """Close the environment (errors are logged: a crashed environment may not close)."""
        if self.env is None:
            return
        env, self.env = self.env, None
        try:
            env.close()
        except Exception as err:  # noqa: BLE001 - closing a crashed environment may fail too
            logger.debug("Closing environment worker %d failed: %s", self.worker_id, err)

    def _all_step_result(self) -> AllStepResult:
        return {name: self.env.get_steps(name) for name in self.env.behavior_specs}

    def _apply_parameters(self, config: dict[str, Any] | None) -> None:
        if config:
            for key, value in config.items():
                value.apply(key, self.channels.environment_parameters)


# --- the trainer side -------------------------------------------------------------------------


class WorkerDied(Exception):
    """A worker stopped answering: it died, timed out, or its environment raised ``cause``."""

    def __init__(
        self, worker_id: int, cause: BaseException, raised_by_environment: bool = False
    ) -> None:
        super().__init__(f"environment worker {worker_id} stopped: {cause}")
        self.worker_id = worker_id
        self.cause = cause
        self.raised_by_environment = raised_by_environment
        """``cause`` is the environment's (or its factory's) own exception."""


class WorkerHandle(ABC):
    """The trainer's handle on one worker; a transport implements the messaging."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.previous_step: EnvironmentStep = EnvironmentStep.empty(worker_id)
        self.previous_all_action_info: dict[str, Any] = {}
        self.waiting = False
        """A STEP was sent and its answer has not come back from the StepSource yet."""
        self.closed = False

    @abstractmethod
    def send(self, cmd: EnvironmentCommand, payload: Any = None) -> None:
        """Send a request; a STEP is answered through the StepSource, RESET and
        BEHAVIOR_SPECS through :meth:`recv`. Raises WorkerDied when the worker is gone."""

    @abstractmethod
    def recv(self, timeout_seconds: float) -> EnvironmentResponse:
        """The answer to the last RESET or BEHAVIOR_SPECS; WorkerDied when none comes."""

    @abstractmethod
    def exit_reason(self) -> BaseException | None:
        """Why the worker is gone if it died without saying so (None while it runs)."""

    @abstractmethod
    def close(self) -> None:
        """Ask the worker to close its environment and stop; force it after a grace period."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the worker now (it failed and is being replaced)."""


class StepSource(ABC):
    """The step answers (and failure reports) of every worker, in arrival order."""

    @abstractmethod
    def get(self, timeout: float) -> EnvironmentResponse:
        """The next answer from any worker; ``queue.Empty`` when none came in ``timeout``.
        A worker that failed answers ENV_EXITED with the error as payload."""

    def get_nowait(self) -> EnvironmentResponse:
        return self.get(0)

    @abstractmethod
    def close(self) -> None:
        """Stop listening to every worker."""


class WorkerPoolEnvManager(EnvManager):
    """Steps ``n_env`` environments in workers, restarting crashed ones within the limits.

    Subclasses give the transport: :meth:`_create_worker` and :attr:`step_queue`.
    """

    def __init__(
        self,
        env_factory: Callable[[int, list[Any]], Any],
        run_options: RunOptions | None = None,
    ) -> None:
        """
        :param env_factory: ``(worker_id, side_channels) -> BaseEnv``, creates each worker's
            environment (any callable: cloudpickle sends it to the workers).
        :param run_options: the RunOptions: restart limits and timeout_wait come from its
            env_settings, the engine configuration from its engine_settings (an
            :class:`EnvFactory` with engine settings carries its own).
        """
        super().__init__()
        self.env_factory = env_factory
        self._pickled_factory = cloudpickle.dumps(env_factory)
        own_settings = env_factory.engine_settings if isinstance(env_factory, EnvFactory) else None
        self._engine_settings = own_settings or engine_settings_of(run_options)
        self.run_options = run_options
        self.env_parameters: dict[str, Any] | None = None
        self.workers: list[WorkerHandle] = []
        self.restart_counts: dict[int, int] = defaultdict(int)
        self.recent_restart_timestamps: dict[int, list[datetime.datetime]] = defaultdict(list)
        env_settings = getattr(run_options, "env_settings", None)
        self.max_lifetime_restarts = getattr(env_settings, "max_lifetime_restarts", 10)
        self.restarts_rate_limit_n = getattr(env_settings, "restarts_rate_limit_n", 1)
        self.restarts_rate_limit_period_s = getattr(
            env_settings, "restarts_rate_limit_period_s", 60
        )
        timeout_wait = getattr(
            env_factory,
            "timeout_wait",
            getattr(env_settings, "timeout_wait", DEFAULT_TIMEOUT_WAIT),
        )
        self.timeout_seconds = float(max(60, timeout_wait * 2))

    def _analytics_run_options(self, worker_id: int) -> Any:
        """What worker ``worker_id`` needs of the run options: worker 0 sends the run's
        training analytics, the others nothing (so only worker 0's copy travels)."""
        return self.run_options if worker_id == 0 else None

    @property
    @abstractmethod
    def step_queue(self) -> StepSource:
        """Where every worker's step answers arrive."""

    @abstractmethod
    def _create_worker(self, worker_id: int) -> WorkerHandle:
        """Start worker ``worker_id`` (creating its environment from the pickled factory)."""

    def _start_workers(self, n_env: int) -> None:
        for worker_id in range(n_env):
            self.workers.append(self._create_worker(worker_id))

    # --- restarts -------------------------------------------------------------------

    def _worker_has_restart_quota(self, worker_id: int) -> bool:
        cutoff = datetime.datetime.now() - datetime.timedelta(
            seconds=self.restarts_rate_limit_period_s
        )
        recent = [t for t in self.recent_restart_timestamps[worker_id] if t > cutoff]
        self.recent_restart_timestamps[worker_id] = recent
        lifetime_ok = (
            self.max_lifetime_restarts == -1
            or self.restart_counts[worker_id] < self.max_lifetime_restarts
        )
        rate_ok = self.restarts_rate_limit_n == -1 or len(recent) < self.restarts_rate_limit_n
        return lifetime_ok and rate_ok

    def _restart_worker(self, worker_id: int, cause: BaseException) -> None:
        if not self._worker_has_restart_quota(worker_id):
            cause_text = " ".join(str(cause).split()) or type(cause).__name__
            raise EnvironmentRestartLimitError(
                f"environment worker {worker_id} exceeded the allowed number of restarts "
                f"({self.restart_counts[worker_id]} restarts; --max-lifetime-restarts "
                f"{self.max_lifetime_restarts}, --restarts-rate-limit-n "
                f"{self.restarts_rate_limit_n} per {self.restarts_rate_limit_period_s} s); "
                f"its last failure: {cause_text}"
            ) from cause
        logger.warning("Restarting environment worker %d after: %s", worker_id, cause)
        self.recent_restart_timestamps[worker_id].append(datetime.datetime.now())
        self.restart_counts[worker_id] += 1
        old = self.workers[worker_id]
        old.closed = True
        old.kill()
        self.workers[worker_id] = self._create_worker(worker_id)

    def _handle_failures(self, failures: dict[int, BaseException]) -> None:
        """Restart every failed worker (or raise), then reset all environments."""
        self._drain_step_queue(failures)
        for worker_id, cause in failures.items():
            self._restart_worker(worker_id, cause)
        self.reset(self.env_parameters)

    def _drain_step_queue(self, failures: dict[int, BaseException]) -> None:
        """Wait for every worker with a pending step so no stale step is processed later."""
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=self.timeout_seconds)
        while any(w.waiting and w.worker_id not in failures for w in self.workers):
            remaining = (deadline - datetime.datetime.now()).total_seconds()
            if remaining <= 0:
                for w in self.workers:
                    if w.waiting and w.worker_id not in failures:
                        failures[w.worker_id] = TimeoutError("no answer while draining")
                break
            try:
                response: EnvironmentResponse = self.step_queue.get(timeout=min(remaining, 1.0))
            except queue_module.Empty:
                self._collect_dead_workers(failures)
                continue
            self.workers[response.worker_id].waiting = False
            if response.cmd == EnvironmentCommand.ENV_EXITED:
                failures[response.worker_id] = response.payload
        for w in self.workers:
            w.waiting = False

    def _collect_dead_workers(self, failures: dict[int, BaseException]) -> None:
        for w in self.workers:
            if w.waiting and w.worker_id not in failures:
                reason = w.exit_reason()
                if reason is not None:
                    failures[w.worker_id] = WorkerDied(w.worker_id, reason)

    # --- EnvManager ---------------------------------------------------------------------

    def _queue_steps(self) -> None:
        for worker in self.workers:
            if not worker.waiting:
                all_action_info = self._take_step(worker.previous_step)
                worker.previous_all_action_info = all_action_info
                worker.send(EnvironmentCommand.STEP, all_action_info)
                worker.waiting = True

    def _step(self) -> list[EnvironmentStep]:
        failures: dict[int, BaseException] = {}
        try:
            self._queue_steps()
        except WorkerDied as err:
            failures[err.worker_id] = err
        step_infos: list[EnvironmentStep] = []
        if not failures:
            for response in self._gather_responses(failures):
                worker = self.workers[response.worker_id]
                worker.waiting = False
                step_response: StepResponse = response.payload
                step_info = EnvironmentStep(
                    step_response.all_step_result,
                    worker.worker_id,
                    worker.previous_all_action_info,
                    step_response.environment_stats,
                )
                worker.previous_step = step_info
                step_infos.append(step_info)
        if failures:
            self._handle_failures(failures)
            # The reset's first steps are what the caller processes next.
            output = self.first_step_infos
            self.first_step_infos = []
            return output
        return step_infos

    def _gather_responses(self, failures: dict[int, BaseException]) -> list[EnvironmentResponse]:
        """Block for at least one worker's step, then take whatever else is ready."""
        responses: list[EnvironmentResponse] = []
        waited = 0.0
        while not responses and not failures:
            try:
                response = self.step_queue.get(timeout=1.0)
            except queue_module.Empty:
                waited += 1.0
                self._collect_dead_workers(failures)
                if waited >= self.timeout_seconds and not failures:
                    for w in self.workers:
                        if w.waiting:
                            failures[w.worker_id] = TimeoutError(
                                f"environment worker {w.worker_id} did not answer a step within "
                                f"{self.timeout_seconds:.0f} s"
                            )
                continue
            self._accept(response, responses, failures)
        while True:
            try:
                response = self.step_queue.get_nowait()
            except queue_module.Empty:
                break
            self._accept(response, responses, failures)
        # A dead worker never answers while the others keep the queue busy: look for it.
        self._collect_dead_workers(failures)
        return responses

    def _accept(
        self,
        response: EnvironmentResponse,
        responses: list[EnvironmentResponse],
        failures: dict[int, BaseException],
    ) -> None:
        if response.cmd == EnvironmentCommand.ENV_EXITED:
            self.workers[response.worker_id].waiting = False
            failures[response.worker_id] = response.payload
        else:
            responses.append(response)

    def _reset_env(self, config: dict[str, Any] | None = None) -> list[EnvironmentStep]:
        while any(w.waiting for w in self.workers):
            failures: dict[int, BaseException] = {}
            self._drain_step_queue(failures)
            for worker_id, cause in failures.items():
                self._restart_worker(worker_id, cause)
        self.env_parameters = config
        results: list[EnvironmentStep] = []
        for worker in self.workers:
            while True:
                try:
                    worker.send(EnvironmentCommand.RESET, config)
                    response = worker.recv(self.timeout_seconds)
                    break
                except WorkerDied as err:
                    self._restart_worker(worker.worker_id, self._first_reported_error(err))
                    worker = self.workers[err.worker_id]
            worker.previous_step = EnvironmentStep(response.payload, worker.worker_id, {}, {})
            results.append(worker.previous_step)
        return results

    def _first_reported_error(self, err: WorkerDied) -> BaseException:
        # A worker that failed while creating its environment may have reported why on the
        # step queue (the subprocess transport does).
        try:
            while True:
                response = self.step_queue.get_nowait()
                if (
                    response.cmd == EnvironmentCommand.ENV_EXITED
                    and response.worker_id == err.worker_id
                ):
                    return response.payload
        except queue_module.Empty:
            return err.cause if err.raised_by_environment else err

    def set_env_parameters(self, config: dict[str, Any] | None = None) -> None:
        self.env_parameters = config
        for worker in self.workers:
            worker.send(EnvironmentCommand.ENVIRONMENT_PARAMETERS, config)

    def on_training_started(self, behavior_name: str, trainer_settings: Any) -> None:
        # Only worker 0 has the analytics channel; the others ignore it, as in ML-Agents.
        for worker in self.workers:
            worker.send(EnvironmentCommand.TRAINING_STARTED, (behavior_name, trainer_settings))

    @property
    def training_behaviors(self) -> dict[str, Any]:
        worker = self.workers[0]
        worker.send(EnvironmentCommand.BEHAVIOR_SPECS)
        payload: dict[str, Any] = worker.recv(self.timeout_seconds).payload
        return payload

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.step_queue.close()
