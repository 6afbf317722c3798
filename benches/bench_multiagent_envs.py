"""Raw stepping of the built-ins that need attention, groups and teams: Sorter (buffer sensor of
20 x 23 floats per agent), DungeonEscape (3 agents per area, one group, agents that leave) and
Tennis (two team behaviors), against whole-array numpy versions of the same rules.

One agent-step is one decision of one agent. Rows: ``_native.BuiltinVectorEnv.step`` with
seeded random allowed actions precomputed once (what a vectorized caller pays), and the same
through ``BuiltinEnv`` (``set_actions``, ``step``, ``get_steps``: what a trainer pays). Each
numpy version starts from the state our observations show after a reset and is checked to give
our observations, rewards and episode ends, step by step, before it is timed (until the first
episode restart, whose random draws differ).
"""

from __future__ import annotations

import numpy as np
from common import best_time, report
from mlagents_fast import _native
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.envs.builtin import BuiltinEnv

F32 = np.float32


# --- Sorter ---------------------------------------------------------------------------------

SORTER_GRID, SORTER_TILES = 7, 20
SORTER_CENTRE = SORTER_GRID // 2
SORTER_PENALTY = F32(-1.0 / 200.0)
SORTER_MOVES = np.array([(0, 1), (0, -1), (-1, 0), (1, 0)])


def sorter_border() -> np.ndarray:
    last = SORTER_GRID - 1
    cells = [(x, 0) for x in range(1, last)] + [(last, y) for y in range(1, last)]
    cells += [(x, last) for x in range(last - 1, 0, -1)] + [(0, y) for y in range(last - 1, 0, -1)]
    return np.array(cells)


class NumpySorter:
    """The Sorter rules of ``rust/core/src/envs/sorter.rs`` over whole arrays (one row per
    agent, tile rows in number order)."""

    def __init__(self, vector: np.ndarray, tiles: np.ndarray, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.border = sorter_border()
        self.x = np.rint(vector[:, 0] * SORTER_CENTRE).astype(np.int64) + SORTER_CENTRE
        self.y = np.rint(vector[:, 1] * SORTER_CENTRE).astype(np.int64) + SORTER_CENTRE
        self.valid = np.abs(tiles).sum(axis=2) > 0
        scale = SORTER_GRID - 1
        self.tx = self.x[:, None] + np.rint(tiles[:, :, SORTER_TILES] * scale).astype(np.int64)
        self.ty = self.y[:, None] + np.rint(tiles[:, :, SORTER_TILES + 1] * scale).astype(np.int64)
        self.visited = tiles[:, :, SORTER_TILES + 2] > 0.5
        self.next = self.visited.sum(axis=1)

    def begin(self, agents: np.ndarray) -> None:
        n = len(agents)
        count = self.rng.integers(1, SORTER_TILES + 1, n)
        places = np.argsort(self.rng.random((n, SORTER_TILES)), axis=1)
        self.valid[agents] = np.arange(SORTER_TILES) < count[:, None]
        self.tx[agents] = self.border[places, 0]
        self.ty[agents] = self.border[places, 1]
        self.visited[agents] = False
        self.next[agents] = 0
        self.x[agents] = SORTER_CENTRE
        self.y[agents] = SORTER_CENTRE

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.x)
        vector = np.stack([self.x - SORTER_CENTRE, self.y - SORTER_CENTRE], axis=1)
        tiles = np.zeros((n, SORTER_TILES, SORTER_TILES + 3), F32)
        tiles[:, :, :SORTER_TILES] = np.eye(SORTER_TILES, dtype=F32)
        scale = F32(SORTER_GRID - 1)
        tiles[:, :, SORTER_TILES] = (self.tx - self.x[:, None]).astype(F32) / scale
        tiles[:, :, SORTER_TILES + 1] = (self.ty - self.y[:, None]).astype(F32) / scale
        tiles[:, :, SORTER_TILES + 2] = self.visited
        tiles[~self.valid] = 0.0
        return vector.astype(F32) / F32(SORTER_CENTRE), tiles

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewards and episode ends; ended agents are restarted after their terminal obs."""
        move = SORTER_MOVES[actions[:, 0]]
        self.x = np.clip(self.x + move[:, 0], 0, SORTER_GRID - 1)
        self.y = np.clip(self.y + move[:, 1], 0, SORTER_GRID - 1)
        on = (
            self.valid & ~self.visited & (self.tx == self.x[:, None]) & (self.ty == self.y[:, None])
        )
        hit = on.any(axis=1)
        index = np.argmax(on, axis=1)
        correct = hit & (index == self.next)
        wrong = hit & ~correct
        self.visited[np.flatnonzero(correct), index[correct]] = True
        self.next += correct
        reward = SORTER_PENALTY + correct.astype(F32) - wrong.astype(F32)
        done = wrong | (correct & (self.next == self.valid.sum(axis=1)))
        return reward.astype(F32), done

    def masks(self) -> np.ndarray:
        nx = self.x[:, None] + SORTER_MOVES[:, 0]
        ny = self.y[:, None] + SORTER_MOVES[:, 1]
        return (nx < 0) | (nx >= SORTER_GRID) | (ny < 0) | (ny >= SORTER_GRID)


def random_allowed(rng: np.random.Generator, masked: np.ndarray) -> np.ndarray:
    return np.argmax(rng.random(masked.shape) * ~masked, axis=1)[:, None].astype(np.int32)


def check_sorter(num_areas: int = 20) -> None:
    native = _native.BuiltinVectorEnv("Sorter", 5, num_areas)
    (batch,) = native.reset()
    reference = NumpySorter(*batch["decision_obs"], seed=0)
    comparable = np.ones(native.num_agents, bool)
    rng = np.random.default_rng(1)
    for _ in range(40):
        assert np.array_equal(reference.masks()[comparable], batch["action_mask"][comparable])
        actions = random_allowed(rng, batch["action_mask"])
        ids = batch["decision_agent_id"]
        (batch,) = native.step([(np.zeros((len(actions), 0), F32), actions)])
        reward, done = reference.step(actions)
        vector, tiles = reference.observe()
        # Ours lists the ended agents in agent order, under their old ids, with their last
        # observation.
        index_of = {int(agent_id): index for index, agent_id in enumerate(ids)}
        ended = np.array([index_of[int(i)] for i in batch["terminal_agent_id"]], np.int64)
        assert np.array_equal(np.isin(np.arange(len(ids)), ended)[comparable], done[comparable])
        keep = comparable[ended]
        agents = ended[keep]
        assert np.array_equal(batch["terminal_reward"][keep], reward[agents])
        assert np.allclose(batch["terminal_obs"][0][keep], vector[agents], atol=1e-6)
        assert np.allclose(batch["terminal_obs"][1][keep], tiles[agents], atol=1e-6)
        terminal = np.flatnonzero(done)
        live = comparable & ~done
        assert np.array_equal(batch["decision_reward"][live], reward[live])
        assert np.allclose(batch["decision_obs"][0][live], vector[live], atol=1e-6)
        assert np.allclose(batch["decision_obs"][1][live], tiles[live], atol=1e-6)
        comparable &= ~done  # restarted episodes draw from another random stream
        reference.begin(terminal)
    assert comparable.sum() > 0


def numpy_sorter_step(reference: NumpySorter, actions: np.ndarray) -> None:
    _, done = reference.step(actions)
    reference.observe()
    reference.begin(np.flatnonzero(done))
    reference.observe()
    reference.masks()


# --- DungeonEscape --------------------------------------------------------------------------

ROOM, AGENTS, DUNGEON_MAX = 5, 3, 60
DUNGEON_MOVES = np.array([(0, 0), (0, 1), (0, -1), (-1, 0), (1, 0)])


class NumpyDungeon:
    """The DungeonEscape rules of ``rust/core/src/envs/dungeon_escape.rs`` over whole arrays
    (one row per area, one column per agent slot)."""

    def __init__(self, obs: np.ndarray, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        rows = obs.reshape(-1, AGENTS, obs.shape[1])
        scale = ROOM - 1
        self.ax = np.rint(rows[:, :, 0] * scale).astype(np.int64)
        self.ay = np.rint(rows[:, :, 1] * scale).astype(np.int64)
        self.alive = np.ones(self.ax.shape, bool)
        self.has_key = np.zeros(self.ax.shape, bool)
        first = rows[:, 0]
        self.dragon = first[:, 3] > 0.5
        self.gx = self.ax[:, 0] + np.rint(first[:, 4] * scale).astype(np.int64)
        self.gy = self.ay[:, 0] + np.rint(first[:, 5] * scale).astype(np.int64)
        self.key = np.zeros(len(first), bool)
        self.kx = np.zeros(len(first), np.int64)
        self.ky = np.zeros(len(first), np.int64)
        self.door_x = self.ax[:, 0] + np.rint(first[:, 9] * scale).astype(np.int64)
        self.door_y = self.ay[:, 0] + np.rint(first[:, 10] * scale).astype(np.int64)
        self.decisions = np.zeros(len(first), np.int64)

    def begin(self, areas: np.ndarray) -> None:
        n = len(areas)
        cells = np.argsort(self.rng.random((n, ROOM * ROOM)), axis=1)
        self.door_x[areas], self.door_y[areas] = self.rng.integers(0, ROOM, n), ROOM - 1
        self.gx[areas], self.gy[areas] = self.rng.integers(0, ROOM, n), self.rng.integers(0, 4, n)
        # Distinct cells that are neither the door nor the dragon's.
        door = self.door_y[areas] * ROOM + self.door_x[areas]
        dragon = self.gy[areas] * ROOM + self.gx[areas]
        free = (cells != door[:, None]) & (cells != dragon[:, None])
        chosen = np.take_along_axis(cells, np.argsort(~free, axis=1, kind="stable"), axis=1)
        self.ax[areas], self.ay[areas] = chosen[:, :AGENTS] % ROOM, chosen[:, :AGENTS] // ROOM
        self.alive[areas], self.has_key[areas] = True, False
        self.dragon[areas], self.key[areas] = True, False
        self.decisions[areas] = 0

    def observe(self) -> np.ndarray:
        scale = F32(ROOM - 1)
        areas, slots = self.ax.shape
        out = np.zeros((areas, slots, 11 + 4 * (AGENTS - 1)), F32)
        out[:, :, 0] = self.ax / scale
        out[:, :, 1] = self.ay / scale
        out[:, :, 2] = self.has_key
        for flag, x, y, start in (
            (self.dragon, self.gx, self.gy, 3),
            (self.key, self.kx, self.ky, 6),
        ):
            out[:, :, start] = flag[:, None]
            out[:, :, start + 1] = np.where(flag[:, None], (x[:, None] - self.ax) / scale, 0)
            out[:, :, start + 2] = np.where(flag[:, None], (y[:, None] - self.ay) / scale, 0)
        out[:, :, 9] = (self.door_x[:, None] - self.ax) / scale
        out[:, :, 10] = (self.door_y[:, None] - self.ay) / scale
        for other in range(1, AGENTS):
            mate = (np.arange(AGENTS) + other) % AGENTS
            alive = self.alive[:, mate]
            start = 11 + 4 * (other - 1)
            out[:, :, start] = alive
            out[:, :, start + 1] = np.where(alive, (self.ax[:, mate] - self.ax) / scale, 0)
            out[:, :, start + 2] = np.where(alive, (self.ay[:, mate] - self.ay) / scale, 0)
            out[:, :, start + 3] = alive & self.has_key[:, mate]
        return out

    def masks(self) -> np.ndarray:
        nx = self.ax[:, :, None] + DUNGEON_MOVES[:, 0]
        ny = self.ay[:, :, None] + DUNGEON_MOVES[:, 1]
        return (nx < 0) | (nx >= ROOM) | (ny < 0) | (ny >= ROOM)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``actions`` for the alive agents (area-major). Returns the agents that left, the
        areas that escaped and the areas interrupted."""
        full = np.zeros(self.ax.shape, np.int64)
        full[self.alive] = actions[:, 0]
        move = DUNGEON_MOVES[full]
        nx, ny = self.ax + move[..., 0], self.ay + move[..., 1]
        inside = (nx >= 0) & (nx < ROOM) & (ny >= 0) & (ny < ROOM) & self.alive
        self.ax, self.ay = np.where(inside, nx, self.ax), np.where(inside, ny, self.ay)
        on_dragon = self.alive & self.dragon[:, None] & (self.ax == self.gx[:, None])
        on_dragon &= self.ay == self.gy[:, None]
        slain = on_dragon.any(axis=1)
        slayer = np.argmax(on_dragon, axis=1)
        left = np.zeros(self.ax.shape, bool)
        left[np.flatnonzero(slain), slayer[slain]] = True
        self.alive &= ~left
        self.dragon &= ~slain
        self.key |= slain
        self.kx = np.where(slain, self.gx, self.kx)
        self.ky = np.where(slain, self.gy, self.ky)
        on_key = self.alive & self.key[:, None] & (self.ax == self.kx[:, None])
        on_key &= self.ay == self.ky[:, None]
        taken = on_key.any(axis=1)
        self.has_key[np.flatnonzero(taken), np.argmax(on_key, axis=1)[taken]] = True
        self.key &= ~taken
        at_door = (self.ax == self.door_x[:, None]) & (self.ay == self.door_y[:, None])
        escaped = (self.alive & self.has_key & at_door).any(axis=1)
        self.decisions += 1
        interrupted = ~escaped & (self.decisions >= DUNGEON_MAX)
        return left, escaped, interrupted


def check_dungeon(num_areas: int = 200) -> None:
    native = _native.BuiltinVectorEnv("DungeonEscape", 5, num_areas)
    (batch,) = native.reset()
    reference = NumpyDungeon(batch["decision_obs"][0], seed=0)
    rng = np.random.default_rng(1)
    compared_leavers = 0
    for _ in range(DUNGEON_MAX):
        masks = reference.masks()[reference.alive]
        assert np.array_equal(masks, batch["action_mask"])
        actions = random_allowed(rng, batch["action_mask"])
        (batch,) = native.step([(np.zeros((len(actions), 0), F32), actions)])
        left, escaped, interrupted = reference.step(actions)
        if escaped.any() or interrupted.any():
            break  # from here on, restarted areas draw from another random stream
        obs = reference.observe()
        assert np.allclose(batch["terminal_obs"][0], obs[left], atol=1e-6)
        assert np.array_equal(
            batch["terminal_group_id"], (np.nonzero(left)[0] + 1).astype(np.int32)
        )
        assert np.allclose(batch["decision_obs"][0], obs[reference.alive], atol=1e-6)
        assert np.all(batch["decision_group_reward"] == 0.0)
        compared_leavers += int(left.sum())
    assert compared_leavers > 0


def numpy_dungeon_step(reference: NumpyDungeon, actions: np.ndarray) -> None:
    """``actions``: one per agent slot, ``(areas * 3, 1)``; the alive agents' are used."""
    alive_actions = actions.reshape(-1, AGENTS)[reference.alive][:, None]
    _, escaped, interrupted = reference.step(alive_actions)
    reference.observe()
    reference.begin(np.flatnonzero(escaped | interrupted | ~reference.alive.any(axis=1)))
    reference.observe()
    reference.masks()


# --- Tennis ---------------------------------------------------------------------------------

HALF, SPEED, RADIUS, TOP, SPEED_UP = F32(0.2), F32(0.08), F32(0.03), F32(0.12), F32(1.05)
DEPTH = F32(0.9)


def bounce(y: np.ndarray, vy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    above, below = y > 1, y < -1
    y = np.where(above, F32(2) - y, np.where(below, F32(-2) - y, y))
    vy = np.where(above | below, -vy, vy)
    return y.astype(F32), vy.astype(F32)


class NumpyTennis:
    """The Tennis rules of ``rust/core/src/envs/tennis.rs`` (one paddle per team) over whole
    arrays, one row per area."""

    def __init__(self, team0_obs: np.ndarray, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.paddles = np.stack([team0_obs[:, 1], team0_obs[:, 6]], axis=1).astype(F32)
        self.ball = team0_obs[:, 2:4].astype(F32)
        self.velocity = (team0_obs[:, 4:6] * TOP).astype(F32)

    def begin(self, areas: np.ndarray) -> None:
        n = len(areas)
        self.paddles[areas] = self.rng.uniform(-0.5, 0.5, (n, 2))
        self.ball[areas] = np.stack([np.zeros(n), self.rng.uniform(-0.5, 0.5, n)], axis=1)
        angle = self.rng.uniform(-np.pi / 4, np.pi / 4, n)
        side = np.where(self.rng.random(n) < 0.5, -1.0, 1.0)
        self.velocity[areas] = np.stack([side * np.cos(angle), np.sin(angle)], axis=1) * 0.05

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.ball)
        team0 = np.stack(
            [
                np.full(n, -DEPTH),
                self.paddles[:, 0],
                self.ball[:, 0],
                self.ball[:, 1],
                self.velocity[:, 0] / TOP,
                self.velocity[:, 1] / TOP,
                self.paddles[:, 1],
            ],
            axis=1,
        )
        team1 = np.stack(
            [
                np.full(n, -DEPTH),
                self.paddles[:, 1],
                -self.ball[:, 0],
                self.ball[:, 1],
                -self.velocity[:, 0] / TOP,
                self.velocity[:, 1] / TOP,
                self.paddles[:, 0],
            ],
            axis=1,
        )
        return team0.astype(F32), team1.astype(F32)

    def step(self, team0: np.ndarray, team1: np.ndarray) -> np.ndarray:
        """Returns the scorer per area: 0, 1, or -1 for none."""
        moves = np.stack([team0[:, 0], team1[:, 0]], axis=1).astype(F32) - 1
        self.paddles = np.clip(self.paddles + SPEED * moves, -(1 - HALF), 1 - HALF).astype(F32)
        old_x, old_y = self.ball[:, 0], self.ball[:, 1]
        vx, vy = self.velocity[:, 0], self.velocity[:, 1]
        x, y = (old_x + vx).astype(F32), (old_y + vy).astype(F32)
        y, vy = bounce(y, vy)
        defending = (vx >= 0).astype(np.int64)
        depth = np.where(defending == 0, -DEPTH, DEPTH).astype(F32)
        crosses = ((old_x - depth) * (x - depth) <= 0) & (old_x != depth)
        with np.errstate(divide="ignore", invalid="ignore"):
            along = ((depth - old_x) / (x - old_x)).astype(F32)
        crossing = (old_y + along * (y - old_y)).astype(F32)
        paddle = self.paddles[np.arange(len(x)), defending]
        offset = ((crossing - paddle) / (HALF + RADIUS)).astype(F32)
        hit = crosses & (np.abs(offset) <= 1)
        speed = np.minimum(np.sqrt(vx * vx + vy * vy) * SPEED_UP, TOP).astype(F32)
        angle = (offset * F32(np.pi / 3)).astype(F32)
        away = np.where(defending == 0, F32(1), F32(-1))
        new_vx = (away * speed * np.cos(angle)).astype(F32)
        new_vy = (speed * np.sin(angle)).astype(F32)
        hit_x = (depth + new_vx * (1 - along)).astype(F32)
        hit_y, hit_vy = bounce((crossing + new_vy * (1 - along)).astype(F32), new_vy)
        x, y = np.where(hit, hit_x, x), np.where(hit, hit_y, y)
        vx, vy = np.where(hit, new_vx, vx), np.where(hit, hit_vy, vy)
        self.ball = np.stack([x, y], axis=1).astype(F32)
        self.velocity = np.stack([vx, vy], axis=1).astype(F32)
        return np.where(x < -1, 1, np.where(x > 1, 0, -1))


def check_tennis(num_areas: int = 200) -> None:
    native = _native.BuiltinVectorEnv("Tennis", 5, num_areas)
    team0, _ = native.reset()
    reference = NumpyTennis(team0["decision_obs"][0], seed=0)
    rng = np.random.default_rng(1)
    for _ in range(100):
        moves = [rng.integers(0, 3, (num_areas, 1)).astype(np.int32) for _ in range(2)]
        no_continuous = np.zeros((num_areas, 0), F32)
        team0, team1 = native.step([(no_continuous, moves[0]), (no_continuous, moves[1])])
        scorer = reference.step(*moves)
        if np.any(scorer >= 0):
            break  # restarted points draw from another random stream
        obs0, obs1 = reference.observe()
        assert np.allclose(team0["decision_obs"][0], obs0, atol=1e-5)
        assert np.allclose(team1["decision_obs"][0], obs1, atol=1e-5)
    else:
        raise AssertionError("no point was scored")


def numpy_tennis_step(reference: NumpyTennis, moves: list[np.ndarray]) -> None:
    scorer = reference.step(*moves)
    reference.observe()
    reference.begin(np.flatnonzero(scorer >= 0))
    reference.observe()


# --- timing ---------------------------------------------------------------------------------


def bench(name: str, num_areas: int) -> None:
    """Times one step of every agent of ``num_areas`` areas natively, through BaseEnv and in
    numpy, with seeded random allowed actions (best single call of many)."""
    native = _native.BuiltinVectorEnv(name, 0, num_areas)
    batches = native.reset()
    rng = np.random.default_rng(0)
    actions = []
    for batch in batches:
        masked = batch["action_mask"]
        discrete = random_allowed(rng, masked)
        actions.append((np.zeros((len(discrete), 0), F32), discrete))
    n = native.num_agents

    last = [batches]

    def native_step() -> None:
        # Agents that left their group ask for no decision: act for those who do.
        rows = [len(b["decision_agent_id"]) for b in last[0]]
        last[0] = native.step([(c[:r], d[:r]) for (c, d), r in zip(actions, rows)])

    native_s = best_time(native_step, repeat=100, number=1)

    env = BuiltinEnv(name, seed=0, num_areas=num_areas)
    env.reset()

    def base_env_step() -> None:
        for behavior, (_, discrete) in zip(env.behavior_specs, actions):
            rows = len(env.get_steps(behavior)[0])
            env.set_actions(behavior, ActionTuple(discrete=discrete[:rows]))
        env.step()
        for behavior in env.behavior_specs:
            env.get_steps(behavior)

    base_env_s = best_time(base_env_step, repeat=100, number=1)

    if name == "Sorter":
        reference = NumpySorter(*batches[0]["decision_obs"], seed=0)
        numpy_s = best_time(lambda: numpy_sorter_step(reference, actions[0][1]), repeat=20)
    elif name == "DungeonEscape":
        reference = NumpyDungeon(batches[0]["decision_obs"][0], seed=0)
        numpy_s = best_time(lambda: numpy_dungeon_step(reference, actions[0][1]), repeat=20)
    else:
        reference = NumpyTennis(batches[0]["decision_obs"][0], seed=0)
        moves = [actions[0][1], actions[1][1]]
        numpy_s = best_time(lambda: numpy_tennis_step(reference, moves), repeat=20)

    report(
        f"{name} step, {n} agents (native)",
        native_s,
        {"numpy": numpy_s},
        f"{n / native_s / 1e6:.1f} M agent-steps/s",
    )
    report(
        f"{name} step, {n} agents (BaseEnv)",
        base_env_s,
        {"numpy": numpy_s},
        f"{n / base_env_s / 1e6:.1f} M agent-steps/s",
    )


def main() -> None:
    check_sorter()
    check_dungeon()
    check_tennis()
    for name, num_areas in (("Sorter", 1500), ("DungeonEscape", 4000), ("Tennis", 6000)):
        bench(name, num_areas)


if __name__ == "__main__":
    main()
