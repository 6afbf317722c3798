"""Group mates' columns: the numeric (T, W, ...) layout of columnar trajectories and batches
read the same as ML-Agents' ragged entries through GroupObsUtil, AgentAction and the
extrinsic reward; batches pad trajectories to the widest; update buffers widen."""

from __future__ import annotations

import numpy as np
import pytest
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey
from mlagents_fast.trainers.settings import RewardSignalSettings
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.components.reward_providers.extrinsic_reward_provider import (
    ExtrinsicRewardProvider,
)
from mlagents_fast.trainers.trajectory import (
    ColumnarTrajectory,
    GroupObsUtil,
    TrajectoryBatch,
    group_width,
    pad_group_fields,
)
from multiagent_fixtures import ragged_trajectory


def test_columnar_group_columns_round_trip_the_steps():
    trajectory = ragged_trajectory([2, 1, 0, 2], next_mates=1)
    columnar = ColumnarTrajectory.from_trajectory(trajectory)
    assert columnar.group_width == 2 and columnar.group_counts.tolist() == [2, 1, 0, 2]
    assert np.isnan(columnar.group_obs[0][1, 1]).all() and np.isnan(columnar.group_obs[1][2]).all()
    assert np.isnan(columnar.group_next_obs[0][1]).all()
    back = columnar.to_trajectory()
    for ours, theirs in zip(back.steps, trajectory.steps):
        assert len(ours.group_status) == len(theirs.group_status)
        for a, b in zip(ours.group_status, theirs.group_status):
            np.testing.assert_array_equal(a.obs[1], b.obs[1])
            np.testing.assert_array_equal(a.action.discrete, b.action.discrete)
            assert a.reward == pytest.approx(b.reward) and a.done == b.done
    assert len(back.next_group_obs) == 1
    np.testing.assert_array_equal(back.next_group_obs[0][0], trajectory.next_group_obs[0][0])
    # Last step: mate 1 of 2 is done, mate 0 is not.
    assert not columnar.all_group_dones_reached and not trajectory.all_group_dones_reached


def test_numeric_and_ragged_group_fields_read_the_same():
    trajectory = ragged_trajectory([2, 1, 0, 2, 2], next_mates=2, seed=3)
    ragged = trajectory.to_agentbuffer()
    numeric = ColumnarTrajectory.from_trajectory(trajectory).to_agentbuffer()
    assert numeric[BufferKey.GROUP_CONTINUOUS_ACTION].row_shape == (2, 1)
    assert numeric.check_length(list(numeric.keys()))
    for read in (GroupObsUtil.from_buffer, GroupObsUtil.from_buffer_next):
        a, b = read(ragged, 2), read(numeric, 2)
        assert len(a) == len(b) == 2
        for mate_a, mate_b in zip(a, b):
            for obs_a, obs_b in zip(mate_a, mate_b):
                np.testing.assert_array_equal(np.asarray(obs_a, np.float32), obs_b)
    for read in (AgentAction.group_from_buffer, AgentAction.group_from_buffer_next):
        for a, b in zip(read(ragged), read(numeric), strict=True):
            np.testing.assert_array_equal(a.continuous_tensor.numpy(), b.continuous_tensor.numpy())
            np.testing.assert_array_equal(a.discrete_tensor.numpy(), b.discrete_tensor.numpy())
    provider = ExtrinsicRewardProvider(None, RewardSignalSettings())
    provider.add_groupmate_rewards = True
    np.testing.assert_allclose(provider.evaluate(numeric), provider.evaluate(ragged), rtol=1e-6)
    provider.add_groupmate_rewards = False
    np.testing.assert_allclose(provider.evaluate(numeric), provider.evaluate(ragged), rtol=1e-6)


def test_batch_pads_every_trajectory_to_the_widest():
    narrow = ColumnarTrajectory.from_trajectory(ragged_trajectory([1, 1], 1, seed=1))
    wide = ColumnarTrajectory.from_trajectory(ragged_trajectory([3, 2, 3], 0, seed=2))
    lone = ColumnarTrajectory.from_trajectory(ragged_trajectory([0, 0], 0, seed=4))
    assert lone.group_counts is None  # no step has mates: no group columns at all
    batch = TrajectoryBatch.from_trajectories([narrow, wide, lone], group_fields=True)
    buffer = batch.buffer
    assert group_width(buffer) == 3 and buffer.num_experiences == 7
    assert buffer.check_length(list(buffer.keys()))
    rows = np.asarray(buffer[GroupObsUtil.get_name_at(1)])
    assert rows.shape == (7, 3, 2, 2)
    np.testing.assert_array_equal(rows[0, 0], narrow.group_obs[1][0, 0])
    assert np.isnan(rows[0, 1:]).all() and np.isnan(rows[5:]).all()
    np.testing.assert_array_equal(rows[2:5], wide.group_obs[1])
    assert batch.next_group_obs[0].shape == (3, 3, 3)
    np.testing.assert_array_equal(batch.next_group_obs[0][0, 0], narrow.group_next_obs[0][0])
    assert (
        np.isnan(batch.next_group_obs[0][0, 1:]).all()
        and np.isnan(batch.next_group_obs[0][1:]).all()
    )
    assert batch.all_group_dones_reached.tolist() == [
        narrow.all_group_dones_reached,
        wide.all_group_dones_reached,
        True,
    ]
    # Without group_fields (PPO, SAC) the batch carries none.
    plain = TrajectoryBatch.from_trajectories([narrow, wide, lone]).buffer
    assert BufferKey.GROUP_CONTINUOUS_ACTION not in plain and group_width(plain) is None


def test_update_buffer_widens_for_a_batch_with_more_mates():
    narrow = ColumnarTrajectory.from_trajectory(ragged_trajectory([1, 1], 1, seed=1))
    wide = ColumnarTrajectory.from_trajectory(ragged_trajectory([3, 2, 3], 0, seed=2))
    update = AgentBuffer()
    TrajectoryBatch.from_trajectories([narrow], group_fields=True).buffer.resequence_and_append(
        update
    )
    assert group_width(update) == 1
    pad_group_fields(update, 3)
    TrajectoryBatch.from_trajectories([wide], group_fields=True).buffer.resequence_and_append(
        update
    )
    assert group_width(update) == 3 and update.check_length(list(update.keys()))
    rewards = np.asarray(update[BufferKey.GROUPMATE_REWARDS])
    np.testing.assert_array_equal(rewards[:2, 1:], 0)
    np.testing.assert_array_equal(rewards[2:], wide.groupmate_rewards)
    assert np.isnan(np.asarray(update[GroupObsUtil.get_name_at(0)])[:2, 1:]).all()
