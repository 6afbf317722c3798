"""The base class of side channels (``mlagents_envs.side_channel.side_channel``)."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod

from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage

__all__ = ["SideChannel"]


class SideChannel(ABC):
    """A channel for custom data between the trainer and the environment.

    Subclasses pick a channel id (the C# side must use the same GUID), implement
    :meth:`on_message_received`, and send with :meth:`queue_message_to_send`. Queued
    messages go out with the next reset or step.
    """

    def __init__(self, channel_id: uuid.UUID):
        self._channel_id: uuid.UUID = channel_id
        self.message_queue: list[bytearray] = []

    def queue_message_to_send(self, msg: OutgoingMessage) -> None:
        """Queue a message; it is sent with the next reset or step."""
        self.message_queue.append(msg.buffer)

    @abstractmethod
    def on_message_received(self, msg: IncomingMessage) -> None:
        """Called for each message the environment sent on this channel."""

    @property
    def channel_id(self) -> uuid.UUID:
        """The channel's unique id, shared with the environment side."""
        return self._channel_id
