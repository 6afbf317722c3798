"""The protobuf classes generated from protos/ and builders of golden messages (test
helper, not a test module).

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

__all__ = [
    "agent",
    "agent_pb2",
    "brain",
    "brain_parameters_pb2",
    "misc_pb2",
    "observation_pb2",
    "unity_message",
    "unity_message_pb2",
    "vector_obs",
]


def vector_obs(values, name="VectorSensor"):
    obs = observation_pb2.ObservationProto(shape=[len(values)], dimension_properties=[1], name=name)
    obs.float_data.data.extend(values)
    return obs


def agent(
    agent_id, obs, reward=0.0, done=False, max_step=False, mask=(), group=0, group_reward=0.0
):
    return agent_pb2.AgentInfoProto(
        id=agent_id,
        reward=reward,
        done=done,
        max_step_reached=max_step,
        action_mask=list(mask),
        observations=obs,
        group_id=group,
        group_reward=group_reward,
    )


def brain(name, continuous=0, branches=()):
    return brain_parameters_pb2.BrainParametersProto(
        brain_name=name,
        is_training=True,
        action_spec=brain_parameters_pb2.ActionSpecProto(
            num_continuous_actions=continuous,
            num_discrete_actions=len(branches),
            discrete_branch_sizes=list(branches),
        ),
    )


def unity_message(agents_by_behavior, brains=(), side_channel=b"", status=200):
    message = unity_message_pb2.UnityMessageProto()
    message.header.status = status
    rl_output = message.unity_output.rl_output
    for name, agents in agents_by_behavior.items():
        rl_output.agentInfos[name].value.extend(agents)
    rl_output.side_channel = side_channel
    if brains:
        message.unity_output.rl_initialization_output.brain_parameters.extend(brains)
    return message.SerializeToString()
