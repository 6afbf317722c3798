"""Seeded, structure-aware fuzzing of the Python path of messages from Unity (test helper).

Used by ``tests/test_fuzz_decoder.py`` (committed corpus replay + a quick campaign) and
``benches/fuzz_decoder.py`` (the >= 1,000,000-input campaign). The pieces:

- **seeds**: valid messages built with our own encoder (``_native.encode_unity_output``) and
  the protobuf classes: the handshake, vector / visual (PNG: single, grayscale, concatenated
  with a channel mapping) / variable-length / goal observations, continuous, discrete and
  hybrid specs with masks and groups, deprecated brain parameters, and side channels.
- **target**: :func:`run_python_path`, everything ``UnityEnvironment`` does with received
  bytes (``decode_output`` -> ``apply_decoded_output``: specs, DecisionSteps/TerminalSteps,
  side channels), then reads every array. It may only raise ``UnityProtocolException``.
- **mutator**: input ``i`` of campaign ``seed`` is a deterministic function of ``(seed, i)``:
  a seed message parsed as a protobuf tree, 1-3 tree mutations (interesting varints in any
  field, repeated or deleted fields, packed-int rewrites for shapes and branches, PNG headers
  with recomputed CRCs, side-channel record lengths and values, byte edits in blobs), then
  sometimes byte-level edits of the whole message.
- **campaign**: :func:`run_campaign` runs inputs in worker subprocesses, so a process death
  is counted (and its input saved), never fatal; an input running past the timeout is a hang.
- **host target**: the same mutator and campaign over messages from a trainer
  (:func:`build_host_seeds`), through what the ``mlagents-fast-env`` host does with them
  (:func:`run_host_path`): ``target="host"``.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import select
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TESTS_DIR = Path(__file__).resolve().parent
CORPUS_DIR = TESTS_DIR / "fuzz_corpus"

# --- seeds ---------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Channel ids of the side channels the target registers (besides ML-Agents' fixed ones).
RAW_CHANNEL_ID = uuid.UUID("3f07928c-2b2b-4a45-9a5a-0d5ae6c2f2d1")
PRIMITIVES_CHANNEL_ID = uuid.UUID("9b4c1e8e-6f1a-4c55-8d9e-3c1f0a7e5b21")
STATS_CHANNEL_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
FLOAT_PROPERTIES_ID = uuid.UUID("60ccf7d0-4f7e-11ea-b238-784f4387d1f7")
ENGINE_CHANNEL_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
ENVIRONMENT_PARAMETERS_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
TRAINING_ANALYTICS_ID = uuid.UUID("b664a4a9-d86f-5a5f-95cb-e8353a7e8356")
CHANNEL_IDS = (
    RAW_CHANNEL_ID,
    PRIMITIVES_CHANNEL_ID,
    STATS_CHANNEL_ID,
    FLOAT_PROPERTIES_ID,
    ENGINE_CHANNEL_ID,
    ENVIRONMENT_PARAMETERS_ID,
    TRAINING_ANALYTICS_ID,
)


def png_bytes(hwc: np.ndarray) -> bytes:
    """A PNG (8-bit gray, RGB or RGBA by the channel count) of an HWC uint8 array."""
    height, width, channels = hwc.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + hwc[row].tobytes() for row in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def side_channel_record(channel_id: uuid.UUID, payload: bytes) -> bytes:
    return channel_id.bytes_le + struct.pack("<i", len(payload)) + payload


def _string(text: str) -> bytes:
    return struct.pack("<i", len(text)) + text.encode("ascii")


def side_channel_payloads() -> bytes:
    """Records for every channel kind the target registers, plus one for an unknown id."""
    stats = _string("Environment/Reward") + struct.pack("<fi", 1.5, 0)
    stats_histogram = _string("Custom/Hist") + struct.pack("<fi", -2.0, 3)
    float_property = _string("gravity") + struct.pack("<f", 9.81)
    primitives = (
        b"\x01"
        + struct.pack("<if", 7, 0.25)
        + _string("abc")
        + struct.pack("<i3f", 3, 1.0, 2.0, 3.0)
    )
    return b"".join(
        [
            side_channel_record(STATS_CHANNEL_ID, stats),
            side_channel_record(STATS_CHANNEL_ID, stats_histogram),
            side_channel_record(FLOAT_PROPERTIES_ID, float_property),
            side_channel_record(RAW_CHANNEL_ID, b"raw\x00\xffbytes"),
            side_channel_record(PRIMITIVES_CHANNEL_ID, primitives),
            side_channel_record(uuid.UUID(int=12345), b"unknown channel"),
        ]
    )


def _batch(name, n, observations, done=None, mask=None, groups=False, seed=0):
    rng = np.random.default_rng(seed)
    done = np.zeros(n, bool) if done is None else np.asarray(done, bool)
    return {
        "name": name,
        "agent_id": np.arange(1, n + 1, dtype=np.int32) * 3,
        "reward": rng.normal(size=n).astype(np.float32),
        "done": done,
        "max_step_reached": done & (np.arange(n) % 2 == 0),
        "group_id": (np.arange(n, dtype=np.int32) % 2 + 1) if groups else np.zeros(n, np.int32),
        "group_reward": rng.normal(size=n).astype(np.float32)
        if groups
        else np.zeros(n, np.float32),
        "observations": observations,
        "action_mask": mask,
    }


def _init(brains, capabilities=(True,) * 7):
    return {
        "name": "AcademySingleton",
        "communication_version": "1.5.0",
        "package_version": "3.0.0",
        "capabilities": capabilities,
        "brain_parameters": [
            {"brain_name": name, "continuous_size": c, "discrete_branches": b}
            for name, c, b in brains
        ],
    }


def _png_observation(shape, agents, channels_per_image, mapping=(), seed=0):
    """A PNG ObservationProto per agent (protobuf), compressed data as Unity sends it."""
    from mlagents_fast.envs.communicator_objects import observation_pb2

    rng = np.random.default_rng(seed)
    _, height, width = shape
    out = []
    for _ in range(agents):
        data = b"".join(
            png_bytes(rng.integers(0, 256, size=(height, width, c), dtype=np.uint8))
            for c in channels_per_image
        )
        out.append(
            observation_pb2.ObservationProto(
                shape=list(shape),
                compression_type=observation_pb2.PNG,
                compressed_data=data,
                compressed_channel_mapping=list(mapping),
                dimension_properties=[1, 2, 2],
                name="CameraSensor",
            )
        )
    return out


def _protobuf_seeds() -> list[bytes]:
    """Seeds built with the protobuf classes: PNG observations and deprecated brain fields."""
    from proto_golden import agent_pb2, brain, brain_parameters_pb2, unity_message, vector_obs

    seeds = []
    # Visual + vector, hybrid actions, masks: announced.
    cameras = _png_observation((3, 6, 5), 3, [3], seed=1)
    agents = [
        agent_pb2.AgentInfoProto(
            id=i,
            reward=0.5 * i,
            done=i == 2,
            max_step_reached=i == 2,
            action_mask=[False, True, False, True, False] if i == 0 else [],
            observations=[cameras[i], vector_obs([0.1 * i, -0.2, 0.3, 0.4])],
            group_id=1,
            group_reward=0.25,
        )
        for i in range(3)
    ]
    seeds.append(unity_message({"Visual?team=0": agents}, [brain("Visual?team=0", 2, (3, 2))]))
    # Steady state of the known visual behavior (no brain parameters).
    seeds.append(unity_message({"Visual?team=0": agents[:2]}, side_channel=side_channel_payloads()))
    # Grayscale from RGB, RGBA, concatenated PNGs with a channel mapping.
    for shape, channels, mapping in (
        ((1, 4, 4), [3], ()),
        ((4, 4, 4), [4], ()),
        ((5, 4, 4), [3, 3], ()),
        ((2, 4, 4), [3, 3], (0, 0, -1, 1, 1, 1)),
    ):
        obs = _png_observation(shape, 2, channels, mapping, seed=len(channels))
        agents = [
            agent_pb2.AgentInfoProto(id=i + 1, observations=[obs[i]], action_mask=[])
            for i in range(2)
        ]
        seeds.append(unity_message({f"Png{shape[0]}": agents}, [brain(f"Png{shape[0]}", 1)]))
    # Deprecated brain fields (pre-1.3 senders): continuous and discrete.
    old = brain_parameters_pb2.BrainParametersProto(
        brain_name="Old", vector_action_size_deprecated=[2], vector_action_space_type_deprecated=1
    )
    old_discrete = brain_parameters_pb2.BrainParametersProto(
        brain_name="OldDiscrete", vector_action_size_deprecated=[3, 2]
    )
    seeds.append(
        unity_message(
            {
                "Old": [agent_pb2.AgentInfoProto(id=1, observations=[vector_obs([1.0, 2.0])])],
                "OldDiscrete": [agent_pb2.AgentInfoProto(id=2, observations=[vector_obs([3.0])])],
            },
            [old, old_discrete],
        )
    )
    return seeds


def build_seeds() -> list[bytes]:
    """Valid messages from Unity covering every part of the protocol the decoder reads."""
    from mlagents_fast import _native

    encode = _native.encode_unity_output
    rng = np.random.default_rng(0)

    def obs(array, props, obs_type=0, name="VectorSensor"):
        return (np.ascontiguousarray(array, np.float32), list(props), obs_type, name)

    seeds = [
        # Handshake: message 1 (no brains) and message 2 (empty output), the close status.
        encode(200, True, _init([]), [], b""),
        encode(200, False, None, [], b""),
        encode(400, False, None, [], b""),
    ]
    # Continuous vector behavior, announced, with terminal agents.
    vector = _batch(
        "Vector?team=0",
        4,
        [obs(rng.normal(size=(4, 8)), [1])],
        done=[False, True, False, True],
    )
    seeds.append(encode(200, True, _init([("Vector?team=0", 2, [])]), [vector], b""))
    # The same behavior in steady state, with every side channel kind.
    seeds.append(encode(200, True, None, [vector], side_channel_payloads()))
    # Discrete branches with masks (some agents without), two behaviors, groups.
    masks = np.zeros((3, 5), bool)
    masks[0, 1] = masks[2, 3] = True
    discrete = _batch(
        "Masked?team=1",
        3,
        [obs(rng.normal(size=(3, 4)), [1]), obs(rng.normal(size=(3, 2)), [1], 1, "Goal")],
        mask=masks,
        groups=True,
    )
    seeds.append(
        encode(
            200,
            True,
            _init([("Masked?team=1", 0, [3, 2]), ("Vector?team=0", 2, [])]),
            [discrete, vector],
            b"",
        )
    )
    # Variable-length (entity) observation next to a vector one; hybrid actions.
    # Rank-2 observations are float data: the (5, 3) entity buffer.
    entities = _batch(
        "Sorter",
        2,
        [
            obs(rng.normal(size=(2, 5, 3)), [4, 1], 0, "BufferSensor"),
            obs(rng.normal(size=(2, 6)), [1]),
        ],
    )
    seeds.append(encode(200, True, _init([("Sorter", 1, [4])]), [entities], b""))
    # Side channels alone (an output with no agents), and stats only.
    seeds.append(encode(200, True, None, [], side_channel_payloads()))
    stats = _string("Custom/Value") + struct.pack("<fi", 0.5, 1)
    seeds.append(encode(200, True, None, [], side_channel_record(STATS_CHANNEL_ID, stats)))
    # Uncompressed rank-3 (visual) float observation.
    grid = _batch("Grid", 2, [obs(rng.uniform(size=(2, 2, 3, 3)), [1, 2, 2], 0, "Grid")])
    seeds.append(encode(200, True, _init([("Grid", 0, [2])]), [grid], b""))
    return seeds + _protobuf_seeds()


# --- target --------------------------------------------------------------------------------


def known_specs(base_env=None) -> dict:
    """Behaviors a running session already knows, for seeds without brain parameters, built
    with ``base_env`` (ours by default; ML-Agents' for the reference run)."""
    if base_env is None:
        from mlagents_fast.envs import base_env

    def spec(shape, props):
        return base_env.ObservationSpec(
            tuple(shape),
            tuple(base_env.DimensionProperty(p) for p in props),
            base_env.ObservationType.DEFAULT,
            "",
        )

    return {
        "Vector?team=0": base_env.BehaviorSpec([spec((8,), [1])], base_env.ActionSpec(2, ())),
        "Visual?team=0": base_env.BehaviorSpec(
            [spec((3, 6, 5), [1, 2, 2]), spec((4,), [1])], base_env.ActionSpec(2, (3, 2))
        ),
        "Masked?team=1": base_env.BehaviorSpec(
            [spec((4,), [1]), spec((2,), [1])], base_env.ActionSpec(0, (3, 2))
        ),
    }


def primitives_channel(side_channel_class):
    """A user channel (subclass of ``side_channel_class``) that reads primitives in turn until
    the message ends: every IncomingMessage read, on any payload."""

    class PrimitivesChannel(side_channel_class):
        def __init__(self) -> None:
            super().__init__(PRIMITIVES_CHANNEL_ID)
            self.received: list = []

        def on_message_received(self, msg) -> None:
            readers = (msg.read_bool, msg.read_int32, msg.read_float32, msg.read_string)
            readers += (msg.read_float32_list,)
            turn = 0
            while not msg._at_end_of_buffer():
                self.received.append(readers[turn % len(readers)]())
                turn += 1

    return PrimitivesChannel()


def make_side_channels() -> list:
    """The channels mlagents-learn registers, plus user channels that read every primitive."""
    from mlagents_fast.envs.side_channel import (
        DefaultTrainingAnalyticsSideChannel,
        EngineConfigurationChannel,
        EnvironmentParametersChannel,
        FloatPropertiesChannel,
        RawBytesChannel,
        SideChannel,
        StatsSideChannel,
    )

    return [
        EnvironmentParametersChannel(),
        EngineConfigurationChannel(),
        StatsSideChannel(),
        FloatPropertiesChannel(),
        RawBytesChannel(RAW_CHANNEL_ID),
        primitives_channel(SideChannel),
        DefaultTrainingAnalyticsSideChannel(),
    ]


def run_python_path(data: bytes) -> int:
    """Everything UnityEnvironment does with ``data`` received from Unity; returns the number
    of agents decoded. Raises only UnityProtocolException subclasses (any other exception,
    or a crash, is a decoder bug)."""
    from mlagents_fast.envs.environment import UnityRLCapabilities
    from mlagents_fast.envs.rpc_utils import apply_decoded_output, decode_output
    from mlagents_fast.envs.side_channel import SideChannelManager

    specs = known_specs()
    decoded = decode_output(data, specs)
    if decoded.init_output is not None:
        UnityRLCapabilities(*decoded.init_output.capabilities)
    state = apply_decoded_output(decoded, specs, SideChannelManager(make_side_channels()))
    agents = 0
    for decision, terminal in state.values():
        for steps in (decision, terminal):
            agents += len(steps)
            for array in steps.obs:
                float(np.asarray(array).sum())
            if len(steps):
                steps[int(steps.agent_id[0])]
        if decision.action_mask is not None:
            sum(int(branch.sum()) for branch in decision.action_mask)
    return agents


# --- the host side: messages from a trainer --------------------------------------------------

# The limits of fuzz/src/lib.rs (FUZZ_LIMITS) that trainer messages meet: the committed
# limit-trainer-* reproducers exceed these, not the (much larger) defaults.
HOST_FUZZ_LIMITS = {
    "max_agents": 4096,
    "max_discrete_branches": 64,
    "max_action_size": 1 << 16,
    "max_message_bytes": 64 << 20,
}


def build_host_seeds() -> list[bytes]:
    """Valid messages from a trainer, as the mlagents-fast-env host receives them: the
    handshake, resets with the side channels it relays, steps with continuous, discrete,
    hybrid and several behaviors' actions, quit and close."""
    from mlagents_fast import _native

    rng = np.random.default_rng(1)

    def step(command, behaviors, side_channel=b""):
        actions = [
            (name, np.asarray(c, np.float32), np.asarray(d, np.int32)) for name, c, d in behaviors
        ]
        return _native.encode_rl_input(command, side_channel, actions)

    relayed = b"".join(
        [
            side_channel_record(
                ENVIRONMENT_PARAMETERS_ID, _string("gravity") + struct.pack("<if", 0, 9.81)
            ),
            side_channel_record(ENGINE_CHANNEL_ID, struct.pack("<iii", 0, 80, 80)),
            side_channel_record(TRAINING_ANALYTICS_ID, b"\x0a\x04test"),
            side_channel_record(uuid.UUID(int=5), b"unknown channel"),
        ]
    )
    vector = ("Vector?team=0", rng.normal(size=(4, 2)), np.zeros((4, 0)))
    masked = ("Masked?team=1", np.zeros((3, 0)), rng.integers(0, 3, size=(3, 2)))
    hybrid = ("Hybrid", rng.normal(size=(5, 1)), rng.integers(0, 4, size=(5, 1)))
    return [
        _native.encode_init_input(42, "1.5.0", "1.1.0", [True] * 7, 2),
        step(1, [], relayed),
        step(0, [vector]),
        step(0, [masked, vector], relayed),
        step(0, [hybrid]),
        step(2, []),
        _native.encode_close(),
    ]


_HOST = []


def run_host_path(data: bytes, limits=None) -> int:
    """Everything the mlagents-fast-env host does with ``data`` received from a trainer
    (``decode_unity_input`` with the process's limits or ``limits``, capabilities, the
    side-channel relay, the actions it hands its environment), short of stepping the
    environment; returns the number of agents with actions. Raises only
    UnityProtocolException subclasses (anything else, or a crash, is a decoder bug)."""
    from mlagents_fast import _native
    from mlagents_fast.envs.base_env import ActionTuple
    from mlagents_fast.envs.cli import UnityHost
    from mlagents_fast.envs.environment import UnityRLCapabilities
    from mlagents_fast.envs.rpc_utils import DecodeLimits, get_decode_limits

    if not _HOST:
        _HOST.append(UnityHost(lambda *args: None, "localhost:1"))
    host = _HOST[0]
    limits = get_decode_limits() if limits is None else DecodeLimits(**limits)
    decoded = _native.decode_unity_input(data, limits)
    init = decoded["init_input"]
    if init is not None:
        UnityRLCapabilities(*init["capabilities"])
    rl_input = decoded["rl_input"]
    if rl_input is None:
        return 0
    host._relay_side_channels(rl_input["side_channel"])
    for relay in host._relays.values():
        relay.message_queue.clear()
    agents = 0
    for continuous, discrete in rl_input["actions"].values():
        actions = ActionTuple(continuous=continuous, discrete=discrete)
        agents += len(actions.continuous)
        float(actions.continuous.sum())
        int(actions.discrete.sum())
    return agents


# What each fuzz target runs, and the valid messages its mutations start from.
TARGETS = {
    "unity": (run_python_path, build_seeds),
    "host": (run_host_path, build_host_seeds),
}


# --- mutator -------------------------------------------------------------------------------

INTERESTING = (
    [0, 1, 2, 3, 4, 7, 8, 16, 84, 127, 128, 255, 256, 1000, 4096, 65535, 65536, 100_000]
    + [1 << 20, 1 << 24, 1 << 26, (1 << 26) + 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32]
    + [(1 << 63) - 1, -1, -2, -128, -(1 << 31), -(1 << 63)]
)
INTERESTING_FLOATS = [float("nan"), float("inf"), float("-inf"), -0.0, 3.4e38, 1e-45]
MASK64 = (1 << 64) - 1


def _write_varint(out: bytearray, value: int) -> None:
    value &= MASK64
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _varint(value: int) -> bytes:
    out = bytearray()
    _write_varint(out, value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(buf) and shift < 70:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return None


class Node:
    """One protobuf field: number, wire type, value (int or bytes), parsed children."""

    __slots__ = ("children", "number", "raw", "value", "wire")

    def __init__(self, number, wire, value, raw, children):
        self.number, self.wire, self.value, self.raw, self.children = (
            number,
            wire,
            value,
            raw,
            children,
        )


def parse_tree(buf: bytes, depth: int = 0) -> list[Node] | None:
    """The fields of ``buf`` if it parses as a protobuf message, length-delimited values
    parsed as sub-messages where they parse; None if it does not parse."""
    nodes, pos = [], 0
    while pos < len(buf):
        start = pos
        read = _read_varint(buf, pos)
        if read is None:
            return None
        key, pos = read
        number, wire = key >> 3, key & 7
        if number == 0 or number >= 1 << 29:
            return None
        children = None
        if wire == 0:
            read = _read_varint(buf, pos)
            if read is None:
                return None
            value, pos = read
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(buf):
                return None
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 2:
            read = _read_varint(buf, pos)
            if read is None or read[1] + read[0] > len(buf):
                return None
            length, pos = read
            value, pos = buf[pos : pos + length], pos + length
            if value and depth < 8:
                children = parse_tree(value, depth + 1)
        else:
            return None
        nodes.append(Node(number, wire, value, buf[start:pos], children))
    return nodes


def _flatten(nodes, ancestors, out) -> None:
    for node in nodes:
        out.append((node, ancestors))
        if node.children:
            _flatten(node.children, (*ancestors, node), out)


def _serialize(nodes, overrides: dict, dirty: set, out: bytearray) -> None:
    for node in nodes:
        replacement = overrides.get(id(node))
        if replacement is not None:
            out += replacement
        elif id(node) in dirty:
            inner = bytearray()
            _serialize(node.children, overrides, dirty, inner)
            _write_varint(out, node.number << 3 | 2)
            _write_varint(out, len(inner))
            out += inner
        else:
            out += node.raw


def _field(number: int, wire: int, value) -> bytes:
    out = bytearray()
    _write_varint(out, number << 3 | wire)
    if wire == 0:
        _write_varint(out, value)
    elif wire == 2:
        _write_varint(out, len(value))
        out += value
    else:
        out += value
    return bytes(out)


def _interesting(rng: random.Random) -> int:
    return rng.choice(INTERESTING) if rng.random() < 0.8 else rng.randrange(-300, 300)


def _mutate_packed(blob: bytes, rng: random.Random) -> bytes | None:
    values, pos = [], 0
    while pos < len(blob) and len(values) < 64:
        read = _read_varint(blob, pos)
        if read is None:
            return None
        value, pos = read
        values.append(value)
    if pos != len(blob) or not values:
        return None
    choice = rng.random()
    if choice < 0.6:
        values[rng.randrange(len(values))] = _interesting(rng)
    elif choice < 0.8:
        values.insert(rng.randrange(len(values) + 1), _interesting(rng))
    else:
        del values[rng.randrange(len(values))]
    return b"".join(_varint(v) for v in values)


def _mutate_png(blob: bytes, rng: random.Random) -> bytes | None:
    at = blob.find(b"IHDR")
    if at < 4 or at + 21 > len(blob):
        return None
    out = bytearray(blob)
    if rng.random() < 0.7:
        field = at + 4 + rng.choice((0, 4))  # width or height
        value = rng.choice([0, 1, 2, 4, 5, 6, 8, 84, 65535, 100_000, 1 << 24, (1 << 31) - 1])
        out[field : field + 4] = struct.pack(">I", value & 0xFFFFFFFF)
    else:
        out[at + 12] = rng.choice((1, 2, 4, 8, 16, 3))  # bit depth
        out[at + 13] = rng.choice((0, 2, 3, 4, 6, 7))  # color type
    if rng.random() < 0.9:  # keep the CRC right so the decoder reads on
        out[at + 17 : at + 21] = struct.pack(">I", zlib.crc32(bytes(out[at : at + 17])))
    return bytes(out)


def _mutate_side_channel(blob: bytes, rng: random.Random) -> bytes | None:
    if len(blob) < 20:
        return None
    out = bytearray(blob)
    choice = rng.random()
    if choice < 0.3:  # a record's length
        out[16:20] = struct.pack("<I", _interesting(rng) & 0xFFFFFFFF)
    elif choice < 0.5:  # a record sent to another channel
        out[0:16] = rng.choice(CHANNEL_IDS).bytes_le
    else:  # an int32 of a payload (string lengths, list counts, aggregation methods)
        at = rng.randrange(20, max(21, len(out) - 3))
        if at + 4 <= len(out):
            out[at : at + 4] = struct.pack("<I", _interesting(rng) & 0xFFFFFFFF)
    return bytes(out)


def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """One byte-level edit of ``data``."""
    out = bytearray(data)
    choice = rng.randrange(9)
    if not out:
        return bytes(rng.randbytes(rng.randrange(1, 16)))
    at = rng.randrange(len(out))
    if choice == 0:
        out[at] ^= 1 << rng.randrange(8)
    elif choice == 1:
        out[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    elif choice == 2:
        out[at:at] = rng.randbytes(rng.randrange(1, 9))
    elif choice == 3:
        del out[at : at + rng.randrange(1, 17)]
    elif choice == 4:
        end = min(len(out), at + rng.randrange(1, 33))
        out[rng.randrange(len(out)) : 0] = out[at:end]
    elif choice == 5:
        del out[at:]
    elif choice == 6:
        other = rng.choice(others)
        out = out[:at] + other[rng.randrange(len(other) + 1) :]
    elif choice == 7:
        out[at : at + 4] = struct.pack("<I", _interesting(rng) & 0xFFFFFFFF)
    else:
        out[at:at] = _varint(_interesting(rng))
    return bytes(out)


def mutate_blob(blob: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """A structure-aware edit of a length-delimited value (shape, PNG, side channel, text)."""
    for mutator in rng.sample((_mutate_packed, _mutate_png, _mutate_side_channel), 3):
        if rng.random() < 0.7:
            result = mutator(blob, rng)
            if result is not None:
                return result
    return mutate_bytes(blob, rng, others)


class Mutator:
    """Deterministic inputs: ``input(seed, i)`` depends on nothing else."""

    def __init__(self, seeds: list[bytes]):
        self.seeds = seeds
        self.trees = [parse_tree(seed) or [] for seed in seeds]
        self.flat = []
        for tree in self.trees:
            nodes: list = []
            _flatten(tree, (), nodes)
            self.flat.append(nodes)

    def input(self, campaign_seed: int, index: int) -> bytes:
        rng = random.Random(campaign_seed * 1_000_003 + index)
        which = rng.randrange(len(self.seeds))
        nodes = self.flat[which]
        data = self.seeds[which]
        if nodes and rng.random() < 0.9:
            overrides: dict = {}
            dirty: set = set()
            for _ in range(rng.choice((1, 1, 2, 3))):
                node, ancestors = rng.choice(nodes)
                overrides[id(node)] = self._mutate_node(node, rng)
                dirty.update(id(a) for a in ancestors)
            out = bytearray()
            _serialize(self.trees[which], overrides, dirty, out)
            data = bytes(out)
        if rng.random() < 0.25 or data == self.seeds[which]:
            for _ in range(rng.choice((1, 1, 2, 4))):
                data = mutate_bytes(data, rng, self.seeds)
        return data

    def _mutate_node(self, node: Node, rng: random.Random) -> bytes:
        choice = rng.random()
        if choice < 0.08:
            return b""  # delete the field
        if choice < 0.18:
            return node.raw * rng.choice((2, 2, 3, 10, 100, 1000))
        if node.wire == 0:
            return _field(node.number, 0, _interesting(rng))
        if node.wire == 5:
            if rng.random() < 0.5:
                return _field(node.number, 5, struct.pack("<f", rng.choice(INTERESTING_FLOATS)))
            return _field(node.number, 5, struct.pack("<I", _interesting(rng) & 0xFFFFFFFF))
        if node.wire == 2:
            if rng.random() < 0.1:  # the same bytes under another field number / wire type
                return _field(rng.randrange(1, 16), 2, node.value)
            return _field(node.number, 2, mutate_blob(node.value, rng, self.seeds))
        return mutate_bytes(node.raw, rng, self.seeds)


# --- campaign ------------------------------------------------------------------------------

_SLOT = struct.Struct("<qq")  # index of the input running, its start (monotonic ns)
SELF_TEST_ENV = "UNITY_FUZZ_SELF_TEST"


# What run_python_path may end with: success or a documented protocol error.
DOCUMENTED_OUTCOMES = frozenset(
    {
        "ok",
        "UnityMessageDecodeException",
        "UnityMessageLimitException",
        "UnityObservationException",
        "UnityNonFiniteValueException",
        "UnitySideChannelMessageException",
    }
)


@dataclass
class CampaignResult:
    inputs: int = 0
    seconds: float = 0.0
    histogram: Counter = field(default_factory=Counter)
    crashes: list = field(default_factory=list)  # (index, exit status)
    hangs: list = field(default_factory=list)  # index
    undocumented: list = field(default_factory=list)  # (index, type, message)
    slowest: tuple = (0.0, -1)  # (seconds, index)
    saved: list = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


def classify(data: bytes, target: str = "unity") -> tuple[str, str | None]:
    """``("ok", None)``, ``(exception type, None)`` for documented protocol errors, or
    ``(exception type, message)`` for anything else, of ``data`` through ``target``."""
    from mlagents_fast.envs.exception import UnityProtocolException

    run_target = TARGETS[target][0]
    try:
        run_target(data)
    except UnityProtocolException as err:
        return type(err).__name__, None
    except BaseException as err:  # noqa: BLE001 - anything else is a finding
        return type(err).__name__, f"{err}"[:500]
    return "ok", None


def _worker_main(slots_path: str, slot: int, campaign_seed: int, target: str) -> None:
    """Reads ``start end`` lines on stdin, answers one JSON line per chunk on stdout."""
    import logging

    logging.disable(logging.CRITICAL)  # unknown-channel warnings, new-brain infos
    mutator = Mutator(TARGETS[target][1]())
    # Self-test of the harness: "crash:I,hang:J" makes input I abort and input J hang.
    planted = {
        int(index): kind
        for kind, _, index in (
            item.partition(":") for item in os.environ.get(SELF_TEST_ENV, "").split(",") if item
        )
    }
    with open(slots_path, "r+b") as handle:
        slots = mmap.mmap(handle.fileno(), 0)
    offset = slot * _SLOT.size
    for seed in mutator.seeds:  # imports and first-call costs out of the timings
        classify(seed, target)
    for line in sys.stdin:
        start, end = map(int, line.split())
        histogram: Counter = Counter()
        undocumented = []
        slowest = (0.0, -1)
        for index in range(start, end):
            data = mutator.input(campaign_seed, index)
            began = time.monotonic_ns()
            _SLOT.pack_into(slots, offset, index, began)
            if planted.get(index) == "crash":
                os.abort()
            if planted.get(index) == "hang":
                time.sleep(3600)
            kind, message = classify(data, target)
            elapsed = (time.monotonic_ns() - began) / 1e9
            slowest = max(slowest, (elapsed, index))
            histogram[kind] += 1
            if message is not None:
                undocumented.append((index, kind, message))
        _SLOT.pack_into(slots, offset, -1, 0)
        reply = {"histogram": histogram, "undocumented": undocumented, "slowest": slowest}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


class _Worker:
    def __init__(self, slots_path: str, slot: int, campaign_seed: int, target: str):
        self.slot = slot
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                slots_path,
                str(slot),
                str(campaign_seed),
                target,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.chunk: tuple[int, int] | None = None

    def assign(self, start: int, end: int) -> None:
        self.chunk = (start, end)
        self.process.stdin.write(f"{start} {end}\n")
        self.process.stdin.flush()

    def kill(self) -> int:
        self.process.kill()
        status = self.process.wait()
        self.close_pipes()
        return status

    def stop(self) -> None:
        """End a worker that is waiting for work (its stdin closes) or kill it."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.close_pipes()

    def close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def run_campaign(
    inputs: int,
    *,
    seed: int = 0,
    workers: int = 2,
    start: int = 0,
    chunk: int = 2000,
    timeout_s: float = 10.0,
    artifacts: Path | None = None,
    progress=None,
    target: str = "unity",
) -> CampaignResult:
    """Run inputs ``start .. start+inputs`` of campaign ``seed`` in worker subprocesses,
    through ``target`` (a key of :data:`TARGETS`: ``unity``, messages from Unity through the
    trainer's path; ``host``, messages from a trainer through the mlagents-fast-env host's).

    A worker that dies is a crash (its input is saved under ``artifacts``) and is replaced;
    an input running longer than ``timeout_s`` is a hang (the worker is killed, the input
    saved). Chunks resume after the failing input.
    """
    result = CampaignResult(inputs=inputs)
    mutator = Mutator(TARGETS[target][1]()) if artifacts is not None else None

    def save(kind: str, index: int) -> None:
        if mutator is None or artifacts is None:
            return
        artifacts.mkdir(parents=True, exist_ok=True)
        prefix = "" if target == "unity" else f"{target}-"
        path = artifacts / f"{prefix}{kind}-seed{seed}-input{index}.bin"
        path.write_bytes(mutator.input(seed, index))
        result.saved.append(path)

    pending = [(a, min(a + chunk, start + inputs)) for a in range(start, start + inputs, chunk)]
    pending.reverse()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        slots_path = os.path.join(folder, "slots")
        with open(slots_path, "wb") as handle:
            handle.write(_SLOT.pack(-1, 0) * max(workers, 1))  # -1: no input running
        with open(slots_path, "r+b") as handle:
            slots = mmap.mmap(handle.fileno(), 0)
        pool = [_Worker(slots_path, slot, seed, target) for slot in range(workers)]
        try:
            for worker in pool:
                if pending:
                    worker.assign(*pending.pop())
            while any(worker.chunk for worker in pool):
                busy = [w for w in pool if w.chunk]
                readable, _, _ = select.select([w.process.stdout for w in busy], [], [], 0.5)
                for worker in busy:
                    if worker.process.stdout in readable:
                        line = worker.process.stdout.readline()
                        if line:
                            reply = json.loads(line)
                            result.histogram.update(reply["histogram"])
                            result.slowest = max(result.slowest, tuple(reply["slowest"]))
                            for index, kind, message in reply["undocumented"]:
                                result.undocumented.append((index, kind, message))
                                save("undocumented", index)
                            worker.chunk = None
                            if progress is not None:
                                progress(sum(result.histogram.values()))
                            if pending:
                                worker.assign(*pending.pop())
                            continue
                    index, started = _SLOT.unpack_from(slots, worker.slot * _SLOT.size)
                    dead = worker.process.poll() is not None
                    hung = (
                        not dead and index >= 0 and time.monotonic_ns() - started > timeout_s * 1e9
                    )
                    if hung:
                        # The slot's two words are written without a lock: a read racing the
                        # write can pair a new index with an old start time. A worker really
                        # stuck on an input leaves the slot as it was, inside its chunk.
                        time.sleep(0.1)
                        chunk_start, chunk_end = worker.chunk
                        hung = (
                            _SLOT.unpack_from(slots, worker.slot * _SLOT.size) == (index, started)
                            and chunk_start <= index < chunk_end
                        )
                    if not (dead or hung):
                        continue
                    status = worker.kill()
                    failed = index if index >= 0 else worker.chunk[0]
                    if hung:
                        result.hangs.append(failed)
                        save("hang", failed)
                    else:
                        result.crashes.append((failed, status))
                        save("crash", failed)
                    # The chunk's finished inputs are lost with the worker: count the rest.
                    chunk_start, chunk_end = worker.chunk
                    result.histogram["lost with a dead worker"] += failed - chunk_start
                    _SLOT.pack_into(slots, worker.slot * _SLOT.size, -1, 0)
                    replacement = _Worker(slots_path, worker.slot, seed, target)
                    pool[pool.index(worker)] = replacement
                    if failed + 1 < chunk_end:
                        replacement.assign(failed + 1, chunk_end)
                    elif pending:
                        replacement.assign(*pending.pop())
        finally:
            for worker in pool:
                worker.stop()
            slots.close()
    result.seconds = time.perf_counter() - began
    return result


def corpus_files() -> list[Path]:
    return sorted(CORPUS_DIR.glob("*.bin"))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit("usage: unity_fuzz.py --worker SLOTS SLOT SEED TARGET (started by run_campaign)")
