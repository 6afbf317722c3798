"""ML-Agents' ``communicator_objects.engine_configuration_pb2``: defined in ``misc.proto`` here."""

from mlagents_fast.envs.communicator_objects.misc_pb2 import (
    EngineConfigurationProto,
)

__all__ = ["EngineConfigurationProto"]
