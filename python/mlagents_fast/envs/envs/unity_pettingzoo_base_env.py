"""What the PettingZoo wrappers share (the counterpart of ``mlagents_envs.envs.unity_pettingzoo_base_env``).

Every agent of every behavior is a PettingZoo agent named ``<behavior>?agent_id=<id>``.

- Observation: the agent's observation array, or a list when the behavior has several. A
  behavior with only discrete actions gives ``{"observation": ..., "action_mask": ...}`` where
  the mask follows PettingZoo (int8, 1 = allowed; one array per branch for several
  branches), the opposite sense of ``DecisionSteps.action_mask``.
- Action spaces: ``Box(-1, 1)`` for continuous actions, ``Discrete`` for one branch,
  ``MultiDiscrete`` for several, ``Tuple((Box, discrete))`` for both.
- Episode: an agent whose episode ends (Unity's TerminalSteps) is reported once as
  terminated (or truncated, when interrupted) with its final observation and reward, then
  leaves ``agents`` until ``reset()``: PettingZoo forbids an agent coming back. While the
  others play, the wrapper answers its new decisions with zero actions. The PettingZoo
  episode ends when every agent finished once. An agent that first appears mid-episode
  joins ``agents`` (and ``possible_agents``).
- Needs the ``pettingzoo`` extra.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mlagents_fast.envs.base_env import ActionTuple, BaseEnv, BehaviorSpec
from mlagents_fast.envs.envs.env_helpers import _agent_id_to_behavior, _behavior_to_agent_id

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the PettingZoo wrappers need pettingzoo and gymnasium: "
        "pip install 'mlagents-fast[pettingzoo]'"
    ) from missing

__all__ = ["AgentStep", "UnityPettingzooBaseEnv"]


class AgentStep(NamedTuple):
    """What one env step gave one agent (its observation is in ``_observations``)."""

    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


class UnityPettingzooBaseEnv:
    """Agents of a BaseEnv, their spaces, their actions, and one env step at a time."""

    def __init__(self, env: BaseEnv, seed: int | None = None, metadata: dict | None = None) -> None:
        """
        :param env: the environment; closed when the wrapper closes.
        :param seed: seed of the action spaces' ``sample()``.
        :param metadata: PettingZoo metadata (default: no render modes).
        """
        super().__init__()
        self._env: BaseEnv | None = env
        self.metadata = metadata or {"render_modes": [], "name": "unity_pettingzoo"}
        self.render_mode = None
        self._seed = seed
        if not env.behavior_specs:
            env.step()  # a Unity build announces its behaviors with its first message
        manager = getattr(env, "_side_channel_manager", None)
        channels = getattr(manager, "_side_channels_dict", {})
        self._side_channel_dict = {type(c).__name__: c for c in channels.values()}
        self._observation_spaces: dict[str, spaces.Space] = {}
        self._action_spaces: dict[str, spaces.Space] = {}
        self._live: set[str] = set()  # playing in this episode
        self._finished: set[str] = set()  # ended in this episode: out until reset
        self._possible_agents: set[str] = set()
        self._observations: dict[str, Any] = {}
        self._rows: dict[str, tuple[str, int]] = {}  # agent -> (behavior, decision row)
        self._actions: dict[str, ActionTuple] = {}  # behavior -> actions of its decisions

    # --- spaces ------------------------------------------------------------------------

    def _spec(self, behavior: str) -> BehaviorSpec:
        return self._loaded_env().behavior_specs[behavior]

    def observation_space(self, agent: str) -> spaces.Space:
        """The observation space of ``agent`` (the same object on every call)."""
        behavior = _agent_id_to_behavior(agent)
        if behavior not in self._observation_spaces:
            spec = self._spec(behavior)
            boxes = [
                spaces.Box(-np.inf, np.inf, shape=tuple(o.shape), dtype=np.float32)
                for o in spec.observation_specs
            ]
            observation: spaces.Space = boxes[0] if len(boxes) == 1 else spaces.Tuple(boxes)
            branches = self._masked_branches(spec)
            if branches:
                masks = [spaces.Box(0, 1, shape=(b,), dtype=np.int8) for b in branches]
                mask_space = masks[0] if len(masks) == 1 else spaces.Tuple(masks)
                observation = spaces.Dict({"observation": observation, "action_mask": mask_space})
            self._observation_spaces[behavior] = observation
        return self._observation_spaces[behavior]

    def action_space(self, agent: str) -> spaces.Space:
        """The action space of ``agent`` (the same object on every call)."""
        behavior = _agent_id_to_behavior(agent)
        if behavior not in self._action_spaces:
            action_spec = self._spec(behavior).action_spec
            branches = action_spec.discrete_branches
            parts: list[spaces.Space] = []
            if action_spec.continuous_size > 0:
                high = np.ones(action_spec.continuous_size, dtype=np.float32)
                parts.append(spaces.Box(-high, high, dtype=np.float32))
            if len(branches) == 1:
                parts.append(spaces.Discrete(branches[0]))
            elif branches:
                parts.append(spaces.MultiDiscrete(list(branches)))
            if not parts:
                raise gymnasium.error.Error(f"behavior {behavior} has no actions")
            space = parts[0] if len(parts) == 1 else spaces.Tuple(parts)
            if self._seed is not None:
                space.seed(self._seed)
            self._action_spaces[behavior] = space
        return self._action_spaces[behavior]

    @property
    def observation_spaces(self) -> dict[str, spaces.Space]:
        return {agent: self.observation_space(agent) for agent in self.possible_agents}

    @property
    def action_spaces(self) -> dict[str, spaces.Space]:
        return {agent: self.action_space(agent) for agent in self.possible_agents}

    # --- agents and observations -------------------------------------------------------

    @property
    def possible_agents(self) -> list[str]:
        return sorted(self._possible_agents)

    @property
    def side_channel(self) -> dict[str, Any]:
        """The environment's side channels by class name (``env.side_channel["StatsSideChannel"]``)."""
        self._loaded_env()
        return self._side_channel_dict

    def _loaded_env(self) -> BaseEnv:
        if self._env is None:
            raise gymnasium.error.Error("No environment loaded")
        return self._env

    @staticmethod
    def _masked_branches(spec: BehaviorSpec) -> tuple[int, ...]:
        """Branches whose mask the observation carries: those of discrete-only behaviors
        (a mask must match the action space's shape to be used by ``sample(mask=...)``)."""
        action_spec = spec.action_spec
        return () if action_spec.continuous_size else tuple(action_spec.discrete_branches)

    def _agent_observation(self, behavior: str, batches: list[np.ndarray], row: int, mask) -> Any:
        values = [batch[row] for batch in batches]
        observation = values[0] if len(values) == 1 else values
        branches = self._masked_branches(self._spec(behavior))
        if not branches:
            return observation
        allowed = [
            np.ones(b, np.int8) if mask is None else (~mask[i][row]).astype(np.int8)
            for i, b in enumerate(branches)
        ]
        return {
            "observation": observation,
            "action_mask": allowed[0] if len(allowed) == 1 else tuple(allowed),
        }

    # --- actions -----------------------------------------------------------------------

    def _process_action(self, agent: str, action: Any) -> None:
        """Check ``action`` against the agent's space and keep it for the next env step."""
        if agent not in self._live:
            raise gymnasium.error.Error(f"agent {agent} is not playing; it cannot act")
        space = self.action_space(agent)
        if isinstance(space, spaces.Tuple):
            action = tuple(np.asarray(a, dtype=s.dtype) for a, s in zip(action, space.spaces))
        else:
            action = np.asarray(action, dtype=space.dtype)
        if not space.contains(action):
            raise gymnasium.error.Error(f"Invalid action {action!r} for {agent}: expected {space}")
        if agent not in self._rows:
            return  # not asking for a decision this step (its decision period is longer)
        behavior, row = self._rows[agent]
        parts = action if isinstance(space, spaces.Tuple) else (action,)
        actions = self._actions[behavior]
        for part in parts:
            if isinstance(part, np.ndarray) and part.dtype == np.float32:
                actions.continuous[row] = part
            else:
                actions.discrete[row] = np.atleast_1d(part)

    def _zero_actions(self, behavior: str, count: int) -> ActionTuple:
        spec = self._spec(behavior).action_spec
        return ActionTuple(
            continuous=np.zeros((count, spec.continuous_size), np.float32),
            discrete=np.zeros((count, spec.discrete_size), np.int32),
        )

    # --- env steps ---------------------------------------------------------------------

    def _read_steps(self, first: bool) -> dict[str, AgentStep]:
        """Agents' results of the env step (or reset) just done; updates who is playing."""
        env = self._loaded_env()
        results: dict[str, AgentStep] = {}
        self._rows = {}
        for behavior in env.behavior_specs:
            decision, terminal = env.get_steps(behavior)
            self._actions[behavior] = self._zero_actions(behavior, len(decision))
            for row, agent_id in enumerate(terminal.agent_id):
                agent = _behavior_to_agent_id(behavior, int(agent_id))
                if agent not in self._live:
                    continue
                interrupted = bool(terminal.interrupted[row])
                self._observations[agent] = self._agent_observation(
                    behavior, terminal.obs, row, None
                )
                results[agent] = AgentStep(
                    reward=float(terminal.reward[row]),
                    terminated=not interrupted,
                    truncated=interrupted,
                    info=self._info(behavior, terminal, row, interrupted),
                )
                self._live.discard(agent)
                self._finished.add(agent)
            for row, agent_id in enumerate(decision.agent_id):
                agent = _behavior_to_agent_id(behavior, int(agent_id))
                self._rows[agent] = (behavior, row)
                if agent in self._finished:
                    continue  # answered with zero actions until reset
                if agent not in self._live:
                    self._live.add(agent)
                    self._possible_agents.add(agent)
                self._observations[agent] = self._agent_observation(
                    behavior, decision.obs, row, decision.action_mask
                )
                results[agent] = AgentStep(
                    reward=0.0 if first else float(decision.reward[row]),
                    terminated=False,
                    truncated=False,
                    info=self._info(behavior, decision, row, None),
                )
        for agent in self._live - set(results):  # playing, but no decision this step
            results[agent] = AgentStep(
                reward=0.0,
                terminated=False,
                truncated=False,
                info={"behavior_name": _agent_id_to_behavior(agent)},
            )
        return results

    @staticmethod
    def _info(behavior: str, steps: Any, row: int, interrupted: bool | None) -> dict[str, Any]:
        info = {
            "behavior_name": behavior,
            "group_id": int(steps.group_id[row]),
            "group_reward": float(steps.group_reward[row]),
        }
        if interrupted is not None:
            info["interrupted"] = interrupted
        return info

    def _reset_env(self, seed: int | None) -> dict[str, AgentStep]:
        env = self._loaded_env()
        if seed is not None:
            self._seed = seed
            for space in self._action_spaces.values():
                space.seed(seed)
            reseed = getattr(env, "reseed", None)
            if reseed is not None:
                reseed(seed)
        env.reset()
        self._live, self._finished = set(), set()
        self._possible_agents = set()
        self._observations = {}
        return self._read_steps(first=True)

    def _step_env(self) -> dict[str, AgentStep]:
        env = self._loaded_env()
        for behavior, actions in self._actions.items():
            env.set_actions(behavior, actions)
        env.step()
        return self._read_steps(first=False)

    # --- the rest of PettingZoo's interface ----------------------------------------------

    def render(self) -> None:
        """Not supported: Unity renders in its own window."""
        return

    def state(self) -> np.ndarray:
        raise NotImplementedError("Unity environments offer no global state")

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
