"""ReplayUpdateBuffer (SAC's experience in the Rust replay ring) against the AgentBuffer it
replaces: the same trajectories appended to an AgentBuffer the way the AgentBuffer-based SAC
did (``resequence_and_append``) are the reference for stored rows, samples, truncation and
files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.replay_buffer import ReplayUpdateBuffer
from mlagents_fast.trainers.trajectory import ColumnarTrajectory, TrajectoryBatch

OBS = (ObservationKeyPrefix.OBSERVATION, 0)
NEXT_OBS = (ObservationKeyPrefix.NEXT_OBSERVATION, 0)
OBS_1 = (ObservationKeyPrefix.OBSERVATION, 1)
NEXT_OBS_1 = (ObservationKeyPrefix.NEXT_OBSERVATION, 1)


def trajectory(rng, steps, serial, end, memory=False):
    """Observation 0 holds a serial number per step (so rows can be found again);
    ``end``: "terminated", "truncated" or "cut" (time horizon)."""
    ids = serial + np.arange(steps, dtype=np.float32)
    return ColumnarTrajectory(
        obs=[
            np.stack([ids, -ids], axis=1),
            rng.integers(0, 255, (steps, 2, 2)).astype(np.uint8),
        ],
        next_obs=[
            np.array([serial + steps, -(serial + steps)], dtype=np.float32),
            rng.integers(0, 255, (2, 2)).astype(np.uint8),
        ],
        rewards=rng.standard_normal(steps).astype(np.float32),
        dones=np.arange(steps) == steps - 1 if end != "cut" else np.zeros(steps, bool),
        continuous_actions=rng.standard_normal((steps, 2)).astype(np.float32),
        discrete_actions=rng.integers(0, 3, (steps, 1)).astype(np.int32),
        continuous_log_probs=rng.standard_normal((steps, 2)).astype(np.float32),
        discrete_log_probs=rng.standard_normal((steps, 1)).astype(np.float32),
        memories=rng.standard_normal((steps, 4)).astype(np.float32) if memory else None,
        interrupted=end == "truncated",
        agent_id=f"agent-{serial % 3}",
    )


def random_batches(seed, count, sequence_length=1, max_steps=9):
    rng = np.random.default_rng(seed)
    batches, serial = [], 0
    for _ in range(count):
        trajectories = []
        for _ in range(int(rng.integers(1, 4))):
            steps = int(rng.integers(1, max_steps + 1))
            end = str(rng.choice(["terminated", "truncated", "cut"]))
            trajectories.append(trajectory(rng, steps, serial, end, memory=sequence_length > 1))
            serial += 1000
        batch = TrajectoryBatch.from_trajectories(trajectories)
        if sequence_length > 1:  # SAC's trainer adds the critic memories
            batch.buffer[BufferKey.CRITIC_MEMORY].set(
                rng.standard_normal((batch.buffer.num_experiences, 3)).astype(np.float32)
            )
        batches.append(batch)
    return batches


def append_to_reference(reference, batch, sequence_length):
    """What the AgentBuffer-based SAC did with a batch."""
    if sequence_length == 1:
        batch.buffer.resequence_and_append(reference, training_length=1)
    else:
        for index in range(len(batch)):
            batch.slice(index).resequence_and_append(reference, training_length=sequence_length)


def assert_same_buffer(ours: AgentBuffer, reference: AgentBuffer):
    assert list(ours.keys()) == list(reference.keys())
    assert ours.num_experiences == reference.num_experiences
    for key in reference:
        expected = np.asarray(reference[key])
        got = np.asarray(ours[key])
        assert got.dtype == expected.dtype, key
        np.testing.assert_array_equal(got, expected, err_msg=str(key))


def filled(seed, batches, sequence_length=1, buffer_size=50):
    ours = ReplayUpdateBuffer(buffer_size, sequence_length=sequence_length, seed=seed)
    reference = AgentBuffer()
    for batch in random_batches(seed, batches, sequence_length):
        ours.append_batch(batch)
        append_to_reference(reference, batch, sequence_length)
    return ours, reference


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    sequence_length=st.sampled_from([1, 1, 3]),
    ops=st.lists(st.sampled_from(["append", "append", "truncate", "reload"]), max_size=12),
)
def test_stored_rows_match_the_agent_buffer_path(tmp_path, seed, sequence_length, ops):
    """Any mix of appends, truncations and save/load round trips holds the rows (next
    observations and DONE included, bit-exact) an AgentBuffer would."""
    rng = np.random.default_rng(seed)
    ours = ReplayUpdateBuffer(20, sequence_length=sequence_length, seed=seed)
    reference = AgentBuffer()
    batches = iter(random_batches(seed, len(ops), sequence_length))
    for op in ops:
        if op == "append":
            batch = next(batches)
            ours.append_batch(batch)
            append_to_reference(reference, batch, sequence_length)
        elif op == "truncate":
            keep = int(rng.integers(0, 40))
            ours.truncate(keep)
            reference.truncate(keep, sequence_length=sequence_length)
        else:
            path = tmp_path / "replay.hdf5"
            ours.save_to_file(path)
            ours = ReplayUpdateBuffer(20, sequence_length=sequence_length, seed=seed)
            ours.load_from_file(path)
        if reference.num_experiences:
            assert_same_buffer(ours.to_agent_buffer(), reference)
        else:
            assert ours.num_experiences == 0


def test_a_file_written_by_an_agent_buffer_loads_the_same_rows(tmp_path):
    """Files of the AgentBuffer-based SAC (same format) load with every row, next
    observation and DONE as written, and this buffer writes the same file back."""
    _, reference = filled(3, 12)
    old = tmp_path / "old.hdf5"
    reference.save_to_file(old)
    ours = ReplayUpdateBuffer(1000, seed=0)
    ours.load_from_file(old)
    assert_same_buffer(ours.to_agent_buffer(), reference)
    again = tmp_path / "again.hdf5"
    ours.save_to_file(again)
    reread = AgentBuffer()
    reread.load_from_file(again)
    assert_same_buffer(reread, reference)


def test_recurrent_load_realigns_sequences(tmp_path):
    """An old recurrent file truncated to a length that is not whole sequences: the
    partial oldest sequence is dropped so sampled sequences start on sequence bounds."""
    _, reference = filled(5, 8, sequence_length=3)
    reference.truncate(reference.num_experiences - 4)  # the AgentBuffer way: any length
    path = tmp_path / "old.hdf5"
    reference.save_to_file(path)
    ours = ReplayUpdateBuffer(1000, sequence_length=3, seed=0)
    ours.load_from_file(path)
    rows = reference.num_experiences
    assert ours.num_experiences == rows - rows % 3
    reference.truncate(rows - rows % 3)
    assert_same_buffer(ours.to_agent_buffer(), reference)


def row_of(reference):
    """Serial number (observation 0, first value) -> row of the reference."""
    serials = np.asarray(reference[OBS])[:, 0]
    assert len(np.unique(serials)) == len(serials)
    return {float(s): i for i, s in enumerate(serials)}


def test_samples_are_rows_of_the_buffer_with_their_next_observations_and_dones():
    ours, reference = filled(7, 15)
    where = row_of(reference)
    minibatch = ours.sample_mini_batch(256)
    assert list(minibatch.keys()) == list(reference.keys())
    assert minibatch.num_experiences == 256
    rows = [where[float(s)] for s in np.asarray(minibatch[OBS])[:, 0]]
    for key in reference:
        np.testing.assert_array_equal(
            np.asarray(minibatch[key]), np.asarray(reference[key])[rows], err_msg=str(key)
        )
        assert np.asarray(minibatch[key]).dtype == np.asarray(reference[key]).dtype
    # Draws cover the buffer: 256 draws from fewer rows see most of them.
    assert len(set(rows)) > 0.6 * min(reference.num_experiences, 256)


def test_recurrent_samples_are_whole_aligned_sequences():
    ours, reference = filled(11, 10, sequence_length=3)
    minibatch = ours.sample_mini_batch(64, sequence_length=3)
    assert minibatch.num_experiences == 63  # 64 // 3 sequences of 3
    fields = {key: np.asarray(reference[key]) for key in reference}
    # Padding rows have no serial number of their own: match whole sequences instead.
    sequences = {
        tuple(fields[OBS][k : k + 3, 0].tolist()): k for k in range(0, reference.num_experiences, 3)
    }
    got_obs = np.asarray(minibatch[OBS])[:, 0]
    for s in range(21):
        start = sequences[tuple(got_obs[3 * s : 3 * s + 3].tolist())]
        for key, values in fields.items():
            np.testing.assert_array_equal(
                np.asarray(minibatch[key])[3 * s : 3 * s + 3],
                values[start : start + 3],
                err_msg=str(key),
            )


def test_sampling_is_seeded():
    first, _ = filled(2, 6)
    second, _ = filled(2, 6)
    for _ in range(3):
        a, b = first.sample_mini_batch(32), second.sample_mini_batch(32)
        np.testing.assert_array_equal(np.asarray(a[OBS]), np.asarray(b[OBS]))


def test_nothing_is_dropped_before_the_trainer_truncates():
    """Like the AgentBuffer it replaces, the buffer grows past buffer_size between
    updates; truncate keeps the newest rows."""
    ours, reference = filled(4, 40, buffer_size=10)
    assert ours.num_experiences == reference.num_experiences > 10
    assert ours.capacity >= ours.num_experiences
    ours.truncate(8)
    reference.truncate(8)
    assert_same_buffer(ours.to_agent_buffer(), reference)


def test_ml_agents_style_trajectory_appends_match_batches():
    rng = np.random.default_rng(0)
    trajectories = [trajectory(rng, 5, 0, "truncated"), trajectory(rng, 3, 1000, "cut")]
    batched = ReplayUpdateBuffer(100, seed=1)
    batched.append_batch(TrajectoryBatch.from_trajectories(trajectories))
    one_by_one = ReplayUpdateBuffer(100, seed=1)
    for t in trajectories:
        batch = TrajectoryBatch.from_trajectories([t])
        one_by_one.append_trajectory(batch.buffer)
    assert_same_buffer(one_by_one.to_agent_buffer(), batched.to_agent_buffer())


def test_a_mapping_of_fields_like_an_agent_buffer():
    ours, reference = filled(1, 3)
    assert BufferKey.DONE in ours and NEXT_OBS in ours and OBS_1 in ours
    assert BufferKey.ADVANTAGES not in ours
    assert len(ours) == len(reference)
    np.testing.assert_array_equal(
        np.asarray(ours[NEXT_OBS_1].get_batch()), np.asarray(reference[NEXT_OBS_1])
    )
    with pytest.raises(KeyError):
        ours[BufferKey.ADVANTAGES]
    ours.reset_agent()
    assert ours.num_experiences == 0 and len(ours.to_agent_buffer()) == 0


def test_changed_fields_are_clear_errors_and_store_nothing(tmp_path):
    ours, _ = filled(1, 2)
    rows = ours.num_experiences
    batch = random_batches(9, 1)[0]
    del batch.buffer[BufferKey.CONTINUOUS_ACTION]
    with pytest.raises(InvalidArgumentError, match="'continuous_action' is missing"):
        ours.append_batch(batch)
    batch = random_batches(9, 1)[0]
    batch.buffer[BufferKey.ADVANTAGES].set(np.zeros(batch.buffer.num_experiences, np.float32))
    with pytest.raises(InvalidArgumentError, match="'advantages' is not in the replay buffer"):
        ours.append_batch(batch)
    assert ours.num_experiences == rows
    with pytest.raises(InvalidArgumentError, match="empty"):
        ReplayUpdateBuffer(10).sample_mini_batch(4)
    with pytest.raises(InvalidArgumentError, match="buffer_size"):
        ReplayUpdateBuffer(0)
