"""AgentBufferField as a list: random operation sequences against a plain Python list of
rows (numeric fields and group-entry fields), and ownership of the rows a field hands out
(slices, arrays, minibatches, batches): whatever the buffer does next, a holder never sees
its rows change."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.buffer import (
    AgentBuffer,
    AgentBufferField,
    BufferKey,
    ObservationKeyPrefix,
)

OBS = (ObservationKeyPrefix.OBSERVATION, 0)


def numeric_row(value: int) -> np.ndarray:
    return np.array([value, -value], dtype=np.float32)


def group_entry(value: int) -> list:
    return [np.full(2, value, dtype=np.float32)] * (value % 3)


def assert_rows(field: AgentBufferField, reference: list, group: bool) -> None:
    """The field holds exactly ``reference`` (list of rows or entries), in order."""
    assert len(field) == len(reference)
    if group:
        for entry, expected in zip(field, reference):
            assert len(entry) == len(expected)
            for member, expected_member in zip(entry, expected):
                np.testing.assert_array_equal(member, expected_member)
    elif reference:
        np.testing.assert_array_equal(np.asarray(field), np.stack(reference))
    for i in (0, len(reference) // 2, -1):
        if reference:
            row = field[i]
            if group:
                assert len(row) == len(reference[i])
            else:
                np.testing.assert_array_equal(row, reference[i])


_INDEX = st.integers(-12, 12)
_OPERATION = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 99)),
    st.tuples(st.just("extend"), st.lists(st.integers(0, 99), max_size=5)),
    st.tuples(st.just("set_item"), _INDEX, st.integers(0, 99)),
    st.tuples(
        st.just("set_slice"),
        _INDEX,
        _INDEX,
        st.sampled_from([None, 1, 2, -1]),
        st.lists(st.integers(0, 99), max_size=4),
    ),
    st.tuples(st.just("del_item"), _INDEX),
    st.tuples(st.just("del_slice"), _INDEX, _INDEX, st.sampled_from([None, 1, 2, -1])),
    st.tuples(st.just("insert"), _INDEX, st.integers(0, 99)),
    st.tuples(st.just("pop"), _INDEX),
    st.tuples(st.just("set"), st.lists(st.integers(0, 99), max_size=6)),
    st.tuples(
        st.just("reset"),
    ),
    st.tuples(st.just("take_slice"), _INDEX, _INDEX, st.sampled_from([None, 1, 2, -2])),
    st.tuples(
        st.just("take_array"),
    ),
    st.tuples(st.just("take_batch"), st.integers(1, 4)),
    st.tuples(
        st.just("take_rows"),
    ),
)


def _apply(field: AgentBufferField, reference: list, operation: tuple, make) -> object:
    """Applies ``operation`` to the field and to the reference list the same way: the
    same exception from both, or the same effect. Returns what was taken (or None)."""
    kind = operation[0]
    if kind == "append":
        field.append(make(operation[1]))
        reference.append(make(operation[1]))
    elif kind == "extend":
        field.extend([make(v) for v in operation[1]])
        reference.extend(make(v) for v in operation[1])
    elif kind == "set":
        field.set([make(v) for v in operation[1]])
        reference[:] = [make(v) for v in operation[1]]
    elif kind == "reset":
        field.reset_field()
        reference.clear()
    elif kind in ("set_item", "del_item", "pop", "insert", "set_slice", "del_slice"):
        if kind in ("set_slice", "del_slice"):
            target = slice(operation[1], operation[2], operation[3])
        else:
            target = operation[1]
        expected_error = None
        probe = list(reference)
        try:
            popped = _mutate(probe, kind, target, operation, make)
        except (IndexError, ValueError) as err:
            expected_error = type(err)
        if expected_error is not None:
            with pytest.raises(expected_error):
                _mutate(field, kind, target, operation, make)
            return None
        got = _mutate(field, kind, target, operation, make)
        if kind == "pop":
            if isinstance(popped, list):
                assert len(got) == len(popped)
            else:
                np.testing.assert_array_equal(got, popped)
        reference[:] = probe
    return None


def _mutate(field, kind, target, operation, make):
    """One list operation, the same on an AgentBufferField and on a Python list."""
    if kind == "set_item":
        field[target] = make(operation[2])
    elif kind == "set_slice":
        field[target] = [make(v) for v in operation[4]]
    elif kind == "insert":
        field.insert(target, make(operation[2]))
    elif kind == "pop":
        return field.pop(target)
    else:
        del field[target]
    return None


def _take(field: AgentBufferField, reference: list, operation: tuple, group: bool):
    """Something a caller may hold on to, and the rows it must keep showing."""
    kind = operation[0]
    if kind == "take_slice":
        index = slice(operation[1], operation[2], operation[3])
        return field[index], reference[index]
    if kind == "take_array":
        if group:  # ragged entries make no array (as with ML-Agents' list)
            return None
        return np.asarray(field), list(reference)
    if kind == "take_batch":
        if not reference or len(reference) % operation[1]:
            return None
        return field.get_batch(training_length=operation[1]), list(reference)
    return list(field), list(reference)  # iteration: row objects


def _check_held(held: list, group: bool) -> None:
    for taken, expected in held:
        if isinstance(taken, np.ndarray):
            if expected:
                np.testing.assert_array_equal(taken, np.stack(expected))
            continue
        if isinstance(taken, list):  # iterated rows
            assert len(taken) == len(expected)
            for row, row_expected in zip(taken, expected):
                if group:
                    assert len(row) == len(row_expected)
                else:
                    np.testing.assert_array_equal(row, row_expected)
            continue
        assert_rows(taken, expected, group)


def _run_sequence(operations: list, make, group: bool) -> None:
    field = AgentBufferField()
    reference: list = []
    held: list = []
    for operation in operations:
        if operation[0].startswith("take_"):
            taken = _take(field, reference, operation, group)
            if taken is not None:
                held.append(taken)
        else:
            _apply(field, reference, operation, make)
        assert_rows(field, reference, group)
        _check_held(held, group)


@settings(max_examples=150, deadline=None)
@given(operations=st.lists(_OPERATION, max_size=30))
def test_numeric_field_behaves_as_a_list_of_rows(operations):
    _run_sequence(operations, numeric_row, group=False)


@settings(max_examples=100, deadline=None)
@given(operations=st.lists(_OPERATION, max_size=30))
def test_group_field_behaves_as_a_list_of_entries(operations):
    _run_sequence(operations, group_entry, group=True)


# ----------------------------------------------------------------------------- list rules


def test_slices_are_fields_that_compare_with_lists():
    field = AgentBufferField([1.0, 2.0, 3.0, 4.0])
    part = field[1:3]
    assert isinstance(part, AgentBufferField)
    assert (part == [2.0, 3.0]) is True
    assert (part == [2.0, 4.0]) is False
    assert (part == [2.0]) is False
    assert part != [9.0, 9.0]
    assert field[::-2] == [4.0, 2.0]
    assert field + [5.0] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [0.0] + field == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert 3.0 in field and 7.0 not in field
    assert field.index(3.0) == 2 and field.count(2.0) == 1
    assert (field == (1.0, 2.0, 3.0, 4.0)) is False  # a list is never equal to a tuple
    matrix = AgentBufferField(np.arange(6, dtype=np.float32).reshape(3, 2))
    assert matrix[1:] == [[2, 3], [4, 5]]  # multi-element rows compare whole
    assert matrix[1:] != [[2, 3], [4, 6]]
    with pytest.raises(TypeError, match="integers or slices"):
        matrix[(0, 1)]
    with pytest.raises(IndexError):
        matrix[3]


def test_group_entries_read_as_lists():
    field = AgentBufferField([[np.ones(1)], []])
    assert field[1] == [] and isinstance(field[0], list)
    assert field == [[np.ones(1)], []]
    assert field.contains_lists and not AgentBufferField([1.0]).contains_lists
    assert not AgentBufferField().contains_lists


def test_rows_that_do_not_fit_are_refused_and_change_nothing():
    field = AgentBufferField(np.zeros((3, 2), dtype=np.int32))
    for bad in (lambda: field.__setitem__(0, [0.5, 0.5]), lambda: field.insert(1, [1, 2, 3])):
        with pytest.raises(InvalidArgumentError):
            bad()
    with pytest.raises(InvalidArgumentError, match="row shape"):
        field[1:2] = [np.array([1, 2, 3], dtype=np.int32)]
    with pytest.raises(InvalidArgumentError, match="group entries"):
        field[1:2] = [[1, 2]]  # a list is a group entry, as in ML-Agents' buffers
    with pytest.raises(ValueError, match="extended slice"):
        field[::2] = [(1, 1)]
    with pytest.raises(InvalidArgumentError, match="group entry"):
        field.append([np.zeros(2)])
    assert field == [[0, 0]] * 3 and field.dtype == np.int32


# ----------------------------------------------------------------------------- ownership


def filled_buffer(length: int, first: int = 0) -> AgentBuffer:
    buffer = AgentBuffer()
    ids = np.arange(first, first + length)
    buffer[OBS].extend(np.stack([ids, -ids], axis=1).astype(np.float32))
    buffer[BufferKey.ADVANTAGES].extend(ids.astype(np.float32))
    buffer[BufferKey.DONE].extend(ids % 2 == 0)
    buffer[BufferKey.GROUPMATE_REWARDS].extend([[float(i)] for i in ids])
    return buffer


def ids_of(batch) -> list[int]:
    obs = np.asarray(batch[OBS])
    np.testing.assert_array_equal(obs[:, 1], -obs[:, 0])
    ids = obs[:, 0].astype(int).tolist()
    assert np.asarray(batch[BufferKey.ADVANTAGES]).astype(int).tolist() == ids
    assert [entry[0] for entry in batch[BufferKey.GROUPMATE_REWARDS]] == ids
    return ids


def test_held_minibatches_never_change_through_a_training_loop():
    """Several rounds of: ingest trajectories, normalise advantages, shuffle, cut
    minibatches (all kept), empty the update buffer. Every minibatch shows, at the end,
    the rows it showed when it was cut."""
    np.random.seed(4)
    update = AgentBuffer()
    held = []
    first = 0
    for _round in range(4):
        for _trajectory in range(3):
            filled_buffer(17, first).resequence_and_append(update, training_length=1)
            first += 17
        if _round % 2:
            arrays = update.to_arrays()
            held.append((arrays, ids_of(arrays)))
        advantages = update[BufferKey.ADVANTAGES]
        advantages.set(np.asarray(advantages.get_batch()) * 1.0)
        for _epoch in range(2):
            update.shuffle(sequence_length=1)
            for start in range(0, 48, 16):
                batch = update.make_mini_batch(start, start + 16)
                held.append((batch, ids_of(batch)))
                held.append((update.sample_mini_batch(8), None))
        update[OBS][0] = np.array([-1.0, 1.0])  # a write after rows were lent: copy on write
        update[BufferKey.ADVANTAGES][0:3] = [0.0, 0.0]
        update[BufferKey.DONE][::2] = np.zeros((update.num_experiences + 1) // 2, dtype=bool)
        update.truncate(20)
        filled_buffer(5, 10_000).resequence_and_append(update)
        update.reset_agent()
    for batch, expected in held:
        if expected is not None:
            assert ids_of(batch) == expected


def test_refilled_storage_is_never_storage_that_was_lent():
    buffer = filled_buffer(40)
    view = np.asarray(buffer[OBS])  # lent: the next fill must not go into it
    kept = view.copy()
    buffer.reset_agent()
    filled_buffer(40, 100).resequence_and_append(buffer)
    np.testing.assert_array_equal(view, kept)
    assert not np.shares_memory(view, np.asarray(buffer[OBS]))


def test_slices_and_batches_are_independent_of_later_writes_both_ways():
    field = AgentBufferField(np.arange(8, dtype=np.float32).reshape(4, 2))
    part = field[1:3]
    batch = field.get_batch(batch_size=2, training_length=1)
    array = field.to_ndarray()
    field[1] = [-1, -1]
    del field[0]
    field.insert(0, (9, 9))
    field[2:] = [(5, 5)]
    assert part == [[2, 3], [4, 5]]
    assert batch == [[4, 5], [6, 7]]
    np.testing.assert_array_equal(array, np.arange(8).reshape(4, 2))
    part[0] = [7, 7]  # writing into a slice leaves its source alone (list semantics)
    part.append((1, 1))
    assert field == [[9, 9], [-1, -1], [5, 5]]
    assert part == [[7, 7], [4, 5], [1, 1]]


def test_adopted_rows_are_not_copied_and_never_written_by_the_buffer():
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    buffer = AgentBuffer()
    buffer.adopt(OBS, rows, padding_value=1.0)
    assert np.shares_memory(np.asarray(buffer[OBS]), rows)
    assert buffer[OBS].padding_value == 1.0
    buffer[OBS][0] = [7, 7]
    buffer.reset_agent()
    buffer[OBS].extend(np.full((3, 2), 5, dtype=np.float32))
    np.testing.assert_array_equal(rows, np.arange(6).reshape(3, 2))
    with pytest.raises(InvalidArgumentError, match="not numeric"):
        buffer.adopt(OBS, np.array(["a"]))
    with pytest.raises(InvalidArgumentError, match="numpy array"):
        buffer.adopt(OBS, [1.0, 2.0])
