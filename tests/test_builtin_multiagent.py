"""The built-ins that need variable-length observations, groups and teams, through the BaseEnv
API: Sorter (buffer sensor), DungeonEscape (cooperative, group reward, agents that leave the
group) and Tennis (two teams, zero-sum)."""

from __future__ import annotations

import numpy as np
import pytest
from mlagents_fast.envs.base_env import ActionTuple, DimensionProperty
from mlagents_fast.envs.builtin import BuiltinEnv
from mlagents_fast.envs.exception import UnityActionException, UnityEnvironmentException
from mlagents_fast.envs.side_channel import EnvironmentParametersChannel
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers

SORTER = "Sorter?team=0"
DUNGEON = "DungeonEscape?team=0"
TEAMS = ("Tennis?team=0", "Tennis?team=1")


def random_masked(rng: np.random.Generator, masks: list[np.ndarray]) -> np.ndarray:
    """One allowed action per agent for a single branch."""
    allowed = ~masks[0]
    choice = rng.random(allowed.shape) * allowed
    return np.argmax(choice, axis=1).astype(np.int32)[:, None]


def test_sorter_has_a_buffer_sensor_with_zero_padding():
    channel = EnvironmentParametersChannel()
    channel.set_float_parameter("num_tiles", 3.0)
    env = BuiltinEnv("Sorter", seed=2, num_areas=2, side_channels=[channel])
    vector, entities = env.behavior_specs[SORTER].observation_specs
    assert vector.shape == (2,)
    assert entities.shape == (20, 23)
    assert entities.dimension_property == (
        DimensionProperty.VARIABLE_SIZE,
        DimensionProperty.NONE,
    )
    assert entities.name == "BufferSensor"
    env.reset()
    decisions, _ = env.get_steps(SORTER)
    tiles = decisions.obs[1]
    counts = (np.abs(tiles).sum(axis=2) > 0).sum(axis=1)
    # 1 to num_tiles real rows first, zero padding after (what attention masks).
    assert set(counts.tolist()) <= {1, 2, 3} and len(set(counts.tolist())) > 1
    for row, count in zip(tiles, counts):
        assert np.all(row[count:] == 0.0)
        numbers = np.argmax(row[:count, :20], axis=1)
        assert np.all(np.diff(numbers) > 0)  # ascending, as Unity's Sorter lists them
    np.testing.assert_array_equal(decisions.obs[0], 0.0)  # everyone starts in the centre


def test_dungeon_agents_leave_the_group_and_escapes_pay_the_group():
    env = BuiltinEnv("DungeonEscape", seed=4, num_areas=8)
    rng = np.random.default_rng(0)
    env.reset()
    decisions, _ = env.get_steps(DUNGEON)
    assert len(decisions) == 24
    # One group per area, stable ids from 1, the same for the three members.
    np.testing.assert_array_equal(decisions.group_id, np.repeat(np.arange(1, 9), 3))
    saw_fewer_deciders = saw_leaver = saw_escape = False
    for _ in range(400):
        env.set_actions(DUNGEON, ActionTuple(discrete=random_masked(rng, decisions.action_mask)))
        env.step()
        decisions, terminals = env.get_steps(DUNGEON)
        assert set(decisions.group_id.tolist()) <= set(range(1, 9))
        saw_fewer_deciders |= len(decisions) < 24
        for index in range(len(terminals)):
            if terminals.group_reward[index] > 0:
                saw_escape = True
                assert terminals.group_reward[index] == 1.0
            elif not terminals.interrupted[index]:
                saw_leaver = True  # the slayer: ended, not interrupted, no reward
        assert np.all(terminals.reward == 0.0)  # only group rewards here
    assert saw_fewer_deciders and saw_leaver and saw_escape
    with pytest.raises(UnityActionException, match="dimension"):
        env.set_actions(DUNGEON, ActionTuple(discrete=np.zeros((len(decisions) + 1, 1))))


def test_tennis_has_two_team_behaviors_with_a_group_each_and_zero_sum_points():
    env = BuiltinEnv("Tennis", seed=0, num_areas=4)
    assert tuple(env.behavior_specs) == TEAMS
    ids = [BehaviorIdentifiers.from_name_behavior_id(name) for name in TEAMS]
    assert [(i.brain_name, i.team_id) for i in ids] == [("Tennis", 0), ("Tennis", 1)]
    spec0, spec1 = (env.behavior_specs[name] for name in TEAMS)
    assert spec0 == spec1  # one policy can play either side
    env.reset()
    groups = [env.get_steps(name)[0].group_id for name in TEAMS]
    np.testing.assert_array_equal(groups[0], [1, 3, 5, 7])
    np.testing.assert_array_equal(groups[1], [2, 4, 6, 8])
    rng = np.random.default_rng(1)
    points = 0
    for _ in range(600):
        for name in TEAMS:
            n = len(env.get_steps(name)[0])
            env.set_actions(name, ActionTuple(discrete=rng.integers(0, 3, (n, 1), np.int32)))
        env.step()
        ended = [env.get_steps(name)[1] for name in TEAMS]
        assert len(ended[0]) == len(ended[1])
        np.testing.assert_array_equal(ended[0].reward, -ended[1].reward)
        points += int(np.sum(ended[0].reward != 0))
    assert points > 20
    doubles = BuiltinEnv("Tennis", seed=0, agents_per_area=4)
    assert doubles.behavior_specs[TEAMS[0]].observation_specs[0].shape == (9,)


def test_multi_agent_builtins_refuse_agent_counts_their_rules_do_not_allow():
    with pytest.raises(InvalidArgumentError, match="DungeonEscape has 3 agents"):
        BuiltinEnv("DungeonEscape", agents_per_area=4)
    with pytest.raises(InvalidArgumentError, match="even number"):
        BuiltinEnv("Tennis", agents_per_area=3)


def test_actions_of_one_team_do_not_move_the_other():
    env = BuiltinEnv("Tennis", seed=3)
    env.reset()
    before = [env.get_steps(name)[0].obs[0].copy() for name in TEAMS]
    env.set_actions(TEAMS[0], ActionTuple(discrete=np.full((1, 1), 2, np.int32)))
    env.step()  # team 1 gets the default action 0 (down)
    after = [env.get_steps(name)[0].obs[0] for name in TEAMS]
    # Paddles start within +-0.5 and move 0.08 per decision (observation 1 is own height).
    assert after[0][0, 1] == pytest.approx(before[0][0, 1] + 0.08)
    assert after[1][0, 1] == pytest.approx(before[1][0, 1] - 0.08)
    with pytest.raises(UnityActionException, match="does not correspond"):
        env.set_actions("Tennis", ActionTuple(discrete=np.zeros((1, 1), np.int32)))
    env.close()
    with pytest.raises(UnityEnvironmentException, match="closed"):
        env.get_steps(TEAMS[0])
