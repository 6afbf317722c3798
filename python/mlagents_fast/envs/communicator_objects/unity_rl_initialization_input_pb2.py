"""ML-Agents' ``unity_rl_initialization_input_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    UnityRLInitializationInputProto,
)

__all__ = ["UnityRLInitializationInputProto"]
