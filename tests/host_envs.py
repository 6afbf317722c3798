"""Tiny pure-Python BaseEnvs served by mlagents-fast-env in the link tests (not a test module).

``CounterEnv`` makes every value checkable from the trainer side: each agent observes
``[step, agent_slot, last_continuous_action, last_discrete_action, reward_scale, time_scale]``,
gets ``reward_scale * last_continuous_action`` as reward, and its episode is interrupted after
``EPISODE_LENGTH`` decisions. Agent ids are episode ids, as Unity's are.
"""

from __future__ import annotations

import os
import struct

import numpy as np
from mlagents_fast.envs.base_env import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorMapping,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlagents_fast.envs.side_channel import (
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    IncomingMessage,
    SideChannelManager,
)

BEHAVIOR = "Counter?team=0"
EPISODE_LENGTH = 5
OBS_SIZE = 6


class CounterEnv(BaseEnv):
    def __init__(self, seed=0, num_areas=1, side_channels=(), nan_at_step=None, crash_at_step=None):
        self.n_agents = 2 * num_areas
        self.seed = seed
        self._manager = SideChannelManager(list(side_channels))
        self._spec = BehaviorSpec(
            [
                ObservationSpec(
                    (OBS_SIZE,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "counter"
                )
            ],
            ActionSpec.create_hybrid(1, (2,)),
        )
        self.reward_scale = 1.0
        self.time_scale = 0.0
        self._nan_at_step = nan_at_step
        self._crash_at_step = crash_at_step
        self._total_steps = 0
        self._next_id = seed * 1000
        self._actions: ActionTuple | None = None

    @property
    def behavior_specs(self):
        return BehaviorMapping({BEHAVIOR: self._spec})

    def _apply_side_channels(self):
        data = bytes(self._manager.generate_side_channel_messages())
        offset = 0
        while offset < len(data):
            channel = data[offset : offset + 16]
            (length,) = struct.unpack_from("<i", data, offset + 16)
            message = IncomingMessage(data[offset + 20 : offset + 20 + length])
            offset += 20 + length
            if channel == EnvironmentParametersChannel.CHANNEL_ID.bytes_le:
                key, _kind, value = (
                    message.read_string(),
                    message.read_int32(),
                    message.read_float32(),
                )
                if key == "reward_scale":
                    self.reward_scale = value
            elif (
                channel == EngineConfigurationChannel.CHANNEL_ID.bytes_le
                and message.read_int32() == EngineConfigurationChannel.ConfigurationType.TIME_SCALE
            ):
                self.time_scale = message.read_float32()

    def _new_ids(self, count):
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int32)
        self._next_id += count
        return ids

    def reset(self):
        self._apply_side_channels()
        self.step_in_episode = 0
        self.ids = self._new_ids(self.n_agents)
        self.last_continuous = np.zeros(self.n_agents, np.float32)
        self.last_discrete = np.zeros(self.n_agents, np.float32)
        self._terminal = TerminalSteps.empty(self._spec)
        self._publish(np.zeros(self.n_agents, np.float32))

    def step(self):
        self._apply_side_channels()
        self._total_steps += 1
        if self._crash_at_step is not None and self._total_steps >= self._crash_at_step:
            os._exit(7)
        actions = self._actions or self._spec.action_spec.empty_action(self.n_agents)
        self._actions = None
        self.last_continuous = actions.continuous[:, 0].copy()
        self.last_discrete = actions.discrete[:, 0].astype(np.float32)
        rewards = (self.reward_scale * self.last_continuous).astype(np.float32)
        self.step_in_episode += 1
        if self.step_in_episode >= EPISODE_LENGTH:
            self._terminal = TerminalSteps(
                [self._observations()],
                rewards,
                np.ones(self.n_agents, bool),
                self.ids.copy(),
                np.zeros(self.n_agents, np.int32),
                np.zeros(self.n_agents, np.float32),
            )
            self.step_in_episode = 0
            self.ids = self._new_ids(self.n_agents)
            self._publish(np.zeros(self.n_agents, np.float32))
        else:
            self._terminal = TerminalSteps.empty(self._spec)
            self._publish(rewards)

    def _observations(self):
        obs = np.zeros((self.n_agents, OBS_SIZE), np.float32)
        obs[:, 0] = self.step_in_episode
        obs[:, 1] = np.arange(self.n_agents)
        obs[:, 2] = self.last_continuous
        obs[:, 3] = self.last_discrete
        obs[:, 4] = self.reward_scale
        obs[:, 5] = self.time_scale
        if self._nan_at_step is not None and self._total_steps >= self._nan_at_step:
            obs[0, 0] = np.nan
        return obs

    def _publish(self, rewards):
        # Agent slot 1 may not take action 1 on its branch: the mask tests carry it.
        mask = np.zeros((self.n_agents, 2), bool)
        mask[1::2, 1] = True
        self._decision = DecisionSteps(
            [self._observations()],
            rewards,
            self.ids.copy(),
            [mask],
            np.zeros(self.n_agents, np.int32),
            np.zeros(self.n_agents, np.float32),
        )

    def get_steps(self, behavior_name):
        return self._decision, self._terminal

    def set_actions(self, behavior_name, action):
        self._actions = self._spec.action_spec._validate_action(
            action, self.n_agents, behavior_name
        )

    def set_action_for_agent(self, behavior_name, agent_id, action):
        raise NotImplementedError

    def close(self):
        pass


def make_counter_env(seed, num_areas, side_channels):
    return CounterEnv(seed, num_areas, side_channels)


def make_nan_env(seed, num_areas, side_channels):
    return CounterEnv(seed, num_areas, side_channels, nan_at_step=3)


def make_crashing_env(seed, num_areas, side_channels):
    return CounterEnv(seed, num_areas, side_channels, crash_at_step=4)
