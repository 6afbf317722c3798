"""Sends engine settings (resolution, quality, time scale, frame rates) to the environment."""

from __future__ import annotations

import uuid
from enum import IntEnum
from typing import NamedTuple

from mlagents_fast.envs.exception import (
    UnitySideChannelException,
    UnitySideChannelMessageException,
)
from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage
from mlagents_fast.envs.side_channel.side_channel import SideChannel

__all__ = ["EngineConfig", "EngineConfigurationChannel"]


class EngineConfig(NamedTuple):
    """Engine settings; None leaves a setting unchanged."""

    width: int | None
    height: int | None
    quality_level: int | None
    time_scale: float | None
    target_frame_rate: int | None
    capture_frame_rate: int | None

    @staticmethod
    def default_config() -> EngineConfig:
        return EngineConfig(80, 80, 1, 20.0, -1, 60)


class EngineConfigurationChannel(SideChannel):
    """Python-to-Unity channel for engine settings; one message per setting."""

    class ConfigurationType(IntEnum):
        SCREEN_RESOLUTION = 0
        QUALITY_LEVEL = 1
        TIME_SCALE = 2
        TARGET_FRAME_RATE = 3
        CAPTURE_FRAME_RATE = 4

    CHANNEL_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")

    def __init__(self) -> None:
        super().__init__(self.CHANNEL_ID)

    def on_message_received(self, msg: IncomingMessage) -> None:
        raise UnitySideChannelMessageException(
            "The EngineConfigurationChannel received a message from Unity, "
            "this should not have happened."
        )

    def set_configuration_parameters(
        self,
        width: int | None = None,
        height: int | None = None,
        quality_level: int | None = None,
        time_scale: float | None = None,
        target_frame_rate: int | None = None,
        capture_frame_rate: int | None = None,
    ) -> None:
        """Queue one message per setting that is not None, in the order of the arguments.

        ``width`` and ``height`` must be set together.
        """
        if (width is None) != (height is None):
            raise UnitySideChannelException(
                "You cannot set the width/height of the screen resolution without also "
                "setting the height/width"
            )
        kind = self.ConfigurationType
        if width is not None and height is not None:
            msg = OutgoingMessage()
            msg.write_int32(kind.SCREEN_RESOLUTION)
            msg.write_int32(width)
            msg.write_int32(height)
            self.queue_message_to_send(msg)
        if quality_level is not None:
            self._queue_int(kind.QUALITY_LEVEL, quality_level)
        if time_scale is not None:
            msg = OutgoingMessage()
            msg.write_int32(kind.TIME_SCALE)
            msg.write_float32(time_scale)
            self.queue_message_to_send(msg)
        if target_frame_rate is not None:
            self._queue_int(kind.TARGET_FRAME_RATE, target_frame_rate)
        if capture_frame_rate is not None:
            self._queue_int(kind.CAPTURE_FRAME_RATE, capture_frame_rate)

    def set_configuration(self, config: EngineConfig) -> None:
        """Queue every setting of ``config`` that is not None."""
        self.set_configuration_parameters(**config._asdict())

    def _queue_int(self, configuration_type: int, value: int) -> None:
        msg = OutgoingMessage()
        msg.write_int32(configuration_type)
        msg.write_int32(value)
        self.queue_message_to_send(msg)
