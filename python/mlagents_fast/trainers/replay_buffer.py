"""Off-policy replay buffer backed by a Rust ring (``rust/core/src/replay.rs``).

ML-Agents' SAC keeps its replay data in an ``AgentBuffer`` that stores the next observation
of every step beside the observation, samples with ``sample_mini_batch`` (a Python slice per
field) and drops old data with ``truncate`` (a list copy). :class:`ReplayBuffer` is a
fixed-capacity ring instead:

- ``push_trajectory`` appends a whole trajectory in one call, overwriting the oldest steps;
- ``sample`` draws steps uniformly (with replacement) from its own seeded generator and
  returns a :class:`ReplayBatch` of numpy arrays handed over from Rust without a copy;
- fields declared ``has_next=True`` (observations) also come back as next values: the next
  step of the same trajectory, or, for a trajectory's last step, the final next observation
  given to ``push_trajectory``; ``done`` is true only on the last step of a trajectory that
  *terminated* (a trajectory cut off by a time limit bootstraps from its final observation);
- ``save``/``load`` use the checksummed field-file format (``docs/file-format.md``), written
  atomically, and restore the generator, so a loaded buffer samples what the saved one would.

Example (3DBall-like SAC data; field names follow ``mlagents_fast.trainers.buffer``)::

    buffer = ReplayBuffer(
        capacity=500_000,
        fields={
            "obs_0": FieldSpec("float32", (8,), has_next=True),
            "continuous_action": FieldSpec("float32", (2,)),
            "environment_rewards": FieldSpec("float32"),
        },
        seed=0,
    )
    buffer.push_trajectory(
        {"obs_0": obs, "continuous_action": actions, "environment_rewards": rewards},
        next_fields={"obs_0": final_next_obs},
        terminated=True,
    )
    batch = buffer.sample(128)
    batch["obs_0"], batch["next_obs_0"], batch.done
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import attrs
import numpy as np

from mlagents_fast._native import ReplayRing
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix, key_to_name

if TYPE_CHECKING:
    from mlagents_fast.trainers.trajectory import TrajectoryBatch

__all__ = ["FieldSpec", "ReplayBatch", "ReplayBuffer", "ReplayUpdateBuffer"]

SUPPORTED_DTYPES = ("float32", "float64", "int32", "int64", "uint8", "bool")
_MAX_SEED = 2**64 - 1


def _dtype_name(dtype: object) -> str:
    try:
        name = np.dtype(dtype).name  # type: ignore[call-overload]
    except TypeError as err:
        raise InvalidArgumentError(f"dtype: {dtype!r} is not a numpy dtype") from err
    if name not in SUPPORTED_DTYPES:
        raise InvalidArgumentError(
            f"dtype: {name} is not supported (one of {', '.join(SUPPORTED_DTYPES)})"
        )
    return name


def _row_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError as err:
        raise InvalidArgumentError(f"shape: {shape!r} is not a tuple of integers") from err
    if any(d <= 0 for d in dims):
        raise InvalidArgumentError(f"shape: {dims} must have positive dimensions")
    return dims


def _count(value: object, argument: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError as err:
        raise InvalidArgumentError(f"{argument}: expected an integer, got {value!r}") from err
    if not minimum <= number <= maximum:
        raise InvalidArgumentError(f"{argument}: {number} is out of range [{minimum}, {maximum}]")
    return number


@attrs.frozen
class FieldSpec:
    """Type and per-step shape of one field of a :class:`ReplayBuffer`."""

    dtype: str = attrs.field(converter=_dtype_name)
    """numpy dtype name of the values: float32, float64, int32, int64, uint8 or bool."""

    shape: tuple[int, ...] = attrs.field(default=(), converter=_row_shape)
    """Shape of one step's value, without the step axis; ``()`` for a scalar per step."""

    has_next: bool = attrs.field(default=False, converter=bool)
    """Whether samples also carry this field's next value (set it for observations)."""


@attrs.frozen
class ReplayBatch:
    """Steps sampled from a :class:`ReplayBuffer`; every array has ``batch_size`` rows.

    ``batch[name]`` is ``fields[name]``; ``batch["next_" + name]`` is ``next_fields[name]``
    for a ``has_next`` field (ML-Agents' ``obs_0`` / ``next_obs_0`` naming).
    """

    fields: Mapping[str, np.ndarray]
    """Each field's values, shape ``(batch_size, *spec.shape)``."""

    next_fields: Mapping[str, np.ndarray]
    """For each ``has_next`` field, the value after the step: shape ``(batch_size, *spec.shape)``."""

    done: np.ndarray
    """bool ``(batch_size,)``: the step ended its episode by termination (not by a time limit)."""

    indices: np.ndarray
    """int64 ``(batch_size,)``: position of each step in the buffer, 0 being the oldest."""

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.fields:
            return self.fields[name]
        if name.startswith("next_") and name[5:] in self.next_fields:
            return self.next_fields[name[5:]]
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.indices)


class ReplayBuffer:
    """Fixed-capacity ring of steps for off-policy trainers (see the module docstring)."""

    __slots__ = ("_fields", "_ring")

    def __init__(self, capacity: int, fields: Mapping[str, FieldSpec], seed: int = 0) -> None:
        """``capacity``: steps kept; ``fields``: name -> :class:`FieldSpec`; ``seed``: of
        the sampling generator (PCG-64), an integer in ``[0, 2**64)``."""
        capacity = _count(capacity, "capacity", minimum=1)
        seed = _count(seed, "seed", maximum=_MAX_SEED)
        if not isinstance(fields, Mapping) or not fields:
            raise InvalidArgumentError("fields: expected a non-empty mapping name -> FieldSpec")
        for name, spec in fields.items():
            if not isinstance(spec, FieldSpec):
                raise InvalidArgumentError(f"fields[{name!r}]: expected a FieldSpec, got {spec!r}")
        self._fields: dict[str, FieldSpec] = dict(fields)
        self._ring = ReplayRing(
            capacity,
            [(name, s.dtype, list(s.shape), s.has_next) for name, s in self._fields.items()],
            seed,
        )

    @classmethod
    def _from_ring(cls, ring: ReplayRing) -> ReplayBuffer:
        buffer = cls.__new__(cls)
        buffer._ring = ring
        buffer._fields = {
            name: FieldSpec(dtype, tuple(shape), has_next)
            for name, dtype, shape, has_next in ring.specs
        }
        return buffer

    @property
    def capacity(self) -> int:
        """Maximum number of steps kept; pushing more overwrites the oldest."""
        return self._ring.capacity

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        """The field specs, in the order given at construction."""
        return dict(self._fields)

    def __len__(self) -> int:
        return len(self._ring)

    def __repr__(self) -> str:
        return f"ReplayBuffer(len={len(self)}, capacity={self.capacity}, fields={self._fields})"

    def push_trajectory(
        self,
        fields: Mapping[str, np.ndarray],
        next_fields: Mapping[str, np.ndarray] | None = None,
        *,
        terminated: bool,
    ) -> None:
        """Appends one trajectory of ``T >= 1`` steps.

        ``fields``: every field, each a C-contiguous array of shape ``(T, *spec.shape)`` and
        the spec's dtype. ``next_fields``: for every ``has_next`` field, the observation after
        the last step, shape ``spec.shape`` or ``(1, *spec.shape)``. ``terminated``: the
        episode ended (the last step gets ``done``); false when it was cut off (time limit,
        interruption) and learning should bootstrap from ``next_fields``. A trajectory longer
        than the capacity keeps its last ``capacity`` steps. Wrong names, dtypes or shapes
        raise :class:`InvalidArgumentError` naming the field, and nothing is stored.
        """
        self._ring.push_trajectory(
            fields if type(fields) is dict else dict(fields),
            {} if next_fields is None else dict(next_fields),
            bool(terminated),
        )

    def push_trajectories(
        self,
        fields: Mapping[str, np.ndarray],
        next_fields: Mapping[str, np.ndarray] | None,
        lengths: Sequence[int] | np.ndarray,
        terminated: Sequence[bool] | np.ndarray,
    ) -> None:
        """Appends ``N = len(lengths)`` trajectories at once, exactly as ``N`` calls of
        :meth:`push_trajectory` in order would.

        ``fields``: every field, the rows of the trajectories one after another, shape
        ``(sum(lengths), *spec.shape)``. ``next_fields``: for every ``has_next`` field, the
        final next value of each trajectory, shape ``(N, *spec.shape)``. ``lengths[i] >= 1``
        and ``terminated[i]`` describe trajectory ``i``. Bad input raises
        :class:`InvalidArgumentError` and nothing is stored.
        """
        counts = [_count(n, "lengths") for n in np.asarray(lengths).reshape(-1).tolist()]
        flags = [bool(flag) for flag in np.asarray(terminated).reshape(-1).tolist()]
        self._ring.push_trajectories(
            fields if type(fields) is dict else dict(fields),
            {} if next_fields is None else dict(next_fields),
            counts,
            flags,
        )

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` steps drawn uniformly with replacement; raises
        :class:`InvalidArgumentError` if the buffer holds fewer steps than that."""
        if type(batch_size) is not int or batch_size < 0:
            batch_size = _count(batch_size, "batch_size")
        return ReplayBatch(*self._ring.sample(batch_size))

    def sample_sequences(self, count: int, sequence_length: int) -> ReplayBatch:
        """``count`` sequences of ``sequence_length`` consecutive steps, ``count *
        sequence_length`` rows, each sequence in order: uniformly with replacement among
        the aligned sequences (steps ``k * sequence_length ..``, 0 being the oldest, as
        ML-Agents' ``AgentBuffer.sample_mini_batch``); a partial sequence at the newest end
        is never drawn. ``sample_sequences(n, 1)`` draws what ``sample(n)`` draws, but also
        when ``n`` exceeds the steps held. Raises :class:`InvalidArgumentError` when the
        buffer holds no whole sequence."""
        count = _count(count, "count")
        sequence_length = _count(sequence_length, "sequence_length", minimum=1)
        return ReplayBatch(*self._ring.sample_sequences(count, sequence_length))

    def rows(self, indices: Sequence[int] | np.ndarray) -> ReplayBatch:
        """The steps at ``indices`` (0 = oldest), as a batch (for inspection and tests)."""
        positions = [_count(i, "indices") for i in np.asarray(indices).reshape(-1).tolist()]
        return ReplayBatch(*self._ring.rows(positions))

    def truncate(self, max_length: int) -> None:
        """Keeps only the newest ``max_length`` steps (ML-Agents' ``AgentBuffer.truncate``)."""
        self._ring.truncate(_count(max_length, "max_length"))

    def resize(self, capacity: int) -> None:
        """Changes the capacity to ``capacity >= 1``, keeping the newest ``min(len,
        capacity)`` steps (with their next values and ends) and the generator state."""
        self._ring.resize(_count(capacity, "capacity", minimum=1))

    def clear(self) -> None:
        """Removes every step; the generator state is kept."""
        self._ring.clear()

    def reseed(self, seed: int) -> None:
        """Restarts the sampling generator from ``seed``."""
        self._ring.reseed(_count(seed, "seed", maximum=_MAX_SEED))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the buffer (steps, final next values, generator state) to ``path``
        atomically, in the field-file format of ``docs/file-format.md``."""
        self._ring.save(os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], seed: int | None = None) -> ReplayBuffer:
        """Reads a buffer written by :meth:`save`. With ``seed=None`` the generator continues
        where the saved one stopped; otherwise it restarts from ``seed``. A truncated, damaged
        or foreign file raises :class:`~mlagents_fast.exceptions.CorruptFileError`."""
        buffer = cls._from_ring(ReplayRing.load(os.fspath(path)))
        if seed is not None:
            buffer.reseed(seed)
        return buffer


# -- the off-policy trainers' update buffer ---------------------------------------------

# Where a minibatch field comes from: a ring field, the next values of one, the ring's
# done flags, or nowhere (a field of zero-sized rows, e.g. the discrete actions of a
# continuous-only agent, which the ring cannot hold).
_FROM_FIELD, _FROM_NEXT, _FROM_DONE, _EMPTY_ROWS = "field", "next", "done", "empty"


class _Source(NamedTuple):
    """How one AgentBuffer field is kept in the ring."""

    key: Any
    source: str
    name: str  # the ring field (for _FROM_FIELD and _FROM_NEXT)
    dtype: np.dtype
    row_shape: tuple[int, ...]
    padding_value: float


def _rows_differ(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(n,) bool: row ``i`` of ``first`` and of ``second`` differ in any bit."""
    count = len(first)
    if count == 0:
        return np.zeros(0, dtype=bool)
    a = np.ascontiguousarray(first).reshape(count, -1).view(np.uint8)
    b = np.ascontiguousarray(second).reshape(count, -1).view(np.uint8)
    return (a != b).any(axis=1)


class ReplayUpdateBuffer(Mapping):
    """SAC's experience (an off-policy trainer's ``update_buffer``) kept in a
    :class:`ReplayBuffer` ring, with the AgentBuffer interface the trainer uses.

    It stores the AgentBuffer fields of the trajectories appended to it (numeric fields;
    group-mate fields, which SAC never reads, are left out) and samples minibatches as
    AgentBuffers with the same keys, dtypes and values as ``AgentBuffer.sample_mini_batch``
    on an AgentBuffer holding the same rows would:

    - feed-forward networks: each observation is stored once, as a ``has_next`` field: its
      ``NEXT_OBSERVATION`` comes from the ring (the next step, or the trajectory's stored
      final next observation) and ``DONE`` from the ring's ends, both bit-exact;
    - recurrent networks (``sequence_length > 1``): each trajectory is padded to whole
      sequences as ``AgentBuffer.resequence_and_append`` does, every field (next
      observations and ``DONE`` included) is stored as it is, and minibatches are whole
      aligned sequences (:meth:`ReplayBuffer.sample_sequences`).

    The ring grows like an AgentBuffer while the trainer appends and never drops a step
    by itself: the trainer's ``truncate`` after an update (to 80% of ``buffer_size``, as
    ML-Agents) is what bounds it, so what is sampled is what ML-Agents samples. Capacity
    grows to ``buffer_size`` + 25% in doubling steps, then doubles if ever needed.
    ``truncate`` keeps whole sequences (``max_length`` rounded down to a multiple of
    ``sequence_length``), so a sampled sequence never straddles two.

    Files: :meth:`save_to_file` / :meth:`load_from_file` read and write the AgentBuffer
    field file (``docs/file-format.md``, kind ``agent_buffer``) of
    ``last_replay_buffer.hdf5``, as before the ring: next observations and ``DONE``
    written out in full. Loading takes the steps back into the ring, finding where
    trajectories end from ``DONE`` and from next observations that are not the following
    row's observation.

    Reading a field (``buffer[key]``, ``keys()``) returns a copy of every row, oldest
    first, for inspection; the trainer itself only appends, samples and truncates.
    """

    def __init__(self, buffer_size: int, sequence_length: int = 1, seed: int | None = None):
        """``buffer_size``: the trainer's ``buffer_size`` (sizes the first allocations);
        ``sequence_length``: of the recurrent network, 1 without memory; ``seed``: of the
        sampling generator, drawn from ``numpy.random`` when None (so ``numpy.random.seed``
        fixes the samples, as it fixes ``AgentBuffer.sample_mini_batch``)."""
        self.sequence_length = _count(sequence_length, "sequence_length", minimum=1)
        buffer_size = _count(buffer_size, "buffer_size", minimum=1)
        self._soft_limit = self._whole_sequences(buffer_size + buffer_size // 4)
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.int64).max, dtype=np.int64))
        self._seed = _count(seed, "seed", maximum=_MAX_SEED)
        self._buffer: ReplayBuffer | None = None
        # (key, source, ring field name, dtype) per AgentBuffer field, in the order of the
        # first buffer appended: how a ring sample becomes an AgentBuffer again.
        self._layout: list[_Source] = []

    def _whole_sequences(self, rows: int) -> int:
        """``rows`` rounded up to whole sequences."""
        return -(-max(rows, 1) // self.sequence_length) * self.sequence_length

    # -- what the trainer uses ---------------------------------------------------------

    @property
    def num_experiences(self) -> int:
        """Steps held (padding rows of recurrent sequences included, as in an AgentBuffer)."""
        return 0 if self._buffer is None else len(self._buffer)

    @property
    def capacity(self) -> int:
        """Steps the ring holds before it grows."""
        return 0 if self._buffer is None else self._buffer.capacity

    def append_batch(self, batch: TrajectoryBatch) -> None:
        """Appends the steps of every trajectory of ``batch`` (a recurrent buffer pads each
        trajectory to whole sequences on its own)."""
        if self.sequence_length == 1:
            self._push(batch.buffer, batch.offsets[1:] - 1)
            return
        padded = AgentBuffer()
        for index in range(len(batch)):
            batch.slice(index).resequence_and_append(padded, training_length=self.sequence_length)
        self._push(padded, None)

    def append_trajectory(self, trajectory: AgentBuffer) -> None:
        """Appends the steps of one trajectory (ML-Agents' ``to_agentbuffer`` fields),
        padded to whole sequences for a recurrent network."""
        if self.sequence_length == 1:
            self._push(trajectory, None)
            return
        padded = AgentBuffer()
        trajectory.resequence_and_append(padded, training_length=self.sequence_length)
        self._push(padded, None)

    def sample_mini_batch(self, batch_size: int, sequence_length: int = 1) -> AgentBuffer:
        """``batch_size // sequence_length`` whole sequences (single steps without memory)
        drawn uniformly with replacement, as an AgentBuffer of the stored fields."""
        batch_size = _count(batch_size, "batch_size")
        sequence_length = _count(sequence_length, "sequence_length", minimum=1)
        if self._buffer is None:
            raise InvalidArgumentError("the replay buffer is empty: nothing to sample")
        sample = self._buffer.sample_sequences(batch_size // sequence_length, sequence_length)
        return self._agent_buffer(sample)

    def truncate(self, max_length: int, sequence_length: int = 1) -> None:
        """Keeps the newest ``max_length`` steps, rounded down to whole sequences of the
        larger of ``sequence_length`` and the buffer's own."""
        max_length = _count(max_length, "max_length")
        whole = max(_count(sequence_length, "sequence_length", minimum=1), self.sequence_length)
        if self._buffer is not None:
            self._buffer.truncate(max_length - max_length % whole)

    def reset_agent(self) -> None:
        """Removes every step (the fields and the generator are kept)."""
        if self._buffer is not None:
            self._buffer.clear()

    def save_to_file(self, path: str | os.PathLike[str]) -> None:
        """Writes every step to ``path`` atomically as an AgentBuffer field file."""
        self.to_agent_buffer().save_to_file(path)

    def load_from_file(self, path: str | os.PathLike[str]) -> None:
        """Replaces the steps with those of an AgentBuffer field file written by
        :meth:`save_to_file` (or by the AgentBuffer-based SAC of earlier versions). A
        damaged or foreign file raises ``CorruptFileError`` and changes nothing; one whose
        fields do not fit this trainer raises :class:`InvalidArgumentError`."""
        loaded = AgentBuffer()
        loaded.load_from_file(path)
        previous = (self._buffer, self._layout)
        self._buffer, self._layout = None, []
        try:
            rows = loaded.num_experiences
            if self.sequence_length > 1 and rows % self.sequence_length:
                # Earlier versions truncated to any length: drop the partial oldest
                # sequence so that sequences start on multiples of sequence_length again.
                loaded.truncate(rows - rows % self.sequence_length)
            self._push(loaded, None)
        except InvalidArgumentError:
            self._buffer, self._layout = previous
            raise

    # -- reading (inspection, tests) ---------------------------------------------------

    def to_agent_buffer(self) -> AgentBuffer:
        """Every step, oldest first, as a new AgentBuffer (copies)."""
        if self._buffer is None or not len(self._buffer):
            return AgentBuffer()
        return self._agent_buffer(self._buffer.rows(range(len(self._buffer))))

    def __getitem__(self, key: Any) -> Any:
        if key not in self:
            raise KeyError(key)
        return self.to_agent_buffer()[key]

    def __contains__(self, key: object) -> bool:
        return any(key == entry.key for entry in self._layout)

    def __iter__(self) -> Iterator[Any]:
        return iter([entry.key for entry in self._layout])

    def __len__(self) -> int:
        """Number of fields, as ``len`` of an AgentBuffer."""
        return len(self._layout)

    def __repr__(self) -> str:
        return (
            f"ReplayUpdateBuffer(num_experiences={self.num_experiences}, capacity="
            f"{self.capacity}, sequence_length={self.sequence_length}, fields={len(self)})"
        )

    # -- between AgentBuffers and the ring ---------------------------------------------

    def _agent_buffer(self, sample: ReplayBatch) -> AgentBuffer:
        """The AgentBuffer of a ring sample: each field under its key, in layout order."""
        out = AgentBuffer()
        sources = {_FROM_FIELD: sample.fields, _FROM_NEXT: sample.next_fields}
        for entry in self._layout:
            if entry.source == _FROM_DONE:
                done = sample.done
                rows = done if entry.dtype == np.bool_ else done.astype(entry.dtype)
            elif entry.source == _EMPTY_ROWS:
                rows = np.zeros((len(sample), *entry.row_shape), dtype=entry.dtype)
            else:
                rows = sources[entry.source][entry.name]
            out.adopt(entry.key, rows, entry.padding_value)
        return out

    def _plan(self, buffer: AgentBuffer, arrays: Mapping[Any, Any]) -> dict[str, FieldSpec]:
        """Fixes the ring's fields and the layout from the first buffer appended."""
        names = {key: key_to_name(key) for key in arrays}
        feed_forward = self.sequence_length == 1
        specs: dict[str, FieldSpec] = {}
        layout: list[_Source] = []
        for key, rows in arrays.items():
            if not isinstance(rows, np.ndarray):
                continue  # group-mate entries: lists, never read by SAC
            name, row_shape = names[key], rows.shape[1:]
            derived_from = self._derived_next(key, arrays) if feed_forward else None
            if rows[:1].size == 0 and rows.ndim > 1:
                source = _EMPTY_ROWS
            elif feed_forward and key == BufferKey.DONE:
                source = _FROM_DONE
            elif derived_from is not None:
                source, name = _FROM_NEXT, derived_from
            else:
                source = _FROM_FIELD
                has_next = feed_forward and _next_key(key) in arrays
                specs[name] = FieldSpec(rows.dtype, row_shape, has_next=has_next)
            padding = buffer[key].padding_value
            layout.append(_Source(key, source, name, rows.dtype, row_shape, padding))
        if not specs:
            raise InvalidArgumentError("the replay buffer needs at least one numeric field")
        self._layout = layout
        return specs

    @staticmethod
    def _derived_next(key: Any, arrays: Mapping[Any, Any]) -> str | None:
        """For a next-observation key whose observation is stored too: that observation's
        ring name (its next values come from the ring)."""
        if isinstance(key, tuple) and key[0] == ObservationKeyPrefix.NEXT_OBSERVATION:
            observation = (ObservationKeyPrefix.OBSERVATION, key[1])
            rows = arrays.get(observation)
            if isinstance(rows, np.ndarray) and rows[:1].size:
                return key_to_name(observation)
        return None

    def _push(self, buffer: AgentBuffer, known_ends: np.ndarray | None) -> None:
        """Appends the rows of ``buffer`` (whole trajectories; padded sequences when
        recurrent). ``known_ends``: last rows of trajectories when the caller knows them;
        more are found where ``DONE`` is set or a next observation is not the next row's
        observation, so the ring reproduces both columns exactly."""
        rows = buffer.num_experiences
        if rows == 0:
            return
        arrays = buffer.to_arrays()
        if self._buffer is None:
            specs = self._plan(buffer, arrays)
        else:
            specs = dict(self._buffer.fields)
        stored_keys = {e.name: e.key for e in self._layout if e.source == _FROM_FIELD}
        for key in arrays:
            if isinstance(arrays[key], np.ndarray) and key not in self:
                raise InvalidArgumentError(
                    f"field {key_to_name(key)!r} is not in the replay buffer (its fields were "
                    "fixed by the first steps appended or loaded)"
                )
        for entry in self._layout:
            if entry.source != _EMPTY_ROWS and not isinstance(arrays.get(entry.key), np.ndarray):
                raise InvalidArgumentError(
                    f"field {key_to_name(entry.key)!r} is missing: every step of the replay "
                    "buffer has it"
                )
        # Arrays, not lists: every stored field was checked just above.
        fields = {name: cast(np.ndarray, arrays[key]) for name, key in stored_keys.items()}
        next_fields = {}
        lengths: list[int] = [rows]
        terminated: list[bool] = [False]
        has_next = [name for name, spec in specs.items() if spec.has_next]
        if has_next:
            ends = np.zeros(rows, dtype=bool)
            ends[-1] = True
            if known_ends is not None:
                ends[known_ends] = True
            done = arrays.get(BufferKey.DONE)
            if isinstance(done, np.ndarray):
                done = done.astype(bool, copy=False).reshape(rows)
                ends |= done
            for name in has_next:
                key = stored_keys[name]
                after = arrays[_next_key(key)]
                assert isinstance(after, np.ndarray)  # next observations are numeric rows
                ends[:-1] |= _rows_differ(after[:-1], fields[name][1:])
            last_rows = np.flatnonzero(ends)
            for name in has_next:
                next_fields[name] = np.ascontiguousarray(
                    arrays[_next_key(stored_keys[name])][last_rows]
                )
            lengths = np.diff(last_rows, prepend=-1).tolist()
            terminated = (
                done[last_rows].tolist()
                if isinstance(done, np.ndarray)
                else [False] * len(last_rows)
            )
        created = self._buffer is None
        if created:
            capacity = self._whole_sequences(max(rows, min(4096, self._soft_limit)))
            self._buffer = ReplayBuffer(capacity, specs, seed=self._seed)
        else:
            self._reserve(rows)
        assert self._buffer is not None
        try:
            self._buffer.push_trajectories(fields, next_fields, lengths, terminated)
        except InvalidArgumentError:
            if created:
                self._buffer, self._layout = None, []
            raise

    def _reserve(self, rows: int) -> None:
        """Grows the ring so that ``rows`` more steps fit without dropping any."""
        assert self._buffer is not None
        needed = len(self._buffer) + rows
        capacity = self._buffer.capacity
        if needed <= capacity:
            return
        grown = 2 * capacity
        if capacity < self._soft_limit:
            grown = min(grown, self._soft_limit)
        self._buffer.resize(self._whole_sequences(max(grown, needed)))


def _next_key(key: Any) -> Any:
    """The next-observation key of an observation key (None for other keys)."""
    if isinstance(key, tuple) and key[0] == ObservationKeyPrefix.OBSERVATION:
        return ObservationKeyPrefix.NEXT_OBSERVATION, key[1]
    return None
