"""Built-in environments that need no Unity, as :class:`~mlagents_fast.envs.base_env.BaseEnv`.

Each environment runs in Rust, many agents at once (``num_areas`` training areas of
``agents_per_area`` agents, like the areas of a Unity scene), and is addressed
``builtin:<Name>`` by :func:`mlagents_fast.envs.env_opener.make_env` and the trainer's
``--env``. Behaviors are named like Unity names them (``3DBall?team=0``); a two-team game
has one behavior per team (``Tennis?team=0``, ``Tennis?team=1``).

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
``Sorter``                1 branch of 4, masked       ML-Agents' Sorter on a 7x7 grid: visit
                                                      1 to ``num_tiles`` (default 20) numbered
                                                      tiles in ascending order (+1 each, -1 and
                                                      the end for a wrong one); a 2-float vector
                                                      and a buffer sensor of up to 20 tiles x 23
                                                      floats (variable length); 8 agents/area.
``DungeonEscape``         1 branch of 5, masked       Cooperative, 3 agents in one group: one
                                                      slays the dragon and dies (leaves the
                                                      group), another takes the key to the
                                                      door: group reward +1; 19 observations.
``Tennis``                1 branch of 3 per team      Two teams (``Tennis?team=0`` and
                                                      ``?team=1``, a group each) play a Pong-
                                                      like point: +1 to the scorers, -1 to the
                                                      others; observations mirrored per team;
                                                      ``agents_per_area`` 2, 4 or 6 (team size).
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


def _behavior_spec(behavior: dict) -> BehaviorSpec:
    """The BehaviorSpec of one entry of ``BuiltinVectorEnv.behaviors``."""
    observation_specs = [
        ObservationSpec(
            shape=tuple(shape),
            dimension_property=tuple(DimensionProperty(p) for p in properties),
            observation_type=ObservationType.DEFAULT,
            name=sensor_name,
        )
        for shape, properties, sensor_name in zip(
            behavior["observation_shapes"],
            behavior["observation_dimension_properties"],
            behavior["observation_names"],
            strict=True,
        )
    ]
    action_spec = ActionSpec(behavior["continuous_size"], tuple(behavior["discrete_branches"]))
    return BehaviorSpec(observation_specs, action_spec)


def _split_records(data: bytes | bytearray) -> list[tuple[uuid.UUID, bytes]]:
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
    - agents_per_area: overrides the environment's default (1 gives a single-agent env;
      multi-agent environments accept only the counts their rules allow).

    Every agent still in its episode asks for a decision at every step. An agent whose
    episode ends appears in the TerminalSteps (its last observation, old id) and, once its
    area starts the next episode, in the DecisionSteps under a new id with reward 0: agent
    ids are episode ids, as Unity's are. In multi-agent environments an agent can end its
    episode before its area does (it left its group); it then asks for no decision until
    the area's next episode, so the DecisionSteps can hold fewer agents than
    ``num_agents``. ``group_id`` and ``group_reward`` are those of Unity's
    ``SimpleMultiAgentGroup`` (0 for agents in no group).
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
        specs = {behavior["name"]: _behavior_spec(behavior) for behavior in self._native.behaviors}
        self._behavior_names: tuple[BehaviorName, ...] = tuple(specs)
        self._specs = BehaviorMapping(specs)
        self._steps: dict[BehaviorName, tuple[DecisionSteps, TerminalSteps]] | None = None
        self._pending_actions: dict[BehaviorName, ActionTuple] = {}
        self._closed = False

    @property
    def name(self) -> str:
        """The built-in name (``3DBall``), without the behavior's team suffix."""
        return self._name

    @property
    def num_agents(self) -> int:
        """Agents in the environment (``num_areas * agents_per_area``), every behavior."""
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
        every agent that asked for a decision by one decision."""
        self._check_open()
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before the first step()")
        self._apply_side_channels()
        actions = []
        for name in self._behavior_names:
            action = self._pending_actions.get(name)
            if action is None:
                action = self._specs[name].action_spec.empty_action(len(self._steps[name][0]))
            actions.append(
                (
                    np.ascontiguousarray(action.continuous, dtype=np.float32),
                    np.ascontiguousarray(action.discrete, dtype=np.int32),
                )
            )
        self._store(self._native.step(actions))

    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_open()
        self._check_behavior(behavior_name)
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before get_steps()")
        return self._steps[behavior_name]

    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        self._check_open()
        self._check_behavior(behavior_name)
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before set_actions()")
        if not isinstance(action, ActionTuple):
            raise UnityActionException(
                f"set_actions expects an ActionTuple, got {type(action).__name__}"
            )
        spec = self._specs[behavior_name]
        spec.action_spec._validate_action(action, len(self._steps[behavior_name][0]), behavior_name)
        self._check_action_values(behavior_name, action)
        self._pending_actions[behavior_name] = action

    def set_action_for_agent(
        self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple
    ) -> None:
        self._check_open()
        self._check_behavior(behavior_name)
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before set_action_for_agent()")
        action_spec = self._specs[behavior_name].action_spec
        action_spec._validate_action(action, 1, behavior_name)
        self._check_action_values(behavior_name, action)
        decisions = self._steps[behavior_name][0]
        index = decisions.agent_id_to_index.get(agent_id)
        if index is None:
            raise UnityEnvironmentException(
                f"agent_id {agent_id} did not request a decision at the previous step"
            )
        pending = self._pending_actions.get(behavior_name)
        if pending is None:
            pending = action_spec.empty_action(len(decisions))
        else:
            # Copies, so a caller's arrays given to set_actions are never written to.
            pending = ActionTuple(
                continuous=pending.continuous.copy(), discrete=pending.discrete.copy()
            )
        pending.continuous[index] = action.continuous[0]
        pending.discrete[index] = action.discrete[0]
        self._pending_actions[behavior_name] = pending

    def close(self) -> None:
        """Free the environment; any later call raises UnityEnvironmentException."""
        self._closed = True
        self._steps = None

    def _check_open(self) -> None:
        if self._closed:
            raise UnityEnvironmentException(f"the built-in environment {self._name} is closed")

    def _check_behavior(self, behavior_name: BehaviorName) -> None:
        if behavior_name not in self._specs:
            raise UnityActionException(
                f"The group {behavior_name} does not correspond to an existing agent group "
                f"in the environment (this one has {', '.join(map(repr, self._behavior_names))})"
            )

    def _check_action_values(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        if action.continuous.size and not np.all(np.isfinite(action.continuous)):
            raise UnityActionException(
                f"continuous actions of {behavior_name} contain NaN or infinity"
            )
        branches = self._specs[behavior_name].action_spec.discrete_branches
        if branches:
            discrete = action.discrete
            out_of_range = (discrete < 0) | (discrete >= np.asarray(branches))
            if np.any(out_of_range):
                row, branch = (int(i) for i in np.argwhere(out_of_range)[0])
                raise UnityActionException(
                    f"discrete action {int(discrete[row, branch])} of agent index {row}, "
                    f"branch {branch} is outside [0, {branches[branch]})"
                )

    def _store(self, batches: list[dict]) -> None:
        steps = {}
        for name, batch in zip(self._behavior_names, batches, strict=True):
            masks = None
            if batch["action_mask"] is not None:
                bounds = np.cumsum(self._specs[name].action_spec.discrete_branches)[:-1]
                masks = np.split(batch["action_mask"], bounds, axis=1)
            decisions = DecisionSteps(
                obs=batch["decision_obs"],
                reward=batch["decision_reward"],
                agent_id=batch["decision_agent_id"],
                action_mask=masks,
                group_id=batch["decision_group_id"],
                group_reward=batch["decision_group_reward"],
            )
            terminals = TerminalSteps(
                obs=batch["terminal_obs"],
                reward=batch["terminal_reward"],
                interrupted=batch["terminal_interrupted"],
                agent_id=batch["terminal_agent_id"],
                group_id=batch["terminal_group_id"],
                group_reward=batch["terminal_group_reward"],
            )
            steps[name] = (decisions, terminals)
        self._steps = steps
        self._pending_actions = {}

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
