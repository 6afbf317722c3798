"""Every agent of a BaseEnv as a PettingZoo ``ParallelEnv`` (``mlagents_envs.envs.unity_parallel_env``).

``reset(seed=None, options=None)`` returns ``(observations, infos)``; ``step(actions)`` takes
one action per playing agent and returns ``(observations, rewards, terminations,
truncations, infos)`` for the agents that were playing (see
:mod:`.unity_pettingzoo_base_env` for names, spaces and the episode rules).
"""

from __future__ import annotations

from typing import Any

from mlagents_fast.envs.base_env import BaseEnv
from mlagents_fast.envs.envs.unity_pettingzoo_base_env import UnityPettingzooBaseEnv, gymnasium

try:
    from pettingzoo import ParallelEnv
except ImportError as missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "UnityParallelEnv needs pettingzoo: pip install 'mlagents-fast[pettingzoo]'"
    ) from missing

__all__ = ["UnityParallelEnv"]


class UnityParallelEnv(UnityPettingzooBaseEnv, ParallelEnv):
    """All agents act at once, one env step per ``step()``."""

    def __init__(self, env: BaseEnv, seed: int | None = None) -> None:
        """
        :param env: the environment; closed when the wrapper closes.
        :param seed: seed of the action spaces' ``sample()``.
        """
        super().__init__(env, seed)
        self.agents: list[str] = []

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        results = self._reset_env(seed)
        self.agents = sorted(self._live)
        return (
            {agent: self._observations[agent] for agent in self.agents},
            {agent: results[agent].info for agent in self.agents},
        )

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents and actions:
            raise gymnasium.error.Error(
                "You must reset the environment before you can perform a step."
            )
        for agent, action in actions.items():
            self._process_action(agent, action)
        results = self._step_env()
        self.agents = sorted(self._live)
        return (
            {agent: self._observations[agent] for agent in results},
            {agent: result.reward for agent, result in results.items()},
            {agent: result.terminated for agent, result in results.items()},
            {agent: result.truncated for agent, result in results.items()},
            {agent: result.info for agent, result in results.items()},
        )
