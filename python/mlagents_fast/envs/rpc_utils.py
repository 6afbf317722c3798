"""Turn decoded Unity messages into ``BehaviorSpec`` and ``DecisionSteps``/``TerminalSteps``.

The Rust decoder (``_native.decode_unity_output``) already produced flat numpy batches;
this module only wraps them in the ``base_env`` classes, as ``mlagents_envs.rpc_utils`` does
from protobuf objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlagents_fast import _native
from mlagents_fast.envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlagents_fast.envs.exception import UnityObservationException

__all__ = [
    "DecodedOutput",
    "behavior_spec_from_decoded",
    "behavior_spec_from_proto",
    "decode_output",
    "known_specs_argument",
    "steps_from_decoded",
    "steps_from_proto",
]

DecodedOutput = dict[str, Any]


def known_specs_argument(
    specs: Mapping[str, BehaviorSpec],
) -> list[tuple[str, list[tuple[int, ...]], tuple[int, ...]]]:
    """The ``known_specs`` argument of ``_native.decode_unity_output`` for ``specs``."""
    return [
        (
            name,
            [tuple(obs.shape) for obs in spec.observation_specs],
            tuple(spec.action_spec.discrete_branches),
        )
        for name, spec in specs.items()
    ]


def decode_output(data: bytes, specs: Mapping[str, BehaviorSpec]) -> DecodedOutput:
    """Decode a message from Unity given the behaviors announced so far."""
    return _native.decode_unity_output(data, known_specs_argument(specs))


def behavior_spec_from_decoded(new_spec: tuple) -> BehaviorSpec:
    """A BehaviorSpec from the ``new_spec`` tuple of a decoded behavior.

    An observation without dimension properties gets UNSPECIFIED on every axis.
    """
    observations, continuous_size, discrete_branches = new_spec
    observation_specs = [
        ObservationSpec(
            shape=tuple(shape),
            dimension_property=(
                tuple(DimensionProperty(d) for d in dimension_properties)
                if dimension_properties
                else (DimensionProperty.UNSPECIFIED,) * len(shape)
            ),
            observation_type=ObservationType(observation_type),
            name=name,
        )
        for shape, dimension_properties, observation_type, name in observations
    ]
    return BehaviorSpec(observation_specs, ActionSpec(continuous_size, tuple(discrete_branches)))


def _split_mask(mask: np.ndarray | None, branches: tuple[int, ...]) -> list[np.ndarray] | None:
    if mask is None:
        return None
    return np.split(mask, np.cumsum(branches)[:-1], axis=1)


def steps_from_decoded(behavior: tuple) -> tuple[DecisionSteps, TerminalSteps]:
    """DecisionSteps and TerminalSteps of one decoded behavior tuple."""
    _name, _new_spec, decision, terminal, action_mask, branches = behavior
    obs, reward, agent_id, group_id, group_reward, _ = decision
    decision_steps = DecisionSteps(
        obs, reward, agent_id, _split_mask(action_mask, branches), group_id, group_reward
    )
    obs, reward, agent_id, group_id, group_reward, interrupted = terminal
    terminal_steps = TerminalSteps(obs, reward, interrupted, agent_id, group_id, group_reward)
    return decision_steps, terminal_steps


# --- ML-Agents' protobuf-object API -------------------------------------------------------
# For code that holds protobuf messages (``mlagents_fast.envs.communicator_objects``). The
# messages are serialized and go through the same Rust decoder as the live link, so both
# paths give the same arrays, masks and errors.

_PROTO_BEHAVIOR = "behavior"


def _decode_agent_infos(
    agent_infos: Any, brain_parameters: Any, known: Mapping[str, BehaviorSpec]
) -> list[tuple]:
    from mlagents_fast.envs.communicator_objects.unity_message_pb2 import UnityMessageProto

    message = UnityMessageProto()
    message.header.status = 200
    message.unity_output.rl_output.agentInfos[_PROTO_BEHAVIOR].value.extend(agent_infos)
    if brain_parameters is not None:
        brain = message.unity_output.rl_initialization_output.brain_parameters.add()
        brain.CopyFrom(brain_parameters)
        brain.brain_name = _PROTO_BEHAVIOR
    return list(decode_output(message.SerializeToString(), known)["behaviors"])


def behavior_spec_from_proto(brain_param_proto: Any, agent_info: Any) -> BehaviorSpec:
    """The BehaviorSpec of a ``BrainParametersProto``, observation shapes from ``agent_info``.

    As ML-Agents: a brain from a communicator older than 1.3 (no action spec) is read from
    the deprecated vector-action fields.
    """
    for behavior in _decode_agent_infos([agent_info], brain_param_proto, {}):
        if behavior[1] is not None:
            return behavior_spec_from_decoded(behavior[1])
    raise UnityObservationException("the brain parameters describe no behavior")


def steps_from_proto(
    agent_info_list: Any, behavior_spec: BehaviorSpec
) -> tuple[DecisionSteps, TerminalSteps]:
    """DecisionSteps (agents not done) and TerminalSteps (done) of ``AgentInfoProto`` messages.

    Observations must match ``behavior_spec`` (else UnityObservationException); NaN or
    infinite rewards raise as on the live link.
    """
    agent_infos = list(agent_info_list)
    if agent_infos:
        for behavior in _decode_agent_infos(agent_infos, None, {_PROTO_BEHAVIOR: behavior_spec}):
            if behavior[0] == _PROTO_BEHAVIOR:
                return steps_from_decoded(behavior)
    return DecisionSteps.empty(behavior_spec), TerminalSteps.empty(behavior_spec)
