"""Side channels (the counterpart of ``mlagents_envs.side_channel``): framing in docs/protocol.md section 8."""

from mlagents_fast.envs.side_channel.default_training_analytics_side_channel import (
    DefaultTrainingAnalyticsSideChannel,
)
from mlagents_fast.envs.side_channel.engine_configuration_channel import (
    EngineConfig,
    EngineConfigurationChannel,
)
from mlagents_fast.envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_fast.envs.side_channel.float_properties_channel import FloatPropertiesChannel
from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage
from mlagents_fast.envs.side_channel.raw_bytes_channel import RawBytesChannel
from mlagents_fast.envs.side_channel.side_channel import SideChannel
from mlagents_fast.envs.side_channel.side_channel_manager import SideChannelManager
from mlagents_fast.envs.side_channel.stats_side_channel import (
    EnvironmentStats,
    StatsAggregationMethod,
    StatsSideChannel,
)

__all__ = [
    "DefaultTrainingAnalyticsSideChannel",
    "EngineConfig",
    "EngineConfigurationChannel",
    "EnvironmentParametersChannel",
    "EnvironmentStats",
    "FloatPropertiesChannel",
    "IncomingMessage",
    "OutgoingMessage",
    "RawBytesChannel",
    "SideChannel",
    "SideChannelManager",
    "StatsAggregationMethod",
    "StatsSideChannel",
]
