//! `Sorter`: visit numbered tiles in ascending order, seen through a buffer
//! sensor (a variable number of entities). A grid version of ML-Agents' Sorter
//! example.
//!
//! The room is a 7 x 7 grid; tiles sit on the 20 border cells that are not
//! corners (each has a free inner neighbour), the agent starts each episode
//! in the centre. Each episode spawns a uniform random number `k` of tiles in
//! `[1, num_tiles]` (environment parameter `num_tiles`, default 20, clamped to
//! [1, 20], read at each episode start: a curriculum grows it) at distinct
//! random border cells, numbered 0 to `k - 1`. (Unity's Sorter draws the `k`
//! numbers from 0..20; consecutive numbers keep the ordering a small-budget
//! learner must discover to the numbers a lesson shows, so a `num_tiles`
//! curriculum introduces them a few at a time.)
//!
//! Observations:
//! - a vector of 2 floats: the agent's position relative to the centre,
//!   divided by 3 (so in [-1, 1]);
//! - a buffer sensor of up to 20 tiles x 23 floats, one row per spawned tile
//!   in ascending number order, the unused rows zeros: the one-hot tile number
//!   (20), the tile's position relative to the agent divided by 6 (2), and 1
//!   if the tile was visited already (1).
//!
//! Actions: one branch of 4 moves (up, down, left, right); moves into the
//! wall are masked. Stepping on the next tile in ascending order pays +1 and
//! marks it visited (visiting all ends the episode); stepping on any other
//! unvisited tile pays -1 and ends the episode; visited tiles can be crossed.
//! Every decision costs `1 / MAX_DECISIONS`; 200 decisions at most.

use rand::seq::index::sample;
use rand::Rng;
use rand_pcg::Pcg32;

use super::{EnvSpec, ObservationLayout, Parameters, Task, Transition};

pub const GRID: i32 = 7;
pub const MAX_TILES: usize = 20;
/// One-hot number, relative x and y, visited flag.
pub const TILE_SIZE: usize = MAX_TILES + 3;
pub const DEFAULT_NUM_TILES: f32 = 20.0;
pub const MAX_DECISIONS: u32 = 200;
pub const STEP_PENALTY: f32 = -1.0 / MAX_DECISIONS as f32;
pub const AGENTS_PER_AREA: usize = 8;
const CENTRE: i32 = GRID / 2;
/// Moves of the action branch: (dx, dy).
const MOVES: [(i32, i32); 4] = [(0, 1), (0, -1), (-1, 0), (1, 0)];

/// The border cells without the corners (the tile places), clockwise from the bottom.
fn border_cells() -> Vec<(i32, i32)> {
    let last = GRID - 1;
    let mut cells = Vec::with_capacity(MAX_TILES);
    cells.extend((1..last).map(|x| (x, 0)));
    cells.extend((1..last).map(|y| (last, y)));
    cells.extend((1..last).rev().map(|x| (x, last)));
    cells.extend((1..last).rev().map(|y| (0, y)));
    cells
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tile {
    pub number: u8,
    pub x: i32,
    pub y: i32,
    pub visited: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SorterState {
    pub x: i32,
    pub y: i32,
    /// Spawned tiles in ascending number order.
    pub tiles: Vec<Tile>,
    /// Index in `tiles` of the next tile to visit.
    pub next: usize,
}

pub struct Sorter {
    spec: EnvSpec,
    border: Vec<(i32, i32)>,
}

impl Sorter {
    pub fn new() -> Self {
        Sorter {
            spec: EnvSpec {
                behavior_name: "Sorter?team=0".to_string(),
                observations: vec![
                    ObservationLayout::vector(2),
                    ObservationLayout::entities(MAX_TILES, TILE_SIZE),
                ],
                continuous_size: 0,
                discrete_branches: vec![MOVES.len()],
                agents_per_area: AGENTS_PER_AREA,
                max_decisions: MAX_DECISIONS,
            },
            border: border_cells(),
        }
    }
}

impl Default for Sorter {
    fn default() -> Self {
        Self::new()
    }
}

fn num_tiles_parameter(parameters: &mut Parameters) -> usize {
    let value = parameters.get_with_default("num_tiles", DEFAULT_NUM_TILES);
    if value.is_finite() {
        (value.round() as i64).clamp(1, MAX_TILES as i64) as usize
    } else {
        DEFAULT_NUM_TILES as usize
    }
}

impl Task for Sorter {
    type Agent = SorterState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn begin_episode(&self, state: &mut SorterState, rng: &mut Pcg32, parameters: &mut Parameters) {
        let count = rng.random_range(1..=num_tiles_parameter(parameters));
        let places = sample(rng, self.border.len(), count);
        state.tiles.clear();
        state
            .tiles
            .extend(places.iter().enumerate().map(|(number, place)| {
                let (x, y) = self.border[place];
                Tile {
                    number: number as u8,
                    x,
                    y,
                    visited: false,
                }
            }));
        state.x = CENTRE;
        state.y = CENTRE;
        state.next = 0;
    }

    fn act(
        &self,
        state: &mut SorterState,
        _continuous: &[f32],
        discrete: &[i32],
        _rng: &mut Pcg32,
    ) -> Transition {
        let (dx, dy) = MOVES[discrete[0] as usize];
        // A masked move into the wall (sent anyway) leaves the agent in place.
        state.x = (state.x + dx).clamp(0, GRID - 1);
        state.y = (state.y + dy).clamp(0, GRID - 1);
        let stepped_on = state
            .tiles
            .iter()
            .position(|t| !t.visited && t.x == state.x && t.y == state.y);
        match stepped_on {
            Some(index) if index == state.next => {
                state.tiles[index].visited = true;
                state.next += 1;
                Transition {
                    reward: 1.0 + STEP_PENALTY,
                    terminated: state.next == state.tiles.len(),
                }
            }
            Some(_) => Transition {
                reward: -1.0 + STEP_PENALTY,
                terminated: true,
            },
            None => Transition {
                reward: STEP_PENALTY,
                terminated: false,
            },
        }
    }

    fn observe(&self, state: &SorterState, index: usize, out: &mut [f32]) {
        let scale = CENTRE as f32;
        if index == 0 {
            out[0] = (state.x - CENTRE) as f32 / scale;
            out[1] = (state.y - CENTRE) as f32 / scale;
            return;
        }
        out.fill(0.0);
        for (row, tile) in out.chunks_mut(TILE_SIZE).zip(&state.tiles) {
            row[tile.number as usize] = 1.0;
            row[MAX_TILES] = (tile.x - state.x) as f32 / (GRID - 1) as f32;
            row[MAX_TILES + 1] = (tile.y - state.y) as f32 / (GRID - 1) as f32;
            row[MAX_TILES + 2] = if tile.visited { 1.0 } else { 0.0 };
        }
    }

    fn write_mask(&self, state: &SorterState, mask: &mut [bool]) {
        for (masked, (dx, dy)) in mask.iter_mut().zip(MOVES) {
            let (x, y) = (state.x + dx, state.y + dy);
            *masked = !(0..GRID).contains(&x) || !(0..GRID).contains(&y);
        }
    }
}

/// The move (branch value) a perfect player takes from `state`: toward the
/// next tile, stepping around unvisited tiles in the way. For tests and demos.
pub fn expert_move(state: &SorterState) -> i32 {
    let Some(target) = state.tiles.get(state.next) else {
        return 0;
    };
    // Breadth-first search over free cells (the target included).
    let blocked = |x: i32, y: i32| {
        state
            .tiles
            .iter()
            .any(|t| !t.visited && t.x == x && t.y == y && !(t.x == target.x && t.y == target.y))
    };
    let cells = (GRID * GRID) as usize;
    let mut first_move = vec![-1i32; cells];
    let mut queue = std::collections::VecDeque::new();
    let start = (state.y * GRID + state.x) as usize;
    first_move[start] = 4;
    queue.push_back((state.x, state.y));
    while let Some((x, y)) = queue.pop_front() {
        if (x, y) == (target.x, target.y) {
            return first_move[(y * GRID + x) as usize];
        }
        for (action, (dx, dy)) in MOVES.iter().enumerate() {
            let (nx, ny) = (x + dx, y + dy);
            if !(0..GRID).contains(&nx) || !(0..GRID).contains(&ny) || blocked(nx, ny) {
                continue;
            }
            let cell = (ny * GRID + nx) as usize;
            if first_move[cell] != -1 {
                continue;
            }
            let here = first_move[(y * GRID + x) as usize];
            first_move[cell] = if here == 4 { action as i32 } else { here };
            queue.push_back((nx, ny));
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::{Parameter, VecEnv, VectorEnv};

    fn env(seed: u64, num_tiles: f32) -> VecEnv<Sorter> {
        let mut env = VecEnv::new(Sorter::new(), seed, 2).unwrap();
        env.parameters_mut()
            .set("num_tiles", Parameter::Float(num_tiles));
        VectorEnv::reset(&mut env);
        env
    }

    #[test]
    fn tiles_are_distinct_sorted_on_the_border_and_observed_in_order() {
        let mut env = env(3, 20.0);
        let batch = VectorEnv::reset(&mut env);
        let border = border_cells();
        let mut counts = Vec::new();
        for (agent, state) in env.agents().iter().enumerate() {
            let n = state.tiles.len();
            counts.push(n);
            assert!((1..=MAX_TILES).contains(&n));
            assert!(state.tiles.windows(2).all(|w| w[0].number < w[1].number));
            for tile in &state.tiles {
                assert!(border.contains(&(tile.x, tile.y)));
            }
            let mut places: Vec<_> = state.tiles.iter().map(|t| (t.x, t.y)).collect();
            places.dedup();
            places.sort();
            places.dedup();
            assert_eq!(places.len(), n);
            assert_eq!((state.x, state.y), (3, 3));
            // Buffer rows: one per tile, then zero padding.
            let obs =
                &batch.decision_obs[1][agent * MAX_TILES * TILE_SIZE..][..MAX_TILES * TILE_SIZE];
            for (row, values) in obs.chunks(TILE_SIZE).enumerate() {
                if row < n {
                    let tile = state.tiles[row];
                    assert_eq!(values[tile.number as usize], 1.0);
                    assert_eq!(values[..MAX_TILES].iter().sum::<f32>(), 1.0);
                    assert_eq!(values[MAX_TILES], (tile.x - 3) as f32 / 6.0);
                    assert_eq!(values[MAX_TILES + 2], 0.0);
                } else {
                    assert!(values.iter().all(|v| *v == 0.0));
                }
            }
        }
        // The count varies between episodes (uniform in 1..=num_tiles).
        counts.sort();
        counts.dedup();
        assert!(counts.len() > 1, "{counts:?}");
    }

    #[test]
    fn num_tiles_bounds_the_count() {
        let env = env(1, 2.0);
        assert!(env
            .agents()
            .iter()
            .all(|s| (1..=2).contains(&s.tiles.len())));
        let env = self::env(1, 1.0);
        assert!(env.agents().iter().all(|s| s.tiles.len() == 1));
        let env = self::env(1, 99.0);
        assert!(env.agents().iter().all(|s| s.tiles.len() <= MAX_TILES));
    }

    #[test]
    fn walls_are_masked() {
        let mut state = SorterState {
            x: 0,
            y: GRID - 1,
            ..SorterState::default()
        };
        let sorter = Sorter::new();
        let mut mask = [false; 4];
        sorter.write_mask(&state, &mut mask);
        assert_eq!(mask, [true, false, true, false]);
        state.x = 3;
        state.y = 3;
        sorter.write_mask(&state, &mut mask);
        assert_eq!(mask, [false; 4]);
    }

    /// Tiles 0 and 1 on the bottom row at x = 3 and x = 4, the agent above (x, 1).
    fn two_tiles_below(x: i32) -> SorterState {
        let tile = |number: u8, x: i32| Tile {
            number,
            x,
            y: 0,
            visited: false,
        };
        SorterState {
            x,
            y: 1,
            tiles: vec![tile(0, 3), tile(1, 4)],
            next: 0,
        }
    }

    #[test]
    fn right_tile_pays_wrong_tile_ends_the_episode() {
        let sorter = Sorter::new();
        let mut rng = Pcg32::new(0, 0);
        let paid = |terminated| Transition {
            reward: 1.0 + STEP_PENALTY,
            terminated,
        };
        // Down onto tile 0 (the lowest): +1, not over.
        let mut state = two_tiles_below(3);
        assert_eq!(sorter.act(&mut state, &[], &[1], &mut rng), paid(false));
        assert!(state.tiles[0].visited && state.next == 1);
        // Up, right, down onto tile 1: +1 and all visited.
        sorter.act(&mut state, &[], &[0], &mut rng);
        sorter.act(&mut state, &[], &[3], &mut rng);
        assert_eq!(sorter.act(&mut state, &[], &[1], &mut rng), paid(true));
        // Tile 1 first: -1 and the end.
        let mut state = two_tiles_below(4);
        let t = sorter.act(&mut state, &[], &[1], &mut rng);
        assert_eq!(
            t,
            Transition {
                reward: -1.0 + STEP_PENALTY,
                terminated: true
            }
        );
        // Crossing a visited tile is free.
        let mut state = SorterState {
            x: 3,
            y: 1,
            tiles: vec![Tile {
                number: 0,
                x: 3,
                y: 0,
                visited: true,
            }],
            next: 1,
        };
        let t = sorter.act(&mut state, &[], &[1], &mut rng);
        assert_eq!(
            t,
            Transition {
                reward: STEP_PENALTY,
                terminated: false
            }
        );
    }

    #[test]
    fn expert_visits_every_tile_and_random_play_does_worse() {
        fn mean_return(seed: u64, expert: bool) -> f32 {
            let mut env = env(seed, 6.0);
            let n = VectorEnv::num_agents(&env);
            let mut rng = Pcg32::new(seed, 99);
            let mut running = vec![0.0f32; n];
            let mut returns = Vec::new();
            let mut batch = VectorEnv::reset(&mut env);
            for _ in 0..2000 {
                let actions: Vec<i32> = env
                    .agents()
                    .iter()
                    .enumerate()
                    .map(|(agent, state)| {
                        if expert {
                            expert_move(state)
                        } else {
                            let mask = &batch.action_mask[agent * 4..agent * 4 + 4];
                            loop {
                                let a = rng.random_range(0..4);
                                if !mask[a] {
                                    break a as i32;
                                }
                            }
                        }
                    })
                    .collect();
                let ids = batch.decision_agent_id.clone();
                batch = VectorEnv::step(&mut env, &[], &actions).unwrap();
                for (index, id) in ids.iter().enumerate() {
                    if let Some(t) = batch.terminal_agent_id.iter().position(|t| t == id) {
                        returns.push(running[index] + batch.terminal_reward[t]);
                        running[index] = 0.0;
                        if expert {
                            assert!(!batch.terminal_interrupted[t]);
                        }
                    } else {
                        running[index] += batch.decision_reward[index];
                    }
                }
            }
            returns.iter().sum::<f32>() / returns.len() as f32
        }
        let expert = mean_return(5, true);
        let random = mean_return(5, false);
        // 1..=6 tiles, 3.5 on average, each worth +1 less a few step penalties.
        assert!(expert > 3.0, "expert {expert}");
        assert!(random < 0.5, "random {random}");
    }
}
