"""The analytics channel UnityEnvironment adds by default (docs/protocol.md section 8).

It sends one ``google.protobuf.Any`` wrapping ``TrainingEnvironmentInitialized`` with the first
reset. The two messages are tiny and sent once, so they are encoded here by hand instead of
pulling the protobuf runtime into the package.
"""

from __future__ import annotations

import platform
import uuid

from mlagents_fast.envs.exception import UnitySideChannelMessageException
from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage
from mlagents_fast.envs.side_channel.side_channel import SideChannel

__all__ = ["MLAGENTS_ENVS_VERSION", "DefaultTrainingAnalyticsSideChannel"]

# The mlagents_envs version we are compatible with and report to Unity.
MLAGENTS_ENVS_VERSION = "1.1.0"

TRAINING_ENVIRONMENT_INITIALIZED_TYPE_URL = (
    "type.googleapis.com/communicator_objects.TrainingEnvironmentInitialized"
)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low_bits = value & 0x7F
        value >>= 7
        if value:
            out.append(low_bits | 0x80)
        else:
            out.append(low_bits)
            return bytes(out)


def _length_delimited_field(field_number: int, payload: bytes) -> bytes:
    """Wire type 2 field; proto3 leaves empty strings and bytes out."""
    if not payload:
        return b""
    return _encode_varint(field_number << 3 | 2) + _encode_varint(len(payload)) + payload


def encode_training_environment_initialized(
    mlagents_version: str,
    mlagents_envs_version: str,
    python_version: str,
    torch_version: str,
    torch_device_type: str,
) -> bytes:
    """Serialize a ``TrainingEnvironmentInitialized`` with its string fields 1-5 set."""
    fields = [
        mlagents_version,
        mlagents_envs_version,
        python_version,
        torch_version,
        torch_device_type,
    ]
    return b"".join(
        _length_delimited_field(number, text.encode("utf-8"))
        for number, text in enumerate(fields, start=1)
    )


def encode_any(type_url: str, value: bytes) -> bytes:
    """Serialize a ``google.protobuf.Any``."""
    return _length_delimited_field(1, type_url.encode("utf-8")) + _length_delimited_field(2, value)


class DefaultTrainingAnalyticsSideChannel(SideChannel):
    """Python-to-Unity analytics channel that only announces the environment's start."""

    CHANNEL_ID = uuid.UUID("b664a4a9-d86f-5a5f-95cb-e8353a7e8356")

    def __init__(self) -> None:
        super().__init__(DefaultTrainingAnalyticsSideChannel.CHANNEL_ID)

    def on_message_received(self, msg: IncomingMessage) -> None:
        raise UnitySideChannelMessageException(
            "The DefaultTrainingAnalyticsSideChannel received a message from Unity, "
            "this should not have happened."
        )

    def environment_initialized(self) -> None:
        """Queue the TrainingEnvironmentInitialized message (sent with the first reset)."""
        init_message = encode_training_environment_initialized(
            mlagents_version="Custom",
            mlagents_envs_version=MLAGENTS_ENVS_VERSION,
            python_version=platform.python_version(),
            torch_version="Unknown",
            torch_device_type="Unknown",
        )
        msg = OutgoingMessage()
        msg.set_raw_bytes(encode_any(TRAINING_ENVIRONMENT_INITIALIZED_TYPE_URL, init_message))
        super().queue_message_to_send(msg)
