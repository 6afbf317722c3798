"""Sends environment parameters (floats and samplers) to the environment (docs/protocol.md section 8)."""

from __future__ import annotations

import uuid
from enum import IntEnum

from mlagents_fast.envs.exception import UnitySideChannelMessageException
from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage
from mlagents_fast.envs.side_channel.side_channel import SideChannel

__all__ = ["EnvironmentParametersChannel"]


class EnvironmentParametersChannel(SideChannel):
    """Python-to-Unity channel setting the values read by ``Academy.EnvironmentParameters``."""

    class EnvironmentDataTypes(IntEnum):
        FLOAT = 0
        SAMPLER = 1

    class SamplerTypes(IntEnum):
        UNIFORM = 0
        GAUSSIAN = 1
        MULTIRANGEUNIFORM = 2

    CHANNEL_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")

    def __init__(self) -> None:
        super().__init__(self.CHANNEL_ID)

    def on_message_received(self, msg: IncomingMessage) -> None:
        raise UnitySideChannelMessageException(
            "The EnvironmentParametersChannel received a message from Unity, "
            "this should not have happened."
        )

    def set_float_parameter(self, key: str, value: float) -> None:
        """Set parameter ``key`` to the float ``value``."""
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_int32(self.EnvironmentDataTypes.FLOAT)
        msg.write_float32(value)
        self.queue_message_to_send(msg)

    def set_uniform_sampler_parameters(
        self, key: str, min_value: float, max_value: float, seed: int
    ) -> None:
        """Make ``key`` sampled uniformly from [min_value, max_value) by the environment."""
        msg = self._sampler_header(key, seed, self.SamplerTypes.UNIFORM)
        msg.write_float32(min_value)
        msg.write_float32(max_value)
        self.queue_message_to_send(msg)

    def set_gaussian_sampler_parameters(
        self, key: str, mean: float, st_dev: float, seed: int
    ) -> None:
        """Make ``key`` sampled from a normal distribution by the environment."""
        msg = self._sampler_header(key, seed, self.SamplerTypes.GAUSSIAN)
        msg.write_float32(mean)
        msg.write_float32(st_dev)
        self.queue_message_to_send(msg)

    def set_multirangeuniform_sampler_parameters(
        self, key: str, intervals: list[tuple[float, float]], seed: int
    ) -> None:
        """Make ``key`` sampled uniformly from a union of ``(min, max)`` intervals."""
        msg = self._sampler_header(key, seed, self.SamplerTypes.MULTIRANGEUNIFORM)
        msg.write_float32_list([bound for interval in intervals for bound in interval])
        self.queue_message_to_send(msg)

    def _sampler_header(self, key: str, seed: int, sampler_type: int) -> OutgoingMessage:
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_int32(self.EnvironmentDataTypes.SAMPLER)
        msg.write_int32(seed)
        msg.write_int32(sampler_type)
        return msg
