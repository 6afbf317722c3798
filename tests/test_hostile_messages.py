"""Hostile bytes from Unity: every size is checked before allocating, every failure is a
``UnityProtocolException`` naming what is wrong (issue 10), and the decoder limits can be
raised by a user whose scene needs more (docs/protocol.md, "Decoder limits").

The messages are the 47-117 byte reproducers of the crashes measured before the fix (4 TB
and 40 GB allocations, a 17 GB mask, a segfault on a zero dimension, a PanicException).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from mlagents_fast import _native
from mlagents_fast.envs import rpc_utils
from mlagents_fast.envs.exception import (
    UnityCommunicationException,
    UnityEnvironmentException,
    UnityException,
    UnityMessageDecodeException,
    UnityMessageLimitException,
    UnityNonFiniteValueException,
    UnityObservationException,
    UnityProtocolException,
    UnitySideChannelMessageException,
)
from mlagents_fast.envs.rpc_utils import (
    DecodeLimits,
    decode_output,
    get_decode_limits,
    set_decode_limits,
)
from mlagents_fast.envs.side_channel import (
    DefaultTrainingAnalyticsSideChannel,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    FloatPropertiesChannel,
    IncomingMessage,
    RawBytesChannel,
    SideChannel,
    SideChannelManager,
    StatsSideChannel,
)
from mlagents_fast.exceptions import InvalidArgumentError, MlagentsFastError
from mlagents_fast.trainers.training_analytics_side_channel import TrainingAnalyticsSideChannel
from proto_golden import agent_pb2, brain, observation_pb2, unity_message_pb2
from repo_paths import REPO_ROOT
from unity_fuzz import png_bytes, run_python_path


def message(observations, brains=None, agents=1, side_channel=b""):
    brains = [brain("H", 1)] if brains is None else brains
    msg = unity_message_pb2.UnityMessageProto()
    msg.header.status = 200
    infos = msg.unity_output.rl_output.agentInfos["H"].value
    for agent_id in range(agents):
        infos.append(agent_pb2.AgentInfoProto(id=agent_id, observations=observations))
    msg.unity_output.rl_output.side_channel = side_channel
    msg.unity_output.rl_initialization_output.brain_parameters.extend(brains)
    return msg.SerializeToString()


def floats(shape, values=(0.0,), **fields):
    obs = observation_pb2.ObservationProto(shape=list(shape), **fields)
    obs.float_data.data.extend(values)
    return obs


def png_header_only(width, height):
    """A PNG whose header claims width x height RGB pixels, with 100 bytes of pixel data."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(100)))
        + chunk(b"IEND", b"")
    )


def png_obs(shape, data):
    return observation_pb2.ObservationProto(
        shape=list(shape), compression_type=observation_pb2.PNG, compressed_data=data
    )


REPRODUCERS = {
    # (message, limit named in the error)
    "shape (2^20, 2^20): 4 TB": (message([floats([1 << 20, 1 << 20])]), "max_observation_elements"),
    "zero next to huge dims: segfault": (
        message([floats([0, 2**31 - 1, 2**31 - 1], ())]),
        "max_observation_elements",
    ),
    "shape (2^31-1, 2^31-1): PanicException": (
        message([floats([2**31 - 1, 2**31 - 1])]),
        "max_observation_elements",
    ),
    "PNG header 100000x100000: 40 GB": (
        message([png_obs([3, 84, 84], png_header_only(100_000, 100_000))]),
        "max_png_pixels",
    ),
    "8 branches of 2^31-1: 17 GB mask": (
        message([floats([1])], brains=[brain("H", 0, [2**31 - 1] * 8)]),
        "max_action_size",
    ),
    "rank 20": (message([floats([1] * 20)]), "rank 20"),
}


@pytest.mark.parametrize("case", sorted(REPRODUCERS))
def test_crash_reproducers_raise_limit_errors(case):
    data, limit = REPRODUCERS[case]
    assert len(data) < 256
    with pytest.raises(UnityMessageLimitException, match=limit) as caught:
        run_python_path(data)
    # Catchable our way, the ML-Agents way (communication error, ValueError), never a
    # BaseException that `except Exception` misses.
    for base in (
        UnityProtocolException,
        MlagentsFastError,
        UnityCommunicationException,
        UnityException,
        ValueError,
    ):
        assert isinstance(caught.value, base)
    assert "MLAGENTS_FAST_DECODE_LIMITS" in str(caught.value)


def test_exception_tree_keeps_mlagents_bases():
    assert issubclass(UnityObservationException, UnityProtocolException)
    assert issubclass(UnityNonFiniteValueException, RuntimeError)
    assert issubclass(UnityNonFiniteValueException, UnityProtocolException)
    assert issubclass(UnityMessageDecodeException, UnityCommunicationException)
    for base in (UnityEnvironmentException, UnityCommunicationException, UnityProtocolException):
        assert issubclass(UnitySideChannelMessageException, base)


def test_png_of_the_wrong_size_is_refused_before_decoding():
    data = message([png_obs([3, 8, 8], png_header_only(4000, 4000))])
    with pytest.raises(UnityObservationException, match=r"\(3, 4000, 4000\)"):
        decode_output(data, {})


def test_zero_dimension_next_to_small_ones_is_an_empty_observation():
    data = message([floats([0, 4], ()), floats([2], (1.0, 2.0))])
    decoded = decode_output(data, {})
    spec = rpc_utils.behavior_spec_from_decoded(decoded.behaviors[0].new_spec, "H")
    decision, _ = rpc_utils.steps_from_decoded(decoded.behaviors[0])
    assert spec.observation_specs[0].shape == (0, 4)
    assert decision.obs[0].shape == (1, 0, 4)
    np.testing.assert_array_equal(decision.obs[1], [[1.0, 2.0]])


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"observation_type": 1023}, "observation type 1023"),
        ({"dimension_properties": [1, 1]}, "2 dimension properties"),
        ({"dimension_properties": [1024]}, "dimension property 1024"),
    ],
)
def test_unknown_enum_values_are_protocol_errors(fields, match):
    with pytest.raises(UnityMessageDecodeException, match=match) as caught:
        run_python_path(message([floats([1], **fields)]))
    assert "'H'" in str(caught.value)


def test_known_values_still_decode():
    obs = floats([2, 3], [0.0] * 6, dimension_properties=[4, 1], observation_type=1, name="E")
    decoded = decode_output(message([obs]), {})
    spec = rpc_utils.behavior_spec_from_decoded(decoded.behaviors[0].new_spec, "H")
    assert spec.observation_specs[0].observation_type.name == "GOAL_SIGNAL"
    assert [p.name for p in spec.observation_specs[0].dimension_property] == [
        "VARIABLE_SIZE",
        "NONE",
    ]


# --- limits ---------------------------------------------------------------------------------


@pytest.fixture
def restore_limits():
    yield
    rpc_utils._decode_limits = None


def test_limits_can_be_raised_for_a_scene_that_needs_more(restore_limits):
    camera = png_bytes(np.zeros((40, 30, 3), np.uint8))
    data = message([png_obs([3, 40, 30], camera)], agents=3)
    set_decode_limits(max_png_pixels=1000)
    with pytest.raises(UnityMessageLimitException, match="max_png_pixels = 1000"):
        decode_output(data, {})
    set_decode_limits(max_png_pixels=1200, max_message_bytes=3 * 3600 * 4)
    with pytest.raises(UnityMessageLimitException, match="max_message_bytes"):
        decode_output(data, {})
    limits = set_decode_limits(max_png_pixels=1200)
    assert limits.as_dict()["max_png_pixels"] == 1200
    assert get_decode_limits() is limits
    assert decode_output(data, {}).behaviors[0].decision.obs[0].shape == (3, 3, 40, 30)
    with pytest.raises(InvalidArgumentError, match="unknown decoder limit"):
        set_decode_limits(max_pixels=5)
    with pytest.raises(InvalidArgumentError, match="max_agents: must be at least 1"):
        set_decode_limits(max_agents=0)


def test_limits_from_the_environment_variable_reach_worker_processes(tmp_path):
    code = (
        "from mlagents_fast.envs.rpc_utils import get_decode_limits;"
        "print(get_decode_limits().as_dict()['max_agents'])"
    )
    env_value = "max_agents = 12_345, max_png_pixels=99"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, rpc_utils.DECODE_LIMITS_ENV: env_value},
        check=True,
    )
    assert result.stdout.strip() == "12345"
    bad = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, rpc_utils.DECODE_LIMITS_ENV: "max_agents=lots"},
    )
    assert bad.returncode != 0 and "is not NAME=INTEGER" in bad.stderr


def test_default_limits_are_documented():
    defaults = DecodeLimits().as_dict()
    text = (Path(REPO_ROOT) / "docs" / "protocol.md").read_text(encoding="utf-8")
    for name, value in defaults.items():
        assert f"`{name}`" in text and f"{value:,}" in text, name


# --- side channels ----------------------------------------------------------------------------


def record(channel_id: uuid.UUID, payload: bytes) -> bytes:
    return channel_id.bytes_le + struct.pack("<i", len(payload)) + payload


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (struct.pack("<i", 3) + b"a\xffc" + struct.pack("<fi", 1.0, 0), "not ASCII"),
        (struct.pack("<i", -5) + b"abc", "declares -5 items"),
        (struct.pack("<i", 1000) + b"abc", "declares 1000 items"),
        (struct.pack("<i", 1) + b"k" + b"\x00\x00", "float32 at byte 5 is cut short"),
        (struct.pack("<i", 1) + b"k" + struct.pack("<fi", 1.0, -1), "aggregation method -1"),
    ],
)
def test_unreadable_stats_messages_name_the_channel(payload, match):
    manager = SideChannelManager([StatsSideChannel()])
    with pytest.raises(UnitySideChannelMessageException, match=match) as caught:
        manager.process_side_channel_message(record(StatsSideChannel.CHANNEL_ID, payload))
    assert "StatsSideChannel" in str(caught.value)


def test_side_channel_errors_reach_the_python_path():
    bad = record(StatsSideChannel.CHANNEL_ID, struct.pack("<i", 2) + b"ok" + b"\x00")
    with pytest.raises(UnitySideChannelMessageException, match="StatsSideChannel"):
        run_python_path(message([floats([1])], side_channel=bad))
    truncated = record(StatsSideChannel.CHANNEL_ID, b"abc")[:-1]
    with pytest.raises(UnitySideChannelMessageException, match="unexpectedly short"):
        run_python_path(message([floats([1])], side_channel=truncated))


def test_incoming_message_reads_lists_and_defaults():
    msg = IncomingMessage(struct.pack("<i3f", 3, 1.0, 2.0, 3.0) + struct.pack("<i", -7))
    assert msg.read_float32_list() == [1.0, 2.0, 3.0]
    assert msg.read_int32() == -7
    assert msg.read_string("gone") == "gone" and msg.read_bool(True) is True
    with pytest.raises(UnitySideChannelMessageException, match="float list at byte 0"):
        IncomingMessage(struct.pack("<i", 2**31 - 1)).read_float32_list()


class StructChannel(SideChannel):
    """A user channel parsing its payload with struct itself."""

    def __init__(self):
        super().__init__(uuid.UUID(int=7))

    def on_message_received(self, msg):
        struct.unpack("<d", msg.get_raw_bytes())


def test_user_channel_parse_errors_and_send_only_channels():
    manager = SideChannelManager(
        [
            StructChannel(),
            EngineConfigurationChannel(),
            FloatPropertiesChannel(),
            RawBytesChannel(uuid.UUID(int=9)),
        ]
    )
    with pytest.raises(UnitySideChannelMessageException, match="StructChannel") as caught:
        manager.process_side_channel_message(record(uuid.UUID(int=7), b"abc"))
    assert isinstance(caught.value.__cause__, struct.error)
    with pytest.raises(UnityCommunicationException, match="EngineConfigurationChannel"):
        manager.process_side_channel_message(record(EngineConfigurationChannel.CHANNEL_ID, b"x"))


@pytest.mark.parametrize(
    "channel_class",
    [
        EngineConfigurationChannel,
        EnvironmentParametersChannel,
        DefaultTrainingAnalyticsSideChannel,
        TrainingAnalyticsSideChannel,
    ],
)
def test_a_message_on_a_send_only_channel_is_a_protocol_error(channel_class):
    """Unity never writes to these channels: a message on one is a protocol error, and still
    the UnityCommunicationException ML-Agents raises for it."""
    channel = channel_class()
    with pytest.raises(UnitySideChannelMessageException) as direct:
        channel.on_message_received(IncomingMessage(b"x"))
    assert isinstance(direct.value, UnityCommunicationException)
    assert isinstance(direct.value, UnityProtocolException)
    assert isinstance(direct.value, MlagentsFastError)
    manager = SideChannelManager([channel])
    with pytest.raises(UnitySideChannelMessageException, match=channel_class.__name__):
        manager.process_side_channel_message(record(channel.channel_id, b"x"))


def trainer_step(n_agents, continuous_size, discrete_size, side_channel=b""):
    """A step message from the trainer, as the mlagents-fast-env host receives it."""
    return _native.encode_rl_input(
        0,
        side_channel,
        [
            (
                "A",
                np.full((n_agents, continuous_size), 0.5, np.float32),
                np.ones((n_agents, discrete_size), np.int32),
            )
        ],
    )


ROOMY_FOR_TRAINER_STEP = {
    "max_agents": 50,
    "max_action_size": 3,
    "max_discrete_branches": 2,
    "max_message_bytes": 50 * 5 * 4,
}


@pytest.mark.parametrize("limit", sorted(ROOMY_FOR_TRAINER_STEP))
def test_trainer_messages_are_checked_against_the_decoder_limits(limit):
    """The host-side decoder (bytes from a trainer) has the guarantees of the Unity-side
    one: sizes checked against DecodeLimits before allocating, limit errors naming the limit."""
    data = trainer_step(50, 3, 2)
    decoded = _native.decode_unity_input(data, DecodeLimits(**ROOMY_FOR_TRAINER_STEP))
    continuous, discrete = decoded["rl_input"]["actions"]["A"]
    assert continuous.shape == (50, 3) and discrete.shape == (50, 2)
    tight = DecodeLimits(**{**ROOMY_FOR_TRAINER_STEP, limit: ROOMY_FOR_TRAINER_STEP[limit] - 1})
    with pytest.raises(UnityMessageLimitException, match=limit) as caught:
        _native.decode_unity_input(data, tight)
    assert "MLAGENTS_FAST_DECODE_LIMITS" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        trainer_step(3, 2, 1)[:-7],
        b"\x0a\xff\xff\xff\xff\x0f",
        b"\x1a\x05\x0a\x03\x0a\x01",
        bytes(range(256)),
    ],
    ids=["cut short", "huge length", "nested cut short", "noise"],
)
def test_broken_trainer_messages_are_protocol_errors(data):
    with pytest.raises(UnityMessageDecodeException):
        _native.decode_unity_input(data)


class _FakeTrainerChannel:
    """A gRPC channel whose exchanges answer with the given replies."""

    def __init__(self, replies):
        self.replies = iter(replies)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def unary_unary(self, method):
        return lambda request, **kwargs: next(self.replies)


def test_the_host_refuses_a_hostile_trainer_with_one_line(monkeypatch, caplog):
    """mlagents-fast-env: a handshake answer above the limits, a step whose side-channel
    records are cut short (protocol errors), actions that do not fit its environment: an
    error each, one line from the command."""
    from mlagents_fast.envs import cli

    monkeypatch.setattr(cli.logging, "basicConfig", lambda **kwargs: None)
    init = _native.encode_init_input(0, "1.5.0", "1.1.0", [True] * 7, 1)
    reset = _native.encode_rl_input(1, b"", [])
    # 3DBall takes 2 continuous actions per agent.
    wrong_width = _native.encode_rl_input(
        0, b"", [("3DBall?team=0", np.zeros((1, 5), np.float32), np.zeros((1, 0), np.int32))]
    )
    hostile = {
        "too many agents": ([trainer_step(5, 1, 0)], "max_agents"),
        "cut side channel": ([init, trainer_step(1, 1, 0, bytes(30))], "side-channel record"),
        "actions that do not fit": ([init, reset, wrong_width], "3DBall"),
    }
    set_decode_limits(max_agents=4)
    try:
        for replies, expected in hostile.values():
            monkeypatch.setattr(
                cli.grpc, "insecure_channel", lambda *a, r=replies, **k: _FakeTrainerChannel(r)
            )
            host = cli.UnityHost(cli.env_factory_for("builtin:3DBall"), "localhost:1")
            with pytest.raises(UnityException, match=expected):
                host.run()
            caplog.clear()
            argv = ["--env", "builtin:3DBall", "--mlagents-port", "1"]
            assert cli.main(argv) == 1
            errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
            assert len(errors) == 1 and expected in errors[0], errors
            assert not any(r.exc_info for r in caplog.records)
    finally:
        set_decode_limits()


def test_many_records_for_unknown_channels_log_a_few_lines(caplog):
    records = b"".join(record(uuid.UUID(int=i % 5 + 100), b"x") for i in range(5000))
    SideChannelManager([StatsSideChannel()]).process_side_channel_message(records)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert "(1000 messages)" in lines[0]
    assert lines[-1] == "... and data for 2 more unknown side channels."
