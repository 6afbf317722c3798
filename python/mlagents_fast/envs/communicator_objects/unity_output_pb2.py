"""ML-Agents' ``communicator_objects.unity_output_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    UnityOutputProto,
)

__all__ = ["UnityOutputProto"]
