"""AgentBuffer semantics against plain-Python ports of ML-Agents 1.1.0's list-based buffer
(padding, resequencing, sequences kept whole through shuffle/truncate/sample, check_length),
bad input, zero-copy minibatches and save/load."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlagents_fast.exceptions import (
    BufferException,
    CorruptFileError,
    InvalidArgumentError,
    MlagentsFastError,
)
from mlagents_fast.trainers.buffer import (
    AgentBuffer,
    AgentBufferField,
    BufferKey,
    ObservationKeyPrefix,
    RewardSignalKeyPrefix,
    RewardSignalUtil,
    key_to_name,
    name_to_key,
)

OBS = (ObservationKeyPrefix.OBSERVATION, 0)


# ----------------------------------------------------------------------------- references


def reference_get_batch(rows, padding_value, batch_size=None, training_length=1, sequential=True):
    """ML-Agents 1.1.0 AgentBufferField.get_batch on a Python list of numpy rows."""
    if training_length is None:
        training_length = 1
    if sequential:
        leftover = len(rows) % training_length
        if batch_size is None:
            batch_size = len(rows) // training_length + 1 * (leftover != 0)
        if batch_size > (len(rows) // training_length + 1 * (leftover != 0)):
            raise BufferException("too large")
        if batch_size * training_length > len(rows):
            padding = np.array(rows[-1], dtype=np.float32) * padding_value
            return rows[:] + [padding] * (training_length - leftover)
        return rows[len(rows) - batch_size * training_length :]
    if batch_size is None:
        batch_size = len(rows) - training_length + 1
    if (len(rows) - training_length + 1) < batch_size:
        raise BufferException("too large")
    out = []
    for end in range(len(rows) - batch_size + 1, len(rows) + 1):
        out += rows[end - training_length : end]
    return out


def indexed_buffer(length: int) -> AgentBuffer:
    """Fields whose rows encode their index, so any reordering is visible."""
    buffer = AgentBuffer()
    index = np.arange(length)
    buffer[OBS].extend(np.stack([index, -index, 2 * index], axis=1).astype(np.float32))
    buffer[BufferKey.ENVIRONMENT_REWARDS].extend(index.astype(np.float64) * 0.5)
    buffer[BufferKey.DONE].extend(index % 3 == 0)
    buffer[BufferKey.DISCRETE_ACTION].extend((index[:, None] * [1, 10]).astype(np.int32))
    buffer[BufferKey.CONTINUOUS_ACTION].extend(np.zeros((length, 0), dtype=np.float32))
    return buffer


def row_indices(buffer: AgentBuffer) -> np.ndarray:
    """The original row index of each row, checked consistent across every field."""
    obs = np.asarray(buffer[OBS])
    index = obs[:, 0].astype(np.int64)
    np.testing.assert_array_equal(obs[:, 1], -index)
    np.testing.assert_array_equal(obs[:, 2], 2 * index)
    np.testing.assert_array_equal(np.asarray(buffer[BufferKey.ENVIRONMENT_REWARDS]), index * 0.5)
    np.testing.assert_array_equal(np.asarray(buffer[BufferKey.DONE]), index % 3 == 0)
    np.testing.assert_array_equal(
        np.asarray(buffer[BufferKey.DISCRETE_ACTION]), index[:, None] * [1, 10]
    )
    assert np.asarray(buffer[BufferKey.CONTINUOUS_ACTION]).shape == (len(index), 0)
    return index


def assert_whole_sequences(index: np.ndarray, sequence_length: int) -> None:
    for sequence in index.reshape(-1, sequence_length):
        assert sequence[0] % sequence_length == 0, index
        np.testing.assert_array_equal(
            sequence, np.arange(sequence[0], sequence[0] + sequence_length)
        )


# ----------------------------------------------------------------------------- names


def test_every_buffer_key_name_is_its_value_and_round_trips():
    for key in BufferKey:
        assert key_to_name(key) == key.value
        assert name_to_key(key.value) is key
    assert key_to_name((ObservationKeyPrefix.OBSERVATION, 0)) == "obs_0"
    assert key_to_name((ObservationKeyPrefix.NEXT_OBSERVATION, 12)) == "next_obs_12"
    assert key_to_name((ObservationKeyPrefix.NEXT_GROUP_OBSERVATION, 1)) == "next_group_obs_1"
    assert (
        key_to_name(RewardSignalUtil.value_estimates_key("extrinsic"))
        == "extrinsic_value_estimates"
    )
    assert key_to_name(RewardSignalUtil.returns_key("gail")) == "gail_returns"
    assert key_to_name(RewardSignalUtil.advantage_key("curiosity")) == "curiosity_advantage"
    assert name_to_key("next_obs_3") == (ObservationKeyPrefix.NEXT_OBSERVATION, 3)
    assert name_to_key("my_signal_rewards") == (RewardSignalKeyPrefix.REWARDS, "my_signal")


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from(list(RewardSignalKeyPrefix)),
    signal=st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20
    ),
)
def test_reward_signal_names_round_trip_or_are_refused(prefix, signal):
    key = (prefix, signal)
    try:
        name = key_to_name(key)
    except InvalidArgumentError as err:
        assert "rename the signal" in str(err)
        return
    assert name_to_key(name) == key


@given(prefix=st.sampled_from(list(ObservationKeyPrefix)), index=st.integers(0, 10**6))
def test_observation_names_round_trip(prefix, index):
    assert name_to_key(key_to_name((prefix, index))) == (prefix, index)


def test_colliding_and_invalid_names_are_refused():
    with pytest.raises(InvalidArgumentError, match="environment_rewards"):
        key_to_name((RewardSignalKeyPrefix.REWARDS, "environment"))
    with pytest.raises(InvalidArgumentError, match="discounted_returns"):
        key_to_name((RewardSignalKeyPrefix.RETURNS, "discounted"))
    with pytest.raises(InvalidArgumentError, match="empty"):
        key_to_name((RewardSignalKeyPrefix.RETURNS, ""))
    with pytest.raises(InvalidArgumentError, match="negative"):
        key_to_name((ObservationKeyPrefix.OBSERVATION, -1))
    with pytest.raises(InvalidArgumentError, match="not an AgentBufferKey"):
        key_to_name("obs_0")
    for bad in ["", "obs", "obs_01", "obs_-1", "value_estimates", "nonsense"]:
        with pytest.raises(InvalidArgumentError, match="name"):
            name_to_key(bad)


def test_value_estimates_key_differs_from_returns_key():
    # ML-Agents 1.1.0 returns the RETURNS key for value estimates (the returns then
    # overwrite the old values); ours keeps them apart.
    assert RewardSignalUtil.value_estimates_key("x") != RewardSignalUtil.returns_key("x")


# ----------------------------------------------------------------------------- fields


def test_fields_are_created_on_demand_and_mapping_works():
    buffer = AgentBuffer()
    assert BufferKey.DONE not in buffer
    assert buffer.num_experiences == 0
    field = buffer[BufferKey.DONE]
    assert BufferKey.DONE in buffer and len(field) == 0
    for step in range(4):
        buffer[BufferKey.DONE].append(step == 3)
        buffer[OBS].append(np.full(2, step, dtype=np.float32))
    assert list(buffer.keys()) == [BufferKey.DONE, OBS]
    assert buffer.num_experiences == 4
    assert buffer[BufferKey.DONE].dtype == np.bool_
    assert buffer[OBS].row_shape == (2,)
    np.testing.assert_array_equal(buffer[OBS][2], [2, 2])
    np.testing.assert_array_equal(np.asarray(buffer[OBS])[:, 0], [0, 1, 2, 3])
    assert [bool(x) for x in buffer[BufferKey.DONE]] == [False, False, False, True]
    del buffer[BufferKey.DONE]
    assert list(buffer) == [OBS]
    buffer[BufferKey.MASKS] = np.ones(4, dtype=np.float32)
    assert isinstance(buffer[BufferKey.MASKS], AgentBufferField)
    assert buffer.check_length([OBS, BufferKey.MASKS])


def test_python_scalars_get_ml_agents_dtypes_and_same_kind_casts_are_accepted():
    field = AgentBufferField()
    field.append(1.5)
    field.append(np.float64(2.25))
    field.extend([3.0, 4])
    field.extend(np.array([5.5], dtype=np.float64))
    assert field.dtype == np.float32
    np.testing.assert_array_equal(field.to_ndarray(), [1.5, 2.25, 3.0, 4.0, 5.5])
    doubles = AgentBufferField()
    doubles.append(np.float64(0.1))
    assert doubles.dtype == np.float64 and doubles[0] == 0.1
    ints = AgentBufferField([np.array([1, 2], dtype=np.int32)])
    assert ints.dtype == np.int32 and ints.row_shape == (2,)


@pytest.mark.parametrize(
    "first, bad, message",
    [
        (np.zeros(3, np.float32), np.zeros(4, np.float32), "row shape"),
        (np.zeros(3, np.float32), np.zeros((1, 3), np.float32), "row shape"),
        (np.zeros(2, np.int32), np.array([0.5, 1.5]), "dtype float64"),
        (True, 0.5, "dtype float32"),
        (np.zeros(2, np.float32), ["a", "b"], "group entry"),
    ],
)
def test_wrong_rows_raise_invalid_argument_naming_the_field(first, bad, message):
    buffer = AgentBuffer()
    buffer[BufferKey.PREV_ACTION].append(first)
    before = np.array(buffer[BufferKey.PREV_ACTION], copy=True)
    with pytest.raises(InvalidArgumentError, match=message) as info:
        buffer[BufferKey.PREV_ACTION].append(bad)
    assert "'prev_action'" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MlagentsFastError)
    np.testing.assert_array_equal(np.asarray(buffer[BufferKey.PREV_ACTION]), before)
    with pytest.raises(InvalidArgumentError, match="'prev_action'"):
        buffer[BufferKey.PREV_ACTION].extend(np.stack([np.asarray(bad, dtype=object)] * 2))


def test_non_numeric_and_ragged_rows_are_refused():
    with pytest.raises(InvalidArgumentError, match="not numeric"):
        AgentBufferField().append(np.array(["x"]))
    with pytest.raises(InvalidArgumentError, match="different shapes"):
        AgentBufferField().extend([np.zeros(2), np.zeros(3)])
    with pytest.raises(InvalidArgumentError, match="0-d"):
        AgentBufferField().extend(np.float32(1.0))


def test_group_entries_stay_lists():
    field = AgentBufferField()
    field.append([np.zeros(2), np.ones(2)])
    field.append([])
    field.append([np.full(2, 3.0)])
    assert field.contains_lists and len(field) == 3
    padded = field.padded_to_batch(pad_value=np.nan)
    assert len(padded) == 2
    np.testing.assert_array_equal(padded[0], [[0, 0], [np.nan, np.nan], [3, 3]])
    np.testing.assert_array_equal(padded[1], [[1, 1], [np.nan, np.nan], [np.nan, np.nan]])
    assert AgentBufferField([[], []]).padded_to_batch() == []


def test_reset_field_allows_a_new_schema_and_keeps_old_views():
    field = AgentBufferField(np.arange(5, dtype=np.float32))
    view = field.to_ndarray()
    field.reset_field()
    assert len(field) == 0
    field.extend(np.full((3, 2), 7, dtype=np.int64))
    assert field.dtype == np.int64 and field.row_shape == (2,)
    np.testing.assert_array_equal(view, np.arange(5))


# ----------------------------------------------------------------------------- get_batch


@pytest.mark.parametrize("padding_value", [0, 1])
def test_get_batch_pads_at_the_end_with_last_row_times_padding_value(padding_value):
    field = AgentBufferField()
    for step in range(5):
        field.append(np.array([step + 1, 10 * (step + 1)], dtype=np.float32), padding_value)
    batch = field.get_batch(training_length=2)
    expected = [
        [1, 10],
        [2, 20],
        [3, 30],
        [4, 40],
        [5, 50],
        [5 * padding_value, 50 * padding_value],
    ]
    np.testing.assert_array_equal(batch, expected)
    np.testing.assert_array_equal(field.get_batch(batch_size=2, training_length=2), expected[1:5])
    np.testing.assert_array_equal(
        field.get_batch(training_length=2, sequential=False),
        [[1, 10], [2, 20], [2, 20], [3, 30], [3, 30], [4, 40], [4, 40], [5, 50]],
    )
    with pytest.raises(BufferException, match="too large"):
        field.get_batch(batch_size=4, training_length=2)
    with pytest.raises(BufferException, match="too large"):
        field.get_batch(batch_size=5, training_length=2, sequential=False)


@settings(max_examples=150, deadline=None)
@given(
    length=st.integers(0, 30),
    training_length=st.one_of(st.none(), st.integers(1, 8)),
    batch_size=st.one_of(st.none(), st.integers(0, 35)),
    sequential=st.booleans(),
    padding_value=st.sampled_from([0.0, 1.0, -2.0]),
)
def test_get_batch_matches_ml_agents(
    length, training_length, batch_size, sequential, padding_value
):
    rows = [np.array([i + 1.0, -i], dtype=np.float32) for i in range(length)]
    field = AgentBufferField()
    for row in rows:
        field.append(row, padding_value)
    try:
        expected = reference_get_batch(rows, padding_value, batch_size, training_length, sequential)
    except BufferException:
        with pytest.raises(BufferException):
            field.get_batch(batch_size, training_length, sequential)
        return
    except IndexError:  # ML-Agents pads an empty field with rows[-1]: IndexError there
        return
    got = field.get_batch(batch_size, training_length, sequential)
    assert len(got) == len(expected)
    if expected:
        np.testing.assert_array_equal(got, np.stack(expected))


def test_group_field_get_batch_pads_with_empty_lists():
    field = AgentBufferField([[np.zeros(1)], [np.ones(1)], []])
    batch = field.get_batch(training_length=2)
    assert len(batch) == 4 and batch[-1] == [] and batch[2] == []


# ----------------------------------------------------------------------------- resequence


def test_resequence_and_append_pads_each_trajectory_to_whole_sequences():
    update = AgentBuffer()
    lengths = [5, 3, 8]
    reference: dict = {OBS: [], BufferKey.ACTION_MASK: []}
    offset = 0
    for length in lengths:
        trajectory = AgentBuffer()
        for step in range(length):
            obs = np.array([offset + step + 1.0], dtype=np.float32)
            mask = np.array([1.0, (offset + step) % 2], dtype=np.float32)
            trajectory[OBS].append(obs)
            trajectory[BufferKey.ACTION_MASK].append(mask, padding_value=1)
        for key in reference:
            field = trajectory[key]
            reference[key] += reference_get_batch(list(field), field.padding_value, None, 4)
        trajectory.resequence_and_append(update, training_length=4)
        offset += length
    assert update.num_experiences == 8 + 4 + 8
    assert update.check_length(list(update.keys()))
    for key, rows in reference.items():
        np.testing.assert_array_equal(np.asarray(update[key]), np.stack(rows))
    obs = np.asarray(update[OBS])[:, 0]
    # Padding rows (zeros for obs) sit at the end of each trajectory's last sequence.
    np.testing.assert_array_equal(obs[4:8], [5, 0, 0, 0])
    np.testing.assert_array_equal(obs[8:12], [6, 7, 8, 0])
    # Action masks pad with 1 x the last row (all available stays available).
    np.testing.assert_array_equal(np.asarray(update[BufferKey.ACTION_MASK])[5], [1.0, 0.0])


def test_resequence_key_list_batch_size_and_length_checks():
    trajectory = indexed_buffer(10)
    target = AgentBuffer()
    trajectory.resequence_and_append(target, key_list=[OBS], batch_size=2, training_length=3)
    assert list(target.keys()) == [OBS]
    np.testing.assert_array_equal(np.asarray(target[OBS])[:, 0], [4, 5, 6, 7, 8, 9])
    trajectory[BufferKey.MASKS].append(1.0)
    with pytest.raises(BufferException, match="same length"):
        trajectory.resequence_and_append(target)


# ----------------------------------------------------------------------------- shuffle


@settings(max_examples=40, deadline=None)
@given(length=st.integers(0, 60), sequence_length=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_shuffle_keeps_sequences_whole_and_fields_aligned(length, sequence_length, seed):
    np.random.seed(seed)
    buffer = indexed_buffer(length)
    buffer[BufferKey.GROUPMATE_REWARDS].extend([[float(i)] for i in range(length)])
    buffer.shuffle(sequence_length)
    index = row_indices(buffer)
    whole = length - length % sequence_length
    assert len(index) == whole  # a trailing partial sequence is dropped, as in ML-Agents
    assert sorted(index.tolist()) == list(range(whole))
    assert_whole_sequences(index, sequence_length)
    assert [entry[0] for entry in buffer[BufferKey.GROUPMATE_REWARDS]] == index.tolist()


def test_shuffle_is_seeded_by_numpy_and_actually_permutes():
    np.random.seed(5)
    first = indexed_buffer(200)
    first.shuffle(1)
    np.random.seed(5)
    second = indexed_buffer(200)
    second.shuffle(1)
    np.testing.assert_array_equal(row_indices(first), row_indices(second))
    assert not np.array_equal(row_indices(first), np.arange(200))
    second.shuffle(1)
    assert not np.array_equal(row_indices(first), row_indices(second))


def test_shuffle_key_list_and_errors():
    buffer = indexed_buffer(12)
    np.random.seed(1)
    buffer.shuffle(1, key_list=[BufferKey.DONE])
    np.testing.assert_array_equal(np.asarray(buffer[OBS])[:, 0], np.arange(12))
    assert sorted(np.asarray(buffer[BufferKey.DONE]).tolist()) == sorted(
        (np.arange(12) % 3 == 0).tolist()
    )
    buffer[BufferKey.MASKS].append(1.0)
    with pytest.raises(BufferException, match="same length"):
        buffer.shuffle(1)
    for bad in (0, -2, 1.5, None):
        with pytest.raises(InvalidArgumentError, match="sequence_length"):
            indexed_buffer(4).shuffle(bad)


# ----------------------------------------------------------------------------- minibatches


def test_make_mini_batch_returns_zero_copy_views_ready_for_torch():
    torch = pytest.importorskip("torch")
    buffer = indexed_buffer(20)
    batch = buffer.make_mini_batch(4, 9)
    assert batch.num_experiences == 5
    np.testing.assert_array_equal(row_indices(batch), np.arange(4, 9))
    obs = np.asarray(batch[OBS])
    assert np.shares_memory(obs, np.asarray(buffer[OBS]))
    assert obs.flags.c_contiguous and obs.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = torch.from_numpy(obs)
    assert tensor.shape == (5, 3) and tensor[0, 0].item() == 4.0
    # Python slice rules, as ML-Agents' list slicing.
    assert buffer.make_mini_batch(15, 99).num_experiences == 5
    assert buffer.make_mini_batch(-3, None).num_experiences == 3
    assert buffer.make_mini_batch(9, 4).num_experiences == 0


def test_minibatch_views_survive_shuffle_reset_truncate_and_growth():
    np.random.seed(0)
    buffer = indexed_buffer(40)
    batch = buffer.make_mini_batch(10, 20)
    whole = np.asarray(buffer[OBS])
    buffer.shuffle(1)
    np.testing.assert_array_equal(row_indices(batch), np.arange(10, 20))
    batch = buffer.make_mini_batch(0, 10)
    kept = row_indices(batch).copy()
    buffer.truncate(25)
    buffer.reset_agent()
    for _ in range(3):
        more = indexed_buffer(40)
        for key in more:
            buffer[key].extend(more[key])
    np.testing.assert_array_equal(row_indices(batch), kept)
    np.testing.assert_array_equal(whole[:, 0], np.arange(40))


@settings(max_examples=30, deadline=None)
@given(length=st.integers(1, 50), sequence_length=st.integers(1, 6), batch_size=st.integers(0, 40))
def test_sample_mini_batch_draws_whole_sequences(length, sequence_length, batch_size):
    buffer = indexed_buffer(length)
    if length < sequence_length and batch_size >= sequence_length:
        with pytest.raises(InvalidArgumentError, match="batch_size"):
            buffer.sample_mini_batch(batch_size, sequence_length)
        return
    batch = buffer.sample_mini_batch(batch_size, sequence_length)
    index = row_indices(batch)
    assert len(index) == (batch_size // sequence_length) * sequence_length
    assert np.all(index < length - length % sequence_length)
    assert_whole_sequences(index, sequence_length)
    assert not np.shares_memory(np.asarray(batch[OBS]), np.asarray(buffer[OBS]))


def test_sample_mini_batch_covers_the_buffer_and_checks_lengths():
    buffer = indexed_buffer(10)
    index = row_indices(buffer.sample_mini_batch(5000))
    assert set(index.tolist()) == set(range(10))
    buffer[BufferKey.MASKS].append(1.0)
    with pytest.raises(BufferException, match="same length"):
        buffer.sample_mini_batch(4)


# ----------------------------------------------------------------------------- truncate etc.


@pytest.mark.parametrize(
    "max_length, sequence_length, kept", [(7, 1, 7), (7, 3, 6), (50, 4, 20), (0, 1, 0)]
)
def test_truncate_keeps_the_last_whole_sequences(max_length, sequence_length, kept):
    buffer = indexed_buffer(20)
    buffer.truncate(max_length, sequence_length)
    np.testing.assert_array_equal(row_indices(buffer), np.arange(20 - kept, 20))
    more = indexed_buffer(3)
    for key in list(buffer.keys()):
        buffer[key].extend(more[key])
    np.testing.assert_array_equal(row_indices(buffer), list(range(20 - kept, 20)) + [0, 1, 2])


def test_check_length_num_experiences_and_reset_agent():
    buffer = indexed_buffer(6)
    keys = list(buffer.keys())
    assert buffer.check_length(keys)
    assert buffer.check_length([OBS])
    assert not buffer.check_length([OBS, BufferKey.MASKS])  # missing field
    buffer[BufferKey.MASKS].extend(np.ones(5, dtype=np.float32))
    assert not buffer.check_length([OBS, BufferKey.MASKS])
    assert buffer.num_experiences == 6
    buffer.last_brain_info = "x"
    buffer.reset_agent()
    assert buffer.num_experiences == 0 and list(buffer.keys()) == keys + [BufferKey.MASKS]
    assert buffer.last_brain_info is None


# ----------------------------------------------------------------------------- files


def test_save_load_round_trip_is_bit_exact(tmp_path):
    buffer = indexed_buffer(9)
    buffer[RewardSignalUtil.value_estimates_key("extrinsic")].extend(
        np.array([np.nan, -0.0, np.inf, 1e-45, 3, 4, 5, 6, 7], dtype=np.float32)
    )
    buffer.truncate(9)
    path = tmp_path / "buffer.fields"
    buffer.save_to_file(path)
    loaded = AgentBuffer()
    loaded[BufferKey.MASKS].append(1.0)  # fields not in the file are kept
    loaded.load_from_file(str(path))
    assert list(loaded.keys()) == [BufferKey.MASKS] + list(buffer.keys())
    for key in buffer:
        original, back = np.asarray(buffer[key]), np.asarray(loaded[key])
        assert back.dtype == original.dtype and back.shape == original.shape, key
        assert back.tobytes() == original.tobytes(), key
    stream = io.BytesIO()
    buffer.save_to_file(stream)
    stream.seek(0)
    from_stream = AgentBuffer()
    from_stream.load_from_file(stream)
    assert stream.getvalue() == path.read_bytes()
    assert np.asarray(from_stream[OBS]).tobytes() == np.asarray(buffer[OBS]).tobytes()


def test_foreign_field_names_are_a_corrupt_file(tmp_path):
    from mlagents_fast import _native

    path = tmp_path / "foreign.fields"
    _native.save_fields(path, "agent_buffer", {"obs_0": np.zeros((2, 3)), "weights": np.zeros(2)})
    target = AgentBuffer()
    with pytest.raises(CorruptFileError, match="'weights'"):
        target.load_from_file(path)
    assert len(target) == 0
    _native.save_fields(path, "replay_buffer", {"obs_0": np.zeros((2, 3))})
    with pytest.raises(CorruptFileError):
        target.load_from_file(path)


def test_set_replaces_rows_even_from_itself():
    field = AgentBufferField(np.arange(4, dtype=np.float32))
    field.set(field)
    np.testing.assert_array_equal(field.to_ndarray(), np.arange(4))
    field.set(np.ones((2, 2), dtype=np.int32))
    assert field.row_shape == (2,) and field.dtype == np.int32
    field[:] = [np.zeros(3), np.ones(3)]
    np.testing.assert_array_equal(field.to_ndarray(), [[0, 0, 0], [1, 1, 1]])
    field[1] = np.full(3, 7.0)
    np.testing.assert_array_equal(field[1], [7, 7, 7])
    with pytest.raises(InvalidArgumentError, match="dtype"):
        AgentBufferField(np.zeros(2, dtype=np.int64)).__setitem__(0, 1.5)


def test_corrupt_file_loads_nothing(tmp_path):
    buffer = indexed_buffer(4)
    path = tmp_path / "buffer.fields"
    buffer.save_to_file(path)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    target = AgentBuffer()
    target[OBS].append(np.zeros(3, dtype=np.float32))
    with pytest.raises(CorruptFileError):
        target.load_from_file(path)
    with pytest.raises(CorruptFileError):
        target.load_from_file(io.BytesIO(bytes(data[:100])))
    assert list(target.keys()) == [OBS] and len(target[OBS]) == 1


GROUP_OBS = (ObservationKeyPrefix.GROUP_OBSERVATION, 0)


def group_buffer() -> AgentBuffer:
    """Three steps with 2, 0 and 1 group mates, as ML-Agents' trajectories give them."""
    buffer = AgentBuffer()
    buffer[BufferKey.DONE].extend([False, False, True])
    buffer[GROUP_OBS].extend(
        [
            [np.array([0.5, -1], np.float32), np.array([2, 3], np.float32)],
            [],
            [np.array([np.nan, 7], np.float32)],
        ]
    )
    buffer[BufferKey.GROUPMATE_REWARDS].extend([[0.25, -1.0], [], [3.0]])
    buffer[BufferKey.GROUP_CONTINUOUS_ACTION].extend(
        [[np.arange(3, dtype=np.float64)] * 2, [], [np.ones(3)]]
    )
    buffer[BufferKey.GROUP_DONES].extend([[], [], []])  # no member in any entry
    return buffer


def test_group_fields_round_trip_through_a_file(tmp_path):
    buffer = group_buffer()
    path = tmp_path / "group.fields"
    buffer.save_to_file(path)
    loaded = AgentBuffer()
    loaded.load_from_file(path)
    assert list(loaded.keys()) == list(buffer.keys())
    assert loaded[BufferKey.DONE] == [False, False, True]
    for key in list(buffer)[1:]:
        original, back = list(buffer[key]), list(loaded[key])
        assert len(original) == len(back), key
        for entry, loaded_entry in zip(original, back):
            assert len(entry) == len(loaded_entry), key
            for member, loaded_member in zip(entry, loaded_entry):
                expected = np.asarray(member)
                if key == BufferKey.GROUPMATE_REWARDS:
                    expected = expected.astype(np.float32)  # Python floats are float32 here
                got = np.asarray(loaded_member)
                assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), key
    assert loaded[GROUP_OBS].contains_lists
    np.testing.assert_array_equal(
        loaded[GROUP_OBS].padded_to_batch(pad_value=-9)[1], [[2, 3], [-9, -9], [-9, -9]]
    )
    stream = io.BytesIO()
    buffer.save_to_file(stream)
    assert stream.getvalue() == path.read_bytes()


def test_group_fields_that_cannot_be_encoded_name_the_field(tmp_path):
    mixed = AgentBuffer()
    mixed[BufferKey.GROUP_CONTINUOUS_ACTION].extend([[np.zeros(2)], [np.zeros(3)]])
    with pytest.raises(InvalidArgumentError, match="group_continuous_action.*shapes"):
        mixed.save_to_file(tmp_path / "a.fields")
    not_entries = AgentBuffer()
    not_entries[BufferKey.GROUP_DONES].append([True])
    not_entries[BufferKey.GROUP_DONES].append("x")
    with pytest.raises(InvalidArgumentError, match="group_dones.*row 1"):
        not_entries.save_to_file(tmp_path / "a.fields")
    assert not (tmp_path / "a.fields").exists()


def test_files_written_before_group_fields_still_load():
    """A format-1 file written by the previous release (dense fields only)."""
    from repo_paths import FIXTURES

    loaded = AgentBuffer()
    loaded.load_from_file(os.path.join(FIXTURES, "agent_buffer_format1.fields"))
    np.testing.assert_array_equal(
        np.asarray(loaded[OBS]), np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5
    )
    assert np.asarray(loaded[BufferKey.DONE]).tolist() == [False, False, True]
    assert loaded[BufferKey.DISCRETE_ACTION].dtype == np.int32
    assert loaded[RewardSignalUtil.returns_key("extrinsic")] == [0.5, -1.25, 3.0]
    assert loaded[RewardSignalUtil.returns_key("extrinsic")].dtype == np.float64
    assert loaded.num_experiences == 3


def test_native_ragged_fields_are_checked(tmp_path):
    from mlagents_fast import _native

    path = tmp_path / "r.fields"
    members = np.arange(6, dtype=np.float32).reshape(3, 2)
    for offsets, message in [
        (np.array([0, 2, 1, 3]), "decrease"),
        (np.array([1, 3]), "first offset"),
        (np.array([0, 2]), "values"),
        (np.array([[0, 3]]), "1-D"),
        (np.array([0, 3], dtype=np.int32), "int64"),
        (np.array([-1, 3]), "negative"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            _native.save_fields(path, "agent_buffer", {"group_obs_0": (offsets, members)})
    assert not path.exists()
    offsets = np.array([0, 0, 3])
    _native.save_fields(path, "agent_buffer", {"group_obs_0": (offsets, members)})
    back_offsets, back_members = _native.load_fields(path, "agent_buffer")["group_obs_0"]
    assert back_offsets.dtype == np.int64 and back_offsets.tolist() == [0, 0, 3]
    np.testing.assert_array_equal(back_members, members)


def test_replay_buffer_files_refuse_ragged_records(tmp_path):
    from mlagents_fast import _native
    from mlagents_fast.trainers.replay_buffer import ReplayBuffer

    path = tmp_path / "replay.fields"
    _native.save_fields(path, "replay_buffer", {"field/x": (np.array([0, 1]), np.zeros(1))})
    with pytest.raises(CorruptFileError, match="ragged"):
        ReplayBuffer.load(path)


# ----------------------------------------------------------------------------- op sequences

_OPERATION = st.one_of(
    st.tuples(st.just("extend"), st.integers(0, 12)),
    st.tuples(st.just("append"), st.just(0)),
    st.tuples(st.just("truncate"), st.integers(0, 30), st.integers(1, 4)),
    st.tuples(st.just("mini_batch"), st.integers(-5, 30), st.integers(-5, 30)),
    st.tuples(st.just("resequence"), st.integers(1, 5)),
    st.tuples(st.just("reset"), st.just(0)),
)


@settings(max_examples=80, deadline=None)
@given(operations=st.lists(_OPERATION, max_size=25))
def test_operation_sequences_match_a_list_of_rows(operations):
    """Growth, O(1) truncation and views agree with ML-Agents' list semantics."""
    buffer, target = AgentBuffer(), AgentBuffer()
    rows: list[int] = []  # reference: the row ids the buffer should hold, in order
    target_rows: list[int] = []
    views = []  # (minibatch, expected ids): must never change afterwards
    counter = 0

    def add(ids):
        ids = np.asarray(ids, dtype=np.int64)
        buffer[OBS].extend(np.stack([ids, -ids], axis=1).astype(np.float32))
        buffer[BufferKey.DONE].extend(ids % 2 == 0)

    for operation in operations:
        kind = operation[0]
        if kind == "extend":
            ids = list(range(counter, counter + operation[1]))
            counter += operation[1]
            add(ids)
            rows += ids
        elif kind == "append":
            buffer[OBS].append(np.array([counter, -counter], dtype=np.float32))
            buffer[BufferKey.DONE].append(counter % 2 == 0)
            rows.append(counter)
            counter += 1
        elif kind == "truncate":
            max_length, sequence_length = operation[1], operation[2]
            buffer.truncate(max_length, sequence_length)
            keep = max_length - max_length % sequence_length
            if len(rows) > keep:
                rows = rows[len(rows) - keep :]
        elif kind == "mini_batch":
            start, end = operation[1], operation[2]
            views.append((buffer.make_mini_batch(start, end), rows[start:end]))
        elif kind == "resequence":
            if rows:
                buffer.resequence_and_append(target, training_length=operation[1])
                padded = reference_get_batch(list(rows), 0, None, operation[1])
                target_rows += [int(r) if not isinstance(r, np.ndarray) else 0 for r in padded]
        else:
            buffer.reset_agent()
            rows = []
        if buffer.num_experiences or rows:
            np.testing.assert_array_equal(np.asarray(buffer[OBS])[:, 0], rows)
            np.testing.assert_array_equal(
                np.asarray(buffer[BufferKey.DONE]), np.array(rows) % 2 == 0
            )
        for batch, expected in views:
            got = np.asarray(batch[OBS])[:, 0] if batch.num_experiences else []
            np.testing.assert_array_equal(got, expected)
    if target_rows:
        np.testing.assert_array_equal(np.asarray(target[OBS])[:, 0], target_rows)
        assert target.check_length([OBS, BufferKey.DONE])
