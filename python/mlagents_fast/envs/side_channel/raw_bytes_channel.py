"""A side channel carrying raw bytes in both directions."""

from __future__ import annotations

import uuid

from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage
from mlagents_fast.envs.side_channel.side_channel import SideChannel

__all__ = ["RawBytesChannel"]


class RawBytesChannel(SideChannel):
    """Each received message is stored whole; each sent message is the given bytes."""

    def __init__(self, channel_id: uuid.UUID):
        super().__init__(channel_id)
        self._received_messages: list[bytes] = []

    def on_message_received(self, msg: IncomingMessage) -> None:
        self._received_messages.append(msg.get_raw_bytes())

    def get_and_clear_received_messages(self) -> list[bytes]:
        """The messages received since the last call, oldest first."""
        result = list(self._received_messages)
        self._received_messages = []
        return result

    def send_raw_data(self, data: bytes | bytearray) -> None:
        """Queue ``data`` as one message."""
        msg = OutgoingMessage()
        msg.set_raw_bytes(data)
        self.queue_message_to_send(msg)
