"""Receives statistics (``Academy.StatsRecorder``) from the environment."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from enum import Enum

from mlagents_fast.envs.exception import UnitySideChannelMessageException
from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
from mlagents_fast.envs.side_channel.side_channel import SideChannel

__all__ = ["EnvironmentStats", "StatList", "StatsAggregationMethod", "StatsSideChannel"]


class StatsAggregationMethod(Enum):
    """How the trainer aggregates a stat over a summary period."""

    AVERAGE = 0
    """Average of the values."""
    MOST_RECENT = 1
    """Only the most recent value."""
    SUM = 2
    """Sum of the values."""
    HISTOGRAM = 3
    """Histogram of the values (and their average)."""


StatList = list[tuple[float, StatsAggregationMethod]]
EnvironmentStats = Mapping[str, StatList]


class StatsSideChannel(SideChannel):
    """Unity-to-Python channel: ``string key, float32 value, int32 aggregation`` per message."""

    CHANNEL_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")

    def __init__(self) -> None:
        super().__init__(self.CHANNEL_ID)
        self.stats: defaultdict[str, StatList] = defaultdict(list)

    def on_message_received(self, msg: IncomingMessage) -> None:
        key = msg.read_string()
        value = msg.read_float32()
        method = msg.read_int32()
        try:
            aggregation = StatsAggregationMethod(method)
        except ValueError:
            raise UnitySideChannelMessageException(
                f"stat {key!r} has aggregation method {method}, not one of "
                + ", ".join(f"{m.name}={m.value}" for m in StatsAggregationMethod)
            ) from None
        self.stats[key].append((value, aggregation))

    def get_and_reset_stats(self) -> EnvironmentStats:
        """Return the stats received since the last call and forget them."""
        stats = self.stats
        self.stats = defaultdict(list)
        return stats
