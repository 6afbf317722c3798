"""Recording demonstrations: ``.demo`` files that Unity and ML-Agents read.

:class:`DemonstrationWriter` writes the format Unity's ``DemonstrationRecorder`` writes
(``docs/imitation.md``): the meta record at byte 0, the brain parameters at byte 33, then
one ``AgentInfoActionPairProto`` per agent step, encoded in Rust. The file is written to a
temporary file beside the destination and renamed on :meth:`DemonstrationWriter.close`, so
a reader never sees a half-written demonstration.

:func:`record_demonstration` runs any BaseEnv with a policy (a scripted expert of
``mlagents_fast.envs.builtin.experts``, an exported ``.onnx`` model, a checkpoint, any
callable ``decision_steps -> ActionTuple``) and records one behavior's agents.

Pairing: each record holds the observation the policy saw and the action it chose for it;
the record of an episode's last step (the agent is done) holds a zero action. Unity stores
the action of the *previous* decision with each observation instead; ML-Agents' loader reads
both the same way (a row is a record's observation and action, with the next record's reward
and done), so these files train behavioral cloning on the action actually taken.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, NamedTuple, Self

import numpy as np

from mlagents_fast import _native
from mlagents_fast.atomic_io import atomic_write
from mlagents_fast.envs.base_env import ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps
from mlagents_fast.exceptions import DemonstrationError, InvalidArgumentError

__all__ = [
    "DemonstrationPolicy",
    "DemonstrationSummary",
    "DemonstrationWriter",
    "record_demonstration",
]

API_VERSION = 1
BRAIN_OFFSET = 33


class DemonstrationWriter:
    """Writes one behavior's agent steps to ``path`` (see the module docstring).

    Call :meth:`write_steps` with batches of agent steps, already in file order, then
    :meth:`close` (or use it as a context manager: an exception discards the file).
    ``demonstration_name`` (default: the file's base name) is cut to 16 characters, as
    Unity does.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        behavior_name: str,
        behavior_spec: BehaviorSpec,
        demonstration_name: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.behavior_name = behavior_name
        self.behavior_spec = behavior_spec
        self.demonstration_name = (
            demonstration_name
            if demonstration_name is not None
            else os.path.splitext(os.path.basename(self.path))[0]
        )
        self.number_steps = 0
        self.number_episodes = 0
        self._episode_reward = 0.0
        self._completed_reward = 0.0
        action_spec = behavior_spec.action_spec
        brain = {
            "brain_name": behavior_name,
            "is_training": False,
            "continuous_size": int(action_spec.continuous_size),
            "discrete_branches": tuple(int(b) for b in action_spec.discrete_branches),
        }
        header = self._meta_area() + _native.demo_encode_brain_record(brain)
        self._stack = contextlib.ExitStack()
        self._file: IO[bytes] | None = self._stack.enter_context(atomic_write(self.path))
        self._file.write(header)

    @property
    def mean_reward(self) -> float:
        """Mean reward of the episodes completed so far (0 without one)."""
        return self._completed_reward / max(self.number_episodes, 1)

    def _meta_area(self) -> bytes:
        return _native.demo_encode_meta_area(
            API_VERSION,
            self.demonstration_name,
            self.number_steps,
            self.number_episodes,
            self.mean_reward,
        )

    def write_steps(
        self,
        observations: list[np.ndarray],
        reward: np.ndarray,
        done: np.ndarray,
        agent_id: np.ndarray,
        continuous_actions: np.ndarray | None = None,
        discrete_actions: np.ndarray | None = None,
        max_step_reached: np.ndarray | None = None,
        action_mask: np.ndarray | None = None,
        group_id: np.ndarray | None = None,
        group_reward: np.ndarray | None = None,
    ) -> None:
        """Appends n agent steps: ``observations[i]`` of shape ``(n, *shape_i)``; reward,
        done, agent_id ``(n,)``; actions ``(n, continuous_size)`` and ``(n, branches)``
        (zeros when omitted); ``action_mask`` bool ``(n, sum(branches))``, true = masked."""
        if self._file is None:
            raise DemonstrationError(f"{self.path}: the writer is closed")
        spec = self.behavior_spec
        n = len(agent_id)
        continuous_size = int(spec.action_spec.continuous_size)
        branches = len(spec.action_spec.discrete_branches)
        if len(observations) != len(spec.observation_specs):
            raise InvalidArgumentError(
                f"observations: expected {len(spec.observation_specs)} arrays, "
                f"got {len(observations)}"
            )

        def column(values: Any, dtype: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
            if values is None:
                return np.zeros(shape, dtype=dtype)
            array = np.ascontiguousarray(values, dtype=dtype)
            if array.shape != shape:
                raise InvalidArgumentError(f"{name}: expected shape {shape}, got {array.shape}")
            return array

        reward_column = column(reward, np.float32, (n,), "reward")
        done_column = column(done, bool, (n,), "done")
        batch = {
            "name": self.behavior_name,
            "agent_id": column(agent_id, np.int32, (n,), "agent_id"),
            "reward": reward_column,
            "done": done_column,
            "max_step_reached": column(max_step_reached, bool, (n,), "max_step_reached"),
            "group_id": column(group_id, np.int32, (n,), "group_id"),
            "group_reward": column(group_reward, np.float32, (n,), "group_reward"),
            "observations": [
                (
                    column(obs, np.float32, (n, *obs_spec.shape), f"observations[{i}]"),
                    tuple(int(d) for d in obs_spec.dimension_property),
                    obs_spec.observation_type.value,
                    obs_spec.name,
                )
                for i, (obs, obs_spec) in enumerate(
                    zip(observations, spec.observation_specs, strict=True)
                )
            ],
            "action_mask": (
                None
                if action_mask is None
                else column(
                    action_mask, bool, (n, sum(spec.action_spec.discrete_branches)), "action_mask"
                )
            ),
        }
        continuous = column(
            continuous_actions, np.float32, (n, continuous_size), "continuous_actions"
        )
        discrete = column(discrete_actions, np.int32, (n, branches), "discrete_actions")
        for record in _native.demo_encode_records(batch, continuous, discrete):
            self._file.write(record)
        self.number_steps += n
        for step_reward, step_done in zip(
            reward_column.tolist(), done_column.tolist(), strict=True
        ):
            self._episode_reward += step_reward
            if step_done:
                self.number_episodes += 1
                self._completed_reward += self._episode_reward
                self._episode_reward = 0.0

    def close(self) -> None:
        """Writes the final meta record and moves the file into place."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.write(self._meta_area())
        self._file.seek(0, os.SEEK_END)
        self._file = None
        self._stack.close()

    def abort(self) -> None:
        """Discards the file (nothing is left at ``path``)."""
        if self._file is None:
            return
        self._file = None
        with contextlib.suppress(_Aborted):
            self._stack.__exit__(_Aborted, _Aborted(), None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _Aborted(Exception):
    """Raised into the atomic write to make it discard the temporary file."""


DemonstrationPolicy = Callable[[DecisionSteps], ActionTuple]
"""A policy for recording: decision steps in, actions for those agents out. It may also
have ``episode_ended(agent_ids)``, called with the agents whose episode just ended (a
recurrent policy resets their memories)."""


class DemonstrationSummary(NamedTuple):
    path: str
    number_steps: int
    number_episodes: int
    mean_reward: float


class _PendingStep(NamedTuple):
    observations: list[np.ndarray]
    reward: float
    agent_id: int
    continuous: np.ndarray
    discrete: np.ndarray
    action_mask: np.ndarray | None
    group_id: int
    group_reward: float


def _single_behavior(env: BaseEnv, behavior_name: str | None) -> str:
    names = list(env.behavior_specs.keys())
    if behavior_name is not None:
        if behavior_name not in names:
            raise InvalidArgumentError(
                f"behavior_name: {behavior_name!r} is not a behavior of the environment "
                f"({', '.join(names) or 'none'})"
            )
        return behavior_name
    if len(names) != 1:
        raise InvalidArgumentError(
            f"behavior_name: the environment has {len(names)} behaviors "
            f"({', '.join(names)}); name the one to record"
        )
    return names[0]


def record_demonstration(
    env: BaseEnv,
    policy: DemonstrationPolicy,
    path: str | os.PathLike[str],
    steps: int,
    behavior_name: str | None = None,
    demonstration_name: str | None = None,
) -> DemonstrationSummary:
    """Runs ``env`` with ``policy`` and records ``steps`` agent steps of one behavior.

    Every agent of the behavior is recorded; each episode is written as one contiguous run
    of records when it ends. When ``steps`` records are reached, episodes still running are
    written up to their last recorded step, which is marked as the end of an interrupted
    episode (``done`` and ``max_step_reached``), as Unity marks an episode cut at its
    maximum step. The environment is reset first and left open.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise InvalidArgumentError(f"steps: expected an integer >= 2, got {steps!r}")
    env.reset()
    name = _single_behavior(env, behavior_name)
    spec = env.behavior_specs[name]
    continuous_size = int(spec.action_spec.continuous_size)
    branches = len(spec.action_spec.discrete_branches)
    zero_continuous = np.zeros(continuous_size, np.float32)
    zero_discrete = np.zeros(branches, np.int32)
    pending: dict[int, list[_PendingStep]] = {}
    recorded = 0
    episode_ended = getattr(policy, "episode_ended", None)

    with DemonstrationWriter(path, name, spec, demonstration_name) as writer:

        def flush(episode: list[_PendingStep], done_flags: tuple[bool, bool]) -> None:
            """Writes one agent's episode; its last step gets ``done_flags`` (done, max step)."""
            count = len(episode)
            done = np.zeros(count, bool)
            interrupted = np.zeros(count, bool)
            done[-1], interrupted[-1] = done_flags
            masks = [s.action_mask for s in episode]
            mask = None
            if spec.action_spec.discrete_size > 0 and any(m is not None for m in masks):
                width = sum(spec.action_spec.discrete_branches)
                mask = np.stack([m if m is not None else np.zeros(width, bool) for m in masks])
            writer.write_steps(
                [
                    np.stack([s.observations[i] for s in episode])
                    for i in range(len(spec.observation_specs))
                ],
                np.array([s.reward for s in episode], np.float32),
                done,
                np.array([s.agent_id for s in episode], np.int32),
                np.stack([s.continuous for s in episode]),
                np.stack([s.discrete for s in episode]),
                interrupted,
                mask,
                np.array([s.group_id for s in episode], np.int32),
                np.array([s.group_reward for s in episode], np.float32),
            )

        while recorded < steps:
            decision, terminal = env.get_steps(name)
            ended = []
            for i, agent_id in enumerate(terminal.agent_id.tolist()):
                if recorded >= steps:
                    break
                episode = pending.pop(agent_id, [])
                episode.append(
                    _PendingStep(
                        [obs[i] for obs in terminal.obs],
                        float(terminal.reward[i]),
                        agent_id,
                        zero_continuous,
                        zero_discrete,
                        None,
                        int(terminal.group_id[i]),
                        float(terminal.group_reward[i]),
                    )
                )
                recorded += 1
                flush(episode, (True, bool(terminal.interrupted[i])))
                ended.append(agent_id)
            if ended and episode_ended is not None:
                episode_ended(ended)
            if recorded >= steps:
                break
            if len(decision) == 0:
                env.step()
                continue
            actions = policy(decision)
            continuous = (
                np.asarray(actions.continuous, np.float32).reshape(len(decision), continuous_size)
                if continuous_size
                else np.zeros((len(decision), 0), np.float32)
            )
            discrete = (
                np.asarray(actions.discrete, np.int32).reshape(len(decision), branches)
                if branches
                else np.zeros((len(decision), 0), np.int32)
            )
            mask = (
                np.concatenate(decision.action_mask, axis=1)
                if decision.action_mask is not None
                else None
            )
            for i, agent_id in enumerate(decision.agent_id.tolist()):
                if recorded >= steps:
                    break
                pending.setdefault(agent_id, []).append(
                    _PendingStep(
                        [obs[i] for obs in decision.obs],
                        float(decision.reward[i]),
                        agent_id,
                        continuous[i],
                        discrete[i],
                        None if mask is None else mask[i],
                        int(decision.group_id[i]),
                        float(decision.group_reward[i]),
                    )
                )
                recorded += 1
            env.set_actions(name, actions)
            env.step()
        for agent_id in sorted(pending):
            if pending[agent_id]:
                flush(pending[agent_id], (True, True))
    return DemonstrationSummary(
        writer.path, writer.number_steps, writer.number_episodes, writer.mean_reward
    )
