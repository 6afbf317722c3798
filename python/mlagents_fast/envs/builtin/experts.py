"""Scripted experts for the built-in environments: demonstrations without Unity.

Each expert maps a batch of observations to actions with the environment's rules (as
documented in ``rust/core/src/envs/``), so it acts through any BaseEnv of that spec: the
in-process built-in, a launcher behind the gRPC link, or worker processes. Use them to record
``.demo`` files (``mlagents-fast-env --record-demo PATH --policy expert --env builtin:3DBall``)
and to test imitation learning.

============================  ================================================================
Built-in                      Expert
============================  ================================================================
``3DBall``                    Tilts the platform so the ball rolls back to the centre, damped
                              by its velocity (a PD controller); keeps the ball up for whole
                              episodes.
``GridWorld``                 Shortest path to the goal around the pit (breadth-first search
``VisualGridWorld``           on the 5 x 5 grid read from the observation).
``GoalSeeker1D`` and its      Moves straight to the goal at full speed, then the exact rest.
``Discrete``/``Hybrid``
============================  ================================================================
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from mlagents_fast.envs.base_env import ActionTuple, DecisionSteps

__all__ = ["EXPERTS", "expert_for", "expert_names"]

Expert = Callable[[DecisionSteps], ActionTuple]


def ball3d_expert(steps: DecisionSteps) -> ActionTuple:
    """Observations: rotation z, rotation x, ball position (x, y, z), ball velocity (x, y, z)
    relative to the platform. A positive z rotation rolls the ball toward -x, a positive x
    rotation toward +z: aim the platform's tilt against the ball's offset and velocity."""
    obs = np.asarray(steps.obs[0], dtype=np.float32)
    rot_z, rot_x = obs[:, 0], obs[:, 1]
    x, z, vx, vz = obs[:, 2], obs[:, 4], obs[:, 5], obs[:, 7]
    target_rot_z = np.clip(0.04 * x + 0.05 * vx, -0.2, 0.2)
    target_rot_x = np.clip(-0.04 * z - 0.05 * vz, -0.2, 0.2)
    actions = np.stack([(target_rot_z - rot_z) * 20.0, (target_rot_x - rot_x) * 20.0], axis=1)
    return ActionTuple(continuous=np.clip(actions, -1.0, 1.0).astype(np.float32))


GRID_SIZE = 5
PIXELS_PER_CELL = 4
# Branch values of GridWorld's moves and their (dx, dz).
GRID_MOVES = {1: (0, 1), 2: (0, -1), 3: (-1, 0), 4: (1, 0)}


def _first_move(agent: tuple[int, int], goal: tuple[int, int], pit: tuple[int, int]) -> int:
    """The first move of a shortest path from agent to goal that never enters the pit
    (0, no move, if the agent is already there or cannot get there)."""
    if agent == goal:
        return 0
    first: dict[tuple[int, int], int] = {agent: 0}
    queue = deque([agent])
    while queue:
        cell = queue.popleft()
        for move, (dx, dz) in GRID_MOVES.items():
            nxt = (cell[0] + dx, cell[1] + dz)
            if not (0 <= nxt[0] < GRID_SIZE and 0 <= nxt[1] < GRID_SIZE):
                continue
            if nxt in first or nxt == pit:
                continue
            first[nxt] = first[cell] or move
            if nxt == goal:
                return first[nxt]
            queue.append(nxt)
    return 0


def _cells_from_vector(obs: np.ndarray) -> np.ndarray:
    """(n, 3, 2) cells (agent, goal, pit) as (x, z) from the 6 scaled coordinates."""
    return np.rint(obs.reshape(-1, 3, 2) * (GRID_SIZE - 1)).astype(np.int64)


def _cells_from_image(obs: np.ndarray) -> np.ndarray:
    """(n, 3, 2) cells from ``[3, 20, 20]`` images (channel = object, row 0 = highest z)."""
    n = obs.shape[0]
    per_cell = obs.reshape(n, 3, GRID_SIZE, PIXELS_PER_CELL, GRID_SIZE, PIXELS_PER_CELL)
    occupancy = per_cell.mean(axis=(3, 5)).reshape(n, 3, GRID_SIZE * GRID_SIZE)
    flat = occupancy.argmax(axis=2)
    row, column = np.divmod(flat, GRID_SIZE)
    return np.stack([column, GRID_SIZE - 1 - row], axis=2)


def grid_world_expert(steps: DecisionSteps) -> ActionTuple:
    obs = np.asarray(steps.obs[0], dtype=np.float32)
    cells = _cells_from_image(obs) if obs.ndim == 4 else _cells_from_vector(obs)
    moves = [
        _first_move(tuple(agent), tuple(goal), tuple(pit)) for agent, goal, pit in cells.tolist()
    ]
    return ActionTuple(discrete=np.asarray(moves, dtype=np.int32).reshape(-1, 1))


GOAL_SEEKER_STRIDE = 0.2


def goal_seeker_expert(steps: DecisionSteps) -> ActionTuple:
    """Observations: position, goal. Continuous moves by 0.2 * value; discrete picks left,
    stay or right by 0.2; hybrid picks the direction and a stride 0.1 * (1 + value)."""
    obs = np.asarray(steps.obs[0], dtype=np.float32)
    distance = obs[:, 1] - obs[:, 0]
    direction = np.sign(distance).astype(np.int32) + 1  # 0 left, 1 stay, 2 right
    return ActionTuple(
        continuous=np.clip(distance / GOAL_SEEKER_STRIDE, -1.0, 1.0)[:, None].astype(np.float32),
        discrete=direction[:, None],
    )


def _goal_seeker_hybrid(steps: DecisionSteps) -> ActionTuple:
    action = goal_seeker_expert(steps)
    distance = np.abs(np.asarray(steps.obs[0], dtype=np.float32)[:, 1:2] - steps.obs[0][:, 0:1])
    stride = np.clip(distance / (0.5 * GOAL_SEEKER_STRIDE) - 1.0, -1.0, 1.0)
    return ActionTuple(continuous=stride.astype(np.float32), discrete=action.discrete)


def _only(expert: Expert, continuous: bool) -> Expert:
    def act(steps: DecisionSteps) -> ActionTuple:
        action = expert(steps)
        return (
            ActionTuple(continuous=action.continuous)
            if continuous
            else ActionTuple(discrete=action.discrete)
        )

    return act


EXPERTS: dict[str, Expert] = {
    "3DBall": ball3d_expert,
    "GridWorld": grid_world_expert,
    "VisualGridWorld": grid_world_expert,
    "GoalSeeker1D": _only(goal_seeker_expert, continuous=True),
    "GoalSeeker1DDiscrete": _only(goal_seeker_expert, continuous=False),
    "GoalSeeker1DHybrid": _goal_seeker_hybrid,
}
"""Built-in environment name -> its expert: ``expert(decision_steps) -> ActionTuple``."""


def expert_names() -> list[str]:
    return sorted(EXPERTS)


def expert_for(env_name: str) -> Expert:
    """The expert of built-in ``env_name`` (``3DBall`` or ``builtin:3DBall``)."""
    name = env_name.removeprefix("builtin:")
    try:
        return EXPERTS[name]
    except KeyError:
        raise KeyError(
            f"no scripted expert for {env_name!r}; experts exist for: {', '.join(expert_names())}"
        ) from None
