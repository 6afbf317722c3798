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

__all__ = [
    "DecodedOutput",
    "behavior_spec_from_decoded",
    "decode_output",
    "known_specs_argument",
    "steps_from_decoded",
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
