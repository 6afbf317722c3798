"""Demonstrations (``.demo`` files): the counterpart of ``mlagents.trainers.demo_loader``.

Same functions, arguments and results as ML-Agents 1.1.0: :func:`load_demonstration`,
:func:`demo_to_buffer`, :func:`make_demo_buffer`, :func:`get_demo_files`,
:func:`write_demo` and :func:`write_delimited`. The file layout is checked and the records
are decoded in Rust (``mlagents_fast_core::demo``) with the same functions that decode
the live Unity link, so a demonstration step and a live step give the same arrays (raw
floats or PNG, channel mappings, NaN checks).

:func:`load_demonstration` returns the records as a :class:`DemonstrationRecords`
sequence instead of a list: indexing it gives an ``AgentInfoActionPairProto`` (parsed on
demand), so code written for ML-Agents' list keeps working, while
:func:`make_demo_buffer` decodes all records at once without building the messages.

Differences from ML-Agents 1.1.0, on purpose:

- Every problem with a file raises :class:`~mlagents_fast.exceptions.DemonstrationError`
  (a ``RuntimeError``, as ML-Agents raises for a bad version or spec) whose message names
  the file: truncated records, a header that is not a demonstration, an unsupported
  ``api_version``, malformed records, actions that do not fit the behavior, files of one
  folder recorded for different behaviors, and a spec that differs from the policy's.
  ML-Agents raises protobuf or numpy errors for most of these, or reads garbage.
- ``get_demo_files`` lists a folder's ``.demo`` files in sorted order (ML-Agents: the
  order of ``os.listdir``), so a folder loads the same way on every machine.
- Buffer dtypes: ``continuous_action`` is float32 and ``discrete_action`` int32, the dtypes
  the trainers' own buffers use (ML-Agents' demo buffer holds float64/int64 there because
  it appends Python lists); the values are identical.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np

from mlagents_fast import _native
from mlagents_fast.atomic_io import atomic_write
from mlagents_fast.envs.base_env import BehaviorSpec
from mlagents_fast.envs.rpc_utils import behavior_spec_from_decoded
from mlagents_fast.exceptions import DemonstrationError
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.exception import TrainerConfigError

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = [
    "INITIAL_POS",
    "SUPPORTED_DEMONSTRATION_VERSIONS",
    "DemonstrationRecords",
    "demo_buffer_for_training",
    "demo_to_buffer",
    "get_demo_files",
    "load_demonstration",
    "make_demo_buffer",
    "write_delimited",
    "write_demo",
]

#: Byte offset of the brain parameters (the meta record fits before it).
INITIAL_POS = 33
SUPPORTED_DEMONSTRATION_VERSIONS = frozenset([0, 1])
#: Bound on the arrays one file's records may decode into (PNG observations expand).
MAX_DECODED_BYTES = 1 << 32

logger = logging.getLogger(__name__)

_PROTO_LIST_SOURCE = "<AgentInfoActionPairProto list>"


class _Segment(NamedTuple):
    """The records of one file: its bytes and their byte ranges."""

    source: str
    data: bytes
    ranges: np.ndarray  # int64 (n, 2), [start, end)
    meta: dict[str, Any]


class DemonstrationRecords(Sequence):
    """The ``AgentInfoActionPairProto`` records of a load, in file order.

    A read-only sequence: ``records[i]`` parses record ``i`` into an
    ``mlagents_fast.envs.communicator_objects`` message; ``len`` is the number of records.
    ``metas`` lists each file's ``DemonstrationMetaProto`` fields as a dict, and
    ``sources`` the files, in load order.
    """

    def __init__(self, segments: list[_Segment]) -> None:
        self._segments = segments
        self._starts = np.cumsum([0] + [len(s.ranges) for s in segments])

    @property
    def metas(self) -> list[dict[str, Any]]:
        return [segment.meta for segment in self._segments]

    @property
    def sources(self) -> list[str]:
        return [segment.source for segment in self._segments]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _record(self, index: int) -> Any:
        from mlagents_fast.envs.communicator_objects.agent_info_action_pair_pb2 import (
            AgentInfoActionPairProto,
        )

        segment_index = int(np.searchsorted(self._starts, index, side="right")) - 1
        segment = self._segments[segment_index]
        start, end = segment.ranges[index - self._starts[segment_index]]
        return AgentInfoActionPairProto.FromString(segment.data[start:end])

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        count = len(self)
        if index < -count or index >= count:
            raise IndexError(f"record index {index} out of range for {count} records")
        return self._record(index % count)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self._record(i)

    def __repr__(self) -> str:
        return f"DemonstrationRecords(<{len(self)} records from {len(self._segments)} files>)"


def get_demo_files(path: str) -> list[str]:
    """The demonstration file at ``path``, or the ``.demo`` files of folder ``path`` (sorted).

    Raises ValueError for a file without the ``.demo`` extension or a folder without
    ``.demo`` files, FileNotFoundError for a path that does not exist (as ML-Agents).
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        if not path.endswith(".demo"):
            raise ValueError(f"The path provided is not a '.demo' file: {path}")
        return [path]
    if os.path.isdir(path):
        paths = sorted(
            os.path.join(path, name) for name in os.listdir(path) if name.endswith(".demo")
        )
        if not paths:
            raise ValueError(f"There are no '.demo' files in the provided directory: {path}")
        return paths
    raise FileNotFoundError(f"The demonstration file or directory {path} does not exist.")


def _spec_key(spec: BehaviorSpec) -> tuple:
    return (
        [tuple(obs.shape) for obs in spec.observation_specs],
        int(spec.action_spec.continuous_size),
        tuple(int(b) for b in spec.action_spec.discrete_branches),
    )


def load_demonstration(file_path: str) -> tuple[BehaviorSpec, DemonstrationRecords, int]:
    """Reads a ``.demo`` file or a folder of them (loaded as one, in sorted order).

    Returns the behavior spec (brain parameters plus the first record's observations),
    the records, and the sum of the files' ``number_steps``. As ML-Agents, each file is read
    until its end or until the records loaded so far equal that running sum.
    """
    segments: list[_Segment] = []
    behavior_spec: BehaviorSpec | None = None
    spec_source = ""
    records_before = 0
    total_expected = 0
    for path in get_demo_files(file_path):
        with open(path, "rb") as file:
            data = file.read()
        layout = _native.demo_read_layout(data, path, records_before, total_expected)
        total_expected += layout["meta"]["number_steps"]
        ranges = layout["records"]
        if layout["spec"] is not None:
            file_spec = behavior_spec_from_decoded(layout["spec"])
            if behavior_spec is None:
                behavior_spec, spec_source = file_spec, path
            elif _spec_key(file_spec) != _spec_key(behavior_spec):
                raise DemonstrationError(
                    f"{path}: recorded for another behavior spec than {spec_source} "
                    f"(observations {_spec_key(file_spec)[0]} and actions "
                    f"{file_spec.action_spec} against {_spec_key(behavior_spec)[0]} and "
                    f"{behavior_spec.action_spec}); a folder loads as one demonstration"
                )
        segments.append(_Segment(path, data, ranges, layout["meta"]))
        records_before += len(ranges)
    if behavior_spec is None:
        raise DemonstrationError(
            f"{file_path}: No BrainParameters found in demonstration file: it holds no "
            "recorded steps."
        )
    return behavior_spec, DemonstrationRecords(segments), total_expected


def _proto_segment(pair_infos: Sequence[Any]) -> _Segment:
    """The records of a list of ``AgentInfoActionPairProto`` messages, serialized."""
    chunks = [pair.SerializeToString() for pair in pair_infos]
    ends = np.cumsum([len(chunk) for chunk in chunks], dtype=np.int64)
    ranges = np.stack([ends - [len(chunk) for chunk in chunks], ends], axis=1)
    return _Segment(_PROTO_LIST_SOURCE, b"".join(chunks), ranges.reshape(-1, 2), {})


def _decode(segments: list[_Segment], behavior_spec: BehaviorSpec) -> dict[str, Any]:
    """The decoded records of all segments, concatenated."""
    shapes = [tuple(obs.shape) for obs in behavior_spec.observation_specs]
    continuous_size = int(behavior_spec.action_spec.continuous_size)
    branches = [int(b) for b in behavior_spec.action_spec.discrete_branches]
    parts: list[dict[str, Any]] = []
    for segment in segments:
        part = _native.demo_decode_records(
            segment.data,
            np.ascontiguousarray(segment.ranges, dtype=np.int64),
            shapes,
            continuous_size,
            branches,
            segment.source,
            MAX_DECODED_BYTES,
        )
        if parts and part["deprecated_actions"].shape[1] != parts[0]["deprecated_actions"].shape[1]:
            raise DemonstrationError(
                f"{segment.source}: vector_actions_deprecated has "
                f"{part['deprecated_actions'].shape[1]} values per record, "
                f"{segments[0].source} has {parts[0]['deprecated_actions'].shape[1]}"
            )
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, Any] = {
        key: np.concatenate([part[key] for part in parts])
        for key in parts[0]
        if key != "observations"
    }
    merged["observations"] = [
        np.concatenate([part["observations"][i] for part in parts]) for i in range(len(shapes))
    ]
    return merged


def make_demo_buffer(
    pair_infos: Sequence[Any], behavior_spec: BehaviorSpec, sequence_length: int
) -> AgentBuffer:
    """An AgentBuffer of the demonstration: one row per record but the last, as ML-Agents.

    Row ``t`` holds record ``t``'s observations and actions (``continuous_actions`` /
    ``discrete_actions``, or ``vector_actions_deprecated`` for records with neither; a
    record without any action value, which Unity writes when recording stops, gives no row),
    ``done`` and ``environment_rewards`` of record ``t + 1``, and ``prev_action``: record
    ``t - 1``'s ``vector_actions_deprecated`` (zeros for the first row). Rows are cut into
    episodes at ``done`` and resequenced for ``sequence_length`` (padding at the end of
    each episode, as the trainers' buffers).

    ``pair_infos``: the records of :func:`load_demonstration`, or any sequence of
    ``AgentInfoActionPairProto`` messages.
    """
    if isinstance(pair_infos, DemonstrationRecords):
        segments = pair_infos._segments
    else:
        segments = [_proto_segment(list(pair_infos))]
    buffer = AgentBuffer()
    steps = _decode(segments, behavior_spec)
    rows = len(steps["done"]) - 1
    if rows < 1:
        return buffer
    deprecated = steps["deprecated_actions"]
    columns: list[tuple[Any, np.ndarray]] = [
        (BufferKey.DONE, steps["done"][1:]),
        (BufferKey.ENVIRONMENT_REWARDS, steps["reward"][1:]),
    ]
    columns += [
        ((ObservationKeyPrefix.OBSERVATION, i), obs[:rows])
        for i, obs in enumerate(steps["observations"])
    ]
    if behavior_spec.action_spec.continuous_size > 0:
        columns.append((BufferKey.CONTINUOUS_ACTION, steps["continuous_actions"][:rows]))
    if behavior_spec.action_spec.discrete_size > 0:
        columns.append((BufferKey.DISCRETE_ACTION, steps["discrete_actions"][:rows]))
    # Zeros for the first row, with the signs of record 0's values times 0, as ML-Agents.
    previous = np.concatenate([deprecated[:1] * 0, deprecated[: rows - 1]])
    columns.append((BufferKey.PREV_ACTION, previous))
    has_action = steps["has_action"][:rows]
    if not has_action.all():
        # A record without any action (Unity writes one when recording stops) teaches
        # nothing: its row is left out rather than trained on a made-up action.
        logger.warning(
            "%d demonstration record(s) without an action are left out of the buffer",
            int(rows - has_action.sum()),
        )
        columns = [(key, column[has_action]) for key, column in columns]
        rows = int(has_action.sum())
        if rows < 1:
            return buffer

    if sequence_length == 1:
        # Resequencing with sequences of 1 changes nothing: one extend per field.
        for key, column in columns:
            buffer[key].extend(column)
        return buffer
    # Episodes end at a done row; each is padded to whole sequences, then the rest.
    ends: list[int] = (np.flatnonzero(columns[0][1]) + 1).tolist()
    if not ends or ends[-1] != rows:
        ends.append(rows)
    start = 0
    for end in ends:
        episode = AgentBuffer()
        for key, column in columns:
            episode[key].extend(column[start:end])
        episode.resequence_and_append(buffer, batch_size=None, training_length=sequence_length)
        start = end
    return buffer


def _check_spec(path: str, demo: BehaviorSpec, policy: BehaviorSpec) -> None:
    """Raises DemonstrationError naming ``path`` unless the demonstration fits the policy."""
    if _spec_key(demo)[1:] != _spec_key(policy)[1:]:
        raise DemonstrationError(
            f"{path}: The actions {demo.action_spec} in demonstration do not match the "
            f"policy's {policy.action_spec}."
        )
    if len(demo.observation_specs) != len(policy.observation_specs):
        raise DemonstrationError(
            f"{path}: The demonstrations do not have the same number of observations as the "
            f"policy ({len(demo.observation_specs)} against {len(policy.observation_specs)})."
        )
    for i, (demo_obs, policy_obs) in enumerate(
        zip(demo.observation_specs, policy.observation_specs, strict=True)
    ):
        if tuple(demo_obs.shape) != tuple(policy_obs.shape):
            raise DemonstrationError(
                f"{path}: The shape {tuple(demo_obs.shape)} for observation {i} in "
                f"demonstration does not match the policy's {tuple(policy_obs.shape)}."
            )


def demo_to_buffer(
    file_path: str,
    sequence_length: int,
    expected_behavior_spec: BehaviorSpec | None = None,
) -> tuple[BehaviorSpec, AgentBuffer]:
    """Loads a demonstration file or folder into an AgentBuffer (see :func:`make_demo_buffer`).

    With ``expected_behavior_spec`` (the policy's), a demonstration whose actions or
    observation shapes differ raises DemonstrationError before anything is decoded.
    """
    behavior_spec, records, _ = load_demonstration(file_path)
    if expected_behavior_spec is not None:
        _check_spec(os.fspath(file_path), behavior_spec, expected_behavior_spec)
    return behavior_spec, make_demo_buffer(records, behavior_spec, sequence_length)


def demo_buffer_for_training(
    demo_path: str,
    sequence_length: int,
    behavior_spec: BehaviorSpec,
    key_path: Sequence[str],
) -> AgentBuffer:
    """:func:`demo_to_buffer` for a trainer setting (GAIL, behavioral cloning): a missing,
    unreadable or mismatched demonstration becomes a TrainerConfigError at ``key_path``, which
    the command line reports in one line (exit status 2)."""
    try:
        return demo_to_buffer(demo_path, sequence_length, behavior_spec)[1]
    except (DemonstrationError, OSError, ValueError) as error:
        raise TrainerConfigError(str(error), key_path=key_path) from error


def write_delimited(f: IO[bytes], message: Message) -> None:
    """Writes ``message`` (a protobuf message) prefixed by its varint length."""
    data = message.SerializeToString()
    size, prefix = len(data), bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        if size:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            break
    f.write(bytes(prefix))
    f.write(data)


def write_demo(
    demo_path: str, meta_data_proto: Any, brain_param_proto: Any, agent_info_protos: Any
) -> None:
    """Writes a ``.demo`` file from protobuf messages (ML-Agents' layout: the meta at byte 0,
    the brain parameters at :data:`INITIAL_POS`, then the records). Written atomically."""
    meta = io.BytesIO()
    write_delimited(meta, meta_data_proto)
    if meta.tell() > INITIAL_POS:
        raise DemonstrationError(
            f"{demo_path}: the DemonstrationMetaProto takes {meta.tell()} bytes, more than "
            f"the {INITIAL_POS} the format reserves"
        )
    with atomic_write(demo_path) as f:
        f.write(meta.getvalue().ljust(INITIAL_POS, b"\0"))
        write_delimited(f, brain_param_proto)
        for pair in agent_info_protos:
            write_delimited(f, pair)
