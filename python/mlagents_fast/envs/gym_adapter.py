"""Gymnasium in both directions (needs the ``gym`` extra: ``pip install mlagents-fast[gym]``).

- :class:`GymVectorEnv`: any registered Gymnasium environment, ``num_envs`` copies
  vectorized with ``gymnasium.vector`` (same-step autoreset), as a BaseEnv with one
  behavior ``<id>?team=0``; each copy is one agent. ``make_env("gym:<id>")`` builds it.
- :class:`BehaviorGymEnv`: one single-agent behavior of any BaseEnv as a
  ``gymnasium.Env`` (like ML-Agents' ``UnityToGymWrapper``).

Spaces, Gymnasium to ML-Agents:

- observations: a ``Box`` of shape ``(H, W, C)`` with C in 1, 3, 4 is an image, given as
  ``(C, H, W)`` float32 (uint8 scaled to [0, 1]); any other ``Box`` is flattened to a vector;
  ``Discrete(n)`` becomes a one-hot vector of n.
- actions: a bounded ``Box`` is continuous, the trainer's [-1, 1] mapped linearly onto
  ``[low, high]`` (unbounded boxes get the values unchanged); ``Discrete(n)`` is one branch
  of n, ``MultiDiscrete`` one branch per entry, ``MultiBinary(n)`` n branches of 2.
- episode ends: ``terminated`` is a done agent, ``truncated`` an interrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlagents_fast.envs.base_env import (
    ActionSpec,
    ActionTuple,
    AgentId,
    BaseEnv,
    BehaviorMapping,
    BehaviorName,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlagents_fast.envs.exception import UnityActionException, UnityEnvironmentException
from mlagents_fast.envs.side_channel import SideChannel, SideChannelManager

try:
    import gymnasium
    from gymnasium import spaces
    from gymnasium.vector import AutoresetMode
except ImportError as missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "mlagents_fast.envs.gym_adapter needs gymnasium: pip install 'mlagents-fast[gym]'"
    ) from missing

__all__ = ["BehaviorGymEnv", "GymVectorEnv"]

logger = logging.getLogger(__name__)


class _ObservationConverter:
    """Gymnasium observations (batched) to one ML-Agents float32 observation."""

    def __init__(self, space: spaces.Space, env_id: str) -> None:
        self.space = space
        self.start = 0
        if isinstance(space, spaces.Discrete):
            self.kind = "one_hot"
            self.start = int(space.start)
            self.spec = ObservationSpec(
                (int(space.n),), (DimensionProperty.NONE,), ObservationType.DEFAULT, "OneHot"
            )
        elif (
            isinstance(space, spaces.Box) and len(space.shape) == 3 and space.shape[2] in (1, 3, 4)
        ):
            self.kind = "image"
            height, width, channels = space.shape
            self.spec = ObservationSpec(
                (channels, height, width),
                (
                    DimensionProperty.NONE,
                    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
                    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
                ),
                ObservationType.DEFAULT,
                "Image",
            )
        elif isinstance(space, spaces.Box):
            self.kind = "vector"
            size = int(np.prod(space.shape, dtype=np.int64))
            self.spec = ObservationSpec(
                (size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, f"Vector_size{size}"
            )
        else:
            raise UnityEnvironmentException(
                f"gym:{env_id}: observation space {space} is not supported (Box or Discrete only)"
            )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        rows = batch.shape[0]
        if self.kind == "one_hot":
            one_hot = np.zeros((rows, self.spec.shape[0]), dtype=np.float32)
            one_hot[np.arange(rows), batch.astype(np.int64) - self.start] = 1.0
            return one_hot
        if self.kind == "image":
            scale = 1.0 / 255.0 if batch.dtype == np.uint8 else 1.0
            chw = np.transpose(batch, (0, 3, 1, 2)).astype(np.float32) * np.float32(scale)
            return np.ascontiguousarray(chw)
        return np.ascontiguousarray(batch.reshape(rows, -1), dtype=np.float32)


class _ActionConverter:
    """ML-Agents ActionTuple (batched) to Gymnasium actions, and the ActionSpec."""

    def __init__(self, space: spaces.Space, env_id: str) -> None:
        self.space = space
        if isinstance(space, spaces.Box) and len(space.shape) == 1:
            self.spec = ActionSpec.create_continuous(int(space.shape[0]))
            self.bounded = bool(np.all(space.bounded_below) and np.all(space.bounded_above))
        elif isinstance(space, spaces.Discrete):
            self.spec = ActionSpec.create_discrete((int(space.n),))
        elif isinstance(space, spaces.MultiDiscrete) and len(space.nvec.shape) == 1:
            self.spec = ActionSpec.create_discrete(tuple(int(n) for n in space.nvec))
        elif isinstance(space, spaces.MultiBinary) and isinstance(space.n, int):
            self.spec = ActionSpec.create_discrete((2,) * int(space.n))
        else:
            raise UnityEnvironmentException(
                f"gym:{env_id}: action space {space} is not supported "
                "(1-D Box, Discrete, 1-D MultiDiscrete or 1-D MultiBinary)"
            )

    def __call__(self, actions: ActionTuple) -> np.ndarray:
        space = self.space
        if isinstance(space, spaces.Box):
            values = actions.continuous
            if self.bounded:
                unit = (np.clip(values, -1.0, 1.0) + 1.0) * 0.5
                values = space.low + unit * (space.high - space.low)
            return values.astype(space.dtype, copy=False)
        if isinstance(space, spaces.Discrete):
            return actions.discrete[:, 0].astype(np.int64) + int(space.start)
        if isinstance(space, spaces.MultiDiscrete):
            return actions.discrete.astype(space.dtype) + space.start
        return actions.discrete.astype(space.dtype)


class GymVectorEnv(BaseEnv):
    """``num_envs`` copies of the Gymnasium environment ``env_id`` as a BaseEnv.

    - seed: seeds the copies at the first reset (copy i gets ``seed + i``, Gymnasium's rule).
    - side_channels: accepted like UnityEnvironment's; their messages are drained at every
      reset and step but have no effect (Gymnasium environments have no parameters channel).
    - make_kwargs: passed to ``gymnasium.make_vec`` (for example ``max_episode_steps``).

    Agent ids are episode ids: a copy whose episode ends is reset in the same step and
    reports its first observation under a new id with reward 0.
    """

    def __init__(
        self,
        env_id: str,
        *,
        seed: int = 0,
        num_envs: int = 1,
        side_channels: Sequence[SideChannel] = (),
        **make_kwargs: Any,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise UnityEnvironmentException(f"num_envs must be an int >= 1, got {num_envs!r}")
        try:
            self._vector_env = gymnasium.make_vec(
                env_id,
                num_envs=num_envs,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                **make_kwargs,
            )
        except gymnasium.error.Error as error:
            raise UnityEnvironmentException(f"gym:{env_id}: {error}") from error
        self._env_id = env_id
        self._num_envs = num_envs
        self._seed = seed % 2**32
        self._seeded = False
        self._side_channel_manager = SideChannelManager(list(side_channels))
        self._observation = _ObservationConverter(self._vector_env.single_observation_space, env_id)
        self._action = _ActionConverter(self._vector_env.single_action_space, env_id)
        self._behavior_name: BehaviorName = f"{env_id}?team=0"
        self._spec = BehaviorSpec([self._observation.spec], self._action.spec)
        self._specs = BehaviorMapping({self._behavior_name: self._spec})
        self._agent_ids = np.zeros(num_envs, dtype=np.int32)
        self._next_agent_id = 0
        self._steps: tuple[DecisionSteps, TerminalSteps] | None = None
        self._pending_actions: ActionTuple | None = None
        self._closed = False

    @property
    def num_agents(self) -> int:
        return self._num_envs

    @property
    def behavior_specs(self) -> BehaviorMapping:
        return self._specs

    def reseed(self, seed: int) -> None:
        """Seed the copies again at the next ``reset`` (copy i gets ``seed + i``)."""
        self._seed = seed % 2**32
        self._seeded = False

    def reset(self) -> None:
        self._check_open()
        self._side_channel_manager.generate_side_channel_messages()
        if self._seeded:
            observations, _ = self._vector_env.reset()
        else:
            observations, _ = self._vector_env.reset(seed=self._seed)
            self._seeded = True
        self._new_episodes(np.ones(self._num_envs, dtype=bool))
        self._steps = (
            self._decision_steps(self._observation(observations), np.zeros(self._num_envs)),
            TerminalSteps.empty(self._spec),
        )
        self._pending_actions = None

    def step(self) -> None:
        self._check_open()
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before the first step()")
        self._side_channel_manager.generate_side_channel_messages()
        actions = self._pending_actions
        if actions is None:
            actions = self._spec.action_spec.empty_action(self._num_envs)
        observations, rewards, terminated, truncated, infos = self._vector_env.step(
            self._action(actions)
        )
        rewards = np.asarray(rewards, dtype=np.float32)
        done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        done_indices = np.flatnonzero(done)
        if len(done_indices):
            final_obs = infos["final_obs"]
            terminal_obs = self._observation(np.stack([final_obs[i] for i in done_indices]))
        else:
            terminal_obs = np.zeros((0,) + self._observation.spec.shape, dtype=np.float32)
        terminals = TerminalSteps(
            obs=[terminal_obs],
            reward=rewards[done_indices],
            interrupted=np.asarray(truncated, dtype=bool)[done_indices]
            & ~np.asarray(terminated, dtype=bool)[done_indices],
            agent_id=self._agent_ids[done_indices].copy(),
            group_id=np.zeros(len(done_indices), dtype=np.int32),
            group_reward=np.zeros(len(done_indices), dtype=np.float32),
        )
        self._new_episodes(done)
        decision_rewards = np.where(done, np.float32(0.0), rewards)
        self._steps = (
            self._decision_steps(self._observation(observations), decision_rewards),
            terminals,
        )
        self._pending_actions = None

    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]:
        self._check_open()
        self._check_behavior(behavior_name)
        if self._steps is None:
            raise UnityEnvironmentException("call reset() before get_steps()")
        return self._steps

    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        self._check_open()
        self._check_behavior(behavior_name)
        self._spec.action_spec._validate_action(action, self._num_envs, behavior_name)
        self._pending_actions = action

    def set_action_for_agent(
        self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple
    ) -> None:
        self._check_open()
        self._check_behavior(behavior_name)
        self._spec.action_spec._validate_action(action, 1, behavior_name)
        (indices,) = np.nonzero(self._agent_ids == agent_id)
        if len(indices) == 0:
            raise UnityEnvironmentException(
                f"agent_id {agent_id} did not request a decision at the previous step"
            )
        pending = self._pending_actions or self._spec.action_spec.empty_action(self._num_envs)
        pending = ActionTuple(
            continuous=pending.continuous.copy(), discrete=pending.discrete.copy()
        )
        pending.continuous[indices[0]] = action.continuous[0]
        pending.discrete[indices[0]] = action.discrete[0]
        self._pending_actions = pending

    def close(self) -> None:
        if not self._closed:
            self._vector_env.close()
        self._closed = True
        self._steps = None

    def _new_episodes(self, mask: np.ndarray) -> None:
        count = int(mask.sum())
        self._agent_ids[mask] = np.arange(self._next_agent_id, self._next_agent_id + count)
        self._next_agent_id += count

    def _decision_steps(self, observations: np.ndarray, rewards: np.ndarray) -> DecisionSteps:
        action_mask = None
        if self._spec.action_spec.discrete_size:
            action_mask = [
                np.zeros((self._num_envs, branch), dtype=bool)
                for branch in self._spec.action_spec.discrete_branches
            ]
        return DecisionSteps(
            obs=[observations],
            reward=np.asarray(rewards, dtype=np.float32),
            agent_id=self._agent_ids.copy(),
            action_mask=action_mask,
            group_id=np.zeros(self._num_envs, dtype=np.int32),
            group_reward=np.zeros(self._num_envs, dtype=np.float32),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise UnityEnvironmentException(f"gym:{self._env_id} is closed")

    def _check_behavior(self, behavior_name: BehaviorName) -> None:
        if behavior_name != self._behavior_name:
            raise UnityActionException(
                f"The group {behavior_name} does not correspond to an existing agent group "
                f"in the environment (this one has only {self._behavior_name!r})"
            )


def _box(shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.float32)


class BehaviorGymEnv(gymnasium.Env):
    """One behavior of a BaseEnv as a single-agent ``gymnasium.Env``.

    The behavior must have exactly one agent asking for a decision at every step (for a
    built-in environment: ``agents_per_area=1``, ``num_areas=1``). Observation space: a
    Box per observation (a Tuple of them when there are several). Action space: continuous
    only gives ``Box(-1, 1)``, one branch ``Discrete``, several ``MultiDiscrete``, hybrid a
    ``Tuple(Box, MultiDiscrete)``. A task end is ``terminated``, an interruption
    ``truncated``. ``reset`` resets the wrapped environment; ``reset(seed=...)`` first
    calls its ``reseed(seed)`` (built-in and gym: environments have one) and raises
    UnityEnvironmentException for an environment that cannot be reseeded.
    """

    # gymnasium declares metadata an instance attribute, so not a ClassVar.
    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, env: BaseEnv, behavior_name: BehaviorName | None = None) -> None:
        self._env = env
        if behavior_name is None:
            names = list(env.behavior_specs)
            if len(names) != 1:
                raise UnityEnvironmentException(
                    f"the environment has behaviors {names}; pass behavior_name to pick one"
                )
            behavior_name = names[0]
        if behavior_name not in env.behavior_specs:
            raise UnityEnvironmentException(
                f"no behavior {behavior_name!r}; known: {list(env.behavior_specs)}"
            )
        self._behavior_name = behavior_name
        spec = env.behavior_specs[behavior_name]
        self._action_spec = spec.action_spec
        boxes = [_box(tuple(obs_spec.shape)) for obs_spec in spec.observation_specs]
        self.observation_space = boxes[0] if len(boxes) == 1 else spaces.Tuple(boxes)
        continuous = spaces.Box(
            -1.0, 1.0, shape=(spec.action_spec.continuous_size,), dtype=np.float32
        )
        branches = spec.action_spec.discrete_branches
        if not branches:
            self.action_space = continuous
        elif spec.action_spec.continuous_size == 0:
            self.action_space = (
                spaces.Discrete(branches[0])
                if len(branches) == 1
                else spaces.MultiDiscrete(list(branches))
            )
        else:
            self.action_space = spaces.Tuple((continuous, spaces.MultiDiscrete(list(branches))))

    @property
    def base_env(self) -> BaseEnv:
        return self._env

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            reseed = getattr(self._env, "reseed", None)
            if reseed is None:
                raise UnityEnvironmentException(
                    f"{type(self._env).__name__} cannot be reseeded; call reset() without a seed"
                )
            reseed(seed)
        self._env.reset()
        decision_steps, _ = self._env.get_steps(self._behavior_name)
        self._check_single_agent(len(decision_steps))
        return self._observation(decision_steps.obs, 0), self._info(decision_steps)

    def step(self, action):
        self._env.set_actions(self._behavior_name, self._action_tuple(action))
        self._env.step()
        decision_steps, terminal_steps = self._env.get_steps(self._behavior_name)
        if len(terminal_steps):
            self._check_single_agent(len(terminal_steps))
            interrupted = bool(terminal_steps.interrupted[0])
            return (
                self._observation(terminal_steps.obs, 0),
                float(terminal_steps.reward[0]),
                not interrupted,
                interrupted,
                self._info(terminal_steps),
            )
        self._check_single_agent(len(decision_steps))
        return (
            self._observation(decision_steps.obs, 0),
            float(decision_steps.reward[0]),
            False,
            False,
            self._info(decision_steps),
        )

    def close(self) -> None:
        self._env.close()

    def _info(self, steps: DecisionSteps | TerminalSteps) -> dict[str, Any]:
        """The info dict of a reset or step that produced ``steps``."""
        return {}

    def _observation(self, batches: list[np.ndarray], index: int):
        observations = tuple(batch[index] for batch in batches)
        return observations[0] if len(observations) == 1 else observations

    def _action_tuple(self, action) -> ActionTuple:
        spec = self._action_spec
        if spec.discrete_size == 0:
            continuous, discrete = action, None
        elif spec.continuous_size == 0:
            continuous, discrete = None, action
        else:
            continuous, discrete = action
        continuous_array = (
            np.zeros((1, 0), np.float32)
            if continuous is None
            else np.asarray(continuous, dtype=np.float32).reshape(1, -1)
        )
        discrete_array = (
            np.zeros((1, 0), np.int32)
            if discrete is None
            else np.asarray(discrete, dtype=np.int32).reshape(1, -1)
        )
        return ActionTuple(continuous=continuous_array, discrete=discrete_array)

    def _check_single_agent(self, count: int) -> None:
        if count != 1:
            raise UnityEnvironmentException(
                f"BehaviorGymEnv needs exactly one agent of {self._behavior_name}, got {count} "
                "(for a built-in environment use agents_per_area=1 and num_areas=1)"
            )
