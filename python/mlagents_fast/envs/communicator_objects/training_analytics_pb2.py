"""ML-Agents' ``communicator_objects.training_analytics_pb2``: defined in ``misc.proto`` here."""

from mlagents_fast.envs.communicator_objects.misc_pb2 import (
    TrainingBehaviorInitialized,
    TrainingEnvironmentInitialized,
)

__all__ = ["TrainingBehaviorInitialized", "TrainingEnvironmentInitialized"]
