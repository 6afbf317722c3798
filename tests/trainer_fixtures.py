"""A tiny pure-Python BaseEnv for trainer tests (no Rust environment needed).

``SignEnv``: every agent observes ``s`` in {-1, +1} (plus a constant 1); the right action is
``s`` (continuous: any action with the sign of ``s``; discrete: action 1 when ``s > 0``, else 0).
Reward +0.1 per right action. An episode lasts ``episode_length`` decisions; it ends as
*terminated* for odd agent slots and as *interrupted* (max step) for even ones. Agent ids are
kept across episodes (as Unity does) unless ``new_ids_per_episode``.
"""

from __future__ import annotations

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


class SignEnv(BaseEnv):
    def __init__(
        self,
        num_agents: int = 4,
        discrete: bool = False,
        episode_length: int = 5,
        seed: int = 0,
        behavior_name: str = "Sign",
        new_ids_per_episode: bool = False,
    ) -> None:
        self.num_agents = num_agents
        self.discrete = discrete
        self.episode_length = episode_length
        self.behavior_name = behavior_name
        self.new_ids_per_episode = new_ids_per_episode
        self.rng = np.random.default_rng(seed)
        action_spec = (
            ActionSpec.create_discrete((2,)) if discrete else ActionSpec.create_continuous(1)
        )
        obs_spec = ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "sign")
        self._spec = BehaviorSpec([obs_spec], action_spec)
        self.steps_taken = 0
        self.closed = False
        self.reset()

    @property
    def behavior_specs(self):
        return BehaviorMapping({self.behavior_name: self._spec})

    def reset(self) -> None:
        self.ids = np.arange(self.num_agents, dtype=np.int32)
        self.next_id = self.num_agents
        self.signs = self.rng.choice([-1.0, 1.0], size=self.num_agents).astype(np.float32)
        self.t = np.zeros(self.num_agents, dtype=np.int32)
        self.actions = None
        self._decision = self._decision_steps(np.zeros(self.num_agents, np.float32))
        self._terminal = TerminalSteps.empty(self._spec)

    def _obs(self, signs):
        return [np.stack([signs, np.ones_like(signs)], axis=1).astype(np.float32)]

    def _decision_steps(self, rewards):
        mask = [np.zeros((self.num_agents, 2), dtype=bool)] if self.discrete else None
        return DecisionSteps(
            self._obs(self.signs),
            rewards.astype(np.float32),
            self.ids.copy(),
            mask,
            np.zeros(self.num_agents, np.int32),
            np.zeros(self.num_agents, np.float32),
        )

    def set_actions(self, behavior_name, action: ActionTuple) -> None:
        assert behavior_name == self.behavior_name
        self.actions = action

    def set_action_for_agent(self, behavior_name, agent_id, action) -> None:
        raise NotImplementedError

    def step(self) -> None:
        self.steps_taken += 1
        if self.actions is None:
            chosen = np.zeros(self.num_agents, np.float32)
        elif self.discrete:
            chosen = np.where(self.actions.discrete[:, 0] == 1, 1.0, -1.0)
        else:
            chosen = np.sign(self.actions.continuous[:, 0])
        rewards = np.where(chosen == self.signs, 0.1, 0.0).astype(np.float32)
        self.t += 1
        ended = self.t >= self.episode_length
        ended_slots = np.nonzero(ended)[0]
        final_obs = self._obs(self.signs[ended_slots])
        self._terminal = TerminalSteps(
            final_obs,
            rewards[ended_slots],
            (ended_slots % 2 == 0),
            self.ids[ended_slots].copy(),
            np.zeros(len(ended_slots), np.int32),
            np.zeros(len(ended_slots), np.float32),
        )
        self.signs = self.rng.choice([-1.0, 1.0], size=self.num_agents).astype(np.float32)
        self.t[ended] = 0
        if self.new_ids_per_episode:
            for slot in ended_slots:
                self.ids[slot] = self.next_id
                self.next_id += 1
        # A new episode starts at once; its first decision carries no reward.
        decision_rewards = np.where(ended, 0.0, rewards).astype(np.float32)
        self._decision = self._decision_steps(decision_rewards)
        self.actions = None

    def get_steps(self, behavior_name):
        assert behavior_name == self.behavior_name
        return self._decision, self._terminal

    def close(self) -> None:
        self.closed = True
