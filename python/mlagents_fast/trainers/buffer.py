"""Columnar AgentBuffer: the counterpart of ``mlagents.trainers.buffer`` (ML-Agents 1.1.0).

Public names, arguments and defaults are those of ML-Agents; the storage is different.
Each :class:`AgentBufferField` is a column: one contiguous numpy array of a fixed dtype and
row shape, with a view ``[start, start + len)`` of its valid rows. Consequences:

- Appending a whole trajectory is one ``extend`` per field (one memcpy), not one Python
  call per step.
- ``make_mini_batch(start, end)`` returns fields that are numpy *views* of the parent's
  rows: no copy, ready for ``torch.from_numpy``. Writing into such a view writes the parent.
- ``shuffle``, ``sample_mini_batch`` and the overlapping form of ``get_batch`` gather rows
  in Rust (``mlagents_fast._native.buffer_gather_rows``) with the interpreter released,
  into freshly allocated columns, so views handed out earlier keep the data they showed.
- ``truncate`` only moves the start of the view (O(1)); the rows it drops are freed when
  the column next grows.
- Buffer operations never overwrite rows that a view handed out earlier can see.

Dtypes: the first row appended fixes a field's dtype and row shape. Python floats (and
lists/tuples of them) become float32, Python bools bool, Python ints int64; numpy data
keeps its dtype. Later rows must have the same row shape and a dtype that casts to the
field's within the same kind (numpy ``same_kind``: float64 into float32 is accepted, float
into an int or bool field is not); anything else raises :class:`InvalidArgumentError`
naming the field. Appending to an emptied field (after ``reset_field``) may fix a new
dtype and shape.

Group entries (ML-Agents' ``List[np.ndarray]`` rows, e.g. ``GROUP_CONTINUOUS_ACTION``) are
appended as Python ``list`` objects; a field holding them stays a plain Python list of
entries (ragged, as in ML-Agents) and is handled in Python. A *numeric row* must
therefore be given as a numpy array, tuple or scalar, never as a ``list``.

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
- Slicing a field returns a numpy array (ML-Agents: a list); ``get_batch`` returns a numpy
  array for numeric fields; ``to_ndarray`` returns a view, not a copy.
- ``shuffle`` and ``sample_mini_batch`` draw one seed from ``numpy.random`` per call, so
  ``numpy.random.seed`` makes them reproducible, but the permutation differs from
  ML-Agents' for the same seed.
- ``sample_mini_batch`` requires every field to have the same length (ML-Agents silently
  returns short fields).
- ``save_to_file``/``load_from_file`` write the documented field-file format
  (``docs/file-format.md``) instead of HDF5, keep each field's dtype bit-exact
  (ML-Agents stores float32), and accept a path as well as a binary file object.
"""

from __future__ import annotations

import enum
import itertools
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, BinaryIO

import numpy as np

from mlagents_fast import _native
from mlagents_fast.exceptions import BufferException, CorruptFileError, InvalidArgumentError

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


def _as_bytes2d(rows: np.ndarray) -> np.ndarray:
    """(n, row_bytes) uint8 view of C-contiguous rows (what the Rust kernels take)."""
    return rows.reshape(rows.shape[0], math.prod(rows.shape[1:])).view(np.uint8)


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


def _gather(
    fields: list[AgentBufferField],
    rows: np.ndarray,
    spares: list[np.ndarray | None] | None = None,
) -> list[Any]:
    """New storage for each field: its rows ``rows`` (gathered in Rust for numeric fields),
    written into ``spares[i]`` (an unshared array of at least len(rows) rows, see
    ``AgentBuffer._reusable_spare``) when given, else into a fresh array. Numeric results
    are backing arrays whose first len(rows) rows are the field."""
    results: list[Any] = [None] * len(fields)
    sources, outputs = [], []
    count = len(rows)
    for i, field in enumerate(fields):
        if field._items is not None:
            items = field._items
            results[i] = [items[r] for r in rows.tolist()]
        elif field._data is None:
            results[i] = None
        else:
            spare = spares[i] if spares is not None else None
            if spare is not None:
                results[i] = spare
                out = spare[:count]
            else:
                out = np.empty((count,) + field._data.shape[1:], dtype=field._data.dtype)
                results[i] = out
            if out.itemsize * math.prod(out.shape[1:]) == 0:
                continue  # zero-width rows: nothing to copy
            sources.append(_as_bytes2d(field._data[field._start : field._start + field._len]))
            outputs.append(_as_bytes2d(out))
    if sources:
        _native.buffer_gather_rows(sources, rows, outputs)
    return results


# ---------------------------------------------------------------------------------------
# AgentBufferField


class AgentBufferField:
    """One field of an :class:`AgentBuffer`: a column of rows of one dtype and row shape.

    Behaves like ML-Agents' ``AgentBufferField`` (a list of rows): ``len``, iteration,
    indexing, ``append(element, padding_value)``, ``extend``, ``set``, ``get_batch``,
    ``reset_field``, ``padded_to_batch``, ``to_ndarray``, ``contains_lists``. It also
    converts to numpy without copying: ``np.asarray(field)`` is a view of its rows.
    """

    __slots__ = ("_data", "_items", "_len", "_name", "_start", "padding_value")

    def __init__(self, data: Iterable[Any] | None = None) -> None:
        #: Rows added by ``get_batch`` padding are the last row times this value
        #: (ML-Agents: 0 for most fields, 1 for action masks). Set by ``append``.
        self.padding_value: float = 0.0
        self._data: np.ndarray | None = None  # backing array, rows [_start, _start+_len)
        self._start = 0
        self._len = 0
        self._items: list | None = None  # list mode: ragged group entries
        self._name: Any = None  # the key, for error messages
        if data is not None:
            self.extend(data)

    @classmethod
    def _from_rows(cls, rows: np.ndarray, padding_value: float, name: Any) -> AgentBufferField:
        """A field whose storage is ``rows`` itself (no copy)."""
        field = cls.__new__(cls)
        field.padding_value = padding_value
        field._data = rows
        field._start = 0
        field._len = rows.shape[0]
        field._items = None
        field._name = name
        return field

    # -- introspection ----------------------------------------------------------------

    def _label(self) -> str:
        return f"field {_describe(self._name)}" if self._name is not None else "field"

    @property
    def dtype(self) -> np.dtype | None:
        """numpy dtype of the rows, None while no numeric row was appended."""
        return None if self._data is None or self._items is not None else self._data.dtype

    @property
    def row_shape(self) -> tuple[int, ...] | None:
        """Shape of one row, None while no numeric row was appended."""
        return None if self._data is None or self._items is not None else self._data.shape[1:]

    @property
    def contains_lists(self) -> bool:
        """True if this field holds group entries (lists of arrays), as in ML-Agents."""
        return self._items is not None and len(self._items) > 0

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else self._len

    def _rows(self) -> np.ndarray:
        """View of the valid rows (an empty float32 array for a field never appended to)."""
        data = self._data
        if data is None:
            return np.zeros((0,), dtype=np.float32)
        if self._start == 0 and self._len == data.shape[0]:
            return data  # minibatch fields and exact-size columns: no new view object
        return data[self._start : self._start + self._len]

    def __str__(self) -> str:
        content = self._items if self._items is not None else self._rows()
        return f"AgentBufferField: {content}"

    def __repr__(self) -> str:
        if self._items is not None:
            return f"AgentBufferField(<{len(self._items)} group entries>)"
        return (
            f"AgentBufferField(<{self._len} rows, row shape {self.row_shape}, dtype {self.dtype}>)"
        )

    # -- reading ----------------------------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        if self._items is not None:
            return self._items[index]
        return self._rows()[index]

    def __iter__(self) -> Iterator[Any]:
        if self._items is not None:
            return iter(self._items)
        return iter(self._rows())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if self._items is not None:
            return np.array(self._items, dtype=dtype)
        rows = self._rows()
        if dtype is None and not copy:
            return rows
        if dtype is not None and np.dtype(dtype) != rows.dtype:
            if copy is False:
                raise ValueError("a dtype conversion needs a copy")
            return rows.astype(dtype)
        return rows.copy() if copy else rows

    def to_ndarray(self) -> np.ndarray:
        """The rows as one numpy array of shape (len, *row_shape): a view, not a copy
        (ML-Agents returns a copy; copy before writing into it)."""
        return self.__array__()

    def padded_to_batch(
        self, pad_value: float = 0, dtype: Any = np.float32
    ) -> np.ndarray | list[np.ndarray]:
        """Numeric fields: the rows as an array of ``dtype``. Group fields: one array per
        group position, of length len(self), missing members filled with ``pad_value``."""
        if self._items is None:
            return np.asanyarray(self._rows(), dtype=dtype)
        shape = None
        for entry in self._items:
            if entry:
                shape = np.shape(entry[0])
                break
        if shape is None:
            return []
        return [
            np.asanyarray(column, dtype=dtype)
            for column in itertools.zip_longest(*self._items, fillvalue=np.full(shape, pad_value))
        ]

    # -- writing ----------------------------------------------------------------------

    def _row_error(self, message: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"{self._label()}: {message}")

    def _check_rows(self, rows: np.ndarray) -> None:
        """Raises unless ``rows`` (n, *row_shape) fit this field's dtype and row shape."""
        data = self._data
        if rows.shape[1:] != data.shape[1:]:
            raise self._row_error(
                f"rows of shape {rows.shape[1:]} do not match the field's row shape "
                f"{data.shape[1:]}"
            )
        if rows.dtype != data.dtype and not np.can_cast(rows.dtype, data.dtype, "same_kind"):
            raise self._row_error(
                f"dtype {rows.dtype} cannot be stored in a field of dtype {data.dtype}"
            )

    def _append_rows(self, rows: np.ndarray) -> None:
        """Appends ``rows`` (n, *row_shape) after checking them; grows the column."""
        count = rows.shape[0]
        if self._data is None or (
            self._len == 0
            and (rows.shape[1:] != self._data.shape[1:] or rows.dtype != self._data.dtype)
        ):
            if rows.dtype.kind in "OUSVMm":
                raise self._row_error(f"rows of dtype {rows.dtype} are not numeric")
            # First rows fix the schema; an exact-size column (one trajectory) wastes nothing.
            self._data = np.empty((max(count, 1),) + rows.shape[1:], dtype=rows.dtype)
            self._start = 0
            self._len = 0
        elif rows.dtype != self._data.dtype or rows.shape[1:] != self._data.shape[1:]:
            self._check_rows(rows)
        end = self._start + self._len
        if end + count > self._data.shape[0]:
            # New array: rows visible through earlier views are never moved or overwritten.
            capacity = max(self._len + count, 2 * self._len, 16)
            grown = np.empty((capacity,) + self._data.shape[1:], dtype=self._data.dtype)
            grown[: self._len] = self._data[self._start : end]
            self._data = grown
            self._start = 0
            end = self._len
        self._data[end : end + count] = rows
        self._len += count

    def _enter_list_mode(self) -> list:
        if self._items is None:
            if self._len:
                raise self._row_error(
                    "a list (group entry) cannot be appended to a field of numeric rows; "
                    "give a numeric row as a numpy array, tuple or scalar"
                )
            self._items = []
            self._data = None
        return self._items

    def append(self, element: Any, padding_value: float = 0.0) -> None:
        """Appends one row (numpy array, scalar or tuple) or one group entry (a list).
        ``padding_value`` becomes this field's padding value, as in ML-Agents."""
        if isinstance(element, list):
            self._enter_list_mode().append(element)
        elif self._items is not None:
            self._items.append(element)
        else:
            if isinstance(element, (np.ndarray, np.generic)):
                row = np.asarray(element)  # numpy data keeps its dtype
            else:
                row = _untyped_to_array(element)
            self._append_rows(row[np.newaxis])
        self.padding_value = padding_value

    def extend(self, data: Any, padding_value: float | None = None) -> None:
        """Appends many rows at once: a numpy array (rows along the first axis, one
        memcpy), another field, or a sequence of rows or of group entries.
        ``padding_value``, if given, becomes this field's padding value."""
        if padding_value is not None:
            self.padding_value = padding_value
        if isinstance(data, AgentBufferField):
            data = data._items if data._items is not None else data._rows()
        if isinstance(data, np.generic):
            data = np.asarray(data)
        if isinstance(data, np.ndarray):
            if data.ndim == 0:
                raise self._row_error("extend needs rows along a first axis, got a 0-d array")
            if self._items is not None:
                self._items.extend(data)
            elif len(data) or self._data is None:
                self._append_rows(data)
            return
        if not isinstance(data, (list, tuple)):
            data = list(data)
        if len(data) == 0:
            return
        if isinstance(data[0], list) or self._items is not None:
            items = self._enter_list_mode()
            items.extend(data)
            return
        try:
            rows = (
                _untyped_to_array(data) if not isinstance(data[0], np.ndarray) else np.stack(data)
            )
        except ValueError as err:
            raise self._row_error(f"rows of different shapes cannot be stacked: {err}") from None
        self._append_rows(rows)

    def set(self, data: Any) -> None:
        """Replaces every row with ``data`` (keeps the padding value)."""
        if isinstance(data, AgentBufferField):
            # Take the rows before emptying: ``data`` may be this very field.
            data = list(data._items) if data._items is not None else data._rows()
        self.reset_field()
        self.extend(data)

    def __setitem__(self, index: Any, value: Any) -> None:
        if self._items is not None:
            self._items[index] = value
        elif isinstance(index, slice) and index == slice(None):
            self.set(value)
        else:
            rows = self._rows()
            value = value if isinstance(value, np.ndarray) else _untyped_to_array(value)
            if value.dtype != rows.dtype and not np.can_cast(value.dtype, rows.dtype, "same_kind"):
                raise self._row_error(
                    f"dtype {value.dtype} cannot be stored in a field of dtype {rows.dtype}"
                )
            rows[index] = value

    def reset_field(self) -> None:
        """Empties the field. Its storage is dropped, not reused, so arrays handed out
        earlier (minibatch views) keep their data."""
        self._data = None
        self._start = 0
        self._len = 0
        self._items = None

    def _drop_front(self, count: int) -> None:
        """Drops the first ``count`` rows in O(1) (the view start moves)."""
        if self._items is not None:
            del self._items[:count]
            return
        count = min(count, self._len)
        self._start += count
        self._len -= count

    def _slice(self, start: int, end: int) -> AgentBufferField:
        """Field viewing rows [start:end] (Python slice rules) of this one, without copying."""
        if self._items is not None:
            field = AgentBufferField()
            field._items = self._items[start:end]
            field.padding_value = self.padding_value
            field._name = self._name
            return field
        if self._data is None:
            field = AgentBufferField()
            field._name = self._name
            return field
        return AgentBufferField._from_rows(self._rows()[start:end], self.padding_value, self._name)

    # -- batches ----------------------------------------------------------------------

    def _padding_row(self) -> np.ndarray:
        """ML-Agents' padding: the last row (as float32) times the padding value."""
        last = np.asarray(self._rows()[-1], dtype=np.float32) * self.padding_value
        return last.astype(self._data.dtype)[np.newaxis]

    def _batch_parts(
        self, batch_size: int | None, training_length: int | None, sequential: bool
    ) -> list[Any]:
        """What get_batch returns, as a list of row arrays to concatenate (list mode: one list)."""
        try:
            plan = _batch_plan(len(self), batch_size, training_length, sequential)
        except BufferException as err:
            raise BufferException(f"{self._label()}: {err}") from None
        return self._plan_parts(plan)

    def _plan_parts(self, plan: tuple[int, int, int, np.ndarray | None]) -> list[Any]:
        """The rows of a :func:`_batch_plan`, as a list of arrays to concatenate."""
        start, end, padding_rows, rows = plan
        if self._items is not None:
            if rows is not None:
                return [[self._items[r] for r in rows.tolist()]]
            return [self._items[start:end] + [[]] * padding_rows]
        if rows is not None:
            (gathered,) = _gather([self], rows)
            if gathered is None:
                return []
            return [gathered]
        if self._data is None:
            return []
        parts = [self._rows()[start:end]]
        if padding_rows:
            parts.append(np.repeat(self._padding_row(), padding_rows, axis=0))
        return parts

    def get_batch(
        self,
        batch_size: int | None = None,
        training_length: int | None = 1,
        sequential: bool = True,
    ) -> Any:
        """The last ``batch_size`` sequences of ``training_length`` rows (ML-Agents rules).

        sequential=True: non-overlapping sequences; when the rows do not divide into whole
        sequences, every row is returned followed by padding rows (the last row times
        ``padding_value``) up to a whole number of sequences. ``[a,b,c,d,e]`` with
        training_length 2 gives ``[a,b,c,d,e,pad]``. sequential=False: overlapping
        sequences, ``[a,b,c,d,e]`` gives ``[a,b,b,c,c,d,d,e]``. ``batch_size=None`` takes
        every sequence. Returns a numpy array (a view when no padding is needed), or a
        list for group fields. Raises :class:`BufferException` when more sequences are
        asked for than exist.
        """
        parts = self._batch_parts(batch_size, training_length, sequential)
        if self._items is not None:
            return parts[0]
        if not parts:
            return self._rows()[:0]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


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
        # Per field, the storage it had before its last shuffle, for the next shuffle to
        # write into if nothing else references it by then (fresh arrays of this size cost
        # more in page faults than the gather itself).
        self._spares: dict[AgentBufferKey, np.ndarray] = {}

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
            field = AgentBufferField()
            field._name = key
            self._fields[key] = field
        return field

    def __setitem__(self, key: AgentBufferKey, value: Any) -> None:
        if self.CHECK_KEY_TYPES_AT_RUNTIME:
            self._check_key(key)
        if not isinstance(value, AgentBufferField):
            data, value = value, AgentBufferField()
            value._name = key
            value.extend(data)
        elif value._name is None:
            value._name = key
        self._fields[key] = value

    def __delitem__(self, key: AgentBufferKey) -> None:
        if self.CHECK_KEY_TYPES_AT_RUNTIME:
            self._check_key(key)
        del self._fields[key]
        self._spares.pop(key, None)

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
        """Empties every field (the fields stay, as in ML-Agents). Each field's storage is
        kept as a spare that ``resequence_and_append`` refills only if no array handed out
        earlier references it by then (so the update buffer stops re-growing each update)."""
        spares = self._spares
        for key, field in self._fields.items():
            data = field._data
            if field._items is None and data is not None and data.base is None:
                spares[key] = data
            else:
                spares.pop(key, None)
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
            field_length = field._len if field._items is None else len(field._items)
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
        sequence are dropped, as in ML-Agents. One Rust gather for all numeric fields."""
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
        count = len(rows)
        spares = [
            self._reusable_spare(key, field._data.dtype, field._data.shape[1:], count)
            if field._items is None and field._data is not None
            else None
            for key, field in zip(key_list, fields)
        ]
        storages = _gather(fields, rows, spares)
        del spares
        for key, field, storage in zip(key_list, fields, storages):
            if field._items is not None:
                field._items = storage
            elif storage is not None:
                previous = field._data
                field._data, field._start, field._len = storage, 0, count
                if previous is not None and previous.base is None and previous is not storage:
                    self._spares[key] = previous

    def _reusable_spare(
        self, key: AgentBufferKey, dtype: np.dtype, row_shape: tuple[int, ...], count: int
    ) -> np.ndarray | None:
        """The field's spare storage if it holds ``count`` rows of ``dtype`` and
        ``row_shape`` and nothing but this buffer references it: every numpy view keeps a
        reference to the array owning its memory, so an unreferenced owner cannot be seen
        through any view handed out earlier. The spare leaves the pool either way."""
        spare = self._spares.pop(key, None)
        if spare is None:
            return None
        if spare.dtype != dtype or spare.shape[1:] != row_shape or len(spare) < count:
            return None
        unreferenced = object()  # a local with no other reference: the baseline count
        if sys.getrefcount(spare) != sys.getrefcount(unreferenced):
            return None
        return spare

    def make_mini_batch(self, start: int, end: int) -> AgentBuffer:
        """Buffer of rows ``[start:end]`` (Python slice rules) of every field. The fields
        are numpy views of this buffer's rows: nothing is copied."""
        mini_batch = AgentBuffer()
        fields = mini_batch._fields
        new_field = AgentBufferField.__new__
        bounds: dict[int, tuple[int, int]] = {}  # field length -> clipped (start, end)
        for key, field in self._fields.items():
            data = field._data
            if field._items is None and data is not None:
                # Hot path, inlined: one numpy view per field, no copy.
                length = field._len
                clipped = bounds.get(length)
                if clipped is None:
                    lo, hi, _ = slice(start, end).indices(length)
                    clipped = bounds[length] = (lo, max(lo, hi))
                s = field._start
                view = data[s + clipped[0] : s + clipped[1]]
                out = new_field(AgentBufferField)
                out.padding_value = field.padding_value
                out._data = view
                out._start = 0
                out._len = clipped[1] - clipped[0]
                out._items = None
                out._name = key
                fields[key] = out
            else:
                fields[key] = field._slice(start, end)
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
        mini_batch = AgentBuffer()
        fields = [self._fields[key] for key in keys]
        for key, field, storage in zip(keys, fields, _gather(fields, rows)):
            if field._items is not None:
                new_field = AgentBufferField()
                new_field._items = storage
                new_field._name = key
                new_field.padding_value = field.padding_value
            elif storage is None:
                new_field = AgentBufferField()
                new_field._name = key
            else:
                new_field = AgentBufferField._from_rows(storage, field.padding_value, key)
            mini_batch._fields[key] = new_field
        return mini_batch

    def truncate(self, max_length: int, sequence_length: int = 1) -> None:
        """Keeps the last ``max_length`` rows (rounded down to whole sequences) of every
        field. O(1) per field: only the start of the valid rows moves."""
        max_length = _non_negative_int(max_length, "max_length")
        sequence_length = _positive_int(sequence_length, "sequence_length")
        current_length = self.num_experiences
        max_length -= max_length % sequence_length
        if current_length > max_length:
            for field in self._fields.values():
                field._drop_front(current_length - max_length)

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
        spares = target_buffer._spares
        for key in key_list:
            field = self[key]
            target = target_buffer[key]
            parts = field._plan_parts(plan)
            if spares and key in spares and target._data is None and field._items is None:
                # An emptied update buffer refills the storage it had (see reset_agent).
                first = parts[0] if parts else None
                if first is not None:
                    needed = sum(len(part) for part in parts)
                    spare = target_buffer._reusable_spare(key, first.dtype, first.shape[1:], needed)
                    if spare is not None:
                        target._data, target._start, target._len = spare, 0, 0
                    del spare
            for part in parts:
                target.extend(part)
            if target._items is None:
                target.padding_value = field.padding_value

    @property
    def num_experiences(self) -> int:
        """Length of the first field (all fields should have this length); 0 if none."""
        for field in self._fields.values():
            return len(field)
        return 0

    # -- files ------------------------------------------------------------------------

    def _columns_to_save(self) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}
        for key, field in self._fields.items():
            name = key_to_name(key)
            if field._items is not None:
                if field._items:
                    raise InvalidArgumentError(
                        f"field {name!r}: holds group entries (lists), which cannot be saved"
                    )
                continue
            columns[name] = np.ascontiguousarray(field._rows())
        return columns

    def save_to_file(self, file_object: str | os.PathLike | BinaryIO) -> None:
        """Saves every field to a path (written atomically: temporary file + rename) or to a
        binary file object, in the field-file format (``docs/file-format.md``), bit-exact
        with dtypes and row shapes. Group fields (lists) cannot be saved."""
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
        loaded = {}
        for name, rows in columns.items():
            try:
                loaded[name_to_key(name)] = rows
            except InvalidArgumentError:
                raise CorruptFileError(
                    f"{_source_name(file_object)}: field {name!r} is not an AgentBuffer field"
                ) from None
        for key, rows in loaded.items():
            self._fields[key] = AgentBufferField._from_rows(rows, 0.0, key)
