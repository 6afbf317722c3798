"""ML-Agents' ``unity_rl_output_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    UnityRLOutputProto,
)

__all__ = ["UnityRLOutputProto"]
