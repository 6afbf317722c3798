"""Columnar AgentBuffer: the counterpart of ``mlagents.trainers.buffer`` (ML-Agents 1.1.0).

Public names, arguments, defaults and list behaviour are ML-Agents'; the storage differs.
An :class:`AgentBufferField` behaves like ML-Agents' field (a list of rows: indexing,
slicing, ``==`` against lists, ``append``/``extend``/``set``/``insert``/``del``, iteration),
but keeps its rows in a column (``mlagents_fast.trainers.buffer_columns``):

- numeric rows in one contiguous numpy array of a fixed dtype and row shape, so appending a
  whole trajectory is one copy per field, and ``np.asarray(field)``, ``to_ndarray`` and
  minibatches are views, ready for ``torch.from_numpy``;
- group entries (ML-Agents' ``List[np.ndarray]`` rows, e.g. ``GROUP_CONTINUOUS_ACTION``) in
  a Python list, as in ML-Agents: a *numeric row* must be given as a numpy array, tuple or
  scalar, a *group entry* as a Python ``list``.

Rows handed out are never changed by the buffer (the ownership rules are in
``buffer_columns``): a minibatch, slice or array taken earlier keeps showing the rows it
showed, whatever the buffer does next (shuffle, append, write, truncate, reset). ``shuffle``,
``sample_mini_batch`` and overlapping ``get_batch`` gather rows in Rust
(``mlagents_fast._native.buffer_gather_rows``, interpreter released) into new storage;
``truncate`` only moves the start of the valid rows (O(1)).

Dtypes: the first row appended fixes a field's dtype and row shape. Python floats (and
lists/tuples of them) become float32, Python bools bool, Python ints int64; numpy data
keeps its dtype. Later rows must have the same row shape and a dtype that casts to the
field's within the same kind (numpy ``same_kind``: float64 into float32 is accepted, float
into an int or bool field is not); anything else raises :class:`InvalidArgumentError`
naming the field. Appending to an emptied field (after ``reset_field``) may fix a new
dtype and shape.

Canonical field names (used by save/load, the replay buffer and the trainers), see
:func:`key_to_name`:

- ``BufferKey.X`` -> its value, e.g. ``"continuous_action"``, ``"done"``, ``"masks"``;
- ``(ObservationKeyPrefix.OBSERVATION, 0)`` -> ``"obs_0"``; ``NEXT_OBSERVATION`` ->
  ``"next_obs_0"``; ``GROUP_OBSERVATION`` -> ``"group_obs_0"``; ``NEXT_GROUP_OBSERVATION``
  -> ``"next_group_obs_0"``;
- ``(RewardSignalKeyPrefix.VALUE_ESTIMATES, "extrinsic")`` -> ``"extrinsic_value_estimates"``;
  likewise ``"<signal>_rewards"``, ``"<signal>_returns"``, ``"<signal>_advantage"``,
  ``"<signal>_baselines"``.

Differences from ML-Agents 1.1.0, on purpose:

- ``RewardSignalUtil.value_estimates_key`` returns the ``VALUE_ESTIMATES`` key. ML-Agents
  returns the ``RETURNS`` key there, so its PPO overwrites the old value estimates with
  the returns before the value-clipping loss reads them.
- A field is a ``collections.abc.MutableSequence``, not a ``list`` subclass
  (``isinstance(field, list)`` is False). Reading one numeric row (``field[i]``, iteration)
  gives a copy of it (ML-Agents gives the stored object); a group entry is given as a new
  list of its members. ``to_ndarray`` and ``np.asarray(field)`` return a view, not a copy:
  writing into it writes the field's rows. ``field == other`` compares multi-element rows
  whole (ML-Agents' list comparison raises on them).
- ``shuffle`` and ``sample_mini_batch`` draw one seed from ``numpy.random`` per call, so
  ``numpy.random.seed`` makes them reproducible, but the permutation differs from
  ML-Agents' for the same seed.
- ``sample_mini_batch`` requires every field to have the same length (ML-Agents silently
  returns short fields).
- ``save_to_file``/``load_from_file`` write the documented field-file format
  (``docs/file-format.md``) instead of HDF5, keep each field's dtype bit-exact
  (ML-Agents stores float32), and accept a path as well as a binary file object. Group
  fields are saved as ragged fields (every member of a field must have one shape).
"""

from __future__ import annotations

import enum
import itertools
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, MutableMapping, MutableSequence
from typing import Any, BinaryIO, Self, cast

import numpy as np

from mlagents_fast import _native
from mlagents_fast.exceptions import BufferException, CorruptFileError, InvalidArgumentError
from mlagents_fast.trainers.buffer_columns import (
    EMPTY,
    Column,
    ListColumn,
    NumericColumn,
    RowError,
    borrow_rows,
    take_rows,
)

__all__ = [
    "AgentBuffer",
    "AgentBufferField",
    "AgentBufferKey",
    "BufferException",
    "BufferKey",
    "ObservationKeyPrefix",
    "RewardSignalKeyPrefix",
    "RewardSignalUtil",
    "key_to_name",
    "name_to_key",
]

#: ``kind`` written in the header of AgentBuffer field files.
FILE_KIND = "agent_buffer"


class BufferKey(enum.Enum):
    """Names of the fixed fields (values identical to ML-Agents 1.1.0, typo included)."""

    # Members are singletons compared by identity; the identity hash is C code, where
    # Enum.__hash__ is a Python call on every field lookup.
    __hash__ = object.__hash__

    ACTION_MASK = "action_mask"
    CONTINUOUS_ACTION = "continuous_action"
    NEXT_CONT_ACTION = "next_continuous_action"
    CONTINUOUS_LOG_PROBS = "continuous_log_probs"
    DISCRETE_ACTION = "discrete_action"
    NEXT_DISC_ACTION = "next_discrete_action"
    DISCRETE_LOG_PROBS = "discrete_log_probs"
    DONE = "done"
    ENVIRONMENT_REWARDS = "environment_rewards"
    MASKS = "masks"
    MEMORY = "memory"
    CRITIC_MEMORY = "critic_memory"
    BASELINE_MEMORY = "poca_baseline_memory"
    PREV_ACTION = "prev_action"

    ADVANTAGES = "advantages"
    DISCOUNTED_RETURNS = "discounted_returns"

    GROUP_DONES = "group_dones"
    GROUPMATE_REWARDS = "groupmate_reward"
    GROUP_REWARD = "group_reward"
    GROUP_CONTINUOUS_ACTION = "group_continuous_action"
    GROUP_DISCRETE_ACTION = "group_discrete_aaction"
    GROUP_NEXT_CONT_ACTION = "group_next_cont_action"
    GROUP_NEXT_DISC_ACTION = "group_next_disc_action"


class ObservationKeyPrefix(enum.Enum):
    """Prefix of observation keys ``(prefix, observation index)``."""

    # Members are singletons compared by identity; the identity hash is C code, where
    # Enum.__hash__ is a Python call on every field lookup.
    __hash__ = object.__hash__

    OBSERVATION = "obs"
    NEXT_OBSERVATION = "next_obs"

    GROUP_OBSERVATION = "group_obs"
    NEXT_GROUP_OBSERVATION = "next_group_obs"


class RewardSignalKeyPrefix(enum.Enum):
    """Prefix of per-reward-signal keys ``(prefix, signal name)``."""

    # Members are singletons compared by identity; the identity hash is C code, where
    # Enum.__hash__ is a Python call on every field lookup.
    __hash__ = object.__hash__

    REWARDS = "rewards"
    VALUE_ESTIMATES = "value_estimates"
    RETURNS = "returns"
    ADVANTAGE = "advantage"
    BASELINES = "baselines"


AgentBufferKey = BufferKey | tuple[ObservationKeyPrefix, int] | tuple[RewardSignalKeyPrefix, str]


class RewardSignalUtil:
    """Keys of the per-reward-signal fields."""

    @staticmethod
    def rewards_key(name: str) -> AgentBufferKey:
        return RewardSignalKeyPrefix.REWARDS, name

    @staticmethod
    def value_estimates_key(name: str) -> AgentBufferKey:
        # ML-Agents 1.1.0 returns the RETURNS key here (a bug, see the module docstring).
        return RewardSignalKeyPrefix.VALUE_ESTIMATES, name

    @staticmethod
    def returns_key(name: str) -> AgentBufferKey:
        return RewardSignalKeyPrefix.RETURNS, name

    @staticmethod
    def advantage_key(name: str) -> AgentBufferKey:
        return RewardSignalKeyPrefix.ADVANTAGE, name

    @staticmethod
    def baseline_estimates_key(name: str) -> AgentBufferKey:
        return RewardSignalKeyPrefix.BASELINES, name


# ---------------------------------------------------------------------------------------
# Canonical names

_BUFFER_KEY_BY_VALUE = {key.value: key for key in BufferKey}
_OBSERVATION_NAME = re.compile(r"(obs|next_obs|group_obs|next_group_obs)_(0|[1-9][0-9]*)", re.ASCII)
# Greedy signal part: the suffix is the last "_<prefix>" (no prefix value ends with another).
_REWARD_SIGNAL_NAME = re.compile(
    r"(.+)_(rewards|value_estimates|returns|advantage|baselines)", re.DOTALL
)
_NAME_CACHE: dict[Any, str] = {}


def _check_key_type(key: Any) -> None:
    """Raises KeyError (as ML-Agents' ``_check_key``) unless ``key`` is an AgentBufferKey."""
    if isinstance(key, BufferKey):
        return
    if isinstance(key, tuple) and len(key) == 2:
        prefix, suffix = key
        if isinstance(prefix, ObservationKeyPrefix):
            if isinstance(suffix, int) and not isinstance(suffix, bool):
                return
            raise KeyError(f"{key} has type ({type(prefix)}, {type(suffix)})")
        if isinstance(prefix, RewardSignalKeyPrefix):
            if isinstance(suffix, str):
                return
            raise KeyError(f"{key} has type ({type(prefix)}, {type(suffix)})")
    raise KeyError(f"{key} is a {type(key)}")


def key_to_name(key: AgentBufferKey) -> str:
    """The canonical string name of ``key`` (see the module docstring).

    Raises :class:`InvalidArgumentError` for something that is not an AgentBufferKey, a
    negative observation index, an empty signal name, or a signal name whose field name
    would read back as another key (``(REWARDS, "environment")`` would be
    ``"environment_rewards"``, the name of ``BufferKey.ENVIRONMENT_REWARDS``).
    """
    try:
        return _NAME_CACHE[key]
    except (KeyError, TypeError):
        pass
    try:
        _check_key_type(key)
    except KeyError as err:
        raise InvalidArgumentError(f"key: not an AgentBufferKey: {err}") from None
    if isinstance(key, BufferKey):
        name = key.value
    else:
        prefix, suffix = key
        if isinstance(prefix, ObservationKeyPrefix):
            assert isinstance(suffix, int)  # _check_key_type: observation indices are ints
            if suffix < 0:
                raise InvalidArgumentError(f"key: observation index {suffix} is negative")
            name = f"{prefix.value}_{suffix}"
        else:
            if not suffix:
                raise InvalidArgumentError("key: reward signal name is empty")
            name = f"{suffix}_{prefix.value}"
            if name_to_key(name) != key:
                raise InvalidArgumentError(
                    f"key: reward signal name {suffix!r} makes the field name {name!r}, "
                    f"which is the name of {name_to_key(name)!r}; rename the signal"
                )
    _NAME_CACHE[key] = name
    return name


def name_to_key(name: str) -> AgentBufferKey:
    """The AgentBufferKey whose canonical name is ``name`` (inverse of :func:`key_to_name`).

    Raises :class:`InvalidArgumentError` for a name no key has.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"name: expected a str, got {type(name).__name__}")
    key = _BUFFER_KEY_BY_VALUE.get(name)
    if key is not None:
        return key
    match = _OBSERVATION_NAME.fullmatch(name)
    if match:
        return ObservationKeyPrefix(match.group(1)), int(match.group(2))
    match = _REWARD_SIGNAL_NAME.fullmatch(name)
    if match:
        return RewardSignalKeyPrefix(match.group(2)), match.group(1)
    raise InvalidArgumentError(f"name: {name!r} is not the name of any AgentBuffer field")


def _describe(key: Any) -> str:
    try:
        return repr(key_to_name(key))
    except InvalidArgumentError:
        return repr(key)


# ---------------------------------------------------------------------------------------
# Helpers


def _positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{argument}: expected an integer >= 1, got {value!r}")
    return int(value)


def _non_negative_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgumentError(f"{argument}: expected an integer >= 0, got {value!r}")
    return int(value)


def _draw_seed() -> int:
    """One draw from the global numpy generator, so numpy.random.seed fixes our shuffles."""
    return int(np.random.randint(0, np.iinfo(np.int64).max, dtype=np.int64))


def _untyped_to_array(data: Any) -> np.ndarray:
    """numpy array of Python data; Python floats become float32 (ML-Agents' tensor dtype)."""
    array = np.asarray(data)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


def _batch_plan(
    length: int, batch_size: int | None, training_length: int | None, sequential: bool
) -> tuple[int, int, int, np.ndarray | None]:
    """``(start, end, padding_rows, None)`` or ``(0, 0, 0, rows)``: what get_batch takes
    from a field of ``length`` rows (rules in ``rust/core/src/agent_buffer.rs``)."""
    if training_length is None:
        training_length = 1
    training_length = _positive_int(training_length, "training_length")
    if batch_size is not None:
        batch_size = _non_negative_int(batch_size, "batch_size")
    try:
        return _native.buffer_batch_plan(length, batch_size, training_length, sequential)
    except InvalidArgumentError as err:
        raise BufferException(
            "The batch size and training length requested for get_batch were too large "
            f"given the current number of data points ({err})"
        ) from None


def _source_name(file_object: Any) -> str:
    if isinstance(file_object, (str, os.PathLike)):
        return os.fspath(file_object)
    return str(getattr(file_object, "name", "<file object>"))


def _rows_equal(a: Any, b: Any) -> bool:
    """One row (or group entry) of a field against one element of another sequence, as
    list comparison does it, except that multi-element numpy rows compare whole."""
    if a is b:
        return True
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_rows_equal, a, b))
    try:
        if np.shape(a) != np.shape(b) and (np.size(a) != 1 or np.size(b) != 1):
            return False
        return bool(np.all(np.asarray(a) == np.asarray(b)))
    except (TypeError, ValueError):  # ragged or non-numeric elements: not equal
        return False


def _index(index: Any) -> int:
    """An integer index, with list's error for anything else."""
    try:
        return index.__index__()
    except AttributeError:
        raise TypeError(
            f"AgentBufferField indices must be integers or slices, not {type(index).__name__}"
        ) from None


def _as_row(value: Any) -> np.ndarray:
    """One numeric row as an array: numpy data keeps its dtype, Python data is converted."""
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    return _untyped_to_array(value)


# ---------------------------------------------------------------------------------------
# AgentBufferField


class AgentBufferField:
    """One field of an :class:`AgentBuffer`: a sequence of rows with ML-Agents' list
    behaviour (``len``, iteration, indexing, slicing to a new field, ``==`` with lists,
    ``append(element, padding_value)``, ``extend``, ``set``, ``insert``, ``del``, ``pop``,
    ``get_batch``, ``reset_field``, ``padded_to_batch``, ``to_ndarray``,
    ``contains_lists``), stored as a column (see the module docstring); a registered
    ``collections.abc.MutableSequence``. ``np.asarray(field)`` is a view of its rows.
    """

    __slots__ = ("_column", "_name", "_spare", "padding_value")

    def __init__(self, data: Iterable[Any] | None = None) -> None:
        #: Rows added by ``get_batch`` padding are the last row times this value
        #: (ML-Agents: 0 for most fields, 1 for action masks). Set by ``append``.
        self.padding_value: float = 0.0
        self._column: Column = EMPTY
        self._name: Any = None  # the key, for error messages
        # Storage of an earlier column that nothing outside this field ever saw (never
        # lent), refilled by the next new numeric column that fits in it.
        self._spare: np.ndarray | None = None
        if data is not None:
            self.extend(data)

    @classmethod
    def _of(cls, column: Column, padding_value: float, name: Any) -> AgentBufferField:
        field = object.__new__(cls)
        field.padding_value = padding_value
        field._column = column
        field._name = name
        field._spare = None
        return field

    @classmethod
    def of_rows(cls, rows: np.ndarray, padding_value: float = 0.0) -> AgentBufferField:
        """A field showing ``rows`` (a numpy array, rows along the first axis) without
        copying them. The field never writes into ``rows``: a write copies them first."""
        return cls._of(_shared_column(rows, None), padding_value, None)

    def _keep_spare(self) -> None:
        """Keeps the current storage for refills if nothing outside the field saw it."""
        column = self._column
        if isinstance(column, NumericColumn):
            storage = column.unlent_storage()
            if storage is not None:
                self._spare = storage

    # -- introspection ----------------------------------------------------------------

    def _label(self) -> str:
        return f"field {_describe(self._name)}" if self._name is not None else "field"

    def _fail(self, message: Any) -> InvalidArgumentError:
        return InvalidArgumentError(f"{self._label()}: {message}")

    @property
    def dtype(self) -> np.dtype | None:
        """numpy dtype of the rows, None while the field holds no numeric row kind."""
        column = self._column
        return column.dtype if isinstance(column, NumericColumn) else None

    @property
    def row_shape(self) -> tuple[int, ...] | None:
        """Shape of one row, None while the field holds no numeric row kind."""
        column = self._column
        return column.row_shape if isinstance(column, NumericColumn) else None

    @property
    def contains_lists(self) -> bool:
        """True if this field holds group entries (lists of arrays), as in ML-Agents."""
        column = self._column
        return (
            isinstance(column, ListColumn) and len(column) > 0 and isinstance(column.items[0], list)
        )

    def __len__(self) -> int:
        return len(self._column)

    def __str__(self) -> str:
        return f"AgentBufferField: {self._column.peek()}"

    def __repr__(self) -> str:
        column = self._column
        if isinstance(column, ListColumn):
            return f"AgentBufferField(<{len(column)} group entries>)"
        return (
            f"AgentBufferField(<{len(column)} rows, row shape {self.row_shape}, "
            f"dtype {self.dtype}>)"
        )

    # -- reading (list semantics) -----------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        column = self._column
        if isinstance(index, slice):
            start, stop, step = index.indices(len(column))
            if step == 1:
                part = column.borrow(start, max(start, stop))
            else:
                part = column.take(np.arange(start, stop, step, dtype=np.int64))
            return AgentBufferField._of(part, self.padding_value, self._name)
        index = _index(index)
        if isinstance(column, ListColumn):
            entry = column.items[index]
            return list(entry) if isinstance(entry, list) else entry
        try:
            row = column.peek()[index]
        except IndexError:
            raise IndexError("AgentBufferField index out of range") from None
        return row.copy() if isinstance(row, np.ndarray) else row

    def __iter__(self) -> Iterator[Any]:
        return iter(self._column.lend())

    def __reversed__(self) -> Iterator[Any]:
        return reversed(self._column.lend())

    def __contains__(self, value: object) -> bool:
        return any(_rows_equal(row, value) for row in self)

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """Index of the first row equal to ``value`` (list rules; ValueError if none)."""
        for position in range(*slice(start, stop).indices(len(self))):
            if _rows_equal(self[position], value):
                return position
        raise ValueError(f"{value!r} is not in the field")

    def count(self, value: Any) -> int:
        return sum(_rows_equal(row, value) for row in self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (AgentBufferField, list)):
            return NotImplemented
        if len(self) != len(other):
            return False
        mine, theirs = self._column, other._column if isinstance(other, AgentBufferField) else None
        if isinstance(mine, NumericColumn) and isinstance(theirs, NumericColumn):
            return mine.row_shape == theirs.row_shape and bool(np.all(mine.peek() == theirs.peek()))
        return all(map(_rows_equal, self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __add__(self, other: Iterable[Any]) -> list[Any]:
        """``field + list`` is a list, as ML-Agents' list-based field gives."""
        if not isinstance(other, (AgentBufferField, list)):
            return NotImplemented
        return list(self) + list(other)

    def __radd__(self, other: Iterable[Any]) -> list[Any]:
        if not isinstance(other, list):
            return NotImplemented
        return other + list(self)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        column = self._column
        if dtype is None and not copy and column.__class__ is NumericColumn:
            return column.lend()  # the common case (np.asarray(field)), first
        if column.__class__ is ListColumn:
            return np.array(column.items, dtype=dtype)
        # Not a list column: an empty or numeric one lends an array.
        rows = cast(np.ndarray, column.lend())
        if dtype is None and not copy:
            return rows
        if dtype is not None and np.dtype(dtype) != rows.dtype:
            if copy is False:
                raise ValueError("a dtype conversion needs a copy")
            return rows.astype(dtype)
        return rows.copy() if copy else rows

    def to_ndarray(self) -> np.ndarray:
        """The rows as one numpy array of shape (len, *row_shape): a view, not a copy
        (ML-Agents returns a copy); the buffer never writes these rows again."""
        return self.__array__()

    def padded_to_batch(
        self, pad_value: float = 0, dtype: Any = np.float32
    ) -> np.ndarray | list[np.ndarray]:
        """Numeric fields: the rows as an array of ``dtype``. Group fields: one array per
        group position, of length len(self), missing members filled with ``pad_value``
        (an empty list when no entry has a member, or the field is empty)."""
        column = self._column
        if isinstance(column, NumericColumn) and len(column):
            return np.asanyarray(column.lend(), dtype=dtype)
        items = column.peek() if isinstance(column, ListColumn) else []
        shape = None
        for entry in items:
            if entry:
                shape = np.shape(entry[0])
                break
        if shape is None:
            return []
        return [
            np.asanyarray(members, dtype=dtype)
            for members in itertools.zip_longest(*items, fillvalue=np.full(shape, pad_value))
        ]

    # -- writing ----------------------------------------------------------------------

    def _list_column(self) -> ListColumn:
        """The column group entries go to: this field's list column, or a new one if the
        field holds no row."""
        column = self._column
        if isinstance(column, ListColumn):
            return column
        if len(column):
            raise self._fail(
                "a list (group entry) cannot be appended to a field of numeric rows; "
                "give a numeric row as a numpy array, tuple or scalar"
            )
        column = self._column = ListColumn()
        return column

    def _takes_entries(self, first: Any) -> bool:
        """Whether data starting with ``first`` goes to a list column (group entries, or
        anything appended after them), not to a numeric one."""
        column = self._column
        return isinstance(first, list) or (isinstance(column, ListColumn) and len(column) > 0)

    def _append_rows(self, rows: np.ndarray) -> None:
        """Appends numeric ``rows`` (n, *row_shape) after checking them."""
        column = self._column
        try:
            if not isinstance(column, NumericColumn) or (
                not len(column)
                and (rows.dtype != column.dtype or rows.shape[1:] != column.row_shape)
            ):
                # The first rows fix the schema (also of a field emptied by truncation).
                spare, self._spare = self._spare, None
                if (
                    spare is not None
                    and spare.dtype == rows.dtype
                    and spare.shape[1:] == rows.shape[1:]
                    and len(spare) >= rows.shape[0]
                ):
                    column = NumericColumn(spare, 0, 0, 0)  # unlent: safe to refill
                else:
                    column = NumericColumn.with_room(rows, rows.shape[0])
                self._column = column
            elif rows.dtype != column.dtype or rows.shape[1:] != column.row_shape:
                column.check_rows(rows)
            column.append_rows(rows)
        except RowError as err:
            raise self._fail(err) from None

    def append(self, element: Any, padding_value: float = 0.0) -> None:
        """Appends one row (numpy array, scalar or tuple) or one group entry (a list).
        ``padding_value`` becomes this field's padding value, as in ML-Agents."""
        if self._takes_entries(element):
            self._list_column().items.append(element)
        else:
            self._append_rows(_as_row(element)[np.newaxis])
        self.padding_value = padding_value

    def extend(self, data: Any, padding_value: float | None = None) -> None:
        """Appends many rows at once: a numpy array (rows along the first axis, one
        copy), another field, or a sequence of rows or of group entries.
        ``padding_value``, if given, becomes this field's padding value."""
        if padding_value is not None:
            self.padding_value = padding_value
        if isinstance(data, AgentBufferField):
            source = data._column
            data = list(source.items) if isinstance(source, ListColumn) else source.peek()
        if isinstance(data, np.generic):
            data = np.asarray(data)
        if isinstance(data, np.ndarray):
            if data.ndim == 0:
                raise self._fail("extend needs rows along a first axis, got a 0-d array")
            if isinstance(self._column, ListColumn) and len(self._column):
                self._column.items.extend(data)
            elif len(data) or not isinstance(self._column, NumericColumn):
                self._append_rows(data)
            return
        if not isinstance(data, (list, tuple)):
            data = list(data)
        if len(data) == 0:
            return
        if self._takes_entries(data[0]):
            self._list_column().items.extend(data)
            return
        try:
            rows = np.stack(data) if isinstance(data[0], np.ndarray) else _untyped_to_array(data)
        except ValueError as err:
            raise self._fail(f"rows of different shapes cannot be stacked: {err}") from None
        self._append_rows(rows)

    def set(self, data: Any) -> None:
        """Replaces every row with ``data`` (keeps the padding value)."""
        if isinstance(data, AgentBufferField):
            # Take the rows before emptying: ``data`` may be this very field. Its storage
            # is not written again (the new rows go to new storage).
            source = data._column
            data = list(source.items) if isinstance(source, ListColumn) else source.peek()
        self.reset_field()
        self.extend(data)

    def _new_rows(self, value: Any, argument: str) -> np.ndarray:
        """``value`` (a sequence of rows) as an array that fits this numeric field."""
        scratch = AgentBufferField()
        scratch._name = self._name
        scratch.extend(value)
        if isinstance(scratch._column, ListColumn):
            raise self._fail(f"{argument}: group entries (lists) cannot go into numeric rows")
        column = self._column
        assert isinstance(column, NumericColumn)  # callers assign into numeric fields only
        rows = scratch._column.peek()
        if len(rows):
            try:
                column.check_rows(rows)
            except RowError as err:
                raise self._fail(err) from None
        return rows.astype(column.dtype, copy=False).reshape((len(rows),) + column.row_shape)

    def __setitem__(self, index: Any, value: Any) -> None:
        column = self._column
        if isinstance(index, slice):
            if index == slice(None):
                self.set(value)
            elif isinstance(column, NumericColumn):
                self._assign_rows(index, value)
            elif isinstance(column, ListColumn):
                column.items[index] = list(value)
            else:  # empty: a plain slice inserts, an extended one takes no row
                rows = list(value)
                if rows and index.indices(0)[2] != 1:
                    raise ValueError(
                        f"attempt to assign sequence of size {len(rows)} to extended slice "
                        "of size 0"
                    )
                self.extend(rows)
            return
        index = _index(index)
        if isinstance(column, ListColumn):
            column.items[index] = value
            return
        if not -len(column) <= index < len(column):
            raise IndexError("AgentBufferField assignment index out of range")
        assert isinstance(column, NumericColumn)  # an empty field has no index in range
        row = _as_row(value)
        if row.dtype != column.dtype and not np.can_cast(row.dtype, column.dtype, "same_kind"):
            raise self._fail(
                f"dtype {row.dtype} cannot be stored in a field of dtype {column.dtype}"
            )
        try:
            if np.broadcast_shapes(row.shape, column.row_shape) != column.row_shape:
                raise ValueError
        except ValueError:
            raise self._fail(
                f"a row of shape {row.shape} does not fit the field's row shape {column.row_shape}"
            ) from None
        column.write(index, row)

    def _assign_rows(self, index: slice, value: Any) -> None:
        """``field[start:stop:step] = value`` with list rules: a plain slice may change the
        length; an extended slice needs as many rows as it selects."""
        column = self._column
        assert isinstance(column, NumericColumn)
        rows = self._new_rows(value, "value")
        start, stop, step = index.indices(len(column))
        if step == 1:
            current = column.peek()
            stop = max(start, stop)
            column.replace_all(np.concatenate([current[:start], rows, current[stop:]]))
            return
        selected = len(range(start, stop, step))
        if len(rows) != selected:
            raise ValueError(
                f"attempt to assign sequence of size {len(rows)} to extended slice of size "
                f"{selected}"
            )
        column.write(index, rows)

    def __delitem__(self, index: Any) -> None:
        column = self._column
        if isinstance(column, ListColumn):
            del column.items[index]
            return
        if not isinstance(column, NumericColumn):
            if isinstance(index, slice):
                return
            raise IndexError("AgentBufferField assignment index out of range")
        count = len(column)
        keep = np.ones(count, dtype=bool)
        if isinstance(index, slice):
            start, stop, step = index.indices(count)
            if start == 0 and step == 1:
                column.drop_front(max(stop, 0))  # O(1), as truncate
                return
        else:
            index = _index(index)
            if not -count <= index < count:
                raise IndexError("AgentBufferField assignment index out of range")
        keep[index] = False
        column.replace_all(column.peek()[keep])

    def insert(self, index: int, value: Any) -> None:
        """Inserts one row (or group entry) before ``index`` (list rules: clamped)."""
        index = _index(index)
        column = self._column
        if self._takes_entries(value):
            self._list_column().items.insert(index, value)
            return
        if not isinstance(column, NumericColumn) or not len(column):
            self._append_rows(_as_row(value)[np.newaxis])
            return
        rows = self._new_rows([value], "value")
        count = len(column)
        position = min(max(index + count if index < 0 else index, 0), count)
        column.replace_all(np.insert(column.peek(), position, rows, axis=0))

    def pop(self, index: int = -1) -> Any:
        """Removes and returns row ``index`` (list rules)."""
        row = self[index]
        del self[index]
        return row

    def remove(self, value: Any) -> None:
        del self[self.index(value)]

    def reverse(self) -> None:
        self[:] = list(reversed(self))

    def __iadd__(self, values: Iterable[Any]) -> Self:
        self.extend(values)
        return self

    def clear(self) -> None:
        self.reset_field()

    def reset_field(self) -> None:
        """Empties the field. Rows handed out earlier (minibatches, arrays) keep their
        data; storage nothing outside the field saw is kept for the next rows."""
        self._keep_spare()
        self._column = EMPTY

    # -- batches ----------------------------------------------------------------------

    def get_batch(
        self,
        batch_size: int | None = None,
        training_length: int | None = 1,
        sequential: bool = True,
    ) -> AgentBufferField:
        """The last ``batch_size`` sequences of ``training_length`` rows (ML-Agents rules).

        sequential=True: non-overlapping sequences; when the rows do not divide into whole
        sequences, every row is returned followed by padding rows (the last row times
        ``padding_value``) up to a whole number of sequences. ``[a,b,c,d,e]`` with
        training_length 2 gives ``[a,b,c,d,e,pad]``. sequential=False: overlapping
        sequences, ``[a,b,c,d,e]`` gives ``[a,b,b,c,c,d,d,e]``. ``batch_size=None`` takes
        every sequence. Returns a field (list-like; ``np.asarray`` of it is a view when no
        padding was needed). Group fields pad with empty lists. Raises
        :class:`BufferException` when more sequences are asked for than exist.
        """
        column = self._column
        try:
            plan = _batch_plan(len(column), batch_size, training_length, sequential)
        except BufferException as err:
            raise BufferException(f"{self._label()}: {err}") from None
        start, end, padding_rows, rows = plan
        if rows is None and not padding_rows:
            part = column.borrow(start, end)
        else:
            part = _column_of_parts(column, column.batch_parts(plan, self.padding_value))
        return AgentBufferField._of(part, self.padding_value, self._name)


def _shared_column(rows: Any, key: Any) -> NumericColumn:
    """A column of ``rows`` (for the field of ``key``, or None) without copying; ``rows``
    stays visible to the caller, so the column never writes into it."""
    try:
        if not isinstance(rows, np.ndarray):
            raise RowError(f"expected a numpy array, got {type(rows).__name__}")
        return NumericColumn.owning(rows, seen_outside=True)
    except RowError as err:
        argument = "rows" if key is None else f"rows of {_describe(key)}"
        raise InvalidArgumentError(f"{argument}: {err}") from None


def _column_of_parts(column: Column, parts: list[Any]) -> Column:
    """A new column of ``parts`` (from ``column.batch_parts``), which it owns."""
    if isinstance(column, NumericColumn):
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return NumericColumn.owning(rows, seen_outside=False)  # new rows: gathered or joined
    if isinstance(column, ListColumn):
        return ListColumn(parts[0])
    return EMPTY


MutableSequence.register(AgentBufferField)


# ---------------------------------------------------------------------------------------
# Group fields in files: ragged fields (offsets, members)


def _encode_entries(field: AgentBufferField, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A group field as ``(offsets, members)``: entry i is ``members[offsets[i]:offsets[i+1]]``."""
    items = field._column.peek()
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    members: list[Any] = []
    for i, entry in enumerate(items):
        if not isinstance(entry, list):
            raise InvalidArgumentError(
                f"field {name!r}: row {i} is a {type(entry).__name__}, not a group entry "
                "(a list), and cannot be saved"
            )
        members.extend(entry)
        offsets[i + 1] = len(members)
    if not members:
        return offsets, np.zeros((0,), dtype=np.float32)
    shapes = {np.shape(member) for member in members}
    if len(shapes) > 1:
        raise InvalidArgumentError(
            f"field {name!r}: group members of different shapes {sorted(shapes)} cannot be saved"
        )
    if any(isinstance(member, (np.ndarray, np.generic)) for member in members):
        values = np.stack([np.asarray(member) for member in members])
    else:
        values = _untyped_to_array(members)
    if values.dtype.kind in "OUSVMm":
        raise InvalidArgumentError(
            f"field {name!r}: group members of dtype {values.dtype} cannot be saved"
        )
    return offsets, np.ascontiguousarray(values)


def _decode_entries(offsets: np.ndarray, values: np.ndarray) -> list[list[Any]]:
    """Inverse of :func:`_encode_entries`: members are views of ``values`` (never written)."""
    bounds = offsets.tolist()
    return [list(values[lo:hi]) for lo, hi in itertools.pairwise(bounds)]


# ---------------------------------------------------------------------------------------
# AgentBuffer


class AgentBuffer(MutableMapping):
    """Named fields of equal length; fields are created on first access, as in ML-Agents."""

    #: Check key types on every access (ML-Agents' switch; off for speed).
    CHECK_KEY_TYPES_AT_RUNTIME = False

    def __init__(self) -> None:
        self.last_brain_info = None
        self.last_take_action_outputs = None
        self._fields: dict[AgentBufferKey, AgentBufferField] = {}

    def __str__(self) -> str:
        return ", ".join(f"'{k}' : {self._fields[k]}" for k in self._fields)

    def __repr__(self) -> str:
        return f"AgentBuffer(<{len(self._fields)} fields, {self.num_experiences} experiences>)"

    @staticmethod
    def _check_key(key: Any) -> None:
        _check_key_type(key)

    @staticmethod
    def _encode_key(key: AgentBufferKey) -> str:
        """ML-Agents' HDF5 dataset name (``"prefix:suffix"``); see :func:`key_to_name`
        for the canonical name used by this package's files."""
        if isinstance(key, BufferKey):
            return key.value
        prefix, suffix = key
        return f"{prefix.value}:{suffix}"

    @staticmethod
    def _decode_key(encoded_key: str) -> AgentBufferKey:
        """Inverse of :meth:`_encode_key`."""
        try:
            return BufferKey(encoded_key)
        except ValueError:
            pass
        prefix_str, _, suffix_str = encoded_key.partition(":")
        try:
            return ObservationKeyPrefix(prefix_str), int(suffix_str)
        except ValueError:
            pass
        try:
            return RewardSignalKeyPrefix(prefix_str), suffix_str
        except ValueError:
            raise ValueError(f"Unable to convert {encoded_key} to an AgentBufferKey") from None

    # -- mapping ----------------------------------------------------------------------

    def __getitem__(self, key: AgentBufferKey) -> AgentBufferField:
        field = self._fields.get(key)
        if field is None:
            if self.CHECK_KEY_TYPES_AT_RUNTIME:
                self._check_key(key)
            field = AgentBufferField._of(EMPTY, 0.0, key)
            self._fields[key] = field
        return field

    def __setitem__(self, key: AgentBufferKey, value: Any) -> None:
        if self.CHECK_KEY_TYPES_AT_RUNTIME:
            self._check_key(key)
        if not isinstance(value, AgentBufferField):
            data, value = value, AgentBufferField._of(EMPTY, 0.0, key)
            value.extend(data)
        elif value._name is None:
            value._name = key
        self._fields[key] = value

    def __delitem__(self, key: AgentBufferKey) -> None:
        if self.CHECK_KEY_TYPES_AT_RUNTIME:
            self._check_key(key)
        del self._fields[key]

    def __iter__(self) -> Iterator[AgentBufferKey]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, key: object) -> bool:
        if self.CHECK_KEY_TYPES_AT_RUNTIME:
            self._check_key(key)
        return key in self._fields

    # -- whole-buffer operations ------------------------------------------------------

    def reset_agent(self) -> None:
        """Empties every field (the fields stay, as in ML-Agents). A field refills storage
        that nothing outside it ever saw (e.g. an update buffer's rows before its first
        shuffle); rows handed out are never written again."""
        for field in self._fields.values():
            field.reset_field()
        self.last_brain_info = None
        self.last_take_action_outputs = None

    def check_length(self, key_list: list[AgentBufferKey]) -> bool:
        """True if every field in ``key_list`` exists and all have the same length."""
        if self.CHECK_KEY_TYPES_AT_RUNTIME:
            for key in key_list:
                self._check_key(key)
        if len(key_list) < 2:
            return True
        fields = self._fields
        length = -1
        for key in key_list:
            field = fields.get(key)
            if field is None:
                return False
            field_length = len(field._column)
            if length != field_length and length != -1:
                return False
            length = field_length
        return True

    def _lengths(self, key_list: Iterable[AgentBufferKey]) -> str:
        return ", ".join(
            f"{_describe(k)}: {len(self._fields[k])}" for k in key_list if k in self._fields
        )

    def shuffle(self, sequence_length: int, key_list: list[AgentBufferKey] | None = None) -> None:
        """Permutes the rows of the fields in ``key_list`` (default: all) the same way,
        moving whole sequences of ``sequence_length`` rows; rows of a trailing partial
        sequence are dropped, as in ML-Agents. One Rust gather for all numeric fields,
        into new storage."""
        sequence_length = _positive_int(sequence_length, "sequence_length")
        if key_list is None:
            key_list = list(self._fields.keys())
        if not self.check_length(key_list):
            raise BufferException(
                "Unable to shuffle if the fields are not of same length "
                f"({self._lengths(key_list)})"
            )
        if not key_list:
            return
        fields = [self[key] for key in key_list]
        rows = _native.buffer_shuffle_rows(len(fields[0]), sequence_length, _draw_seed())
        for field, column in zip(fields, take_rows([f._column for f in fields], rows)):
            field._keep_spare()
            field._column = column

    def make_mini_batch(self, start: int, end: int) -> AgentBuffer:
        """Buffer of rows ``[start:end]`` (Python slice rules) of every field. The fields
        show this buffer's rows without copying; the buffer never writes them again."""
        mini_batch = AgentBuffer()
        fields = mini_batch._fields
        parts = borrow_rows([field._column for field in self._fields.values()], start, end)
        new = object.__new__
        for (key, field), part in zip(self._fields.items(), parts):
            # Hot path: AgentBufferField._of, inlined.
            out = new(AgentBufferField)
            out.padding_value = field.padding_value
            out._column = part
            out._name = key
            out._spare = None
            fields[key] = out
        return mini_batch

    def sample_mini_batch(self, batch_size: int, sequence_length: int = 1) -> AgentBuffer:
        """Buffer of ``batch_size // sequence_length`` whole sequences drawn uniformly with
        replacement (copies, gathered in Rust). Every field must have the same length."""
        batch_size = _non_negative_int(batch_size, "batch_size")
        sequence_length = _positive_int(sequence_length, "sequence_length")
        keys = list(self._fields.keys())
        if not self.check_length(keys):
            raise BufferException(
                f"Unable to sample if the fields are not of same length ({self._lengths(keys)})"
            )
        rows = _native.buffer_sample_rows(
            self.num_experiences, batch_size, sequence_length, _draw_seed()
        )
        fields = [self._fields[key] for key in keys]
        columns = take_rows([field._column for field in fields], rows)
        mini_batch = AgentBuffer()
        for key, field, column in zip(keys, fields, columns):
            mini_batch._fields[key] = AgentBufferField._of(column, field.padding_value, key)
        return mini_batch

    def truncate(self, max_length: int, sequence_length: int = 1) -> None:
        """Keeps the last ``max_length`` rows (rounded down to whole sequences) of every
        field. O(1) per numeric field: only the start of the valid rows moves."""
        max_length = _non_negative_int(max_length, "max_length")
        sequence_length = _positive_int(sequence_length, "sequence_length")
        current_length = self.num_experiences
        max_length -= max_length % sequence_length
        if current_length > max_length:
            for field in self._fields.values():
                field._column.drop_front(current_length - max_length)

    def resequence_and_append(
        self,
        target_buffer: AgentBuffer,
        key_list: list[AgentBufferKey] | None = None,
        batch_size: int | None = None,
        training_length: int | None = None,
    ) -> None:
        """Appends the fields in ``key_list`` (default: all) to ``target_buffer``, padded
        for recurrent training: each field contributes ``get_batch(batch_size,
        training_length)``, i.e. whole sequences with padding rows at the end."""
        if key_list is None:
            key_list = list(self._fields.keys())
        if not self.check_length(key_list):
            raise BufferException(
                f"The length of the fields {key_list} were not of same length "
                f"({self._lengths(key_list)})"
            )
        if not key_list:
            return
        # All fields have one length, so one plan serves them all.
        plan = _batch_plan(len(self[key_list[0]]), batch_size, training_length, True)
        for key in key_list:
            field = self[key]
            target = target_buffer[key]
            for part in field._column.batch_parts(plan, field.padding_value):
                target.extend(part)  # copies: the parts are views of this buffer's rows
            target.padding_value = field.padding_value

    @property
    def num_experiences(self) -> int:
        """Length of the first field (all fields should have this length); 0 if none."""
        for field in self._fields.values():
            return len(field)
        return 0

    def adopt(self, key: AgentBufferKey, rows: np.ndarray, padding_value: float = 0.0) -> None:
        """Makes ``rows`` (a numpy array, rows along the first axis) the rows of field
        ``key`` without copying them, replacing the field. The buffer owns ``rows`` from
        then on: the caller must not write into it."""
        if self.CHECK_KEY_TYPES_AT_RUNTIME:
            self._check_key(key)
        try:
            column = NumericColumn.owning(rows, seen_outside=True)
        except (RowError, AttributeError):
            column = _shared_column(rows, key)  # raises, naming the field
        # AgentBufferField._of, inlined (trajectories adopt about 15 columns each).
        field = object.__new__(AgentBufferField)
        field.padding_value = padding_value
        field._column = column
        field._name = key
        field._spare = None
        self._fields[key] = field

    def to_arrays(
        self, key_list: Iterable[AgentBufferKey] | None = None
    ) -> dict[AgentBufferKey, np.ndarray | list[Any]]:
        """Every field's rows (or those in ``key_list``) by key, without copying: numeric
        fields as numpy arrays (views; the buffer never writes these rows again), group
        fields as new lists of their entries."""
        fields = self._fields
        keys = fields.keys() if key_list is None else key_list
        return {key: fields[key]._column.lend() for key in keys}

    # -- files ------------------------------------------------------------------------

    def _columns_to_save(self) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        for key, field in self._fields.items():
            name = key_to_name(key)
            if isinstance(field._column, ListColumn):
                columns[name] = _encode_entries(field, name)
            else:
                columns[name] = np.ascontiguousarray(field._column.peek())
        return columns

    def save_to_file(self, file_object: str | os.PathLike | BinaryIO) -> None:
        """Saves every field to a path (written atomically: temporary file + rename) or to a
        binary file object, in the field-file format (``docs/file-format.md``), bit-exact
        with dtypes and row shapes; group fields as ragged fields."""
        columns = self._columns_to_save()
        if isinstance(file_object, (str, os.PathLike)):
            _native.save_fields(file_object, FILE_KIND, columns)
            return
        with tempfile.TemporaryDirectory(prefix="agent-buffer-") as scratch:
            path = os.path.join(scratch, "buffer.fields")
            _native.save_fields(path, FILE_KIND, columns)
            with open(path, "rb") as saved:
                file_object.write(saved.read())

    def load_from_file(self, file_object: str | os.PathLike | BinaryIO) -> None:
        """Loads the fields saved by :meth:`save_to_file` from a path or a binary file
        object, replacing fields of the same keys (others are kept, as in ML-Agents).
        A truncated, damaged or foreign file raises ``CorruptFileError`` and changes
        nothing."""
        if isinstance(file_object, (str, os.PathLike)):
            columns = _native.load_fields(file_object, FILE_KIND)
        else:
            with tempfile.TemporaryDirectory(prefix="agent-buffer-") as scratch:
                path = os.path.join(scratch, "buffer.fields")
                with open(path, "wb") as copy:
                    copy.write(file_object.read())
                columns = _native.load_fields(path, FILE_KIND)
        loaded: dict[AgentBufferKey, Column] = {}
        for name, rows in columns.items():
            try:
                key = name_to_key(name)
            except InvalidArgumentError:
                raise CorruptFileError(
                    f"{_source_name(file_object)}: field {name!r} is not an AgentBuffer field"
                ) from None
            if isinstance(rows, tuple):
                loaded[key] = ListColumn(_decode_entries(*rows))
            else:
                loaded[key] = NumericColumn.owning(rows, seen_outside=False)
        for key, column in loaded.items():
            self._fields[key] = AgentBufferField._of(column, 0.0, key)
