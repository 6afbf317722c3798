"""Side channels: bytes equal docs/protocol.md section 8 examples; dispatch like mlagents_envs."""

from __future__ import annotations

import logging
import struct
import uuid

import pytest
from mlagents_fast.envs.exception import (
    UnityCommunicationException,
    UnityEnvironmentException,
    UnityException,
    UnitySideChannelException,
)
from mlagents_fast.envs.side_channel import (
    DefaultTrainingAnalyticsSideChannel,
    EngineConfig,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    FloatPropertiesChannel,
    IncomingMessage,
    OutgoingMessage,
    RawBytesChannel,
    SideChannel,
    SideChannelManager,
    StatsAggregationMethod,
    StatsSideChannel,
)
from mlagents_fast.envs.side_channel import default_training_analytics_side_channel as analytics


def test_guid_is_written_in_dotnet_order():
    channel = EngineConfigurationChannel()
    channel.set_configuration_parameters(time_scale=20.0)
    data = SideChannelManager([channel]).generate_side_channel_messages()
    assert data[:16] == bytes.fromhex("2c3451e97e4fea11b238784f4387d1f7")
    assert data[16:20] == struct.pack("<i", 8)
    assert data[20:] == bytes.fromhex("020000000000a041")


def test_environment_parameters_float_example():
    channel = EnvironmentParametersChannel()
    channel.set_float_parameter("gravity", 9.81)
    assert bytes(channel.message_queue[0]) == bytes.fromhex(
        "070000006772617669747900000000c3f51c41"
    )
    assert channel.channel_id == uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")


def test_environment_parameters_samplers():
    channel = EnvironmentParametersChannel()
    channel.set_uniform_sampler_parameters("m", 1.0, 2.0, 7)
    channel.set_gaussian_sampler_parameters("m", 0.5, 0.25, 8)
    channel.set_multirangeuniform_sampler_parameters("m", [(1.0, 2.0), (4.0, 5.0)], 9)
    head = struct.pack("<i", 1) + b"m" + struct.pack("<i", 1)
    uniform, gaussian, multirange = (bytes(m) for m in channel.message_queue)
    assert uniform == head + struct.pack("<iiff", 7, 0, 1.0, 2.0)
    assert gaussian == head + struct.pack("<iiff", 8, 1, 0.5, 0.25)
    assert multirange == head + struct.pack("<iii4f", 9, 2, 4, 1.0, 2.0, 4.0, 5.0)
    with pytest.raises(UnityCommunicationException):
        channel.on_message_received(IncomingMessage(b""))


def test_engine_configuration_one_message_per_setting():
    channel = EngineConfigurationChannel()
    channel.set_configuration(EngineConfig.default_config())
    assert [bytes(m) for m in channel.message_queue] == [
        struct.pack("<iii", 0, 80, 80),
        struct.pack("<ii", 1, 1),
        struct.pack("<if", 2, 20.0),
        struct.pack("<ii", 3, -1),
        struct.pack("<ii", 4, 60),
    ]
    channel.message_queue = []
    channel.set_configuration_parameters(quality_level=5)
    assert [bytes(m) for m in channel.message_queue] == [struct.pack("<ii", 1, 5)]
    with pytest.raises(UnitySideChannelException, match="width/height"):
        channel.set_configuration_parameters(width=10)
    with pytest.raises(UnityCommunicationException):
        channel.on_message_received(IncomingMessage(b"\x00"))


def test_stats_side_channel_collects_and_resets():
    channel = StatsSideChannel()
    assert channel.channel_id == uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
    assert channel.channel_id == uuid.uuid5(
        uuid.NAMESPACE_URL, "com.unity.ml-agents/StatsSideChannel"
    )
    for value, method in ((1.5, 0), (2.0, 3)):
        msg = OutgoingMessage()
        msg.write_string("Env/Score")
        msg.write_float32(value)
        msg.write_int32(method)
        channel.on_message_received(IncomingMessage(bytes(msg.buffer)))
    stats = channel.get_and_reset_stats()
    assert stats["Env/Score"] == [
        (1.5, StatsAggregationMethod.AVERAGE),
        (2.0, StatsAggregationMethod.HISTOGRAM),
    ]
    assert channel.get_and_reset_stats() == {}


def test_raw_bytes_channel_round_trip():
    channel_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    sender = RawBytesChannel(channel_id)
    sender.send_raw_data(b"\x01\x02")
    sender.send_raw_data(bytearray(b""))
    data = SideChannelManager([sender]).generate_side_channel_messages()
    assert sender.message_queue == []
    assert len(data) == 2 * 20 + 2
    receiver = RawBytesChannel(channel_id)
    SideChannelManager([receiver]).process_side_channel_message(bytes(data))
    assert receiver.get_and_clear_received_messages() == [b"\x01\x02", b""]
    assert receiver.get_and_clear_received_messages() == []


def test_float_properties_channel():
    channel = FloatPropertiesChannel()
    assert channel.channel_id == uuid.UUID("60ccf7d0-4f7e-11ea-b238-784f4387d1f7")
    channel.set_property("speed", 2.5)
    assert bytes(channel.message_queue[0]) == struct.pack("<i", 5) + b"speed" + struct.pack(
        "<f", 2.5
    )
    msg = OutgoingMessage()
    msg.write_string("size")
    msg.write_float32(4.0)
    channel.on_message_received(IncomingMessage(bytes(msg.buffer)))
    assert channel.get_property("size") == 4.0 and channel.get_property("missing") is None
    assert sorted(channel.list_properties()) == ["size", "speed"]
    assert channel.get_property_dict_copy() == {"speed": 2.5, "size": 4.0}


def test_message_primitives_round_trip_and_defaults_past_end():
    msg = OutgoingMessage()
    msg.write_bool(True)
    msg.write_int32(-3)
    msg.write_float32(0.5)
    msg.write_float32_list([1.0, 2.0])
    msg.write_string("abc")
    assert bytes(msg.buffer) == bytes.fromhex("01fdffffff0000003f020000000000803f00000040") + (
        b"\x03\x00\x00\x00abc"
    )
    incoming = IncomingMessage(bytes(msg.buffer))
    assert incoming.read_bool() is True
    assert incoming.read_int32() == -3
    assert incoming.read_float32() == 0.5
    assert incoming.read_float32_list() == [1.0, 2.0]
    assert incoming.read_string() == "abc"
    assert incoming.read_bool() is False and incoming.read_int32() == 0
    assert incoming.read_float32() == 0.0 and incoming.read_string() == ""
    assert incoming.read_float32_list() == [] and incoming.read_int32(default_value=5) == 5
    with pytest.raises(UnicodeEncodeError):
        OutgoingMessage().write_string("é")
    written = OutgoingMessage()
    written.write_int32(1)
    with pytest.raises(UnityException, match="set_raw_bytes"):
        written.set_raw_bytes(b"x")


class RecordingChannel(SideChannel):
    def __init__(self, channel_id: uuid.UUID):
        super().__init__(channel_id)
        self.received: list[bytes] = []

    def on_message_received(self, msg: IncomingMessage) -> None:
        self.received.append(msg.get_raw_bytes())


def test_manager_writes_channels_in_registration_order_fifo():
    first, second = uuid.uuid4(), uuid.uuid4()
    channel_b = RecordingChannel(second)
    channel_a = RecordingChannel(first)
    for payload in (b"b1", b"b2"):
        channel_b.queue_message_to_send(_raw(payload))
    channel_a.queue_message_to_send(_raw(b"a1"))
    data = SideChannelManager([channel_b, channel_a]).generate_side_channel_messages()
    expected = b"".join(
        cid.bytes_le + struct.pack("<i", 2) + payload
        for cid, payload in ((second, b"b1"), (second, b"b2"), (first, b"a1"))
    )
    assert bytes(data) == expected
    assert SideChannelManager([channel_b, channel_a]).generate_side_channel_messages() == b""


def test_manager_dispatches_skips_unknown_and_rejects_truncated(caplog):
    known = RecordingChannel(uuid.uuid4())
    unknown_id = uuid.uuid4()
    manager = SideChannelManager([known])
    data = (
        unknown_id.bytes_le
        + struct.pack("<i", 1)
        + b"?"
        + known.channel_id.bytes_le
        + struct.pack("<i", 3)
        + b"xyz"
    )
    with caplog.at_level(logging.WARNING):
        manager.process_side_channel_message(data)
    assert known.received == [b"xyz"]
    assert str(unknown_id) in caplog.text
    manager.process_side_channel_message(b"")
    with pytest.raises(UnityEnvironmentException, match="unexpectedly short"):
        manager.process_side_channel_message(
            known.channel_id.bytes_le + struct.pack("<i", 9) + b"ab"
        )
    with pytest.raises(UnityEnvironmentException, match="record header"):
        manager.process_side_channel_message(known.channel_id.bytes_le + b"\x01")
    with pytest.raises(UnityEnvironmentException, match="unexpectedly short"):
        manager.process_side_channel_message(known.channel_id.bytes_le + struct.pack("<i", -1))


def test_duplicate_channel_ids_rejected():
    channel_id = uuid.uuid4()
    with pytest.raises(UnityEnvironmentException, match="same channel id"):
        SideChannelManager([RawBytesChannel(channel_id), RawBytesChannel(channel_id)])


def test_analytics_channel_payload(monkeypatch):
    channel = DefaultTrainingAnalyticsSideChannel()
    assert channel.channel_id == uuid.uuid5(
        uuid.NAMESPACE_URL, "com.unity.ml-agents/TrainingAnalyticsSideChannel"
    )
    # ML-Agents' handshake carried 116 bytes with a 6-character Python version string.
    monkeypatch.setattr(analytics.platform, "python_version", lambda: "3.8.10")
    channel.environment_initialized()
    payload = bytes(channel.message_queue[0])
    assert len(payload) == 116
    from google.protobuf import any_pb2

    parsed = any_pb2.Any.FromString(payload)
    assert parsed.type_url == (
        "type.googleapis.com/communicator_objects.TrainingEnvironmentInitialized"
    )
    expected_inner = b"".join(
        bytes([number << 3 | 2, len(text)]) + text
        for number, text in enumerate(
            (b"Custom", b"1.1.0", b"3.8.10", b"Unknown", b"Unknown"), start=1
        )
    )
    assert parsed.value == expected_inner
    with pytest.raises(UnityCommunicationException):
        channel.on_message_received(IncomingMessage(b""))


def _raw(payload: bytes) -> OutgoingMessage:
    msg = OutgoingMessage()
    msg.set_raw_bytes(payload)
    return msg
