"""Turn decoded Unity messages into ``BehaviorSpec`` and ``DecisionSteps``/``TerminalSteps``.

The Rust decoder (``_native.decode_unity_output``) already produced flat numpy batches,
returned as named, read-only types (:class:`DecodedOutput`, :class:`DecodedBehavior`,
:class:`DecodedSteps`, :class:`DecodedSpec`, ...); this module only wraps them in the
``base_env`` classes, as ``mlagents_envs.rpc_utils`` does from protobuf objects.

Received bytes are never trusted: the decoder checks every size against the bytes present
and the decoder limits (:func:`get_decode_limits`, docs/protocol.md "Decoder limits") before
allocating, and every failure on any input is a ``UnityProtocolException`` subclass.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, MutableMapping
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

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
from mlagents_fast.envs.exception import UnityMessageDecodeException, UnityObservationException
from mlagents_fast.envs.side_channel.side_channel_manager import SideChannelManager
from mlagents_fast.exceptions import InvalidArgumentError

if TYPE_CHECKING:  # protobuf classes, imported only by the functions that build messages
    from mlagents_fast.envs.communicator_objects.agent_info_pb2 import AgentInfoProto
    from mlagents_fast.envs.communicator_objects.brain_parameters_pb2 import (
        BrainParametersProto,
    )

__all__ = [
    "DECODE_LIMITS_ENV",
    "DecodeLimits",
    "DecodedBehavior",
    "DecodedBrainParameters",
    "DecodedInitOutput",
    "DecodedObservation",
    "DecodedOutput",
    "DecodedSpec",
    "DecodedSteps",
    "apply_decoded_output",
    "behavior_spec_from_decoded",
    "behavior_spec_from_proto",
    "decode_output",
    "get_decode_limits",
    "known_specs_argument",
    "set_decode_limits",
    "steps_from_decoded",
    "steps_from_proto",
]

logger = logging.getLogger(__name__)

DecodedOutput = _native.DecodedOutput
"""One message from Unity: ``status``, ``has_output``, ``side_channel`` (bytes),
``init_output`` (:class:`DecodedInitOutput` or None) and ``behaviors`` (a list of
:class:`DecodedBehavior`, in message order)."""
DecodedBehavior = _native.DecodedBehavior
"""The agents of one behavior in a message: ``name``, ``new_spec`` (:class:`DecodedSpec`
when this message announced the behavior, else None), ``decision`` and ``terminal``
(:class:`DecodedSteps`), ``action_mask`` (bool ``(n_decision, sum(branches))``, True =
masked, or None) and ``discrete_branches``."""
DecodedSteps = _native.DecodedSteps
"""Agents asking for a decision, or whose episode ended: ``obs`` (one float32 ``(n, *shape)``
array per observation), ``reward``, ``agent_id``, ``group_id``, ``group_reward`` and
``interrupted`` (``(n,)`` each); ``len()`` is ``n``."""
DecodedSpec = _native.DecodedSpec
"""A newly announced behavior: ``observations`` (:class:`DecodedObservation` per sensor),
``continuous_size``, ``discrete_branches``."""
DecodedObservation = _native.DecodedObservation
"""One observation of a new behavior: ``shape``, ``dimension_properties`` (flags per
dimension, or empty), ``observation_type`` (int) and ``name``."""
DecodedInitOutput = _native.DecodedInitOutput
"""Unity's first message: ``name``, ``communication_version``, ``log_path``,
``package_version``, ``capabilities`` (7 flags) and ``brain_parameters``."""
DecodedBrainParameters = _native.DecodedBrainParameters
"""A brain: ``brain_name``, ``is_training``, ``continuous_size``, ``discrete_branches``,
``action_descriptions``."""

DecodeLimits = _native.DecodeLimits
"""Bounds on what one message from Unity may make the decoder allocate (keyword-only
arguments ``max_agents``, ``max_observations``, ``max_observation_elements``,
``max_png_pixels``, ``max_discrete_branches``, ``max_action_size``, ``max_message_bytes``)."""

DECODE_LIMITS_ENV = "MLAGENTS_FAST_DECODE_LIMITS"
"""Environment variable that raises decoder limits for a scene that needs more, for example
``MLAGENTS_FAST_DECODE_LIMITS="max_png_pixels=100000000,max_message_bytes=8589934592"``.
Environment worker processes inherit it."""

_decode_limits: DecodeLimits | None = None


def _limits_from_environment() -> DecodeLimits:
    text = os.environ.get(DECODE_LIMITS_ENV, "").strip()
    overrides: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            overrides[name.strip()] = int(value.strip().replace("_", ""))
        except ValueError:
            raise InvalidArgumentError(
                f"{DECODE_LIMITS_ENV}: {item!r} is not NAME=INTEGER (for example "
                "max_png_pixels=100000000)"
            ) from None
    return _make_limits(overrides, DECODE_LIMITS_ENV)


def _make_limits(overrides: Mapping[str, int], source: str) -> DecodeLimits:
    known = DecodeLimits().as_dict()
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InvalidArgumentError(
            f"{source}: unknown decoder limit(s) {', '.join(unknown)}; "
            f"the limits are {', '.join(known)}"
        )
    try:
        return DecodeLimits(**overrides)
    except (OverflowError, TypeError) as err:
        raise InvalidArgumentError(f"{source}: {err}") from None


def get_decode_limits() -> DecodeLimits:
    """The decoder limits of this process: the defaults, raised by ``DECODE_LIMITS_ENV``
    (read on first use) or by :func:`set_decode_limits`."""
    global _decode_limits
    if _decode_limits is None:
        _decode_limits = _limits_from_environment()
    return _decode_limits


def set_decode_limits(**limits: int) -> DecodeLimits:
    """Set the decoder limits of this process: the given ones, the others from
    ``DECODE_LIMITS_ENV`` or the defaults. Returns the new limits.

    Environment workers started in other processes read ``DECODE_LIMITS_ENV`` instead: set
    the variable to change their limits.
    """
    global _decode_limits
    merged = {**_limits_from_environment().as_dict(), **limits}
    _decode_limits = _make_limits(merged, "set_decode_limits")
    return _decode_limits


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
    """Decode a message from Unity given the behaviors announced so far.

    Any input raises a ``UnityProtocolException`` subclass or returns: never a crash.
    """
    return _native.decode_unity_output(data, known_specs_argument(specs), get_decode_limits())


_DIMENSION_FLAGS = reduce(or_, (int(flag) for flag in DimensionProperty), 0)
_OBSERVATION_TYPES = {int(member.value): member for member in ObservationType}


def _observation_spec(
    behavior_name: str, index: int, observation: DecodedObservation
) -> ObservationSpec:
    shape = observation.shape
    dimension_properties = observation.dimension_properties
    observation_type = observation.observation_type
    name = observation.name
    what = f"observation {index} ({name!r}) of behavior {behavior_name!r}"
    if dimension_properties and len(dimension_properties) != len(shape):
        raise UnityMessageDecodeException(
            f"{what} has shape {tuple(shape)} but {len(dimension_properties)} dimension "
            "properties: Unity sends one per dimension"
        )
    for value in dimension_properties:
        if value < 0 or value & ~_DIMENSION_FLAGS:
            raise UnityMessageDecodeException(
                f"{what} has dimension property {value}, which is not a combination of "
                f"the DimensionProperty flags ({', '.join(f'{f.name}={int(f)}' for f in DimensionProperty)})"
            )
    if observation_type not in _OBSERVATION_TYPES:
        raise UnityMessageDecodeException(
            f"{what} has observation type {observation_type}, not one of "
            f"{', '.join(f'{t.name}={v}' for v, t in _OBSERVATION_TYPES.items())}"
        )
    return ObservationSpec(
        shape=tuple(shape),
        dimension_property=(
            tuple(DimensionProperty(d) for d in dimension_properties)
            if dimension_properties
            else (DimensionProperty.UNSPECIFIED,) * len(shape)
        ),
        observation_type=_OBSERVATION_TYPES[observation_type],
        name=name,
    )


def behavior_spec_from_decoded(new_spec: DecodedSpec, behavior_name: str = "") -> BehaviorSpec:
    """A BehaviorSpec from the ``new_spec`` of a decoded behavior (or a demo file's spec).

    An observation without dimension properties gets UNSPECIFIED on every axis. Unknown
    observation types or dimension properties raise UnityMessageDecodeException naming
    ``behavior_name``.
    """
    observation_specs = [
        _observation_spec(behavior_name, index, observation)
        for index, observation in enumerate(new_spec.observations)
    ]
    return BehaviorSpec(
        observation_specs, ActionSpec(new_spec.continuous_size, new_spec.discrete_branches)
    )


def _split_mask(mask: np.ndarray | None, branches: tuple[int, ...]) -> list[np.ndarray] | None:
    if mask is None:
        return None
    return np.split(mask, np.cumsum(branches)[:-1], axis=1)


def steps_from_decoded(behavior: DecodedBehavior) -> tuple[DecisionSteps, TerminalSteps]:
    """DecisionSteps and TerminalSteps of one decoded behavior."""
    decision = behavior.decision
    decision_steps = DecisionSteps(
        decision.obs,
        decision.reward,
        decision.agent_id,
        _split_mask(behavior.action_mask, behavior.discrete_branches),
        decision.group_id,
        decision.group_reward,
    )
    terminal = behavior.terminal
    terminal_steps = TerminalSteps(
        terminal.obs,
        terminal.reward,
        terminal.interrupted,
        terminal.agent_id,
        terminal.group_id,
        terminal.group_reward,
    )
    return decision_steps, terminal_steps


def apply_decoded_output(
    decoded: DecodedOutput,
    specs: MutableMapping[str, BehaviorSpec],
    side_channel_manager: SideChannelManager,
) -> dict[str, tuple[DecisionSteps, TerminalSteps]]:
    """What ``UnityEnvironment`` does with a decoded message: add the behaviors it announces
    to ``specs``, hand its side-channel bytes to the channels, and return the steps of every
    known behavior (empty for behaviors without agents in this message).
    """
    found = {}
    for behavior in decoded.behaviors:
        name = behavior.name
        if behavior.new_spec is not None:
            specs[name] = behavior_spec_from_decoded(behavior.new_spec, name)
            logger.info("Connected new brain: %s", name)
        found[name] = behavior
    side_channel_manager.process_side_channel_message(decoded.side_channel)
    return {
        name: (
            steps_from_decoded(found[name])
            if name in found
            else (DecisionSteps.empty(spec), TerminalSteps.empty(spec))
        )
        for name, spec in specs.items()
    }


# --- ML-Agents' protobuf-object API -------------------------------------------------------
# For code that holds protobuf messages (``mlagents_fast.envs.communicator_objects``). The
# messages are serialized and go through the same Rust decoder as the live link, so both
# paths give the same arrays, masks and errors.

_PROTO_BEHAVIOR = "behavior"


def _decode_agent_infos(
    agent_infos: Iterable[AgentInfoProto],
    brain_parameters: BrainParametersProto | None,
    known: Mapping[str, BehaviorSpec],
) -> list[DecodedBehavior]:
    from mlagents_fast.envs.communicator_objects.unity_message_pb2 import UnityMessageProto

    message = UnityMessageProto()
    message.header.status = 200
    message.unity_output.rl_output.agentInfos[_PROTO_BEHAVIOR].value.extend(agent_infos)
    if brain_parameters is not None:
        brain = message.unity_output.rl_initialization_output.brain_parameters.add()
        brain.CopyFrom(brain_parameters)
        brain.brain_name = _PROTO_BEHAVIOR
    return decode_output(message.SerializeToString(), known).behaviors


def behavior_spec_from_proto(
    brain_param_proto: BrainParametersProto, agent_info: AgentInfoProto
) -> BehaviorSpec:
    """The BehaviorSpec of a ``BrainParametersProto``, observation shapes from ``agent_info``.

    As ML-Agents: a brain from a communicator older than 1.3 (no action spec) is read from
    the deprecated vector-action fields.
    """
    for behavior in _decode_agent_infos([agent_info], brain_param_proto, {}):
        if behavior.new_spec is not None:
            return behavior_spec_from_decoded(behavior.new_spec)
    raise UnityObservationException("the brain parameters describe no behavior")


def steps_from_proto(
    agent_info_list: Iterable[AgentInfoProto], behavior_spec: BehaviorSpec
) -> tuple[DecisionSteps, TerminalSteps]:
    """DecisionSteps (agents not done) and TerminalSteps (done) of ``AgentInfoProto`` messages.

    Observations must match ``behavior_spec`` (else UnityObservationException); NaN or
    infinite rewards raise as on the live link.
    """
    agent_infos = list(agent_info_list)
    if agent_infos:
        for behavior in _decode_agent_infos(agent_infos, None, {_PROTO_BEHAVIOR: behavior_spec}):
            if behavior.name == _PROTO_BEHAVIOR:
                return steps_from_decoded(behavior)
    return DecisionSteps.empty(behavior_spec), TerminalSteps.empty(behavior_spec)
