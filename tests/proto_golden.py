"""The protobuf classes generated from protos/ (test helper, not a test module).

They live in the package (``mlagents_fast.envs.communicator_objects``); tests build golden
messages with them to check the Rust codec.
"""

from __future__ import annotations

from mlagents_fast.envs.communicator_objects import (
    agent_pb2,
    brain_parameters_pb2,
    misc_pb2,
    observation_pb2,
    unity_message_pb2,
)

__all__ = ["agent_pb2", "brain_parameters_pb2", "misc_pb2", "observation_pb2", "unity_message_pb2"]
