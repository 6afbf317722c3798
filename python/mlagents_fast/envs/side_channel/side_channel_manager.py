"""Splits incoming side-channel bytes per channel and frames outgoing ones (docs/protocol.md section 8)."""

from __future__ import annotations

import logging
import struct
import uuid
from collections import Counter
from collections.abc import Sequence

from mlagents_fast.envs.exception import (
    UnityEnvironmentException,
    UnitySideChannelMessageException,
)
from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.side_channel import SideChannel

__all__ = ["SideChannelManager"]

logger = logging.getLogger(__name__)

# A record is a 16-byte channel GUID (bytes_le order), an int32 length and the payload.
_RECORD_HEADER_SIZE = 20
# Distinct unknown channel ids logged per message.
_MAX_UNKNOWN_LOGGED = 3


class SideChannelManager:
    """Owns the registered side channels of one environment."""

    def __init__(self, side_channels: Sequence[SideChannel] | None):
        self._side_channels_dict = self._get_side_channels_dict(side_channels)

    def process_side_channel_message(self, data: bytes) -> None:
        """Dispatch every record of ``data`` to its channel's ``on_message_received``.

        Records for unknown channel ids are skipped and logged once per id and message (a
        few ids at most). A truncated record, or a
        message its channel cannot read (``struct.error``/``UnicodeDecodeError`` in the
        channel's own parsing included), raises UnitySideChannelMessageException naming the
        channel (a UnityEnvironmentException, as ML-Agents raises for bad records).
        """
        data = bytes(data)
        unknown: Counter[uuid.UUID] = Counter()
        try:
            self._dispatch(data, unknown)
        finally:
            # One line per unknown channel and message (at most a few), not one per record:
            # a message full of records for unknown channels must not flood the log.
            for channel_id, count in unknown.most_common(_MAX_UNKNOWN_LOGGED):
                logger.warning(
                    "Unknown side channel data received. Channel type: %s%s.",
                    channel_id,
                    f" ({count} messages)" if count > 1 else "",
                )
            if len(unknown) > _MAX_UNKNOWN_LOGGED:
                logger.warning(
                    "... and data for %d more unknown side channels.",
                    len(unknown) - _MAX_UNKNOWN_LOGGED,
                )

    def _dispatch(self, data: bytes, unknown: Counter) -> None:
        offset = 0
        while offset < len(data):
            if len(data) - offset < _RECORD_HEADER_SIZE:
                raise UnitySideChannelMessageException(
                    "There was a problem reading a message in a SideChannel: "
                    f"{len(data) - offset} bytes left at offset {offset}, fewer than the "
                    f"{_RECORD_HEADER_SIZE}-byte record header. Please make sure the version of "
                    "MLAgents in Unity is compatible with the Python version."
                )
            channel_id = uuid.UUID(bytes_le=data[offset : offset + 16])
            (message_len,) = struct.unpack_from("<i", data, offset + 16)
            offset += _RECORD_HEADER_SIZE
            if message_len < 0 or offset + message_len > len(data):
                raise UnitySideChannelMessageException(
                    f"The message received by the side channel {channel_id} was unexpectedly "
                    f"short: it declares {message_len} bytes but {len(data) - offset} remain. "
                    "Make sure your Unity Environment is sending side channel data properly."
                )
            message_data = data[offset : offset + message_len]
            offset += message_len
            channel = self._side_channels_dict.get(channel_id)
            if channel is None:
                unknown[channel_id] += 1
                continue
            try:
                channel.on_message_received(IncomingMessage(message_data))
            except (UnitySideChannelMessageException, struct.error, UnicodeDecodeError) as err:
                raise UnitySideChannelMessageException(
                    f"side channel {type(channel).__name__} ({channel_id}) could not read a "
                    f"message of {message_len} bytes from Unity: {err}"
                ) from err

    def generate_side_channel_messages(self) -> bytearray:
        """Frame and drain every channel's queue, channels in registration order."""
        result = bytearray()
        for channel_id, channel in self._side_channels_dict.items():
            for message in channel.message_queue:
                result += channel_id.bytes_le
                result += struct.pack("<i", len(message))
                result += message
            channel.message_queue = []
        return result

    @staticmethod
    def _get_side_channels_dict(
        side_channels: Sequence[SideChannel] | None,
    ) -> dict[uuid.UUID, SideChannel]:
        """Map channel id to channel; two channels with one id raise UnityEnvironmentException."""
        side_channels_dict: dict[uuid.UUID, SideChannel] = {}
        for side_channel in side_channels or ():
            if side_channel.channel_id in side_channels_dict:
                raise UnityEnvironmentException(
                    "There cannot be two side channels with "
                    f"the same channel id {side_channel.channel_id}."
                )
            side_channels_dict[side_channel.channel_id] = side_channel
        return side_channels_dict
