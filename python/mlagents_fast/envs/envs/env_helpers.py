"""Agent names of the PettingZoo wrappers (the counterpart of ``mlagents_envs.envs.env_helpers``).

An agent is named ``<behavior name>?agent_id=<id>``, e.g. ``3DBall?team=0?agent_id=4``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

__all__ = ["_agent_id_to_behavior", "_behavior_to_agent_id", "_parse_behavior"]

_AGENT_ID_SEPARATOR = "?agent_id="


def _behavior_to_agent_id(behavior_name: str, unique_id: int) -> str:
    """The PettingZoo agent name of agent ``unique_id`` of ``behavior_name``."""
    return f"{behavior_name}{_AGENT_ID_SEPARATOR}{unique_id}"


def _agent_id_to_behavior(agent_id: str) -> str:
    """The behavior name inside a PettingZoo agent name."""
    return agent_id.split(_AGENT_ID_SEPARATOR)[0]


def _parse_behavior(full_behavior: str) -> tuple[str, int]:
    """(name, team id) of a behavior name like ``Striker?team=1`` (team 0 when absent)."""
    parsed = urlparse(full_behavior)
    teams = parse_qs(parsed.query).get("team")
    return parsed.path, int(teams[0]) if teams else 0
