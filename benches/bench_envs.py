"""Built-in 3DBall raw stepping (issue 4 item 8: >= 5 M agent-steps/s), against numpy.

One agent-step is one decision of one agent: 5 physics steps of 0.02 s. Workloads:
- native: ``_native.BuiltinVectorEnv.step`` with 1000 areas (12,000 agents) and 100 areas
  (1,200 agents), actions from the hand-written balancing controller precomputed once;
- BaseEnv: the same through ``BuiltinEnv`` (``set_actions``, ``step``, ``get_steps``),
  what a trainer pays per step;
- numpy: the same 3DBall step (quaternion platform, rolling ball, drag, falls and resets)
  written with whole-array numpy operations, checked against ours on a shared start state
  before it is timed.
"""

from __future__ import annotations

import numpy as np
from common import best_time, report
from mlagents_fast import _native
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.envs.builtin import BuiltinEnv

TARGET_AGENT_STEPS_PER_S = 5e6
DT = np.float32(0.02)
DECISION_PERIOD = 5
HALF_EXTENT = np.float32(2.5)
HALF_THICKNESS = np.float32(0.25)
ROTATION_LIMIT = np.float32(0.25)
ROLLING = np.float32(5.0 / 7.0)
DRAG = np.float32(0.25)


def balancing_actions(obs: np.ndarray) -> np.ndarray:
    target_z = np.clip(0.04 * obs[:, 2] + 0.05 * obs[:, 5], -0.2, 0.2)
    target_x = np.clip(-0.04 * obs[:, 4] - 0.05 * obs[:, 7], -0.2, 0.2)
    actions = np.stack([(target_z - obs[:, 0]) * 20.0, (target_x - obs[:, 1]) * 20.0], axis=1)
    return np.clip(actions, -1.0, 1.0).astype(np.float32)


def axis_angle(axis: int, degrees: np.ndarray) -> np.ndarray:
    half = np.radians(degrees) * 0.5
    q = np.zeros((len(degrees), 4), np.float32)
    q[:, axis] = np.sin(half)
    q[:, 3] = np.cos(half)
    return q


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a.T
    bx, by, bz, bw = b.T
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=1,
    )


class NumpyBall3D:
    """The 3DBall step of ``rust/core/src/envs/ball3d.rs`` over whole arrays."""

    def __init__(self, num_agents: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.q = np.zeros((num_agents, 4), np.float32)
        self.p = np.zeros((num_agents, 3), np.float32)
        self.v = np.zeros((num_agents, 3), np.float32)
        self.radius = np.full(num_agents, 0.5, np.float32)
        self.mass = np.ones(num_agents, np.float32)
        self.gravity = np.full(num_agents, 9.81, np.float32)
        self.begin(np.ones(num_agents, bool))

    def begin(self, mask: np.ndarray) -> None:
        n = int(mask.sum())
        tilt = self.rng.uniform(-10, 10, (n, 2)).astype(np.float32)
        self.q[mask] = multiply(axis_angle(0, tilt[:, 0]), axis_angle(2, tilt[:, 1]))
        self.v[mask] = 0.0
        start = self.rng.uniform(-1.5, 1.5, (n, 2)).astype(np.float32)
        self.p[mask] = np.stack([start[:, 0], np.full(n, 4.0, np.float32), start[:, 1]], axis=1)

    def observe(self) -> np.ndarray:
        return np.concatenate([self.q[:, 2:3], self.q[:, 0:1], self.p, self.v], axis=1)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        action = np.clip(actions, -1.0, 1.0)
        rotate_z = axis_angle(2, 2.0 * action[:, 0])
        rotate_x = axis_angle(0, 2.0 * action[:, 1])
        alive = np.ones(len(action), bool)
        for _ in range(DECISION_PERIOD):
            q = self.q
            turn = alive & (
                ((q[:, 2] < ROTATION_LIMIT) & (action[:, 0] > 0))
                | ((q[:, 2] > -ROTATION_LIMIT) & (action[:, 0] < 0))
            )
            self.q = np.where(turn[:, None], multiply(q, rotate_z), q)
            q = self.q
            turn = alive & (
                ((q[:, 0] < ROTATION_LIMIT) & (action[:, 1] > 0))
                | ((q[:, 0] > -ROTATION_LIMIT) & (action[:, 1] < 0))
            )
            self.q = np.where(turn[:, None], multiply(q, rotate_x), q)
            x, y, z, w = self.q.T
            local_x = np.stack(
                [1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], 1
            )
            normal = np.stack(
                [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], 1
            )
            local_z = np.stack(
                [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], 1
            )
            contact = HALF_THICKNESS + self.radius
            height = np.einsum("ij,ij->i", self.p, normal)
            above = (np.abs(np.einsum("ij,ij->i", self.p, local_x)) <= HALF_EXTENT) & (
                np.abs(np.einsum("ij,ij->i", self.p, local_z)) <= HALF_EXTENT
            )
            touching = above & (height > 0) & (height <= contact + 1e-3)
            gravity = np.zeros_like(self.p)
            gravity[:, 1] = -self.gravity
            along = gravity[:, 1] * normal[:, 1]
            rolling = ROLLING * (gravity - along[:, None] * normal)
            acceleration = np.where(touching[:, None], rolling, gravity)
            drag = DRAG * (2 * self.radius) ** 2 / self.mass
            acceleration -= drag[:, None] * self.v
            v = np.where(alive[:, None], self.v + acceleration * DT, self.v)
            p = np.where(alive[:, None], self.p + v * DT, self.p)
            height = np.einsum("ij,ij->i", p, normal)
            above = (np.abs(np.einsum("ij,ij->i", p, local_x)) <= HALF_EXTENT) & (
                np.abs(np.einsum("ij,ij->i", p, local_z)) <= HALF_EXTENT
            )
            push = alive & above & (height < contact) & (height > 0)
            p = np.where(push[:, None], p + (contact - height)[:, None] * normal, p)
            into = np.einsum("ij,ij->i", v, normal)
            v = np.where((push & (into < 0))[:, None], v - into[:, None] * normal, v)
            self.p, self.v = p, v
            fell = alive & ((p[:, 1] < -2) | (np.abs(p[:, 0]) > 3) | (np.abs(p[:, 2]) > 3))
            alive &= ~fell
        self.q /= np.linalg.norm(self.q, axis=1, keepdims=True)
        rewards = np.where(alive, np.float32(0.1), np.float32(-1.0))
        terminal_obs = self.observe()[~alive]
        self.begin(~alive)
        return rewards, terminal_obs


def start_from_observations(env: NumpyBall3D, obs: np.ndarray) -> None:
    """Puts the numpy env in the state ``obs`` shows (start of episode: mass 1, scale 1).

    The start rotation is x by a then z by b; obs holds q.z = cos(a/2) sin(b/2) and
    q.x = sin(a/2) cos(b/2): solved for the half angles by fixed-point iteration.
    """
    qz, qx = obs[:, 0].astype(np.float64), obs[:, 1].astype(np.float64)
    half_x, half_z = np.arcsin(qx), np.arcsin(qz)
    for _ in range(20):
        half_x = np.arcsin(qx / np.cos(half_z))
        half_z = np.arcsin(qz / np.cos(half_x))
    env.q = np.stack(
        [
            np.sin(half_x) * np.cos(half_z),
            -np.sin(half_x) * np.sin(half_z),
            np.cos(half_x) * np.sin(half_z),
            np.cos(half_x) * np.cos(half_z),
        ],
        axis=1,
    ).astype(np.float32)
    env.p = obs[:, 2:5].copy()
    env.v = obs[:, 5:8].copy()


def check_numpy_matches_ours() -> None:
    native = _native.BuiltinVectorEnv("3DBall", 0, 10)
    obs = native.reset()[0]["decision_obs"][0]
    reference = NumpyBall3D(len(obs), seed=0)
    start_from_observations(reference, obs)
    no_discrete = np.zeros((len(obs), 0), np.int32)
    for _ in range(30):
        actions = balancing_actions(obs)
        (outputs,) = native.step([(actions, no_discrete)])
        reference.step(actions)
        obs = outputs["decision_obs"][0]
        assert len(outputs["terminal_agent_id"]) == 0, "the controller dropped a ball"
        np.testing.assert_allclose(reference.observe(), obs, atol=2e-4)


def bench_areas(num_areas: int) -> None:
    """Times one step of ``num_areas`` 3DBall areas natively, through BaseEnv and in numpy.

    Single calls, best of many: on the shared VM a longer timed loop mostly measures
    preemption by other processes.
    """
    native = _native.BuiltinVectorEnv("3DBall", 0, num_areas)
    n = native.num_agents
    actions = balancing_actions(native.reset()[0]["decision_obs"][0])
    batch = [(actions, np.zeros((n, 0), np.int32))]
    native_s = best_time(lambda: native.step(batch), repeat=100, number=1)

    env = BuiltinEnv("3DBall", seed=0, num_areas=num_areas)
    env.reset()
    action_tuple = ActionTuple(continuous=actions)

    def base_env_step() -> None:
        env.set_actions("3DBall?team=0", action_tuple)
        env.step()
        env.get_steps("3DBall?team=0")

    base_env_s = best_time(base_env_step, repeat=100, number=1)

    reference = NumpyBall3D(n, seed=0)
    numpy_s = best_time(lambda: reference.step(actions), repeat=20, number=1)

    rate = n / native_s
    verdict = "meets" if rate >= TARGET_AGENT_STEPS_PER_S else "misses"
    report(
        f"3DBall step, {n} agents (native)",
        native_s,
        {"numpy": numpy_s},
        f"{rate / 1e6:.1f} M agent-steps/s",
    )
    report(
        f"3DBall step, {n} agents (BaseEnv)",
        base_env_s,
        {"numpy": numpy_s},
        f"{n / base_env_s / 1e6:.1f} M agent-steps/s",
    )
    print(f"  target >= {TARGET_AGENT_STEPS_PER_S / 1e6:.0f} M agent-steps/s: {verdict}")


def main() -> None:
    check_numpy_matches_ours()
    for num_areas in (1000, 100):
        bench_areas(num_areas)


if __name__ == "__main__":
    main()
