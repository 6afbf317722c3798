"""ML-Agents' ``communicator_objects.agent_info_pb2``: defined in ``agent.proto`` here."""

from mlagents_fast.envs.communicator_objects.agent_pb2 import (
    AgentInfoProto,
)

__all__ = ["AgentInfoProto"]
