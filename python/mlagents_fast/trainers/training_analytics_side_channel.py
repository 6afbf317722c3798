"""Training analytics sent to Unity (the counterpart of ``mlagents.trainers.training_analytics_side_channel``).

Unity's analytics receive, once per run, a ``TrainingEnvironmentInitialized`` (versions,
number of environments, the run options) and, once per behavior, a
``TrainingBehaviorInitialized`` (trainer type, reward signals, network shape, the trainer
settings). Names and paths a user chose (behavior names, curriculum names, init/demo paths,
results folder) are replaced by a keyed SHA-256 digest before they leave the process.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import platform
from typing import Any

from mlagents_fast import __version__
from mlagents_fast.envs.exception import UnitySideChannelMessageException
from mlagents_fast.envs.side_channel.default_training_analytics_side_channel import (
    MLAGENTS_ENVS_VERSION,
    DefaultTrainingAnalyticsSideChannel,
)
from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage
from mlagents_fast.trainers.settings import RewardSignalType

__all__ = ["TrainingAnalyticsSideChannel"]

_DIGEST_KEY = b"unity.ml-agents"


class TrainingAnalyticsSideChannel(DefaultTrainingAnalyticsSideChannel):
    """Python-to-Unity analytics about the run and each behavior's trainer."""

    def __init__(self) -> None:
        super().__init__()  # same channel id as the default analytics channel
        self.run_options: Any = None

    @classmethod
    def _hash(cls, data: str) -> str:
        """Keyed digest of a user-chosen name, so no name or path leaves the process."""
        return hmac.new(_DIGEST_KEY, data.encode("utf-8"), hashlib.sha256).hexdigest()

    def on_message_received(self, msg: IncomingMessage) -> None:
        # A UnityCommunicationException as in ML-Agents, and a protocol error like every
        # other bad message from Unity.
        raise UnitySideChannelMessageException(
            "The TrainingAnalyticsSideChannel received a message from Unity, "
            "this should not have happened."
        )

    @classmethod
    def _sanitize_run_options(cls, config: Any) -> dict[str, Any]:
        options = copy.deepcopy(config.as_dict())
        behaviors = options.get("behaviors") or {}
        options["behaviors"] = {
            cls._hash(name): cls._sanitize_paths(settings) for name, settings in behaviors.items()
        }
        parameters = options.get("environment_parameters") or {}
        if parameters:
            sanitized = {}
            for name, parameter in parameters.items():
                for lesson in parameter.get("curriculum") or []:
                    if "name" in lesson:
                        lesson["name"] = cls._hash(lesson["name"])
                    criteria = lesson.get("completion_criteria")
                    if criteria is not None:
                        criteria["behavior"] = cls._hash(criteria["behavior"])
                sanitized[cls._hash(name)] = parameter
            options["environment_parameters"] = sanitized
        checkpoint = options.get("checkpoint_settings")
        if checkpoint is not None:
            for key in ("initialize_from", "results_dir"):
                if checkpoint.get(key) is not None:
                    checkpoint[key] = cls._hash(str(checkpoint[key]))
        return options

    @classmethod
    def _sanitize_paths(cls, settings: dict[str, Any]) -> dict[str, Any]:
        for key in ("init_path", "demo_path"):
            if settings.get(key) is not None:
                settings[key] = cls._hash(str(settings[key]))
        return settings

    def _queue_any(self, message: Any) -> None:
        from google.protobuf.any_pb2 import Any as AnyProto

        wrapped = AnyProto()
        wrapped.Pack(message)
        outgoing = OutgoingMessage()
        outgoing.set_raw_bytes(wrapped.SerializeToString())
        self.queue_message_to_send(outgoing)

    def environment_initialized(self, run_options: Any = None) -> None:
        """Queue ``TrainingEnvironmentInitialized`` for ``run_options`` (sent with the next step)."""
        if run_options is None:  # the default channel's call, without a run
            super().environment_initialized()
            return
        import torch

        from mlagents_fast.envs.communicator_objects.training_analytics_pb2 import (
            TrainingEnvironmentInitialized,
        )

        self.run_options = run_options
        parameters = run_options.environment_parameters
        self._queue_any(
            TrainingEnvironmentInitialized(
                python_version=platform.python_version(),
                mlagents_version=__version__,
                mlagents_envs_version=MLAGENTS_ENVS_VERSION,
                torch_version=torch.__version__,
                torch_device_type=self._device_type(run_options),
                num_envs=run_options.env_settings.num_envs,
                num_environment_parameters=len(parameters) if parameters else 0,
                run_options=json.dumps(self._sanitize_run_options(run_options)),
            )
        )

    @staticmethod
    def _device_type(run_options: Any) -> str:
        """The type of the training device (``cuda``, ``cpu``, ...) from the run options, not
        this process's default: worker 0 is a spawned process that never set one."""
        import torch

        from mlagents_fast.torch_utils import resolve_device

        name = getattr(getattr(run_options, "torch_settings", None), "device", None)
        try:
            return resolve_device(None).type if name is None else torch.device(name).type
        except (RuntimeError, TypeError, ValueError):
            return "Unknown"

    def training_started(self, behavior_name: str, config: Any) -> None:
        """Queue ``TrainingBehaviorInitialized`` for the trainer of ``behavior_name``."""
        from mlagents_fast.envs.communicator_objects.training_analytics_pb2 import (
            TrainingBehaviorInitialized,
        )

        signals = config.reward_signals
        network = config.network_settings
        self._queue_any(
            TrainingBehaviorInitialized(
                behavior_name=self._hash(behavior_name),
                trainer_type=str(config.trainer_type),
                extrinsic_reward_enabled=RewardSignalType.EXTRINSIC in signals,
                gail_reward_enabled=RewardSignalType.GAIL in signals,
                curiosity_reward_enabled=RewardSignalType.CURIOSITY in signals,
                rnd_reward_enabled=RewardSignalType.RND in signals,
                behavioral_cloning_enabled=config.behavioral_cloning is not None,
                recurrent_enabled=network.memory is not None,
                visual_encoder=network.vis_encode_type.value,
                num_network_layers=network.num_layers,
                num_network_hidden_units=network.hidden_units,
                trainer_threaded=config.threaded,
                self_play_enabled=config.self_play is not None,
                curriculum_enabled=self._behavior_uses_curriculum(behavior_name),
                config=json.dumps(self._sanitize_paths(copy.deepcopy(config.as_dict()))),
            )
        )

    def _behavior_uses_curriculum(self, behavior_name: str) -> bool:
        parameters = getattr(self.run_options, "environment_parameters", None) or {}
        return any(
            lesson.completion_criteria is not None
            and lesson.completion_criteria.behavior == behavior_name
            for parameter in parameters.values()
            for lesson in parameter.curriculum
        )
