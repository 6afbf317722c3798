"""ML-Agents' ``unity_rl_input_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    UnityRLInputProto,
)

__all__ = ["UnityRLInputProto"]
