"""Typed batches of experiences: what the optimizers and reward signals read.

A :class:`ExperienceBatch` holds one minibatch (or one trajectory) as named numpy arrays,
one row per experience, cut from an :class:`~mlagents_fast.trainers.buffer.AgentBuffer`
without copying (the buffer never writes lent rows again, see ``buffer_columns``). The PPO
trainer builds them with :func:`minibatches`; an optimizer or reward signal given an
AgentBuffer (ML-Agents' signature, e.g. ``optimizer.update(batch: AgentBuffer, n)`` in user
code) turns it into one with :meth:`ExperienceBatch.of`.

A batch also answers ML-Agents' buffer keys (``batch[BufferKey.DONE]``, ``key in batch``,
``batch.num_experiences``), each key giving an ``AgentBufferField`` that shows the rows, so
code written against an AgentBuffer minibatch (``ObsUtil.from_buffer(batch, n)``, a reward
signal of one's own) reads it unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, TypeAlias

import numpy as np

from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.buffer import (
    AgentBuffer,
    AgentBufferField,
    AgentBufferKey,
    BufferKey,
    ObservationKeyPrefix,
    RewardSignalKeyPrefix,
)

__all__ = ["BatchOrBuffer", "ExperienceBatch", "minibatches"]

Rows = Any  # a numpy array of rows, or a list of group entries

# Attribute <- buffer key, for the fields with one array each.
_SINGLE_FIELDS: tuple[tuple[str, BufferKey], ...] = (
    ("continuous_actions", BufferKey.CONTINUOUS_ACTION),
    ("discrete_actions", BufferKey.DISCRETE_ACTION),
    ("action_masks", BufferKey.ACTION_MASK),
    ("continuous_log_probs", BufferKey.CONTINUOUS_LOG_PROBS),
    ("discrete_log_probs", BufferKey.DISCRETE_LOG_PROBS),
    ("masks", BufferKey.MASKS),
    ("done", BufferKey.DONE),
    ("environment_rewards", BufferKey.ENVIRONMENT_REWARDS),
    ("memories", BufferKey.MEMORY),
    ("critic_memories", BufferKey.CRITIC_MEMORY),
    ("advantages", BufferKey.ADVANTAGES),
)
# Attribute (a dict by reward signal name) <- key prefix.
_PER_SIGNAL_FIELDS: tuple[tuple[str, RewardSignalKeyPrefix], ...] = (
    ("rewards", RewardSignalKeyPrefix.REWARDS),
    ("value_estimates", RewardSignalKeyPrefix.VALUE_ESTIMATES),
    ("returns", RewardSignalKeyPrefix.RETURNS),
)


@dataclasses.dataclass(slots=True, kw_only=True, eq=False)
class ExperienceBatch:
    """Experiences as named arrays, one row per experience (``n = num_experiences``);
    a field the buffer lacks is None (an empty dict or list for the grouped ones).

    Shapes: observation ``i`` (n, *obs_shape_i); continuous actions and their log
    probabilities (n, continuous_size) float32; discrete actions (n, branches) int and their
    log probabilities (n, branches); action masks (n, sum(branch sizes)), 1 = allowed;
    ``masks`` (n,) 1 for a real experience, 0 for padding added to complete a sequence;
    ``done`` (n,); rewards, value estimates and returns per reward signal (n,);
    ``advantages`` (n,) (normalized by the PPO trainer before its update); memories (n,
    memory_size), of which an LSTM update reads the first row of each sequence.

    Read it, do not write into it: its arrays show the buffer's rows (the buffer itself
    never writes them again, so they stay as they were when the batch was cut).
    """

    num_experiences: int
    obs: list[np.ndarray]
    next_obs: list[np.ndarray] = dataclasses.field(default_factory=list)
    continuous_actions: np.ndarray | None = None
    discrete_actions: np.ndarray | None = None
    action_masks: np.ndarray | None = None
    continuous_log_probs: np.ndarray | None = None
    discrete_log_probs: np.ndarray | None = None
    masks: np.ndarray | None = None
    done: np.ndarray | None = None
    environment_rewards: np.ndarray | None = None
    memories: np.ndarray | None = None
    critic_memories: np.ndarray | None = None
    advantages: np.ndarray | None = None
    rewards: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    value_estimates: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    returns: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    #: Every field of the source by key (arrays or lists of the whole source) and the rows
    #: of this batch in them: what ``batch[key]`` shows.
    source: Mapping[AgentBufferKey, Rows] = dataclasses.field(default_factory=dict, repr=False)
    rows: slice = dataclasses.field(default_factory=lambda: slice(None))

    # -- construction -----------------------------------------------------------------

    @staticmethod
    def of(batch: ExperienceBatch | AgentBuffer) -> ExperienceBatch:
        """``batch`` itself if typed, else a typed batch of every row of the AgentBuffer."""
        if isinstance(batch, ExperienceBatch):
            return batch
        if isinstance(batch, AgentBuffer):
            return _Layout(batch.to_arrays()).cut(0, batch.num_experiences)
        raise InvalidArgumentError(
            f"batch: expected an AgentBuffer or an ExperienceBatch, got {type(batch).__name__}"
        )

    # -- reading, with errors that say what is missing ---------------------------------

    def require(self, name: str) -> np.ndarray:
        """Attribute ``name`` (e.g. ``"advantages"``), raising a clear error when the
        buffer the batch came from lacked its field."""
        value = getattr(self, name)
        if value is None:
            raise InvalidArgumentError(f"batch: has no {name} (its buffer lacks the field)")
        return value

    def observations(self, count: int) -> list[np.ndarray]:
        """Observations 0 to ``count - 1`` (a policy's sensors)."""
        return _first(self.obs, count, "observations")

    def next_observations(self, count: int) -> list[np.ndarray]:
        """Next observations 0 to ``count - 1``."""
        return _first(self.next_obs, count, "next observations")

    def signal_rows(self, kind: str, signal: str) -> np.ndarray:
        """``rewards``, ``value_estimates`` or ``returns`` of reward signal ``signal``."""
        rows = getattr(self, kind).get(signal)
        if rows is None:
            raise InvalidArgumentError(f"batch: has no {kind} of reward signal {signal!r}")
        return rows

    # -- ML-Agents' buffer keys -------------------------------------------------------

    def __getitem__(self, key: AgentBufferKey) -> AgentBufferField:
        rows = self.source[key][self.rows]
        if isinstance(rows, np.ndarray):
            return AgentBufferField.of_rows(rows)
        return AgentBufferField(rows)

    def __contains__(self, key: object) -> bool:
        return key in self.source

    def __iter__(self) -> Iterator[AgentBufferKey]:
        return iter(self.source)

    def __len__(self) -> int:
        return len(self.source)

    def keys(self) -> Any:
        return self.source.keys()

    def get(self, key: AgentBufferKey, default: Any = None) -> Any:
        return self[key] if key in self.source else default


Mapping.register(ExperienceBatch)

#: What optimizers and reward signals accept: a typed batch (what our trainers pass) or an
#: AgentBuffer (ML-Agents' signature); they read it through :meth:`ExperienceBatch.of`.
BatchOrBuffer: TypeAlias = ExperienceBatch | AgentBuffer


class _Layout:
    """Which key of a buffer's arrays feeds which attribute: worked out once, then used
    to cut every minibatch of an epoch."""

    __slots__ = ("arrays", "next_obs", "obs", "per_signal", "single")

    def __init__(self, arrays: dict[AgentBufferKey, Rows]) -> None:
        self.arrays = arrays
        self.obs = _observation_keys(arrays, ObservationKeyPrefix.OBSERVATION)
        self.next_obs = _observation_keys(arrays, ObservationKeyPrefix.NEXT_OBSERVATION)
        self.single = [(name, key) for name, key in _SINGLE_FIELDS if key in arrays]
        self.per_signal: list[tuple[str, list[tuple[str, AgentBufferKey]]]] = []
        for name, prefix in _PER_SIGNAL_FIELDS:
            keys: list[tuple[str, AgentBufferKey]] = [
                (key[1], key) for key in arrays if isinstance(key, tuple) and key[0] is prefix
            ]
            self.per_signal.append((name, keys))

    def cut(self, start: int, stop: int) -> ExperienceBatch:
        arrays = self.arrays
        fields: dict[str, Any] = {name: arrays[key][start:stop] for name, key in self.single}
        for name, keys in self.per_signal:
            fields[name] = {signal: arrays[key][start:stop] for signal, key in keys}
        return ExperienceBatch(
            num_experiences=stop - start,
            obs=[arrays[key][start:stop] for key in self.obs],
            next_obs=[arrays[key][start:stop] for key in self.next_obs],
            source=arrays,
            rows=slice(start, stop),
            **fields,
        )


def _first(arrays: list[np.ndarray], count: int, what: str) -> list[np.ndarray]:
    if len(arrays) < count:
        raise InvalidArgumentError(
            f"batch: has {len(arrays)} {what}, {count} were asked for (one per sensor)"
        )
    return arrays[:count]


def _observation_keys(
    arrays: Mapping[AgentBufferKey, Rows], prefix: ObservationKeyPrefix
) -> list[AgentBufferKey]:
    """Keys of observations 0, 1, ... of ``prefix`` present in ``arrays``, in order."""
    keys: list[AgentBufferKey] = []
    while (prefix, len(keys)) in arrays:
        keys.append((prefix, len(keys)))
    return keys


def minibatches(buffer: AgentBuffer, batch_size: int) -> Iterator[ExperienceBatch]:
    """Consecutive minibatches of ``batch_size`` rows of ``buffer`` (a trailing partial
    one is left out), as PPO's epoch walks its shuffled update buffer. Nothing is copied:
    the batches show the buffer's rows, which it never writes again."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    layout = _Layout(buffer.to_arrays())
    whole = buffer.num_experiences - buffer.num_experiences % batch_size
    for start in range(0, whole, batch_size):
        yield layout.cut(start, start + batch_size)
