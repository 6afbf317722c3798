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
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from mlagents_fast._native import ReplayRing
from mlagents_fast.exceptions import InvalidArgumentError

__all__ = ["FieldSpec", "ReplayBatch", "ReplayBuffer"]

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

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` steps drawn uniformly with replacement; raises
        :class:`InvalidArgumentError` if the buffer holds fewer steps than that."""
        if type(batch_size) is not int or batch_size < 0:
            batch_size = _count(batch_size, "batch_size")
        return ReplayBatch(*self._ring.sample(batch_size))

    def rows(self, indices: Sequence[int] | np.ndarray) -> ReplayBatch:
        """The steps at ``indices`` (0 = oldest), as a batch (for inspection and tests)."""
        positions = [_count(i, "indices") for i in np.asarray(indices).reshape(-1).tolist()]
        return ReplayBatch(*self._ring.rows(positions))

    def truncate(self, max_length: int) -> None:
        """Keeps only the newest ``max_length`` steps (ML-Agents' ``AgentBuffer.truncate``)."""
        self._ring.truncate(_count(max_length, "max_length"))

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
