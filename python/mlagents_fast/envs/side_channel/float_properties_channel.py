"""The legacy key -> float side channel (both directions)."""

from __future__ import annotations

import uuid

from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage
from mlagents_fast.envs.side_channel.side_channel import SideChannel

__all__ = ["FloatPropertiesChannel"]


class FloatPropertiesChannel(SideChannel):
    """Keeps a dict of float properties set by either side; messages are ``string key, float32``."""

    DEFAULT_CHANNEL_ID = uuid.UUID("60ccf7d0-4f7e-11ea-b238-784f4387d1f7")

    def __init__(self, channel_id: uuid.UUID | None = None):
        super().__init__(channel_id if channel_id is not None else self.DEFAULT_CHANNEL_ID)
        self._float_properties: dict[str, float] = {}

    def on_message_received(self, msg: IncomingMessage) -> None:
        key = msg.read_string()
        self._float_properties[key] = msg.read_float32()

    def set_property(self, key: str, value: float) -> None:
        """Set ``key`` locally and send it to the environment."""
        self._float_properties[key] = value
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_float32(value)
        self.queue_message_to_send(msg)

    def get_property(self, key: str) -> float | None:
        """The value of ``key``, or None if never set."""
        return self._float_properties.get(key, None)

    def list_properties(self) -> list[str]:
        """The keys set so far."""
        return list(self._float_properties.keys())

    def get_property_dict_copy(self) -> dict[str, float]:
        """A copy of every property."""
        return dict(self._float_properties)
