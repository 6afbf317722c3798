"""Every agent of a BaseEnv as a PettingZoo ``AECEnv`` (``mlagents_envs.envs.unity_aec_env``).

Agents act one after the other (sorted by name); when every playing agent has acted, the
environment steps. A finished agent is then selected first and must be stepped with
``None`` (PettingZoo's dead step), which removes it. ``last()`` gives the selected agent's
observation, reward accumulated since it last acted, terminated, truncated and info (see
:mod:`.unity_pettingzoo_base_env` for names, spaces and the episode rules).
"""

from __future__ import annotations

from typing import Any

from mlagents_fast.envs.base_env import BaseEnv
from mlagents_fast.envs.envs.unity_pettingzoo_base_env import (
    AgentStep,
    UnityPettingzooBaseEnv,
    gymnasium,
)

try:
    from pettingzoo import AECEnv
except ImportError as missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "UnityAECEnv needs pettingzoo: pip install 'mlagents-fast[pettingzoo]'"
    ) from missing

__all__ = ["UnityAECEnv"]


class UnityAECEnv(UnityPettingzooBaseEnv, AECEnv):
    """One agent acts per ``step()``; the environment steps after the last one."""

    def __init__(self, env: BaseEnv, seed: int | None = None) -> None:
        """
        :param env: the environment; closed when the wrapper closes.
        :param seed: seed of the action spaces' ``sample()``.
        """
        super().__init__(env, seed)
        self.agents: list[str] = []
        self.rewards: dict[str, float] = {}
        self._cumulative_rewards: dict[str, float] = {}
        self.terminations: dict[str, bool] = {}
        self.truncations: dict[str, bool] = {}
        self.infos: dict[str, dict] = {}
        self.agent_selection: str | None = None
        self._acted: set[str] = set()

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        self._start_cycle(self._reset_env(seed), replace=True)

    def _start_cycle(self, results: dict[str, AgentStep], replace: bool) -> None:
        """Record an env step's results and select the first agent of the next round."""
        if replace:
            self.agents, self._cumulative_rewards = [], {}
            self.rewards, self.terminations, self.truncations, self.infos = {}, {}, {}, {}
        for agent, result in results.items():
            if agent not in self.agents:
                self.agents.append(agent)
                self._cumulative_rewards[agent] = 0.0
            self.rewards[agent] = result.reward
            self.terminations[agent] = result.terminated
            self.truncations[agent] = result.truncated
            self.infos[agent] = result.info
        self.agents.sort()
        self.rewards = {agent: self.rewards.get(agent, 0.0) for agent in self.agents}
        self._acted = set()
        playing = [agent for agent in self.agents if agent in self._live]
        self.agent_selection = playing[0] if playing else (self.agents[0] if self.agents else None)
        self._skip_agent_selection = None
        self._deads_step_first()

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if not self.agents or agent is None:
            raise gymnasium.error.Error(
                "You must reset the environment before you can perform a step"
            )
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        self._process_action(agent, action)
        self._acted.add(agent)
        waiting = [a for a in self.agents if a in self._live and a not in self._acted]
        if waiting:
            self._clear_rewards()
            self.agent_selection = waiting[0]
        else:
            self._start_cycle(self._step_env(), replace=False)
        self._accumulate_rewards()

    def observe(self, agent: str) -> Any:
        """The latest observation of ``agent`` (``last()`` calls this)."""
        return self._observations[agent]
