"""Trainer types and the factory that builds a trainer per behavior.

The counterpart of ``mlagents.trainers.trainer.trainer_factory`` plus ``mlagents.plugins``'
trainer-type registry. Built in: ``ppo``, ``sac`` and ``poca``. A user package adds its own trainer type
through the ``mlagents_fast.trainer_type`` entry-point group (like ML-Agents'
``mlagents.trainer_type``)::

    # pyproject.toml of the user's package
    [project.entry-points."mlagents_fast.trainer_type"]
    my_trainer = "my_package.plugin:get_type_and_setting"

where ``get_type_and_setting()`` returns ``({"my_trainer": MyTrainer}, {"my_trainer":
MyHyperparamSettings})``: trainer classes take the OnPolicyTrainer constructor arguments, and
the settings class makes ``trainer_type: my_trainer`` load.

Trainer classes and hyperparameters classes live in one registry,
:data:`mlagents_fast.trainers.settings.trainer_types` (the settings are a leaf and cannot
import the trainers, so the registry sits with them); this module adds the trainer classes.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable
from typing import Any, cast

from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.ghost.controller import GhostController
from mlagents_fast.trainers.settings import trainer_types as registry
from mlagents_fast.trainers.trainer.trainer import Trainer

__all__ = [
    "TRAINER_TYPE_ENTRY_POINT_GROUP",
    "TrainerFactory",
    "get_trainer_types",
    "register_trainer_plugins",
    "register_trainer_type",
]

logger = logging.getLogger(__name__)

TRAINER_TYPE_ENTRY_POINT_GROUP = "mlagents_fast.trainer_type"

_plugins_loaded = False


def register_trainer_type(
    name: str, trainer_cls: type[Trainer], settings_cls: type | None = None
) -> None:
    """Make ``trainer_type: name`` build ``trainer_cls``, with ``settings_cls`` as the class of
    its ``hyperparameters`` when given (otherwise the one already registered for ``name``)."""
    if not isinstance(trainer_cls, type) or not issubclass(trainer_cls, Trainer):
        raise TrainerConfigError(
            f"trainer type '{name}': {trainer_cls!r} is not a subclass of "
            "mlagents_fast.trainers.trainer.Trainer"
        )
    registry.register(name, hyperparameters_class=settings_cls, trainer_class=trainer_cls)


def _builtin_trainer_types() -> dict[str, type[Trainer]]:
    from mlagents_fast.trainers.poca.trainer import POCATrainer
    from mlagents_fast.trainers.ppo.trainer import PPOTrainer
    from mlagents_fast.trainers.sac.trainer import SACTrainer

    return {
        trainer.get_trainer_name(): trainer for trainer in (PPOTrainer, SACTrainer, POCATrainer)
    }


def register_trainer_plugins() -> tuple[dict[str, type[Trainer]], dict[str, type]]:
    """Load the built-in trainer types and every ``mlagents_fast.trainer_type`` entry point.

    Returns (trainer types, hyperparameter settings classes) contributed by plugins, as
    ML-Agents' ``register_trainer_plugins`` does. A plugin that fails to load is reported and
    skipped, so one broken package does not stop training with the built-in types.
    """
    global _plugins_loaded
    known = registry.trainer_classes()
    for name, trainer_cls in _builtin_trainer_types().items():
        if name not in known:
            registry.register(name, trainer_class=trainer_cls)
    plugin_settings: dict[str, type] = {}
    if _plugins_loaded:
        return registry.trainer_classes(), plugin_settings
    _plugins_loaded = True
    for entry_point in importlib.metadata.entry_points(group=TRAINER_TYPE_ENTRY_POINT_GROUP):
        try:
            get_type_and_setting: Callable[[], Any] = entry_point.load()
            trainer_types, settings_types = get_type_and_setting()
        except Exception as err:  # noqa: BLE001 - a user's plugin: report and go on
            logger.error("Failed to load trainer plugin %s: %s", entry_point.name, err)
            continue
        for name, trainer_cls in trainer_types.items():
            register_trainer_type(name, trainer_cls, settings_types.get(name))
            plugin_settings[name] = settings_types.get(name)
    return registry.trainer_classes(), plugin_settings


def get_trainer_types() -> dict[str, type[Trainer]]:
    """trainer_type name -> trainer class, plugins included."""
    trainer_types, _ = register_trainer_plugins()
    return trainer_types


class TrainerFactory:
    """Builds the trainer of each behavior from the run's settings."""

    def __init__(
        self,
        trainer_config: dict[str, Any],
        output_path: str,
        train_model: bool,
        load_model: bool,
        seed: int,
        param_manager: Any,
        init_path: str | None = None,
        multi_gpu: bool = False,
    ) -> None:
        """
        :param trainer_config: behavior name -> TrainerSettings (a defaultdict: unknown
            behaviors get the default settings, with a warning).
        :param output_path: results/<run-id>.
        :param train_model: False for --inference.
        :param load_model: --resume.
        :param seed: the run seed.
        :param param_manager: the EnvironmentParameterManager (its reward-buffer needs).
        :param init_path: --initialize-from folder, if any.
        :param multi_gpu: accepted for API compatibility; unused.
        """
        self.trainer_config = trainer_config
        self.output_path = output_path
        self.init_path = init_path
        self.train_model = train_model
        self.load_model = load_model
        self.seed = seed
        self.param_manager = param_manager
        self.multi_gpu = multi_gpu

        # One for the run: every self-play trainer takes turns through it.
        self.ghost_controller = GhostController()

    def generate(self, behavior_name: str) -> Trainer:
        """The trainer of ``behavior_name``."""
        if behavior_name not in self.trainer_config:
            logger.warning(
                "Behavior name %s does not match any behaviors specified in the trainer "
                "configuration file. A default configuration will be used.",
                behavior_name,
            )
        trainer_settings = self.trainer_config[behavior_name]
        return TrainerFactory._initialize_trainer(
            trainer_settings,
            behavior_name,
            self.output_path,
            self.train_model,
            self.load_model,
            self.seed,
            self.param_manager,
            ghost_controller=self.ghost_controller,
        )

    @staticmethod
    def _initialize_trainer(
        trainer_settings: Any,
        brain_name: str,
        output_path: str,
        train_model: bool,
        load_model: bool,
        seed: int,
        param_manager: Any,
        ghost_controller: Any = None,
    ) -> Trainer:
        """The trainer of ``brain_name``; with ``self_play`` settings, wrapped in a
        GhostTrainer that takes turns with the other teams through ``ghost_controller``."""
        trainer_types = get_trainer_types()
        trainer_type = str(
            getattr(trainer_settings.trainer_type, "value", trainer_settings.trainer_type)
        )
        trainer_cls = trainer_types.get(trainer_type)
        if trainer_cls is None:
            raise TrainerConfigError(
                f"behaviors.{brain_name}.trainer_type: '{trainer_type}' is not a known trainer type "
                f"(known: {', '.join(sorted(trainer_types))})"
            )
        min_lesson_length = param_manager.get_minimum_reward_buffer_size(brain_name)
        artifact_path = os.path.join(output_path, brain_name)
        # Trainer types (plugins' too) take ML-Agents' RLTrainer arguments; the abstract
        # Trainer base class has a shorter constructor.
        trainer = cast(Callable[..., Trainer], trainer_cls)(
            brain_name,
            min_lesson_length,
            trainer_settings,
            train_model,
            load_model,
            seed,
            artifact_path,
        )
        if getattr(trainer_settings, "self_play", None) is None:
            return trainer
        from mlagents_fast.trainers.ghost.trainer import GhostTrainer

        return GhostTrainer(
            trainer,
            brain_name,
            ghost_controller if ghost_controller is not None else GhostController(),
            min_lesson_length,
            trainer_settings,
            train_model,
            artifact_path,
        )
