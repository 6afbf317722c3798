"""ML-Agents' ``agent_info_action_pair_pb2``: defined in ``agent.proto`` here."""

from mlagents_fast.envs.communicator_objects.agent_pb2 import (
    AgentInfoActionPairProto,
)

__all__ = ["AgentInfoActionPairProto"]
