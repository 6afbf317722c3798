"""Built-in environments that need no Unity, as :class:`~mlagents_fast.envs.base_env.BaseEnv`.

Each environment runs in Rust, many agents at once (``num_areas`` training areas of
``agents_per_area`` agents, like the areas of a Unity scene), and is addressed
``builtin:<Name>`` by :func:`mlagents_fast.envs.env_opener.make_env` and the trainer's
``--env``. One behavior per environment, named like Unity names it (``3DBall?team=0``).

========================  ==========================  =========================================
Name                      Actions                     What it is
========================  ==========================  =========================================
``3DBall``                2 continuous                ML-Agents' 3DBall: balance a ball on a
                                                      tilting platform; 8 observations; +0.1
                                                      per decision, -1 when it falls; 1000
                                                      decisions; 12 agents per area;
                                                      parameters ``mass``, ``gravity``,
                                                      ``scale``.
``GridWorld``             1 branch of 5, masked       Reach the goal (+1), avoid the pit (-1),
                                                      -0.01 per decision; 6 observations.
``VisualGridWorld``       1 branch of 5, masked       The same, seen as a ``[3, 20, 20]`` image.
``MemoryCorridor``        1 branch of 3, masked       A cue seen only at the first decision
                                                      names the goal to take at the end of a
                                                      corridor (``corridor_length``, default
                                                      3): needs memory (an LSTM) to beat 0.
``GoalSeeker1D``          1 continuous                Move to a goal on a line; +1 at the goal,
``GoalSeeker1DDiscrete``  1 branch of 3               -0.01 per decision; best return 0.96;
``GoalSeeker1DHybrid``    1 continuous + branch of 3  parameter ``goal_distance`` (default 1)
                                                      for curricula.
========================  ==========================  =========================================

The Rust module docs (``rust/core/src/envs/``) give each environment's exact rules.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import numpy as np

from mlagents_fast import _native
from mlagents_fast.envs.base_env import (
    ActionSpec,
    ActionTuple,
    AgentId,
    BaseEnv,
    BehaviorMapping,
    BehaviorName,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlagents_fast.envs.exception import (
    UnityActionException,
    UnityEnvironmentException,
    UnitySideChannelException,
)
from mlagents_fast.envs.side_channel import (
    DefaultTrainingAnalyticsSideChannel,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    IncomingMessage,
    SideChannel,
    SideChannelManager,
)

__all__ = ["BUILTIN_NAMES", "BuiltinEnv"]

logger = logging.getLogger(__name__)

BUILTIN_NAMES: tuple[str, ...] = tuple(_native.BUILTIN_NAMES)
"""Every built-in environment name, as ``builtin:<Name>`` accepts it (case-sensitive)."""

# Channels the Unity side of ML-Agents understands without a user component; messages on
# any other channel are skipped with a warning, as Unity does for unknown channel ids.
_ENVIRONMENT_PARAMETERS_ID = EnvironmentParametersChannel.CHANNEL_ID
_ENGINE_CONFIGURATION_ID = EngineConfigurationChannel.CHANNEL_ID
_TRAINING_ANALYTICS_ID = DefaultTrainingAnalyticsSideChannel.CHANNEL_ID
_RECORD_HEADER_SIZE = 20


def _split_records(data: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """Split side-channel bytes (docs/protocol.md section 8) into (channel id, payload) records."""
    records = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _RECORD_HEADER_SIZE:
            raise UnitySideChannelException(
                f"side-channel bytes end inside a record header at offset {offset}"
            )
        channel_id = uuid.UUID(bytes_le=bytes(data[offset : offset + 16]))
        length = int.from_bytes(data[offset + 16 : offset + 20], "little", signed=True)
        offset += _RECORD_HEADER_SIZE
        if length < 0 or offset + length > len(data):
            raise UnitySideChannelException(
                f"side-channel record for {channel_id} declares {length} bytes "
                f"but {len(data) - offset} remain"
            )
        records.append((channel_id, bytes(data[offset : offset + length])))
        offset += length
    return records


class BuiltinEnv(BaseEnv):
    """A built-in environment with the API of ``mlagents_envs``' BaseEnv.

    - name: one of :data:`BUILTIN_NAMES`.
    - seed: fixes every random draw (episode starts, samplers are seeded by their sender).
    - num_areas: training areas; the environment has ``num_areas * agents_per_area`` agents.
    - side_channels: SideChannel objects, as ``UnityEnvironment`` takes them. Their queued
      messages are sent at every ``reset``/``step``; EnvironmentParametersChannel records
      (floats and samplers) take effect at each agent's next episode start, as in Unity;
      EngineConfigurationChannel settings have no meaning here and are ignored.
    - agents_per_area: overrides the environment's default (1 gives a single-agent env).

    Every agent asks for a decision at every step. An agent whose episode ends appears in
    the TerminalSteps (its last observation, old id) and, already reset, in the
    DecisionSteps under a new id with reward 0: agent ids are episode ids, as Unity's are.
    """

    def __init__(
        self,
        name: str,
        *,
        seed: int = 0,
        num_areas: int = 1,
        side_channels: Sequence[SideChannel] = (),
        agents_per_area: int | None = None,
    ) -> None:
        if name not in BUILTIN_NAMES:
            raise UnityEnvironmentException(
                f"unknown built-in environment {name!r}; known: {', '.join(BUILTIN_NAMES)}"
            )
        if not isinstance(num_areas, int) or num_areas < 1:
            raise UnityEnvironmentException(f"num_areas must be an int >= 1, got {num_areas!r}")
        self._native = _native.BuiltinVectorEnv(name, seed % 2**64, num_areas, agents_per_area)
        self._side_channel_manager = SideChannelManager(list(side_channels))
        self._name = name
        self._behavior_name: BehaviorName = self._native.behavior_name
        observation_specs = [
            ObservationSpec(
                shape=tuple(shape),
                dimension_property=tuple(DimensionProperty(p) for p in properties),
                observation_type=ObservationType.DEFAULT,
                name=sensor_name,
            )
            for shape, properties, sensor_name in zip(
                self._native.observation_shapes,
                self._native.observation_dimension_properties,
                self._native.observation_names,
            )
        ]
        action_spec = ActionSpec(
            self._native.continuous_size, tuple(self._native.discrete_branches)
        )
        self._spec = BehaviorSpec(observation_specs, action_spec)
        self._specs = BehaviorMapping({self._behavior_name: self._spec})
        self._steps: tuple[DecisionSteps, TerminalSteps] | None = None
        self._pending_actions: ActionTuple | None = None
        self._closed = False

    @property
    def name(self) -> str:
        """The built-in name (``3DBall``), without the behavior's team suffix."""
        return self._name

    @property
    def num_agents(self) -> int:
        """Agents in the environment (``num_areas * agents_per_area``)."""
        return self._native.num_agents

    @property
    def max_decisions(self) -> int:
        """Decisions after which an episode is interrupted."""
        return self._native.max_decisions

    @property
    def behavior_specs(self) -> BehaviorMapping:
        return self._specs

    def reseed(self, seed: int) -> None:
        """Restart the random streams: the next ``reset`` starts the same episodes for the
        same ``seed`` (samplers keep the seeds their sender gave them)."""
        self._check_open()
        self._native.reseed(seed % 2**64)

    def reset(self) -> None:
        """Start a new episode for every agent (all agents get new ids)."""
        self._check_open()
        self._apply_side_channels()
        self._store(self._native.reset())

    def step(self) -> None:
        """Apply the actions set since the last step (zeros for agents without) and advance
        every agent by one decision."""
        self._check_open()
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before the first step()")
        self._apply_side_channels()
        actions = self._pending_actions
        if actions is None:
            actions = self._spec.action_spec.empty_action(self.num_agents)
        self._store(
            self._native.step(
                np.ascontiguousarray(actions.continuous, dtype=np.float32),
                np.ascontiguousarray(actions.discrete, dtype=np.int32),
            )
        )

    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_open()
        self._check_behavior(behavior_name)
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before get_steps()")
        return self._steps

    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        self._check_open()
        self._check_behavior(behavior_name)
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before set_actions()")
        if not isinstance(action, ActionTuple):
            raise UnityActionException(
                f"set_actions expects an ActionTuple, got {type(action).__name__}"
            )
        self._spec.action_spec._validate_action(action, self.num_agents, behavior_name)
        self._check_action_values(action)
        self._pending_actions = action

    def set_action_for_agent(
        self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple
    ) -> None:
        self._check_open()
        self._check_behavior(behavior_name)
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before set_action_for_agent()")
        action_spec = self._spec.action_spec
        action_spec._validate_action(action, 1, behavior_name)
        self._check_action_values(action)
        index = self._steps[0].agent_id_to_index.get(agent_id)
        if index is None:
            raise UnityEnvironmentException(
                f"agent_id {agent_id} did not request a decision at the previous step"
            )
        if self._pending_actions is None:
            self._pending_actions = action_spec.empty_action(self.num_agents)
        else:
            # Copies, so a caller's arrays given to set_actions are never written to.
            self._pending_actions = ActionTuple(
                continuous=self._pending_actions.continuous.copy(),
                discrete=self._pending_actions.discrete.copy(),
            )
        self._pending_actions.continuous[index] = action.continuous[0]
        self._pending_actions.discrete[index] = action.discrete[0]

    def close(self) -> None:
        """Free the environment; any later call raises UnityEnvironmentException."""
        self._closed = True
        self._steps = None

    def _check_open(self) -> None:
        if self._closed:
            raise UnityEnvironmentException(f"the built-in environment {self._name} is closed")

    def _check_behavior(self, behavior_name: BehaviorName) -> None:
        if behavior_name != self._behavior_name:
            raise UnityActionException(
                f"The group {behavior_name} does not correspond to an existing agent group "
                f"in the environment (this one has only {self._behavior_name!r})"
            )

    def _check_action_values(self, action: ActionTuple) -> None:
        if action.continuous.size and not np.all(np.isfinite(action.continuous)):
            raise UnityActionException(
                f"continuous actions of {self._behavior_name} contain NaN or infinity"
            )
        branches = self._spec.action_spec.discrete_branches
        if branches:
            discrete = action.discrete
            out_of_range = (discrete < 0) | (discrete >= np.asarray(branches))
            if np.any(out_of_range):
                row, branch = (int(i) for i in np.argwhere(out_of_range)[0])
                raise UnityActionException(
                    f"discrete action {int(discrete[row, branch])} of agent index {row}, "
                    f"branch {branch} is outside [0, {branches[branch]})"
                )

    def _store(self, arrays: tuple) -> None:
        (
            decision_obs,
            decision_reward,
            decision_agent_id,
            action_mask,
            terminal_obs,
            terminal_reward,
            terminal_agent_id,
            terminal_interrupted,
        ) = arrays
        masks = None
        if action_mask is not None:
            bounds = np.cumsum(self._spec.action_spec.discrete_branches)[:-1]
            masks = np.split(action_mask, bounds, axis=1)
        decisions = DecisionSteps(
            obs=decision_obs,
            reward=decision_reward,
            agent_id=decision_agent_id,
            action_mask=masks,
            group_id=np.zeros(len(decision_agent_id), dtype=np.int32),
            group_reward=np.zeros(len(decision_agent_id), dtype=np.float32),
        )
        terminals = TerminalSteps(
            obs=terminal_obs,
            reward=terminal_reward,
            interrupted=terminal_interrupted,
            agent_id=terminal_agent_id,
            group_id=np.zeros(len(terminal_agent_id), dtype=np.int32),
            group_reward=np.zeros(len(terminal_agent_id), dtype=np.float32),
        )
        self._steps = (decisions, terminals)
        self._pending_actions = None

    def _apply_side_channels(self) -> None:
        """Drain the side channels' queues and act on them as the Unity side would."""
        data = self._side_channel_manager.generate_side_channel_messages()
        for channel_id, payload in _split_records(data):
            if channel_id == _ENVIRONMENT_PARAMETERS_ID:
                self._apply_environment_parameter(IncomingMessage(payload))
            elif channel_id in (_ENGINE_CONFIGURATION_ID, _TRAINING_ANALYTICS_ID):
                continue  # screen size, quality, time scale and analytics mean nothing here
            else:
                logger.warning(
                    "Unknown side channel data received by %s. Channel type: %s.",
                    self._name,
                    channel_id,
                )

    def _apply_environment_parameter(self, message: IncomingMessage) -> None:
        key = message.read_string()
        data_type = message.read_int32()
        if data_type == EnvironmentParametersChannel.EnvironmentDataTypes.FLOAT:
            self._native.set_float_parameter(key, message.read_float32())
            return
        if data_type != EnvironmentParametersChannel.EnvironmentDataTypes.SAMPLER:
            raise UnitySideChannelException(
                f"environment parameter {key!r}: unknown data type {data_type}"
            )
        seed = message.read_int32()
        sampler_type = message.read_int32()
        sampler_types = EnvironmentParametersChannel.SamplerTypes
        if sampler_type == sampler_types.UNIFORM:
            low, high = message.read_float32(), message.read_float32()
            self._native.set_uniform_sampler(key, seed, low, high)
        elif sampler_type == sampler_types.GAUSSIAN:
            mean, st_dev = message.read_float32(), message.read_float32()
            self._native.set_gaussian_sampler(key, seed, mean, st_dev)
        elif sampler_type == sampler_types.MULTIRANGEUNIFORM:
            self._native.set_multirange_uniform_sampler(key, seed, message.read_float32_list())
        else:
            raise UnitySideChannelException(
                f"environment parameter {key!r}: unknown sampler type {sampler_type}"
            )
