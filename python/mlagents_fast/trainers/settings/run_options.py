"""Settings of a whole run: the environment, the Unity engine, checkpoints and results,
torch, and :class:`RunOptions`, which holds them with the behaviors and environment
parameters and loads a configuration file with the command-line flags applied over it.

These classes hold the defaults of the ``mlagents-learn`` flags; the command line
(:mod:`mlagents_fast.trainers.cli_utils`) reads them from here.
"""

import logging
import os.path
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import attr

from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings.config_file import load_config
from mlagents_fast.trainers.settings.converter import (
    EXTENSION_METADATA,
    ExportableSettings,
    _at_key,
    _describe,
    strict_to_cls,
    validate_key,
)
from mlagents_fast.trainers.settings.environment_parameters import EnvironmentParameterSettings
from mlagents_fast.trainers.settings.trainer_settings import (
    TrainerSettings,
    _active_default_settings,
)

if TYPE_CHECKING:  # from_argparse reads a namespace; the parser itself is the CLI's
    import argparse

__all__ = [
    "BASE_ENVIRONMENT_PORT",
    "ENV_WORKER_KINDS",
    "CheckpointSettings",
    "EngineSettings",
    "EnvironmentSettings",
    "RunOptions",
    "TorchSettings",
]

logger = logging.getLogger(__name__)

BASE_ENVIRONMENT_PORT = 5005
"""Port of worker 0 when an executable is given (UnityEnvironment.BASE_ENVIRONMENT_PORT)."""

ENV_WORKER_KINDS = ("subprocess", "ray")
"""Where environments run: ``subprocess`` (this machine: in-process for one environment,
worker processes for more) or ``ray`` (one Ray actor each, anywhere in a Ray cluster)."""


# RUN SECTIONS #########################################################################
@attr.s(auto_attribs=True)
class CheckpointSettings:
    """Where results go and how a run starts (fresh, resumed, initialized from another)."""

    run_id: str = "ppo"
    """Name of the run: results go to results_dir/run_id."""
    initialize_from: str | None = None
    """Run id to initialize the model from."""
    load_model: bool = False
    """Deprecated --load; means resume."""
    resume: bool = False
    """Resume the run from its last checkpoint."""
    force: bool = False
    """Overwrite an existing run with the same run_id."""
    train_model: bool = False
    """Deprecated --train; training is the default."""
    inference: bool = False
    """Run the policy without training."""
    results_dir: str = "results"
    """Base directory of results."""

    @property
    def write_path(self) -> str:
        return os.path.join(self.results_dir, self.run_id)

    @property
    def maybe_init_path(self) -> str | None:
        return (
            os.path.join(self.results_dir, self.initialize_from)
            if self.initialize_from is not None
            else None
        )

    @property
    def run_logs_dir(self) -> str:
        return os.path.join(self.write_path, "run_logs")

    def prioritize_resume_init(self, non_default_args: Collection[str] | None = None) -> None:
        """When both resume and initialize_from are set, keep the one given on the command
        line (``non_default_args``: the flags the user gave, none when None); when both come
        from the same place, resume wins."""
        if non_default_args is None:
            non_default_args = ()
        if "resume" in non_default_args:
            if self.initialize_from is not None:
                logger.warning(
                    f"Both 'resume' and 'initialize_from={self.initialize_from}' are set!"
                    f" Current run will be resumed ignoring initialization."
                )
                self.initialize_from = None
        elif "initialize_from" in non_default_args:
            if self.resume:
                logger.warning(
                    f"Both 'resume' and 'initialize_from={self.initialize_from}' are set!"
                    f" {self.run_id} is initialized_from {self.initialize_from} and resume "
                    f"will be ignored."
                )
                self.resume = False
        elif self.resume and self.initialize_from is not None:
            logger.warning(
                f"Both 'resume' and 'initialize_from={self.initialize_from}' are set in yaml "
                f"file! Current run will be resumed ignoring initialization."
            )
            self.initialize_from = None


MAX_PORT = 65535
"""The largest TCP port."""


@attr.s(auto_attribs=True)
class EnvironmentSettings:
    """Which environment runs, how many copies, and how they are restarted."""

    env_path: str | None = None
    """Unity executable; None connects to the Editor."""
    env_args: list[str] | None = None
    """Extra command-line arguments for the executable."""
    base_port: int = attr.ib(
        default=BASE_ENVIRONMENT_PORT,
        validator=validate_key(
            lambda _, value: (
                f"base_port must be a TCP port from 1 to {MAX_PORT} (got {value})."
                if not 1 <= value <= MAX_PORT
                else None
            ),
            lambda self, value: (
                f"base_port {value} leaves no port for worker {self.num_envs - 1} of num_envs "
                f"{self.num_envs} (ports base_port .. base_port + num_envs - 1 must be at most "
                f"{MAX_PORT})."
                if isinstance(self.num_envs, int) and value + self.num_envs - 1 > MAX_PORT
                else None
            ),
        ),
    )
    """First port; worker i uses base_port + i. Checked for every kind of environment."""
    num_envs: int = attr.ib(
        default=1,
        validator=validate_key(
            lambda self, value: (
                "num_envs must be 1 if env_path is not set."
                if value > 1 and self.env_path is None
                else None
            ),
            lambda _, value: f"num_envs must be at least 1 (got {value})." if value < 1 else None,
        ),
    )
    """Concurrent environment instances."""
    num_areas: int = attr.ib(
        default=1,
        validator=validate_key(
            lambda _, value: (
                "num_areas must be set to a positive number >= 1." if value <= 0 else None
            )
        ),
    )
    """Training areas per instance."""
    timeout_wait: int = 60
    """Seconds to wait for an environment to start."""
    seed: int = -1
    """Run seed; -1 picks one at random."""
    max_lifetime_restarts: int = 10
    """Crashes an environment may have over the run; -1 for no limit."""
    restarts_rate_limit_n: int = 1
    """Crashes allowed per restarts_rate_limit_period_s; -1 for no limit."""
    restarts_rate_limit_period_s: int = 60
    """Period of the restart rate limit, in seconds."""
    # mlagents-fast only: written to configuration.yaml only when not at their defaults.
    env_workers: str = attr.ib(
        default="subprocess",
        validator=validate_key(
            lambda _, value: (
                None
                if value in ENV_WORKER_KINDS
                else f"env_workers must be one of {', '.join(ENV_WORKER_KINDS)} (got {value!r})."
            )
        ),
        metadata={EXTENSION_METADATA: True},
    )
    """Where environments run: ``subprocess`` (this machine) or ``ray`` (one Ray actor each;
    needs ``pip install mlagents-fast[ray]``)."""
    ray_address: str | None = attr.ib(default=None, metadata={EXTENSION_METADATA: True})
    """Ray cluster to join with env_workers ray (``auto``, ``HOST:PORT`` or
    ``ray://HOST:PORT``); None: the cluster named by RAY_ADDRESS, else a local Ray instance."""
    ray_cpus_per_env: float = attr.ib(
        default=1.0,
        validator=validate_key(
            lambda _, value: (
                f"ray_cpus_per_env must be positive (got {value})." if not value > 0 else None
            )
        ),
        metadata={EXTENSION_METADATA: True},
    )
    """CPUs Ray reserves for each environment actor (fractions share a CPU)."""


@attr.s(auto_attribs=True)
class EngineSettings:
    """Unity engine settings sent to every environment."""

    width: int = 84
    """Window width in pixels."""
    height: int = 84
    """Window height in pixels."""
    quality_level: int = 5
    """QualitySettings level."""
    time_scale: float = 20
    """Time.timeScale."""
    target_frame_rate: int = -1
    """Application.targetFrameRate."""
    capture_frame_rate: int = 60
    """Time.captureFramerate."""
    no_graphics: bool = False
    """Run without initializing graphics."""
    no_graphics_monitor: bool = False
    """Only the first environment renders graphics."""


@attr.s(auto_attribs=True)
class TorchSettings:
    """PyTorch settings."""

    device: str | None = None
    """Default torch device (``cpu``, ``cuda``, ``cuda:0``); None picks one."""


@attr.s(auto_attribs=True)
class RunOptions(ExportableSettings):
    """Everything a run of ``mlagents-learn`` is configured with."""

    default_settings: TrainerSettings | None = None
    """Settings for behaviors not named, and the base named ones are merged over."""
    behaviors: TrainerSettings.DefaultTrainerDict = attr.ib(
        factory=TrainerSettings.DefaultTrainerDict
    )
    """Settings of each behavior, by name."""
    env_settings: EnvironmentSettings = attr.ib(factory=EnvironmentSettings)
    """Environment settings."""
    engine_settings: EngineSettings = attr.ib(factory=EngineSettings)
    """Unity engine settings."""
    environment_parameters: dict[str, EnvironmentParameterSettings] | None = None
    """Environment parameters (constants, samplers, curricula) by name."""
    checkpoint_settings: CheckpointSettings = attr.ib(factory=CheckpointSettings)
    """Results and checkpoint settings."""
    torch_settings: TorchSettings = attr.ib(factory=TorchSettings)
    """PyTorch settings."""
    debug: bool = False
    """Debug-level logging."""

    @staticmethod
    def from_argparse(args: "argparse.Namespace") -> "RunOptions":
        """Load the YAML file named on the command line and apply the flags the user gave
        over it (a flag left at its default never overrides the file).

        ``args`` is what the ``mlagents-learn`` parser returns: besides the flags, it carries
        the YAML path (``_trainer_config_path``) and the names of the flags the user gave
        (``_non_default_args``), recorded by the parser's actions. A namespace without them
        means no file and no flag given.
        """
        argparse_args = {key: val for key, val in vars(args).items() if not key.startswith("_")}
        config_path = getattr(args, "_trainer_config_path", None)
        non_default_args = getattr(args, "_non_default_args", None) or set()

        configured_dict: dict[str, Any] = {
            "checkpoint_settings": {},
            "env_settings": {},
            "engine_settings": {},
            "torch_settings": {},
        }
        require_all_behaviors = True
        try:
            if config_path is not None:
                loaded = load_config(config_path)
                if loaded is None:
                    loaded = {}  # an empty file configures nothing
                if not isinstance(loaded, Mapping):
                    raise TrainerConfigError(
                        f"expected a mapping at the top of the file, got {_describe(loaded)}"
                    )
                for key, val in loaded.items():
                    if key in configured_dict and isinstance(val, Mapping):
                        configured_dict[key].update(val)
                    else:
                        configured_dict[key] = val
            else:
                require_all_behaviors = False

            for key in configured_dict:
                if key not in attr.fields_dict(RunOptions):
                    known = ", ".join(attr.fields_dict(RunOptions))
                    raise TrainerConfigError(
                        f"The option {key} was specified in your YAML file, but is invalid "
                        f"(valid top-level options: {known}).",
                        key_path=[key],
                    )

            # Deprecated --load still means --resume.
            argparse_args["resume"] = argparse_args.get("resume", False) or argparse_args.get(
                "load_model", False
            )
            for key, val in argparse_args.items():
                if key not in non_default_args:
                    continue
                for section, section_cls in _COMMAND_LINE_SECTIONS:
                    if key in attr.fields_dict(section_cls):
                        if not isinstance(configured_dict.get(section), dict):
                            configured_dict[section] = {}
                        configured_dict[section][key] = val
                        break
                else:
                    if key in attr.fields_dict(RunOptions):
                        configured_dict[key] = val

            final_runoptions = RunOptions.from_dict(configured_dict)
        except TrainerConfigError as error:
            if error.config_file is None and config_path is not None:
                error.config_file = config_path
            raise
        final_runoptions.checkpoint_settings.prioritize_resume_init(non_default_args)
        final_runoptions.behaviors.set_config_specified(require_all_behaviors)

        if "deterministic" in non_default_args:
            for behavior_settings in final_runoptions.behaviors.values():
                behavior_settings.network_settings.deterministic = argparse_args["deterministic"]
        return final_runoptions

    @staticmethod
    def from_dict(options_dict: dict[str, Any]) -> "RunOptions":
        """Structure a whole configuration (the YAML file's contents, or ``as_dict()``)."""
        if not isinstance(options_dict, Mapping):
            raise TrainerConfigError(
                f"expected a mapping of run options, got {_describe(options_dict)}"
            )
        default_settings: TrainerSettings | None = None
        if options_dict.get("default_settings") is not None:
            with _at_key("default_settings"):
                default_settings = TrainerSettings.structure(
                    options_dict["default_settings"], TrainerSettings
                )
        token = _active_default_settings.set(default_settings)
        try:
            run_options = strict_to_cls(options_dict, RunOptions)
        finally:
            _active_default_settings.reset(token)
        run_options.behaviors.default_settings = default_settings
        return run_options


_COMMAND_LINE_SECTIONS: tuple[tuple[str, type], ...] = (
    ("checkpoint_settings", CheckpointSettings),
    ("env_settings", EnvironmentSettings),
    ("engine_settings", EngineSettings),
    ("torch_settings", TorchSettings),
)
