"""Train in-process from Python: the API under ``mlagents-fast-learn``.

    from mlagents_fast.trainers.run import train
    result = train("builtin:3DBall", "config/ppo/3DBall.yaml", run_id="3DBall")
    result.final_mean_reward["3DBall"]

``train`` takes an environment path (``builtin:<Name>``, ``gym:<id>``, a Unity executable, or
None for the Editor) or any :class:`~mlagents_fast.envs.base_env.BaseEnv` object, and a
RunOptions or the path of a YAML file in mlagents-learn's format. It returns when every behavior
reached max_steps (or on Ctrl-C / SIGTERM, after saving), with the results folder written exactly
as mlagents-learn writes it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import attrs
import numpy as np
import torch
import yaml

from mlagents_fast.atomic_io import (
    remove_interrupted_writes,
    write_json_atomically,
    write_text_atomically,
)
from mlagents_fast.envs.env_opener import BUILTIN_PREFIX, GYM_PREFIX, check_env_path
from mlagents_fast.envs.exception import UnityEnvironmentException
from mlagents_fast.trainers.directory_utils import (
    check_behavior_can_resume,
    check_init_files,
    check_resume_files,
    setup_init_path,
    validate_existing_directories,
)
from mlagents_fast.trainers.exception import (
    InterruptedBeforeTraining,
    ResultsFileError,
    TrainerConfigError,
)
from mlagents_fast.trainers.learning_curves import LearningCurveWriter
from mlagents_fast.trainers.progress import ProgressWriter
from mlagents_fast.trainers.stats import (
    ELO_KEY,
    GROUP_REWARD_KEY,
    LESSON_KEY_PREFIX,
    REWARD_KEY,
    ConsoleWriter,
    GaugeWriter,
    StatsReporter,
    StatsSummary,
    StatsWriter,
    TensorboardWriter,
)
from mlagents_fast.trainers.timers import get_timer_tree, hierarchical_timer, reset_timers
from mlagents_fast.trainers.training_status import GlobalTrainingStatus

__all__ = ["EnvironmentPathError", "TrainingResult", "run_training", "train", "write_run_options"]

logger = logging.getLogger("mlagents_fast.trainers")


@attrs.define
class TrainingResult:
    """What a finished (or interrupted) training run produced."""

    run_dir: str = attrs.field()
    """results/<run-id>: configuration.yaml, run_logs/, <Behavior>/ and <Behavior>.onnx files."""
    steps: dict[str, int] = attrs.field(factory=dict)
    """Behavior name -> steps trained."""
    reward_history: dict[str, list[tuple[int, float]]] = attrs.field(factory=dict)
    """Behavior name -> (step, mean cumulative episode reward) at each summary."""
    lesson_history: dict[str, list[tuple[int, int]]] = attrs.field(factory=dict)
    """Environment parameter -> (step, lesson number) at each summary of the behaviors."""
    group_reward_history: dict[str, list[tuple[int, float]]] = attrs.field(factory=dict)
    """Behavior name -> (step, mean group episode reward) at each summary (POCA)."""
    elo_history: dict[str, list[tuple[int, float]]] = attrs.field(factory=dict)
    """Behavior name -> (step, ELO of the learning policy) at each summary (self-play)."""

    @property
    def final_mean_reward(self) -> dict[str, float]:
        """Behavior name -> mean episode reward at the last summary that had episodes."""
        return {name: history[-1][1] for name, history in self.reward_history.items() if history}


class _RewardHistoryWriter(StatsWriter):
    """Keeps (step, mean) of the rewards and ELO of every summary for :class:`TrainingResult`."""

    LESSON_PREFIX = LESSON_KEY_PREFIX

    def __init__(self) -> None:
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.group_history: dict[str, list[tuple[int, float]]] = {}
        self.elo_history: dict[str, list[tuple[int, float]]] = {}
        self.lessons: dict[str, list[tuple[int, int]]] = {}

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        for key, history in (
            (REWARD_KEY, self.history),
            (GROUP_REWARD_KEY, self.group_history),
            (ELO_KEY, self.elo_history),
        ):
            summary = values.get(key)
            if summary is not None and summary.num > 0:
                history.setdefault(category, []).append((step, summary.mean))
        for key, summary in values.items():
            if key.startswith(self.LESSON_PREFIX) and summary.num > 0:
                parameter = key[len(self.LESSON_PREFIX) :]
                self.lessons.setdefault(parameter, []).append((step, int(summary.mean)))


def write_run_options(output_dir: str, run_options: Any) -> None:
    """results/<run-id>/configuration.yaml: the fully resolved settings of the run."""
    text = yaml.dump(run_options.as_dict(), sort_keys=False)
    write_text_atomically(os.path.join(output_dir, "configuration.yaml"), text)


def _write_timing_tree(run_logs_dir: str) -> None:
    try:
        write_json_atomically(os.path.join(run_logs_dir, "timers.json"), get_timer_tree())
    except OSError as err:
        logger.warning("Unable to save timers.json to %s: %s", run_logs_dir, err)


def _load_run_options(run_options_or_yaml_path: Any) -> Any:
    from mlagents_fast.trainers.settings import RunOptions, load_config

    if isinstance(run_options_or_yaml_path, (str, os.PathLike)):
        return RunOptions.from_dict(load_config(os.fspath(run_options_or_yaml_path)))
    return run_options_or_yaml_path


class _SignalsAsKeyboardInterrupt:
    """SIGTERM raises KeyboardInterrupt in the main thread, so both save before exiting."""

    def __enter__(self) -> None:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _configure_torch(options: Any) -> None:
    """The training device from --torch-device / torch_settings.device (ML-Agents' rule:
    unset means cuda when available); an unusable one is a configuration error."""
    from mlagents_fast.torch_utils import set_torch_config

    set_torch_config(getattr(options, "torch_settings", None))
    # Small MLPs: one intra-op thread per process beats contention with the environment thread.
    torch.set_num_threads(1)


def run_training(
    run_seed: int,
    options: Any,
    num_areas: int = 1,
    env: Any = None,
    env_parameters_channel: Any = None,
) -> TrainingResult:
    """Train with ``options``; ``env`` (a BaseEnv) overrides options.env_settings.env_path."""
    from mlagents_fast.trainers.environment_parameter_manager import EnvironmentParameterManager
    from mlagents_fast.trainers.trainer.trainer_factory import TrainerFactory
    from mlagents_fast.trainers.trainer_controller import TrainerController

    checkpoint_settings = options.checkpoint_settings
    write_path = checkpoint_settings.write_path
    run_logs_dir = checkpoint_settings.run_logs_dir
    with hierarchical_timer("run_training.setup"):
        _check_env_workers(options, env)
        if env is None:
            _check_env_path(options.env_settings)
        _configure_torch(options)
        validate_existing_directories(
            write_path,
            checkpoint_settings.resume,
            checkpoint_settings.force,
            checkpoint_settings.maybe_init_path,
        )
        # Everything read from earlier runs is checked before anything is written, so a
        # missing or damaged file stops the run with one line and leaves the folder as it was.
        if checkpoint_settings.resume:
            check_resume_files(write_path, options.behaviors)
        elif checkpoint_settings.maybe_init_path is not None:
            setup_init_path(options.behaviors, checkpoint_settings.maybe_init_path)
        check_init_files(options.behaviors)
        for leftover in remove_interrupted_writes(write_path) if os.path.isdir(write_path) else []:
            logger.info("Removed %s, left by an interrupted write.", leftover)
        os.makedirs(run_logs_dir, exist_ok=True)
        GlobalTrainingStatus.reset()
        if checkpoint_settings.resume:
            GlobalTrainingStatus.load_state(os.path.join(run_logs_dir, "training_status.json"))
        else:
            # A resumed run keeps the previous configuration.yaml until it has loaded every
            # behavior (written at the end), so a failed resume changes nothing.
            write_run_options(write_path, options)

        StatsReporter.reset()
        reward_history = _RewardHistoryWriter()
        progress = ProgressWriter()
        for writer in (
            TensorboardWriter(
                write_path,
                clear_past_data=not checkpoint_settings.resume,
                hidden_keys=["Is Training"],
            ),
            GaugeWriter(),
            ConsoleWriter(),
            progress,
            LearningCurveWriter(write_path),
            reward_history,
        ):
            StatsReporter.add_writer(writer)

        env_parameter_manager = EnvironmentParameterManager(
            options.environment_parameters, run_seed, restore=checkpoint_settings.resume
        )
        env_manager = _create_env_manager(
            options, run_seed, num_areas, env, env_parameters_channel, run_logs_dir
        )
        trainer_factory = TrainerFactory(
            trainer_config=options.behaviors,
            output_path=write_path,
            train_model=not checkpoint_settings.inference,
            load_model=checkpoint_settings.resume,
            seed=run_seed,
            param_manager=env_parameter_manager,
            init_path=checkpoint_settings.maybe_init_path,
        )
        controller = TrainerController(
            trainer_factory,
            write_path,
            checkpoint_settings.run_id,
            env_parameter_manager,
            not checkpoint_settings.inference,
            run_seed,
        )
        progress.attach_step_source(
            lambda: {name: trainer.get_step for name, trainer in list(controller.trainers.items())}
        )
    if checkpoint_settings.resume:
        _check_each_behavior_on_creation(trainer_factory, write_path)
    results_file_failed = False
    try:
        with _SignalsAsKeyboardInterrupt():
            controller.start_learning(env_manager)
    except ResultsFileError:
        results_file_failed = True
        raise
    finally:
        try:
            env_manager.close()
        finally:
            if not results_file_failed:
                write_run_options(write_path, options)
                _write_timing_tree(run_logs_dir)
                if not checkpoint_settings.inference:
                    controller.save_training_status()
            StatsReporter.reset()
    return TrainingResult(
        run_dir=write_path,
        steps={name: trainer.get_step for name, trainer in controller.trainers.items()},
        reward_history=reward_history.history,
        lesson_history=reward_history.lessons,
        group_reward_history=reward_history.group_history,
        elo_history=reward_history.elo_history,
    )


def _check_each_behavior_on_creation(trainer_factory: Any, run_folder: str) -> None:
    """On --resume, a behavior the environment brings that the run never saved (no folder,
    so not checked up front) fails before its trainer writes anything (TensorBoard files)."""
    generate = trainer_factory.generate

    def generate_after_check(behavior_name: str) -> Any:
        check_behavior_can_resume(run_folder, behavior_name, load=False)
        return generate(behavior_name)

    trainer_factory.generate = generate_after_check


def _create_env_manager(
    options: Any,
    run_seed: int,
    num_areas: int,
    env: Any,
    env_parameters_channel: Any,
    run_logs_dir: str,
) -> Any:
    from mlagents_fast.trainers.simple_env_manager import SimpleEnvManager

    env_settings = options.env_settings
    if env is not None:
        if env_settings.env_workers == "ray":
            logger.warning("env_workers ray is not used: the environment object runs here.")
        return SimpleEnvManager(env, env_parameters_channel)
    from mlagents_fast.trainers.subprocess_env_manager import EnvFactory, SubprocessEnvManager

    factory = EnvFactory.from_options(options, run_seed, num_areas, os.path.abspath(run_logs_dir))
    if env_settings.env_workers == "ray":
        from mlagents_fast.trainers.ray_env_manager import RayEnvManager

        return RayEnvManager(factory, options, env_settings.num_envs)
    if env_settings.num_envs > 1:
        return SubprocessEnvManager(factory, options, env_settings.num_envs)
    try:
        env_instance, channels = factory.create(worker_id=0, run_options=options)
    except KeyboardInterrupt:
        # Imported here: the Unity link pulls in grpc, which built-ins do not need.
        from mlagents_fast.envs.environment import UnityEnvironment

        what = (
            f"waiting for the Unity Editor on port {UnityEnvironment.DEFAULT_EDITOR_PORT} "
            "(press Play in the Editor to start training)"
            if env_settings.env_path is None
            else f"starting the environment {env_settings.env_path}"
        )
        raise InterruptedBeforeTraining(f"interrupted while {what}; nothing was trained") from None
    return SimpleEnvManager(
        env_instance, channels.environment_parameters, channels.stats, channels.training_analytics
    )


class EnvironmentPathError(TrainerConfigError, UnityEnvironmentException):
    """``--env`` (``env_settings.env_path``) names no environment: a configuration error
    (exit status 2 on the command line) and the UnityEnvironmentException that opening it
    would raise."""


def _check_env_path(env_settings: Any) -> None:
    """Refuse an ``--env`` that names nothing, before anything is written. A Unity build run
    by Ray workers on a cluster (``--ray-address``) lives on the nodes, not necessarily here."""
    env_path = env_settings.env_path
    on_cluster = env_settings.env_workers == "ray" and env_settings.ray_address is not None
    if env_path is None or (on_cluster and not env_path.startswith((BUILTIN_PREFIX, GYM_PREFIX))):
        return
    try:
        check_env_path(env_path)
    except UnityEnvironmentException as err:
        raise EnvironmentPathError(str(err), key_path=["env_settings", "env_path"]) from None


def _check_env_workers(options: Any, env: Any) -> None:
    """Refuse an --env-workers choice that cannot work, before anything is written."""
    env_settings = options.env_settings
    if env_settings.env_workers != "ray" or env is not None:
        return
    from mlagents_fast.trainers.ray_env_manager import require_ray

    if env_settings.env_path is None:
        raise TrainerConfigError(
            "--env-workers ray needs --env (a Unity executable on the nodes, builtin:<Name> or "
            "gym:<id>): the Unity Editor cannot run in a Ray actor."
        )
    require_ray()


def train(
    env_or_env_path: str | None | Any,
    run_options_or_yaml_path: Any,
    *,
    run_id: str | None = None,
    results_dir: str | None = None,
    seed: int | None = None,
    resume: bool | None = None,
    force: bool | None = None,
    env_parameters_channel: Any = None,
) -> TrainingResult:
    """Train until every behavior reaches max_steps and return what was produced.

    :param env_or_env_path: a BaseEnv object (trained in this process), or an environment path
        as ``--env`` takes it (``builtin:<Name>``, ``gym:<id>``, a Unity executable, or None to
        wait for the Editor).
    :param run_options_or_yaml_path: a RunOptions, or the path of an mlagents-learn YAML file.
    :param run_id: overrides checkpoint_settings.run_id.
    :param results_dir: overrides checkpoint_settings.results_dir.
    :param seed: overrides env_settings.seed (-1 or unset: a random seed, as mlagents-learn).
    :param resume: overrides checkpoint_settings.resume.
    :param force: overrides checkpoint_settings.force.
    :param env_parameters_channel: the EnvironmentParametersChannel of a BaseEnv object, so
        environment_parameters / curriculum reach it.
    """
    options = _load_run_options(run_options_or_yaml_path)
    checkpoint_settings = options.checkpoint_settings
    if run_id is not None:
        checkpoint_settings.run_id = run_id
    if results_dir is not None:
        checkpoint_settings.results_dir = os.fspath(results_dir)
    if resume is not None:
        checkpoint_settings.resume = resume
    if force is not None:
        checkpoint_settings.force = force
    if seed is not None:
        options.env_settings.seed = seed
    env: Any = None
    if env_or_env_path is None or isinstance(env_or_env_path, (str, os.PathLike)):
        options.env_settings.env_path = (
            None if env_or_env_path is None else os.fspath(env_or_env_path)
        )
    else:
        env = env_or_env_path
    run_seed = options.env_settings.seed
    if run_seed == -1:
        run_seed = int(np.random.randint(0, 10000))
        logger.debug("run_seed set to %d", run_seed)
    reset_timers()
    return run_training(
        run_seed,
        options,
        options.env_settings.num_areas,
        env=env,
        env_parameters_channel=env_parameters_channel,
    )
