"""ML-Agents' ``communicator_objects.unity_input_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    UnityInputProto,
)

__all__ = ["UnityInputProto"]
