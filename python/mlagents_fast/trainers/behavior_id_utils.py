"""Fully qualified behavior names ``Name?team=N`` (the counterpart of ``mlagents.trainers.behavior_id_utils``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import attrs

__all__ = [
    "BehaviorIdentifiers",
    "create_name_behavior_id",
    "get_global_agent_id",
    "get_global_group_id",
]


@attrs.frozen
class BehaviorIdentifiers:
    """The parts of a behavior id as sent by the environment."""

    behavior_id: str = attrs.field()
    """The full id, e.g. ``Striker?team=0``."""
    brain_name: str = attrs.field()
    """The behavior name before ``?``, which selects the trainer settings."""
    team_id: int = attrs.field()
    """The team number (0 when absent)."""

    @staticmethod
    def from_name_behavior_id(name_behavior_id: str) -> BehaviorIdentifiers:
        """Parse ``Name?team=N`` (team defaults to 0)."""
        parsed = urlparse(name_behavior_id)
        brain_name = parsed.path
        ids: dict[str, int] = {}
        for key, values in parse_qs(parsed.query).items():
            ids[key] = int(values[0])
        return BehaviorIdentifiers(
            behavior_id=name_behavior_id, brain_name=brain_name, team_id=ids.get("team", 0)
        )


def create_name_behavior_id(name: str, team_id: int) -> str:
    """``name?team=team_id``."""
    return f"{name}?team={team_id}"


def get_global_agent_id(worker_id: int, agent_id: int) -> str:
    """An agent id unique across environment workers."""
    return f"agent_{worker_id}-{agent_id}"


def get_global_group_id(worker_id: int, group_id: int) -> str:
    """A group id unique across environment workers."""
    return f"group_{worker_id}-{group_id}"
