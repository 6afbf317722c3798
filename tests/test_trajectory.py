"""Trajectory -> AgentBuffer: the per-step form against a step-by-step port of ML-Agents
1.1.0's loop, the columnar form against the per-step form, and bad columns."""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pytest
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.trajectory import (
    AgentExperience,
    AgentStatus,
    ColumnarTrajectory,
    GroupObsUtil,
    ObsUtil,
    Trajectory,
)


class ActionTuple(NamedTuple):
    """Duck type of mlagents_envs' ActionTuple / LogProbsTuple (continuous, discrete)."""

    continuous: np.ndarray
    discrete: np.ndarray


def make_trajectory(
    steps: int, group_size: int = 0, seed: int = 0, masks: bool = True
) -> Trajectory:
    rng = np.random.default_rng(seed)

    def obs():
        return [rng.random(3, dtype=np.float32), rng.random((2, 2), dtype=np.float32)]

    experiences = []
    for t in range(steps):
        group = [
            AgentStatus(
                obs=obs(),
                reward=float(t),
                action=ActionTuple(rng.random(2, dtype=np.float32), np.array([t], np.int32)),
                done=t == steps - 1,
            )
            for _ in range(group_size)
        ]
        experiences.append(
            AgentExperience(
                obs=obs(),
                reward=float(rng.random()),
                done=t == steps - 1,
                action=ActionTuple(
                    rng.random(2, dtype=np.float32), np.array([t % 2, t % 3], np.int32)
                ),
                action_probs=ActionTuple(
                    rng.random(2, dtype=np.float32), rng.random(2, dtype=np.float32)
                ),
                action_mask=[np.array([False, t % 2 == 0]), np.array([True, False, False])]
                if masks
                else None,
                prev_action=np.array([t - 1, t], np.int32),
                interrupted=False,
                memory=rng.random(4, dtype=np.float32),
                group_status=group,
                group_reward=0.5 * t,
            )
        )
    return Trajectory(
        steps=experiences,
        next_obs=obs(),
        next_group_obs=[obs() for _ in range(group_size)],
        agent_id="agent-0",
        behavior_id="Ball?team=0",
    )


def reference_rows(trajectory: Trajectory) -> dict:
    """Step-by-step port of ML-Agents 1.1.0 Trajectory.to_agentbuffer (numeric fields)."""
    rows: dict = {}

    def add(key, value):
        rows.setdefault(key, []).append(value)

    steps = trajectory.steps
    obs = steps[0].obs
    for index, exp in enumerate(steps):
        last = index == len(steps) - 1
        next_obs = trajectory.next_obs if last else steps[index + 1].obs
        for i in range(len(obs)):
            add(ObsUtil.get_name_at(i), obs[i])
            add(ObsUtil.get_name_at_next(i), next_obs[i])
        add(BufferKey.GROUP_REWARD, exp.group_reward)
        if exp.memory is not None:
            add(BufferKey.MEMORY, exp.memory)
        add(BufferKey.MASKS, 1.0)
        add(BufferKey.DONE, exp.done)
        add(BufferKey.CONTINUOUS_ACTION, exp.action.continuous)
        add(BufferKey.DISCRETE_ACTION, exp.action.discrete)
        if last:
            add(BufferKey.NEXT_CONT_ACTION, np.zeros_like(exp.action.continuous))
            add(BufferKey.NEXT_DISC_ACTION, np.zeros_like(exp.action.discrete))
        else:
            add(BufferKey.NEXT_CONT_ACTION, steps[index + 1].action.continuous)
            add(BufferKey.NEXT_DISC_ACTION, steps[index + 1].action.discrete)
        add(BufferKey.CONTINUOUS_LOG_PROBS, exp.action_probs.continuous)
        add(BufferKey.DISCRETE_LOG_PROBS, exp.action_probs.discrete)
        if exp.action_mask is not None:
            add(BufferKey.ACTION_MASK, 1 - np.concatenate(exp.action_mask))
        else:
            add(BufferKey.ACTION_MASK, np.ones(exp.action.discrete.shape, dtype=np.float32))
        add(BufferKey.PREV_ACTION, exp.prev_action)
        add(BufferKey.ENVIRONMENT_REWARDS, exp.reward)
        obs = next_obs
    return rows


def assert_matches_reference(buffer: AgentBuffer, trajectory: Trajectory) -> None:
    for key, rows in reference_rows(trajectory).items():
        got = np.asarray(buffer[key])
        expected = np.array(rows)
        assert got.shape == expected.shape, key
        if got.dtype == np.float32:
            expected = expected.astype(np.float32)  # ML-Agents stores Python floats
        np.testing.assert_array_equal(got, expected, err_msg=str(key))


@pytest.mark.parametrize("steps", [1, 2, 17])
@pytest.mark.parametrize("masks", [True, False])
def test_to_agentbuffer_matches_ml_agents_step_loop(steps, masks):
    trajectory = make_trajectory(steps, masks=masks)
    buffer = trajectory.to_agentbuffer()
    assert_matches_reference(buffer, trajectory)
    assert buffer.num_experiences == steps
    assert buffer.check_length(list(buffer.keys()))
    assert buffer[BufferKey.ACTION_MASK].padding_value == 1
    assert buffer[BufferKey.DONE].dtype == np.bool_
    assert buffer[BufferKey.DISCRETE_ACTION].dtype == np.int32
    # No group mates: the ragged group fields are left out.
    assert BufferKey.GROUP_CONTINUOUS_ACTION not in buffer
    assert trajectory.done_reached and not trajectory.interrupted
    assert trajectory.all_group_dones_reached


def test_group_fields_follow_ml_agents():
    trajectory = make_trajectory(4, group_size=2)
    buffer = trajectory.to_agentbuffer()
    assert_matches_reference(buffer, trajectory)
    steps = trajectory.steps
    rewards = buffer[BufferKey.GROUPMATE_REWARDS]
    assert [list(entry) for entry in rewards] == [[float(t)] * 2 for t in range(4)]
    next_cont = buffer[BufferKey.GROUP_NEXT_CONT_ACTION]
    np.testing.assert_array_equal(next_cont[0][1], steps[1].group_status[1].action.continuous)
    np.testing.assert_array_equal(next_cont[3][0], steps[3].group_status[0].action.continuous)
    next_group_obs = buffer[GroupObsUtil.get_name_at_next(1)]
    np.testing.assert_array_equal(next_group_obs[3][1], trajectory.next_group_obs[1][1])
    assert [list(d) for d in buffer[BufferKey.GROUP_DONES]] == [[False] * 2] * 3 + [[True] * 2]
    per_mate = GroupObsUtil.from_buffer(buffer, 2)
    assert len(per_mate) == 2 and np.asarray(per_mate[0][0]).shape == (4, 3)
    assert buffer.check_length(list(buffer.keys()))
    assert trajectory.all_group_dones_reached


def test_columnar_form_equals_per_step_form_and_owns_its_data():
    trajectory = make_trajectory(9)
    columnar = ColumnarTrajectory.from_trajectory(trajectory)
    assert len(columnar) == 9 and columnar.done_reached and not columnar.interrupted
    slow, fast = trajectory.to_agentbuffer(), columnar.to_agentbuffer()
    assert list(slow.keys()) == list(fast.keys())
    for key in slow:
        a, b = np.asarray(slow[key]), np.asarray(fast[key])
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
    columnar.obs[0][:] = -1.0  # the buffer copied the column
    assert np.all(np.asarray(fast[ObsUtil.get_name_at(0)]) >= 0)
    assert len(ObsUtil.from_buffer_next(fast, 2)) == 2


def test_columnar_defaults_and_interrupted():
    steps = 5
    columnar = ColumnarTrajectory(
        obs=[np.arange(steps * 2, dtype=np.float32).reshape(steps, 2)],
        next_obs=[np.array([100.0, 101.0], dtype=np.float32)],
        rewards=np.ones(steps),
        dones=np.zeros(steps, dtype=bool),
        continuous_actions=np.zeros((steps, 0), dtype=np.float32),
        discrete_actions=np.arange(steps, dtype=np.int64).reshape(steps, 1),
        continuous_log_probs=np.zeros((steps, 0)),
        discrete_log_probs=np.zeros((steps, 1)),
        interrupted=True,
    )
    buffer = columnar.to_agentbuffer()
    assert not columnar.done_reached and columnar.interrupted
    np.testing.assert_array_equal(
        np.asarray(buffer[(ObservationKeyPrefix.NEXT_OBSERVATION, 0)])[:, 0], [2, 4, 6, 8, 100]
    )
    np.testing.assert_array_equal(
        np.asarray(buffer[BufferKey.NEXT_DISC_ACTION])[:, 0], [1, 2, 3, 4, 0]
    )
    np.testing.assert_array_equal(np.asarray(buffer[BufferKey.ACTION_MASK]), np.ones((steps, 1)))
    np.testing.assert_array_equal(np.asarray(buffer[BufferKey.PREV_ACTION]), np.zeros((steps, 1)))
    np.testing.assert_array_equal(np.asarray(buffer[BufferKey.GROUP_REWARD]), np.zeros(steps))
    assert BufferKey.MEMORY not in buffer
    assert buffer[BufferKey.ENVIRONMENT_REWARDS].dtype == np.float32
    assert np.asarray(buffer[BufferKey.CONTINUOUS_ACTION]).shape == (steps, 0)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rewards": np.zeros(4)}, r"obs\[0\]: .*T=4 steps \(the length of rewards\)"),
        ({"dones": np.zeros(6, dtype=bool)}, "dones"),
        ({"continuous_actions": np.zeros(5)}, "continuous_actions"),
        ({"obs": [np.zeros((4, 3))]}, r"obs\[0\]"),
        ({"next_obs": [np.zeros(4)]}, r"next_obs\[0\]"),
        ({"next_obs": []}, "next_obs"),
        ({"discrete_actions": np.array([["a"]] * 5)}, "discrete_actions"),
        ({"rewards": np.zeros(0)}, "at least one step"),
    ],
)
def test_bad_columns_name_the_column(change, message):
    columns = {
        "obs": [np.zeros((5, 3))],
        "next_obs": [np.zeros(3)],
        "rewards": np.zeros(5),
        "dones": np.zeros(5, dtype=bool),
        "continuous_actions": np.zeros((5, 2)),
        "discrete_actions": np.zeros((5, 1), dtype=np.int32),
        "continuous_log_probs": np.zeros((5, 2)),
        "discrete_log_probs": np.zeros((5, 1)),
    }
    columns.update(change)
    with pytest.raises(InvalidArgumentError, match=message):
        ColumnarTrajectory(**columns).to_agentbuffer()


def test_trajectories_resequenced_into_an_update_buffer_for_lstm():
    update = AgentBuffer()
    lengths = [5, 8, 3]
    for seed, steps in enumerate(lengths):
        ColumnarTrajectory.from_trajectory(
            make_trajectory(steps, seed=seed)
        ).to_agentbuffer().resequence_and_append(update, training_length=4)
    assert update.num_experiences == 8 + 8 + 4
    masks = np.asarray(update[BufferKey.MASKS])
    # Padding rows have mask 0, so the loss ignores them.
    np.testing.assert_array_equal(np.flatnonzero(masks == 0), [5, 6, 7, 19])
    assert update.check_length(list(update.keys()))


def test_from_agent_columns_matches_the_per_step_form():
    trajectory = make_trajectory(6)
    steps = trajectory.steps
    columns = SimpleNamespace(
        obs=[[step.obs[i] for step in steps] for i in range(2)],
        rewards=[step.reward for step in steps],
        continuous_actions=[step.action.continuous for step in steps],
        discrete_actions=[step.action.discrete for step in steps],
        continuous_log_probs=[step.action_probs.continuous for step in steps],
        discrete_log_probs=[step.action_probs.discrete for step in steps],
        action_masks=[step.action_mask for step in steps],
        prev_actions=[step.prev_action for step in steps],
        memories=[step.memory for step in steps],
        group_rewards=[step.group_reward for step in steps],
    )
    columnar = Trajectory.from_agent_columns(
        columns, trajectory.next_obs, "agent-0", "Ball?team=0", done=True
    )
    assert columnar.done_reached and not columnar.interrupted
    assert columnar.agent_id == "agent-0" and columnar.behavior_id == "Ball?team=0"
    assert_matches_reference(columnar.to_agentbuffer(), trajectory)
    columns.action_masks = [None] * 6
    columns.prev_actions, columns.memories = [], []
    buffer = ColumnarTrajectory.from_agent_columns(
        columns, trajectory.next_obs, "a", "b", interrupted=True
    ).to_agentbuffer()
    np.testing.assert_array_equal(np.asarray(buffer[BufferKey.ACTION_MASK]), np.ones((6, 2)))
    assert BufferKey.MEMORY not in buffer
    assert not np.asarray(buffer[BufferKey.DONE]).any()
    with pytest.raises(InvalidArgumentError, match="at least one step"):
        ColumnarTrajectory.from_agent_columns(
            SimpleNamespace(rewards=[]), trajectory.next_obs, "a", "b"
        )
