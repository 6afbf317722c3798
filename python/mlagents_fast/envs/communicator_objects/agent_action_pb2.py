"""ML-Agents' ``communicator_objects.agent_action_pb2``: defined in ``agent.proto`` here."""

from mlagents_fast.envs.communicator_objects.agent_pb2 import (
    AgentActionProto,
)

__all__ = ["AgentActionProto"]
