"""ML-Agents' ``communicator_objects.command_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    QUIT,
    RESET,
    STEP,
    CommandProto,
)

__all__ = ["QUIT", "RESET", "STEP", "CommandProto"]
