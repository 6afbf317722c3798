"""ML-Agents' ``communicator_objects.header_pb2``: defined in ``unity_message.proto`` here."""

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import (
    HeaderProto,
)

__all__ = ["HeaderProto"]
