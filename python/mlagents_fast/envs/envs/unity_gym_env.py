"""One single-agent behavior as a Gymnasium environment (``mlagents_envs.envs.unity_gym_env``).

``UnityToGymWrapper`` takes ML-Agents' constructor arguments and observation layout (visual
observations first, then all vector observations concatenated; only the first of them
unless ``allow_multiple_obs``) and speaks today's Gymnasium API: ``reset()`` returns
``(observation, info)`` and ``step()`` ``(observation, reward, terminated, truncated,
info)``, an interrupted episode (max steps) being ``truncated``. ``info["step"]`` holds the
DecisionSteps or TerminalSteps the values come from. Needs the ``gym`` extra.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np

from mlagents_fast.envs.base_env import ActionTuple, BaseEnv, DecisionSteps, TerminalSteps
from mlagents_fast.envs.exception import UnityEnvironmentException
from mlagents_fast.envs.gym_adapter import BehaviorGymEnv, gymnasium, spaces

__all__ = ["ActionFlattener", "GymStepResult", "UnityGymException", "UnityToGymWrapper"]

logger = logging.getLogger(__name__)

GymStepResult = tuple[Any, float, bool, bool, dict]
"""(observation, reward, terminated, truncated, info)."""


class UnityGymException(gymnasium.error.Error, UnityEnvironmentException):
    """Misuse of the Gym wrapper: several behaviors or agents, hybrid actions, step after the end."""


class ActionFlattener:
    """Branched discrete actions as one ``Discrete`` space: action ``k`` is the ``k``-th
    combination of branch values (the last branch varies fastest)."""

    def __init__(self, branched_action_space: list[int] | tuple[int, ...]) -> None:
        self._action_shape = tuple(int(b) for b in branched_action_space)
        self.action_lookup = self._create_lookup(self._action_shape)
        self.action_space = spaces.Discrete(len(self.action_lookup))

    @classmethod
    def _create_lookup(cls, branched_action_space: tuple[int, ...]) -> dict[int, list[int]]:
        combinations = itertools.product(*(range(size) for size in branched_action_space))
        return {index: list(values) for index, values in enumerate(combinations)}

    def lookup_action(self, action: int) -> list[int]:
        """The branch values of flat action ``action``."""
        return self.action_lookup[int(action)]


class UnityToGymWrapper(BehaviorGymEnv):
    """The only behavior of ``unity_env``, with one agent, as a ``gymnasium.Env``."""

    # gymnasium declares metadata an instance attribute, so not a ClassVar.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(
        self,
        unity_env: BaseEnv,
        uint8_visual: bool = False,
        flatten_branched: bool = False,
        allow_multiple_obs: bool = False,
        action_space_seed: int | None = None,
    ) -> None:
        """
        :param unity_env: the environment; closed when the wrapper closes.
        :param uint8_visual: visual observations as uint8 0-255 instead of float 0-1.
        :param flatten_branched: several discrete branches as one ``Discrete`` space
            (:class:`ActionFlattener`) instead of ``MultiDiscrete``.
        :param allow_multiple_obs: observations as a list (visual ones, then the vector
            ones concatenated) instead of only the first visual (or the vector) one.
        :param action_space_seed: seed of the action space's ``sample()``.
        """
        if not unity_env.behavior_specs:
            unity_env.step()  # a Unity build announces its behaviors with its first message
        if len(unity_env.behavior_specs) != 1:
            raise UnityGymException(
                "There can only be one behavior in a UnityEnvironment if it is wrapped in a "
                f"gym; found {list(unity_env.behavior_specs)}."
            )
        super().__init__(unity_env)
        self.name = self._behavior_name
        self.group_spec = unity_env.behavior_specs[self.name]
        self.render_mode = "rgb_array"
        self.visual_obs: np.ndarray | None = None
        self.game_over = False
        self._allow_multiple_obs = allow_multiple_obs
        self._visual_indices = [
            i for i, spec in enumerate(self.group_spec.observation_specs) if len(spec.shape) == 3
        ]
        self._vector_indices = [
            i for i, spec in enumerate(self.group_spec.observation_specs) if len(spec.shape) == 1
        ]
        vector_size = sum(
            self.group_spec.observation_specs[i].shape[0] for i in self._vector_indices
        )
        if not self._visual_indices and vector_size == 0:
            raise UnityGymException("There are no observations provided by the environment.")
        if uint8_visual and not self._visual_indices:
            logger.warning(
                "uint8_visual was set to true, but visual observations are not in use. "
                "This setting will not have any effect."
            )
        self.uint8_visual = uint8_visual and bool(self._visual_indices)
        if len(self._visual_indices) + (vector_size > 0) >= 2 and not allow_multiple_obs:
            logger.warning(
                "The environment contains multiple observations. You must define "
                "allow_multiple_obs=True to receive them all. Otherwise, only the first visual "
                "observation (or vector observation if there are no visual observations) will "
                "be provided in the observation."
            )
        self._flattener: ActionFlattener | None = None
        self._action_space = self._make_action_space(flatten_branched)
        if action_space_seed is not None:
            self._action_space.seed(action_space_seed)
        self._observation_space = self._make_observation_space(vector_size)
        # ML-Agents resets at construction and checks the agent count.
        self._env.reset()
        decision_steps, _ = self._env.get_steps(self.name)
        self._check_agents(len(decision_steps))

    # gymnasium.Env reads these as attributes; properties keep them read-only.
    @property
    def action_space(self) -> spaces.Space:
        return self._action_space

    @action_space.setter
    def action_space(self, value: spaces.Space) -> None:
        self._action_space = value  # BehaviorGymEnv's constructor sets its own first

    @property
    def observation_space(self) -> spaces.Space:
        return self._observation_space

    @observation_space.setter
    def observation_space(self, value: spaces.Space) -> None:
        self._observation_space = value

    @property
    def action_size(self) -> int:
        spec = self.group_spec.action_spec
        return spec.discrete_size if spec.is_discrete() else spec.continuous_size

    def _make_action_space(self, flatten_branched: bool) -> spaces.Space:
        spec = self.group_spec.action_spec
        if spec.is_discrete():
            branches = spec.discrete_branches
            if len(branches) == 1:
                return spaces.Discrete(branches[0])
            if flatten_branched:
                self._flattener = ActionFlattener(branches)
                return self._flattener.action_space
            return spaces.MultiDiscrete(list(branches))
        if spec.is_continuous():
            if flatten_branched:
                logger.warning(
                    "The environment has a non-discrete action space. It will not be flattened."
                )
            high = np.ones(spec.continuous_size, dtype=np.float32)
            return spaces.Box(-high, high, dtype=np.float32)
        raise UnityGymException(
            "The gym wrapper does not provide explicit support for both discrete and "
            "continuous actions."
        )

    def _make_observation_space(self, vector_size: int) -> spaces.Space:
        boxes: list[spaces.Space] = []
        for i in self._visual_indices:
            shape = self.group_spec.observation_specs[i].shape
            if self.uint8_visual:
                boxes.append(spaces.Box(0, 255, dtype=np.uint8, shape=shape))
            else:
                boxes.append(spaces.Box(0, 1, dtype=np.float32, shape=shape))
        if vector_size > 0:
            boxes.append(spaces.Box(-np.inf, np.inf, shape=(vector_size,), dtype=np.float32))
        return spaces.Tuple(boxes) if self._allow_multiple_obs else boxes[0]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.game_over = False
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> GymStepResult:
        if self.game_over:
            raise UnityGymException(
                "You are calling 'step()' even though this environment has already returned "
                "terminated or truncated. You must always call 'reset()' once you receive it."
            )
        observation, reward, terminated, truncated, info = super().step(action)
        self.game_over = terminated or truncated
        return observation, reward, terminated, truncated, info

    def _action_tuple(self, action: Any) -> ActionTuple:
        if self._flattener is not None:
            action = self._flattener.lookup_action(action)
        action = np.asarray(action).reshape((1, self.action_size))
        if self.group_spec.action_spec.is_continuous():
            return ActionTuple(continuous=action.astype(np.float32))
        return ActionTuple(discrete=action.astype(np.int32))

    def _info(self, steps: DecisionSteps | TerminalSteps) -> dict[str, Any]:
        return {"step": steps}

    def _observation(self, batches: list[np.ndarray], index: int) -> Any:
        visual = [self._preprocess_single(batches[i][index]) for i in self._visual_indices]
        if visual:
            self.visual_obs = visual[0]
        vector = (
            np.concatenate([batches[i][index] for i in self._vector_indices])
            if self._vector_indices
            else None
        )
        if self._allow_multiple_obs:
            return visual + ([vector] if vector is not None else [])
        return visual[0] if visual else vector

    def _preprocess_single(self, single_visual_obs: np.ndarray) -> np.ndarray:
        if self.uint8_visual:
            return (255.0 * single_visual_obs).astype(np.uint8)
        return single_visual_obs

    def _check_single_agent(self, count: int) -> None:
        self._check_agents(count)
        if count == 0:
            raise UnityGymException("No agent of the behavior asked for a decision.")

    @staticmethod
    def _check_agents(n_agents: int) -> None:
        if n_agents > 1:
            raise UnityGymException(
                f"There can only be one Agent in the environment but {n_agents} were detected."
            )

    def render(self) -> np.ndarray | None:
        """The latest visual observation (no new frame is drawn)."""
        return self.visual_obs

    @property
    def reward_range(self) -> tuple[float, float]:
        return -float("inf"), float("inf")
