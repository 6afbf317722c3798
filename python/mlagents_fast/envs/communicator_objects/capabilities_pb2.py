"""ML-Agents' ``communicator_objects.capabilities_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    UnityRLCapabilitiesProto,
)

__all__ = ["UnityRLCapabilitiesProto"]
