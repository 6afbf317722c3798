"""Storage behind :class:`mlagents_fast.trainers.buffer.AgentBufferField` (internal API).

A field keeps its rows in one *column*, of one of three kinds with the same small interface
(``len``, ``peek``, ``lend``, ``lend_range``, ``borrow``, ``drop_front``, ``batch_parts``,
``take``):

- :class:`NumericColumn`: rows of one dtype and row shape in a growable numpy array; the
  multi-row work (gathering rows for shuffles, samples and overlapping sequences) is one Rust
  call for all the columns of a buffer (:func:`take_rows`).
- :class:`ListColumn`: Python objects kept in a list, one per row: ML-Agents' group entries
  (a list of arrays per step, of varying length) and anything else that is not a numeric row.
- :class:`EmptyColumn`: a field nothing was appended to yet (its kind and dtype are not fixed).

Ownership of numeric rows (why nobody ever sees their rows change under them): a column
*lends* rows when it hands out an array that shows them (``lend``/``lend_range``: minibatch
views, ``to_ndarray``, slices, ``np.asarray(field)``), and remembers how far into its storage
it has lent (``frozen``). The column never writes a frozen row again: a write into one first
copies the valid rows into new storage (copy on write), appends go past the end (never into
frozen rows), and shuffles, samples and resets always put rows into new storage. A column
made by ``borrow`` shows rows of another column's storage and treats all of them as frozen.
Nothing here depends on reference counts: storage that was lent is simply never reused; the
garbage collector frees it when the last holder lets go. What the caller does with a lent
array is the caller's business: writing into it writes the buffer's rows, as writing into a
row object of ML-Agents' list-based buffer does.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from mlagents_fast import _native

__all__ = [
    "Column",
    "EmptyColumn",
    "ListColumn",
    "NumericColumn",
    "RowError",
    "borrow_rows",
    "take_rows",
]

#: A batch plan from ``_native.buffer_batch_plan``: ``(start, end, padding_rows, None)`` for a
#: range followed by padding rows, or ``(0, 0, 0, rows)`` for the rows of overlapping sequences.
BatchPlan = tuple[int, int, int, np.ndarray | None]

# numpy kinds that are not numbers: object, unicode, bytes, void, datetime, timedelta.
_NON_NUMERIC_KINDS = "OUSVMm"


class RowError(ValueError):
    """Rows that do not fit a column; the field re-raises it naming itself."""


def _as_bytes2d(rows: np.ndarray) -> np.ndarray:
    """(n, row_bytes) uint8 view of C-contiguous rows (what the Rust kernels take)."""
    return rows.reshape(rows.shape[0], math.prod(rows.shape[1:])).view(np.uint8)


class EmptyColumn:
    """The column of a field that holds no row and has no kind yet (shared, stateless)."""

    __slots__ = ()

    def __len__(self) -> int:
        return 0

    def peek(self) -> np.ndarray:
        # ML-Agents' empty field converts to an empty float array.
        return np.zeros((0,), dtype=np.float32)

    lend = peek

    def lend_range(self, start: int, end: int) -> np.ndarray:
        return self.peek()

    def borrow(self, start: int, end: int) -> EmptyColumn:
        return self

    def drop_front(self, count: int) -> None:
        pass

    def batch_parts(self, plan: BatchPlan, padding_value: float) -> list[Any]:
        return []

    def take(self, rows: np.ndarray) -> EmptyColumn:
        if len(rows):
            raise IndexError("rows taken from an empty field")
        return self


EMPTY = EmptyColumn()


class NumericColumn:
    """Rows of one dtype and row shape: storage rows ``[start, start + len)`` of a numpy
    array with room to grow. Rows ``[0, frozen)`` of the storage have been lent (see the
    module docstring) and are never written again by the column."""

    __slots__ = ("_data", "_frozen", "_len", "_start")

    def __init__(self, data: np.ndarray, start: int, length: int, frozen: int) -> None:
        self._data = data
        self._start = start
        self._len = length
        self._frozen = frozen

    @classmethod
    def owning(cls, rows: np.ndarray, *, seen_outside: bool) -> NumericColumn:
        """A column whose storage is ``rows`` itself (no copy). ``seen_outside``: the
        caller keeps a reference to ``rows``, so its rows count as lent (never written
        again); False only for arrays nothing else references."""
        if rows.ndim == 0:
            raise RowError("rows need a first axis, got a 0-d array")
        if rows.dtype.kind in _NON_NUMERIC_KINDS:
            raise RowError(f"rows of dtype {rows.dtype} are not numeric")
        if not rows.flags.c_contiguous:
            rows, seen_outside = np.ascontiguousarray(rows), False
        count = rows.shape[0]
        return cls(rows, 0, count, count if seen_outside else 0)

    @classmethod
    def with_room(cls, first_rows: np.ndarray, capacity: int) -> NumericColumn:
        """An empty column of ``first_rows``' dtype and row shape with room for ``capacity``
        rows."""
        if first_rows.dtype.kind in _NON_NUMERIC_KINDS:
            raise RowError(f"rows of dtype {first_rows.dtype} are not numeric")
        storage = np.empty((max(capacity, 1),) + first_rows.shape[1:], dtype=first_rows.dtype)
        return cls(storage, 0, 0, 0)

    # -- reading ----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self._data.shape[1:]

    @property
    def capacity(self) -> int:
        return self._data.shape[0]

    def peek(self) -> np.ndarray:
        """View of the valid rows for the buffer's own use (it must not escape: nothing is
        lent)."""
        data = self._data
        if self._start == 0 and self._len == data.shape[0]:
            return data
        return data[self._start : self._start + self._len]

    def lend(self) -> np.ndarray:
        """View of the valid rows, handed out: those rows are never written again."""
        data, start = self._data, self._start
        end = start + self._len
        self._frozen = max(self._frozen, end)
        return data if start == 0 and end == data.shape[0] else data[start:end]

    def unlent_storage(self) -> np.ndarray | None:
        """The storage if none of its rows was ever handed out (then nothing outside the
        column can see it and it may be refilled), else None."""
        return self._data if self._frozen == 0 else None

    def lend_range(self, start: int, end: int) -> np.ndarray:
        """View of valid rows ``[start, end)`` (0 <= start <= end <= len), handed out."""
        absolute_end = self._start + end
        self._frozen = max(self._frozen, absolute_end)
        return self._data[self._start + start : absolute_end]

    def borrow(self, start: int, end: int) -> NumericColumn:
        """A column showing rows ``[start, end)`` of this one without copying; both treat
        those rows as frozen."""
        view = self.lend_range(start, end)
        count = end - start
        return NumericColumn(view, 0, count, count)

    def batch_parts(self, plan: BatchPlan, padding_value: float) -> list[np.ndarray]:
        """The rows of ``plan`` as arrays to concatenate; range parts are views (not lent:
        the caller copies them or lends them with ``lend_range``)."""
        start, end, padding_rows, rows = plan
        if rows is not None:
            return [self.take(rows).peek()]
        parts = [self.peek()[start:end]]
        if padding_rows:
            parts.append(np.repeat(self.padding_row(padding_value), padding_rows, axis=0))
        return parts

    def padding_row(self, padding_value: float) -> np.ndarray:
        """ML-Agents' padding: the last row (as float32) times the padding value, (1, *row)."""
        last = np.asarray(self.peek()[-1], dtype=np.float32) * padding_value
        return last.astype(self._data.dtype)[np.newaxis]

    def take(self, rows: np.ndarray) -> NumericColumn:
        # take_rows keeps each column's kind: a numeric column comes back numeric.
        return cast(NumericColumn, take_rows([self], rows)[0])

    # -- writing ----------------------------------------------------------------------

    def check_rows(self, rows: np.ndarray) -> None:
        """Raises :class:`RowError` unless ``rows`` (n, *row_shape) fit this column."""
        data = self._data
        if rows.shape[1:] != data.shape[1:]:
            raise RowError(
                f"rows of shape {rows.shape[1:]} do not match the field's row shape "
                f"{data.shape[1:]}"
            )
        if rows.dtype != data.dtype and not np.can_cast(rows.dtype, data.dtype, "same_kind"):
            raise RowError(f"dtype {rows.dtype} cannot be stored in a field of dtype {data.dtype}")

    def append_rows(self, rows: np.ndarray) -> None:
        """Appends checked rows (n, *row_shape). Writes only past the valid rows, which are
        never frozen; a full storage is replaced by a larger new one."""
        count = rows.shape[0]
        end = self._start + self._len
        if end + count > self._data.shape[0]:
            capacity = max(self._len + count, 2 * self._len, 16)
            grown = np.empty((capacity,) + self._data.shape[1:], dtype=self._data.dtype)
            grown[: self._len] = self._data[self._start : end]
            self._data, self._start, self._frozen = grown, 0, 0
            end = self._len
        self._data[end : end + count] = rows
        self._len += count

    def _own_valid_rows(self) -> None:
        """Copy on write: moves the valid rows to new storage if any of them is frozen."""
        if self._frozen > self._start:
            self._data = self.peek().copy()
            self._start, self._frozen = 0, 0

    def write(self, index: Any, value: np.ndarray) -> None:
        """``rows[index] = value`` (numpy indexing), never into frozen rows."""
        self._own_valid_rows()
        self.peek()[index] = value

    def drop_front(self, count: int) -> None:
        """Drops the first ``count`` rows in O(1): the start of the valid rows moves."""
        count = min(count, self._len)
        self._start += count
        self._len -= count

    def replace_all(self, rows: np.ndarray) -> None:
        """Makes ``rows`` (already of this dtype and row shape, not shared) the valid rows."""
        self._data, self._start, self._len, self._frozen = rows, 0, rows.shape[0], 0


class ListColumn:
    """One Python object per row (ML-Agents' group entries: a list of arrays per step).
    Slices and batches are new lists of the same entry objects, as in ML-Agents."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Any] | None = None) -> None:
        self._items: list[Any] = [] if items is None else items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> list[Any]:
        """The entries themselves (the buffer's own list)."""
        return self._items

    def peek(self) -> list[Any]:
        return self._items

    def lend(self) -> list[Any]:
        """A new list of the entries (later appends do not show in it)."""
        return list(self._items)

    def lend_range(self, start: int, end: int) -> list[Any]:
        return self._items[start:end]

    def borrow(self, start: int, end: int) -> ListColumn:
        return ListColumn(self._items[start:end])

    def batch_parts(self, plan: BatchPlan, padding_value: float) -> list[list[Any]]:
        start, end, padding_rows, rows = plan
        if rows is not None:
            return [[self._items[r] for r in rows.tolist()]]
        # ML-Agents pads group entries with empty lists.
        return [self._items[start:end] + [[] for _ in range(padding_rows)]]

    def take(self, rows: np.ndarray) -> ListColumn:
        items = self._items
        return ListColumn([items[r] for r in rows.tolist()])

    def drop_front(self, count: int) -> None:
        del self._items[:count]


Column = EmptyColumn | NumericColumn | ListColumn


def borrow_rows(columns: list[Column], start: int | None, end: int | None) -> list[Column]:
    """Columns showing rows ``[start:end]`` (Python slice rules) of each column without
    copying (numeric ones lend those rows). The loop is the minibatch hot path: one view
    and one column object per numeric column, no further calls."""
    out: list[Column] = []
    bounds: dict[int, tuple[int, int]] = {}  # column length -> clipped (start, end)
    new = object.__new__
    for column in columns:
        length = column._len if column.__class__ is NumericColumn else len(column)
        clipped = bounds.get(length)
        if clipped is None:
            lo, hi, _ = slice(start, end).indices(length)
            clipped = bounds[length] = (lo, max(lo, hi))
        if column.__class__ is NumericColumn:  # narrows the type too (no isinstance call)
            lo, hi = clipped
            first = column._start
            top = first + hi
            if top > column._frozen:  # noqa: PLR1730 (hot path: no call to max)
                column._frozen = top
            part = new(NumericColumn)
            part._data = column._data[first + lo : top]
            part._start = 0
            part._len = part._frozen = hi - lo
            out.append(part)
        else:
            out.append(column.borrow(*clipped))
    return out


def take_rows(columns: list[Column], rows: np.ndarray) -> list[Column]:
    """New columns holding ``rows`` (int64 indices) of each column, in new storage: the
    numeric ones gathered by one Rust call (interpreter released), list ones in Python."""
    results: list[Column] = []
    sources, outputs = [], []
    count = len(rows)
    for column in columns:
        if isinstance(column, NumericColumn):
            out = np.empty((count,) + column.row_shape, dtype=column.dtype)
            results.append(NumericColumn(out, 0, count, 0))
            if out.itemsize * math.prod(out.shape[1:]):  # zero-width rows: nothing to copy
                sources.append(_as_bytes2d(column.peek()))
                outputs.append(_as_bytes2d(out))
        else:
            results.append(column.take(rows))
    if sources:
        _native.buffer_gather_rows(sources, rows, outputs)
    return results
