"""ML-Agents' ``unity_to_external_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    UnityMessageProto,
)

__all__ = ["UnityMessageProto"]
