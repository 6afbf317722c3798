"""A pure-Python multi-agent BaseEnv for trainer tests (no Rust environment needed).

``TeamGameEnv``: ``num_areas`` areas; in each, every behavior of ``behaviors`` has
``agents_per_area`` agents, in one group per area (group ids unique per area and behavior)
unless the behavior is not ``grouped`` (group id 0). Observations are seeded random vectors or
images of the behavior's shapes. An episode lasts ``episode_length`` decisions for the whole
area; with ``leave_at``, the first agent of every grouped behavior leaves at that decision
(its episode ends, terminated, while its mates go on) and is back for the next episode.
Every third episode ends interrupted (max step). Rewards: each agent gets ``+0.01`` per
decision where its first action component (continuous) or first branch (discrete) is
"high"; at the end of a match the area's teams get a zero-sum group reward, +1 to the team
(behavior) whose agents chose "high" most often over the episode, -1 to the others (both 0
on a tie). Behavior names follow Unity's ``Name?team=N``.
"""

from __future__ import annotations

from typing import NamedTuple

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
from mlagents_fast.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents_fast.trainers.trajectory import AgentExperience, AgentStatus, Trajectory


class FakeBehavior(NamedTuple):
    name: str
    """Fully qualified behavior name, e.g. ``SoccerTwos?team=1``."""
    obs_shapes: list[tuple[int, ...]]
    """Shapes of the observations: (n,) vectors, (c, h, w) images."""
    action_spec: ActionSpec
    agents_per_area: int
    grouped: bool = True


def observation_spec(shape: tuple[int, ...], index: int) -> ObservationSpec:
    if len(shape) == 1:
        properties = (DimensionProperty.NONE,)
    else:
        properties = (
            DimensionProperty.NONE,
            DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
            DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        )
    return ObservationSpec(shape, properties, ObservationType.DEFAULT, f"sensor{index}")


class TeamGameEnv(BaseEnv):
    def __init__(
        self,
        behaviors: list[FakeBehavior],
        num_areas: int = 2,
        episode_length: int = 8,
        leave_at: int | None = None,
        seed: int = 0,
    ) -> None:
        self.behaviors = behaviors
        self.num_areas = num_areas
        self.episode_length = episode_length
        self.leave_at = leave_at
        self.rng = np.random.default_rng(seed)
        self.specs = {
            b.name: BehaviorSpec(
                [observation_spec(shape, i) for i, shape in enumerate(b.obs_shapes)],
                b.action_spec,
            )
            for b in behaviors
        }
        self.episodes = 0
        self.closed = False
        self.reset()

    @property
    def behavior_specs(self) -> BehaviorMapping:
        return BehaviorMapping(self.specs)

    def _agent_ids(self, index: int, area: int) -> np.ndarray:
        count = self.behaviors[index].agents_per_area
        return np.arange(count, dtype=np.int32) + area * count

    def _group_ids(self, index: int, area: int, count: int) -> np.ndarray:
        if not self.behaviors[index].grouped:
            return np.zeros(count, np.int32)
        return np.full(count, 1 + area * len(self.behaviors) + index, np.int32)

    def _obs(self, index: int, count: int) -> list[np.ndarray]:
        return [
            self.rng.normal(size=(count, *shape)).astype(np.float32)
            for shape in self.behaviors[index].obs_shapes
        ]

    def reset(self) -> None:
        self.t = np.zeros(self.num_areas, np.int64)
        self.alive = [np.ones((self.num_areas, b.agents_per_area), bool) for b in self.behaviors]
        self.high_counts = np.zeros((self.num_areas, len(self.behaviors)), np.int64)
        self.actions: dict[str, ActionTuple] = {}
        self._steps = {}
        for index, behavior in enumerate(self.behaviors):
            ids = np.concatenate([self._agent_ids(index, a) for a in range(self.num_areas)])
            self._steps[behavior.name] = (
                self._decision(index, ids, np.zeros(len(ids), np.float32), np.zeros(len(ids))),
                self._terminal(index, np.zeros(0, np.int32), np.zeros(0), np.zeros(0), False),
            )

    def _decision(self, index, ids, rewards, group_rewards) -> DecisionSteps:
        count = len(ids)
        spec = self.behaviors[index].action_spec
        mask = None
        if spec.discrete_branches:
            mask = [np.zeros((count, branch), bool) for branch in spec.discrete_branches]
        areas = ids // self.behaviors[index].agents_per_area
        groups = np.array(
            [self._group_ids(index, int(a), 1)[0] for a in areas], dtype=np.int32
        ).reshape(count)
        return DecisionSteps(
            self._obs(index, count),
            np.asarray(rewards, np.float32),
            np.asarray(ids, np.int32),
            mask,
            groups,
            np.asarray(group_rewards, np.float32),
        )

    def _terminal(self, index, ids, rewards, group_rewards, interrupted) -> TerminalSteps:
        count = len(ids)
        areas = np.asarray(ids) // self.behaviors[index].agents_per_area
        groups = np.array(
            [self._group_ids(index, int(a), 1)[0] for a in areas], dtype=np.int32
        ).reshape(count)
        return TerminalSteps(
            self._obs(index, count),
            np.asarray(rewards, np.float32),
            np.broadcast_to(np.asarray(interrupted, bool), (count,)).copy(),
            np.asarray(ids, np.int32),
            groups,
            np.asarray(group_rewards, np.float32),
        )

    def set_actions(self, behavior_name, action: ActionTuple) -> None:
        self.actions[behavior_name] = action

    def set_action_for_agent(self, behavior_name, agent_id, action) -> None:
        raise NotImplementedError

    def _high(self, index: int, count: int) -> np.ndarray:
        action = self.actions.get(self.behaviors[index].name)
        if action is None:
            return np.zeros(count, bool)
        if action.continuous is not None and action.continuous.shape[1]:
            return action.continuous[:, 0] > 0
        return action.discrete[:, 0] > 0

    def step(self) -> None:
        self.t += 1
        ending = self.t >= self.episode_length
        interrupted = self.episodes % 3 == 2
        leaving = self.t == self.leave_at if self.leave_at is not None else np.zeros_like(ending)
        # Who acted: every agent of the last decision steps, in their order.
        acted = {}
        for index, behavior in enumerate(self.behaviors):
            decision, _ = self._steps[behavior.name]
            high = self._high(index, len(decision))
            ids = decision.agent_id
            acted[index] = (ids, high)
            areas = ids // behavior.agents_per_area
            np.add.at(self.high_counts[:, index], areas, high.astype(np.int64))
        # Zero-sum group result of every area whose match ends now.
        results = np.zeros((self.num_areas, len(self.behaviors)), np.float32)
        for area in np.nonzero(ending)[0]:
            counts = self.high_counts[area]
            best = counts.max()
            if (counts == best).sum() == 1 and not interrupted:
                results[area] = np.where(counts == best, 1.0, -1.0)
        for index, behavior in enumerate(self.behaviors):
            ids, high = acted[index]
            per_area = behavior.agents_per_area
            rewards = np.where(high, 0.01, 0.0).astype(np.float32)
            areas = ids // per_area
            ends = ending[areas]
            leaves = np.zeros(len(ids), bool)
            if behavior.grouped:
                leaves = leaving[areas] & (ids % per_area == 0) & ~ends
            terminal_ids = ids[ends | leaves]
            terminal_group = np.where(ends, results[areas, index], 0.0)[ends | leaves]
            # Leavers terminate; the agents of a max-step match are interrupted.
            terminal = self._terminal(
                index,
                terminal_ids,
                rewards[ends | leaves],
                terminal_group,
                (ends & interrupted)[ends | leaves],
            )
            for agent_id in ids[leaves]:
                self.alive[index][agent_id // per_area, agent_id % per_area] = False
            # Continuing agents, then every agent of an area that starts over.
            going_on = ~(ends | leaves)
            decision_ids = [ids[going_on]]
            decision_rewards = [rewards[going_on]]
            for area in np.nonzero(ending)[0]:
                fresh = self._agent_ids(index, int(area))
                decision_ids.append(fresh)
                decision_rewards.append(np.zeros(len(fresh), np.float32))
                self.alive[index][area] = True
            all_ids = np.concatenate(decision_ids)
            all_rewards = np.concatenate(decision_rewards)
            self._steps[behavior.name] = (
                self._decision(index, all_ids, all_rewards, np.zeros(len(all_ids))),
                terminal,
            )
        if ending.any():
            self.high_counts[ending] = 0
            self.t[ending] = 0
            self.episodes += 1
        self.actions = {}

    def get_steps(self, behavior_name):
        return self._steps[behavior_name]

    def close(self) -> None:
        self.closed = True


def coop_env(seed: int = 0, leave_at: int | None = 3, num_areas: int = 2) -> TeamGameEnv:
    """One cooperative behavior ``Coop?team=0``: groups of 3, one 2-branch discrete action."""
    return TeamGameEnv(
        [FakeBehavior("Coop?team=0", [(4,)], ActionSpec.create_discrete((2, 3)), 3)],
        num_areas=num_areas,
        episode_length=8,
        leave_at=leave_at,
        seed=seed,
    )


def two_team_env(
    name: str = "Duel", group_size: int = 2, seed: int = 0, grouped: bool = True
) -> TeamGameEnv:
    """Two teams of one behavior (``Name?team=0`` and ``Name?team=1``), continuous actions."""
    spec = ActionSpec.create_continuous(2)
    return TeamGameEnv(
        [
            FakeBehavior(f"{name}?team=0", [(5,)], spec, group_size, grouped),
            FakeBehavior(f"{name}?team=1", [(5,)], spec, group_size, grouped),
        ],
        num_areas=2,
        episode_length=6,
        seed=seed,
    )


def ragged_trajectory(mates_per_step: list[int], next_mates: int, seed: int = 0) -> Trajectory:
    """A trajectory whose steps have ``mates_per_step[t]`` group mates (agents join and
    leave), with two observations (a vector and a 2x2 grid), 1 continuous action and 2
    discrete branches."""
    rng = np.random.default_rng(seed)

    def obs():
        return [rng.random(3, dtype=np.float32), rng.random((2, 2), dtype=np.float32)]

    def action():
        return ActionTuple(
            continuous=rng.random(1, dtype=np.float32),
            discrete=rng.integers(0, 3, 2).astype(np.int32),
        )

    steps = []
    for t, mates in enumerate(mates_per_step):
        statuses = [
            AgentStatus(obs=obs(), reward=float(rng.random()), action=action(), done=bool(j % 2))
            for j in range(mates)
        ]
        steps.append(
            AgentExperience(
                obs=obs(),
                reward=float(rng.random()),
                done=t == len(mates_per_step) - 1,
                action=action(),
                action_probs=LogProbsTuple(
                    continuous=rng.random(1, dtype=np.float32),
                    discrete=rng.random(2, dtype=np.float32),
                ),
                action_mask=[np.zeros(3, bool), np.zeros(3, bool)],
                prev_action=np.zeros(2, np.int32),
                interrupted=False,
                memory=None,
                group_status=statuses,
                group_reward=0.25,
            )
        )
    return Trajectory(
        steps=steps,
        next_obs=obs(),
        next_group_obs=[obs() for _ in range(next_mates)],
        agent_id=f"agent-{seed}",
        behavior_id="Team?team=0",
    )
