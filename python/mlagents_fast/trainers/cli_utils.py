"""The command line of ``mlagents-learn``.

The counterpart of ``mlagents.trainers.cli_utils`` (ML-Agents 1.1.0): every flag with its
default and destination, the removed flags answered with ML-Agents' warning, and
:class:`DetectDefault`, which records the flags the user actually gave so that only those
override the YAML file.

This module sits above the settings: it imports :mod:`mlagents_fast.trainers.settings` (the
flag defaults are the settings classes' defaults; ``load_config`` is re-exported from there)
and the settings never import it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attr

from mlagents_fast.exceptions import RunStoppedError
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings import (
    BASE_ENVIRONMENT_PORT,
    ENV_WORKER_KINDS,
    CheckpointSettings,
    EngineSettings,
    EnvironmentSettings,
    NetworkSettings,
    RunOptions,
    TorchSettings,
    load_config,
)

__all__ = [
    "BASE_ENVIRONMENT_PORT",
    "CONFIG_ERROR_EXIT_CODE",
    "INTERRUPTED_EXIT_CODE",
    "DetectDefault",
    "DetectDefaultStoreTrue",
    "RaiseRemovedWarning",
    "StoreConfigFile",
    "load_config",
    "parse_args",
    "parse_command_line",
    "parser",
    "run_cli_or_exit",
]

logger = logging.getLogger(__name__)

CONFIG_ERROR_EXIT_CODE = 2
"""Exit status for a configuration error (argparse's status for a usage error)."""

INTERRUPTED_EXIT_CODE = 130
"""Exit status after Ctrl-C (128 + SIGINT, what a shell reports for an interrupted command)."""


class RaiseRemovedWarning(argparse.Action):
    """A flag that was removed: warn and otherwise ignore it."""

    def __init__(self, nargs: Any = 0, **kwargs: Any) -> None:
        super().__init__(nargs=nargs, **kwargs)

    def __call__(
        self,
        arg_parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        logger.warning(f"The command line argument {option_string} was removed.")


class DetectDefault(argparse.Action):
    """Store the value and record that the user gave this flag.

    ``non_default_args`` is a class attribute as in ML-Agents; :func:`parse_args` clears it
    before each parse and also keeps a copy on the namespace, so parses do not mix.
    """

    non_default_args: ClassVar[set[str]] = set()

    def __call__(
        self,
        arg_parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        DetectDefault.non_default_args.add(self.dest)
        given = getattr(namespace, "_non_default_args", None)
        if given is None:
            given = set()
            namespace._non_default_args = given
        given.add(self.dest)


class DetectDefaultStoreTrue(DetectDefault):
    """A ``store_true`` flag that records that the user gave it."""

    def __init__(self, nargs: Any = 0, **kwargs: Any) -> None:
        super().__init__(nargs=nargs, **kwargs)

    def __call__(
        self,
        arg_parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        super().__call__(arg_parser, namespace, True, option_string)


class StoreConfigFile(argparse.Action):
    """Keep the YAML path out of the parsed flags (the flags mirror the file's contents)."""

    trainer_config_path: str | None = None

    def __call__(
        self,
        arg_parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if hasattr(namespace, self.dest):
            delattr(namespace, self.dest)
        StoreConfigFile.trainer_config_path = values
        namespace._trainer_config_path = values


def _default(settings_cls: type, name: str) -> Any:
    """The default of a flag: the default of the settings option it sets."""
    return attr.fields_dict(settings_cls)[name].default


def _create_parser() -> argparse.ArgumentParser:
    argparser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    argparser.add_argument("trainer_config_path", action=StoreConfigFile, nargs="?", default=None)
    argparser.add_argument(
        "--env",
        default=_default(EnvironmentSettings, "env_path"),
        dest="env_path",
        help="Path to the Unity executable to train",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--load",
        default=_default(CheckpointSettings, "load_model"),
        dest="load_model",
        action=DetectDefaultStoreTrue,
        help=argparse.SUPPRESS,  # deprecated: means --resume
    )
    argparser.add_argument(
        "--resume",
        default=_default(CheckpointSettings, "resume"),
        dest="resume",
        action=DetectDefaultStoreTrue,
        help="Whether to resume training from a checkpoint. Specify a --run-id to use this "
        "option. If set, the training code loads an already trained model to initialize the "
        "neural network before resuming training. This option is only valid when the models "
        "exist, and have the same behavior names as the current agents in your scene.",
    )
    argparser.add_argument(
        "--deterministic",
        default=_default(NetworkSettings, "deterministic"),
        dest="deterministic",
        action=DetectDefaultStoreTrue,
        help="Whether to select actions deterministically in policy. `dist.mean` for continuous "
        "action space, and `dist.argmax` for deterministic action space ",
    )
    argparser.add_argument(
        "--force",
        default=_default(CheckpointSettings, "force"),
        dest="force",
        action=DetectDefaultStoreTrue,
        help="Whether to force-overwrite this run-id's existing summary and model data. "
        "(Without this flag, attempting to train a model with a run-id that has been used "
        "before will throw an error.",
    )
    argparser.add_argument(
        "--run-id",
        default=_default(CheckpointSettings, "run_id"),
        help="The identifier for the training run. This identifier is used to name the "
        "subdirectories in which the trained model and summary statistics are saved as well "
        "as the saved model itself. If you use TensorBoard to view the training statistics, "
        "always set a unique run-id for each training run. (The statistics for all runs with "
        "the same id are combined as if they were produced by a the same session.)",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--initialize-from",
        metavar="RUN_ID",
        default=_default(CheckpointSettings, "initialize_from"),
        help="Specify a previously saved run ID from which to initialize the model from. This "
        "can be used, for instance, to fine-tune an existing model on a new environment. Note "
        "that the previously saved models must have the same behavior parameters as your "
        "current environment.",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--seed",
        default=_default(EnvironmentSettings, "seed"),
        type=int,
        help="A number to use as a seed for the random number generator used by the training code",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--train",
        default=_default(CheckpointSettings, "train_model"),
        dest="train_model",
        action=DetectDefaultStoreTrue,
        help=argparse.SUPPRESS,  # deprecated: training is the default
    )
    argparser.add_argument(
        "--inference",
        default=_default(CheckpointSettings, "inference"),
        dest="inference",
        action=DetectDefaultStoreTrue,
        help="Whether to run in Python inference mode (i.e. no training). Use with --resume to "
        "load a model trained with an existing run ID.",
    )
    argparser.add_argument(
        "--base-port",
        default=_default(EnvironmentSettings, "base_port"),
        type=int,
        help="The starting port for environment communication. Each concurrent Unity "
        "environment instance will get assigned a port sequentially, starting from the "
        "base-port. Each instance will use the port (base_port + worker_id), where the "
        "worker_id is sequential IDs given to each instance from 0 to (num_envs - 1). Note "
        "that when training using the Editor rather than an executable, the base port will be "
        "ignored.",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--num-envs",
        default=_default(EnvironmentSettings, "num_envs"),
        type=int,
        help="The number of concurrent Unity environment instances to collect experiences "
        "from when training",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--num-areas",
        default=_default(EnvironmentSettings, "num_areas"),
        type=int,
        help="The number of parallel training areas in each Unity environment instance.",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--debug",
        default=_default(RunOptions, "debug"),
        action=DetectDefaultStoreTrue,
        help="Whether to enable debug-level logging for some parts of the code",
    )
    argparser.add_argument(
        "--env-args",
        default=_default(EnvironmentSettings, "env_args"),
        nargs=argparse.REMAINDER,
        help="Arguments passed to the Unity executable. Be aware that the standalone build will "
        "also process these as Unity Command Line Arguments. You should choose different "
        "argument names if you want to create environment-specific arguments. All arguments "
        "after this flag will be passed to the executable.",
        action=DetectDefault,
    )
    # These three take no type in ML-Agents: the text is converted when the settings load.
    argparser.add_argument(
        "--max-lifetime-restarts",
        default=_default(EnvironmentSettings, "max_lifetime_restarts"),
        help="The max number of times a single Unity executable can crash over its lifetime "
        "before ml-agents exits. Can be set to -1 if no limit is desired.",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--restarts-rate-limit-n",
        default=_default(EnvironmentSettings, "restarts_rate_limit_n"),
        help="The maximum number of times a single Unity executable can crash over a period "
        "of time (period set in restarts-rate-limit-period-s). Can be set to -1 to not use "
        "rate limiting with restarts.",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--restarts-rate-limit-period-s",
        default=_default(EnvironmentSettings, "restarts_rate_limit_period_s"),
        help="The period of time --restarts-rate-limit-n applies to.",
        action=DetectDefault,
    )
    argparser.add_argument(
        "--torch",
        default=False,
        action=RaiseRemovedWarning,
        help="(Removed) Use the PyTorch framework.",
    )
    argparser.add_argument(
        "--tensorflow",
        default=False,
        action=RaiseRemovedWarning,
        help="(Removed) Use the TensorFlow framework.",
    )
    argparser.add_argument(
        "--results-dir",
        default=_default(CheckpointSettings, "results_dir"),
        action=DetectDefault,
        help="Results base directory",
    )
    argparser.add_argument(
        "--timeout-wait",
        default=_default(EnvironmentSettings, "timeout_wait"),
        help="The period of time to wait on a Unity environment to startup for training.",
        action=DetectDefault,
    )

    workers_conf = argparser.add_argument_group(title="Environment Workers (mlagents-fast)")
    workers_conf.add_argument(
        "--env-workers",
        default=_default(EnvironmentSettings, "env_workers"),
        choices=ENV_WORKER_KINDS,
        action=DetectDefault,
        help="Where the environments run: 'subprocess' on this machine (in this process for "
        "one environment, worker processes for more), or 'ray': one Ray actor per environment, "
        "spread over a Ray cluster (needs pip install 'mlagents-fast[ray]').",
    )
    workers_conf.add_argument(
        "--ray-address",
        default=_default(EnvironmentSettings, "ray_address"),
        metavar="ADDR",
        action=DetectDefault,
        help="With --env-workers ray: the Ray cluster to join ('auto', HOST:PORT or "
        "ray://HOST:PORT). Without it: the cluster RAY_ADDRESS names, else a Ray instance "
        "started on this machine.",
    )
    workers_conf.add_argument(
        "--ray-cpus-per-env",
        default=_default(EnvironmentSettings, "ray_cpus_per_env"),
        type=float,
        action=DetectDefault,
        help="With --env-workers ray: the CPUs Ray reserves for each environment actor "
        "(fractions let several light environments share a CPU).",
    )

    eng_conf = argparser.add_argument_group(title="Engine Configuration")
    eng_conf.add_argument(
        "--width",
        default=_default(EngineSettings, "width"),
        type=int,
        help="The width of the executable window of the environment(s) in pixels (ignored for "
        "editor training).",
        action=DetectDefault,
    )
    eng_conf.add_argument(
        "--height",
        default=_default(EngineSettings, "height"),
        type=int,
        help="The height of the executable window of the environment(s) in pixels (ignored "
        "for editor training)",
        action=DetectDefault,
    )
    eng_conf.add_argument(
        "--quality-level",
        default=_default(EngineSettings, "quality_level"),
        type=int,
        help="The quality level of the environment(s). Equivalent to calling "
        "QualitySettings.SetQualityLevel in Unity.",
        action=DetectDefault,
    )
    eng_conf.add_argument(
        "--time-scale",
        default=_default(EngineSettings, "time_scale"),
        type=float,
        help="The time scale of the Unity environment(s). Equivalent to setting Time.timeScale "
        "in Unity.",
        action=DetectDefault,
    )
    eng_conf.add_argument(
        "--target-frame-rate",
        default=_default(EngineSettings, "target_frame_rate"),
        type=int,
        help="The target frame rate of the Unity environment(s). Equivalent to setting "
        "Application.targetFrameRate in Unity.",
        action=DetectDefault,
    )
    eng_conf.add_argument(
        "--capture-frame-rate",
        default=_default(EngineSettings, "capture_frame_rate"),
        type=int,
        help="The capture frame rate of the Unity environment(s). Equivalent to setting "
        "Time.captureFramerate in Unity.",
        action=DetectDefault,
    )
    eng_conf.add_argument(
        "--no-graphics",
        default=_default(EngineSettings, "no_graphics"),
        action=DetectDefaultStoreTrue,
        help="Whether to run the Unity executable in no-graphics mode (i.e. without "
        "initializing the graphics driver. Use this only if your agents don't use visual "
        "observations.",
    )
    eng_conf.add_argument(
        "--no-graphics-monitor",
        default=_default(EngineSettings, "no_graphics_monitor"),
        action=DetectDefaultStoreTrue,
        help="Whether to run the main Unity worker in graphics mode with the remaining workers "
        "in no graphics mode(i.e. without initializing the graphics driver. Use this only if "
        "your agents don't use visual observations.",
    )

    torch_conf = argparser.add_argument_group(title="Torch Configuration")
    torch_conf.add_argument(
        "--torch-device",
        default=_default(TorchSettings, "device"),
        dest="device",
        action=DetectDefault,
        help='Settings for the default torch.device used in training, for example, "cpu", '
        '"cuda", or "cuda:0"',
    )
    return argparser


parser = _create_parser()
"""The ``mlagents-learn`` argument parser; its defaults are the settings' defaults."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (``sys.argv[1:]`` when None), recording which flags were given."""
    DetectDefault.non_default_args = set()
    StoreConfigFile.trainer_config_path = None
    namespace = argparse.Namespace(_non_default_args=set(), _trainer_config_path=None)
    return parser.parse_args(None if argv is None else list(argv), namespace=namespace)


def parse_command_line(argv: Sequence[str] | None = None) -> RunOptions:
    """``mlagents-learn``'s arguments to RunOptions: the YAML file, with the flags the user
    gave applied over it."""
    return RunOptions.from_argparse(parse_args(argv))


def _warn_deprecated_flags(options: RunOptions) -> None:
    if options.checkpoint_settings.load_model:
        logger.warning(
            "The --load option has been deprecated. Please use the --resume option instead."
        )
    if options.checkpoint_settings.train_model:
        logger.warning(
            "The --train option has been deprecated. Train mode is now the default. Use "
            "--inference to run in inference mode."
        )


def run_cli_or_exit(
    main_fn: Callable[[RunOptions], Any],
    argv: Sequence[str] | None = None,
    prog: str | None = None,
) -> Any:
    """Parse ``argv`` and run ``main_fn(options)``; a configuration error, while parsing or
    later in ``main_fn``, or a :class:`~mlagents_fast.exceptions.RunStoppedError` (a damaged
    results file, an environment past its restart limit) becomes one line on stderr and exit
    status 2 (no traceback). Ctrl-C that ``main_fn`` does not handle itself (training saves
    and returns) becomes one line and exit status 130, the shell's status for SIGINT.

    :param main_fn: the command's body, called with the parsed RunOptions.
    :param argv: the arguments (``sys.argv[1:]`` when None).
    :param prog: the name the error line starts with (the program's name when None).
    :returns: what ``main_fn`` returns.
    """
    name = prog or os.path.basename(sys.argv[0] or "mlagents-learn")
    try:
        options = parse_command_line(argv)
        _warn_deprecated_flags(options)
        return main_fn(options)
    except (TrainerConfigError, RunStoppedError) as error:
        print(f"{name}: error: {_one_line(error)}", file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT_CODE)
    except KeyboardInterrupt as interrupt:
        print(f"{name}: {_one_line(interrupt) or 'interrupted'}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())  # one line, whatever the message holds
