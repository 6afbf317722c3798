//! `DungeonEscape`: a cooperative escape no single agent can make, after
//! ML-Agents' DungeonEscape example, on a grid.
//!
//! Three agents (one group, behavior `DungeonEscape?team=0`) share a 5 x 5
//! room with a dragon and a locked door on the top row. An agent that steps on
//! the dragon slays it and dies doing so: it leaves the group (its episode
//! ends, not interrupted) and the dragon drops the key where it stood. Another
//! agent picks the key up by stepping on it, and the group escapes when the
//! key carrier steps on the door: the group reward is +1 and the episode ends
//! for everyone left. There is no individual reward: the agent that slays the
//! dragon only earns through the group, which is what POCA's credit
//! assignment is for. 60 decisions at most (the episode is interrupted).
//!
//! Each episode places the door on a random cell of the top row, the dragon
//! on a random cell below it, and the agents on distinct random cells that
//! are neither (never on the dragon's cell).
//!
//! Observations (a vector of 11 + 4 * 2 = 19 floats per agent; positions and
//! offsets divided by 4, the room's extent):
//! own position x, y; holds the key; dragon alive, dragon offset dx, dy (zeros
//! once slain); key on the floor, key offset dx, dy; door offset dx, dy; then,
//! for each other agent (the next slots, cyclically): still in the game,
//! offset dx, dy, holds the key (zeros once it left).
//!
//! Actions: one branch of 5 (stay, up, down, left, right); moves into the
//! wall are masked. Agents move at the same time; several may share a cell.
//! When several step on the dragon together, the lowest slot slays it; the
//! key goes to the lowest slot standing on it.

use rand::Rng;
use rand_pcg::Pcg32;

use super::area::{AgentSlot, AreaActions, AreaOutcome, AreaSpec, AreaTask};
use super::{EnvSpec, ObservationLayout, Parameters};

pub const ROOM: i32 = 5;
pub const AGENTS: usize = 3;
pub const MAX_DECISIONS: u32 = 60;
pub const ESCAPE_REWARD: f32 = 1.0;
/// Stay, up, down, left, right.
const MOVES: [(i32, i32); 5] = [(0, 0), (0, 1), (0, -1), (-1, 0), (1, 0)];
const OBSERVATION_SIZE: usize = 11 + 4 * (AGENTS - 1);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Explorer {
    pub x: i32,
    pub y: i32,
    /// Still in the game (false once it slew the dragon).
    pub alive: bool,
    pub has_key: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dungeon {
    pub agents: [Explorer; AGENTS],
    pub dragon: Option<(i32, i32)>,
    /// The key's cell while it lies on the floor.
    pub key: Option<(i32, i32)>,
    pub door: (i32, i32),
}

pub struct DungeonEscape {
    spec: AreaSpec,
}

impl DungeonEscape {
    pub fn new() -> Self {
        DungeonEscape {
            spec: AreaSpec {
                behaviors: vec![EnvSpec {
                    behavior_name: "DungeonEscape?team=0".to_string(),
                    observations: vec![ObservationLayout::vector(OBSERVATION_SIZE)],
                    continuous_size: 0,
                    discrete_branches: vec![MOVES.len()],
                    agents_per_area: AGENTS,
                    max_decisions: MAX_DECISIONS,
                }],
                slots: vec![
                    AgentSlot {
                        behavior: 0,
                        group: Some(0)
                    };
                    AGENTS
                ],
                groups_per_area: 1,
                max_decisions: MAX_DECISIONS,
            },
        }
    }
}

impl Default for DungeonEscape {
    fn default() -> Self {
        Self::new()
    }
}

fn inside(x: i32, y: i32) -> bool {
    (0..ROOM).contains(&x) && (0..ROOM).contains(&y)
}

fn scaled(value: i32) -> f32 {
    value as f32 / (ROOM - 1) as f32
}

impl AreaTask for DungeonEscape {
    type Area = Dungeon;

    fn spec(&self) -> &AreaSpec {
        &self.spec
    }

    fn begin_episode(&self, dungeon: &mut Dungeon, rng: &mut Pcg32, _parameters: &mut Parameters) {
        dungeon.door = (rng.random_range(0..ROOM), ROOM - 1);
        let dragon = (rng.random_range(0..ROOM), rng.random_range(0..ROOM - 1));
        dungeon.dragon = Some(dragon);
        dungeon.key = None;
        let mut taken = vec![dungeon.door, dragon];
        for agent in dungeon.agents.iter_mut() {
            let cell = loop {
                let cell = (rng.random_range(0..ROOM), rng.random_range(0..ROOM));
                if !taken.contains(&cell) {
                    break cell;
                }
            };
            taken.push(cell);
            *agent = Explorer {
                x: cell.0,
                y: cell.1,
                alive: true,
                has_key: false,
            };
        }
    }

    fn act(
        &self,
        dungeon: &mut Dungeon,
        actions: &AreaActions<'_>,
        active: &[bool],
        _rng: &mut Pcg32,
        outcome: &mut AreaOutcome,
    ) {
        for (slot, agent) in dungeon.agents.iter_mut().enumerate() {
            if !active[slot] || !agent.alive {
                continue;
            }
            let (dx, dy) = MOVES[actions.discrete(slot)[0] as usize];
            if inside(agent.x + dx, agent.y + dy) {
                agent.x += dx;
                agent.y += dy;
            }
        }
        if let Some(dragon) = dungeon.dragon {
            let slayer = dungeon
                .agents
                .iter()
                .position(|a| a.alive && (a.x, a.y) == dragon);
            if let Some(slot) = slayer {
                let agent = &mut dungeon.agents[slot];
                agent.alive = false;
                dungeon.dragon = None;
                // A key carrier cannot slay (there is no key before the dragon falls).
                dungeon.key = Some(dragon);
                outcome.leaves[slot] = true;
            }
        }
        if let Some(key) = dungeon.key {
            if let Some(agent) = dungeon
                .agents
                .iter_mut()
                .find(|a| a.alive && (a.x, a.y) == key)
            {
                agent.has_key = true;
                dungeon.key = None;
            }
        }
        if dungeon
            .agents
            .iter()
            .any(|a| a.alive && a.has_key && (a.x, a.y) == dungeon.door)
        {
            outcome.group_rewards[0] = ESCAPE_REWARD;
            outcome.episode_over = true;
        }
    }

    fn observe(&self, dungeon: &Dungeon, slot: usize, _index: usize, out: &mut [f32]) {
        let me = dungeon.agents[slot];
        let offset = |(x, y): (i32, i32)| (scaled(x - me.x), scaled(y - me.y));
        out.fill(0.0);
        out[0] = scaled(me.x);
        out[1] = scaled(me.y);
        out[2] = f32::from(u8::from(me.has_key));
        if let Some(dragon) = dungeon.dragon {
            let (dx, dy) = offset(dragon);
            out[3..6].copy_from_slice(&[1.0, dx, dy]);
        }
        if let Some(key) = dungeon.key {
            let (dx, dy) = offset(key);
            out[6..9].copy_from_slice(&[1.0, dx, dy]);
        }
        let (dx, dy) = offset(dungeon.door);
        out[9..11].copy_from_slice(&[dx, dy]);
        for other in 1..AGENTS {
            let mate = dungeon.agents[(slot + other) % AGENTS];
            if mate.alive {
                let (dx, dy) = offset((mate.x, mate.y));
                let start = 11 + 4 * (other - 1);
                out[start..start + 4].copy_from_slice(&[
                    1.0,
                    dx,
                    dy,
                    f32::from(u8::from(mate.has_key)),
                ]);
            }
        }
    }

    fn write_mask(&self, dungeon: &Dungeon, slot: usize, mask: &mut [bool]) {
        let me = dungeon.agents[slot];
        for (masked, (dx, dy)) in mask.iter_mut().zip(MOVES) {
            *masked = !inside(me.x + dx, me.y + dy);
        }
    }
}

/// The move of a scripted team: the agent nearest the dragon goes to slay it,
/// then the nearest survivor fetches the key and carries it to the door; the
/// rest wait. For tests and benchmarks.
pub fn scripted_move(dungeon: &Dungeon, slot: usize) -> i32 {
    let me = dungeon.agents[slot];
    let distance = |a: &Explorer, (x, y): (i32, i32)| (a.x - x).abs() + (a.y - y).abs();
    let nearest_to = |cell: (i32, i32)| {
        (0..AGENTS)
            .filter(|s| dungeon.agents[*s].alive)
            .min_by_key(|s| distance(&dungeon.agents[*s], cell))
    };
    let goal = if me.has_key {
        Some(dungeon.door)
    } else if let Some(dragon) = dungeon.dragon {
        (nearest_to(dragon) == Some(slot)).then_some(dragon)
    } else if let Some(key) = dungeon.key {
        (nearest_to(key) == Some(slot)).then_some(key)
    } else {
        None
    };
    let Some((gx, gy)) = goal else {
        return 0;
    };
    if gx != me.x {
        if gx > me.x {
            4
        } else {
            3
        }
    } else if gy > me.y {
        1
    } else if gy < me.y {
        2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::area::AreaEnv;
    use crate::envs::{BehaviorActions, BuiltinEnv};

    fn step(env: &mut AreaEnv<DungeonEscape>, discrete: &[i32]) -> crate::envs::StepBatch {
        let actions = [BehaviorActions {
            continuous: &[],
            discrete,
        }];
        env.step(&actions).unwrap().remove(0)
    }

    fn set_area(env: &mut AreaEnv<DungeonEscape>, dungeon: Dungeon) {
        // Tests drive hand-made positions through the public stepping path.
        env.areas_mut()[0] = dungeon;
    }

    fn explorer(x: i32, y: i32) -> Explorer {
        Explorer {
            x,
            y,
            alive: true,
            has_key: false,
        }
    }

    #[test]
    fn slayer_leaves_the_group_and_the_others_escape_with_the_group_reward() {
        let mut env = AreaEnv::new(DungeonEscape::new(), 0, 1).unwrap();
        let first = env.reset().remove(0);
        set_area(
            &mut env,
            Dungeon {
                agents: [explorer(1, 1), explorer(1, 3), explorer(4, 0)],
                dragon: Some((2, 1)),
                key: None,
                door: (2, 4),
            },
        );
        let ids = first.decision_agent_id.clone();
        assert_eq!(first.decision_group_id, vec![1, 1, 1]);
        // Agent 0 steps right onto the dragon: it leaves, the key drops at (2, 1).
        let batch = step(&mut env, &[4, 0, 0]);
        assert_eq!(batch.terminal_agent_id, vec![ids[0]]);
        assert_eq!(batch.terminal_interrupted, vec![false]);
        assert_eq!(batch.terminal_group_id, vec![1]);
        assert_eq!(batch.terminal_reward, vec![0.0]);
        assert_eq!(batch.decision_agent_id, vec![ids[1], ids[2]]);
        assert_eq!(env.areas()[0].key, Some((2, 1)));
        assert!(env.areas()[0].dragon.is_none());
        // The slayer's own view: dragon gone, key on the floor under it, not alive.
        assert_eq!(
            &batch.terminal_obs[0][3..9],
            &[0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
        // Agent 1 walks down and right to the key, then up to the door; agent 2 stays.
        // Actions now have two rows (the slayer no longer decides).
        let batch = step(&mut env, &[2, 0]); // (1, 2)
        assert!(batch.terminal_agent_id.is_empty());
        let batch = step(&mut env, &[2, 0]); // (1, 1)
        assert_eq!(batch.decision_group_reward, vec![0.0, 0.0]);
        let _ = step(&mut env, &[4, 0]); // (2, 1): takes the key
        assert!(env.areas()[0].agents[1].has_key);
        for _ in 0..2 {
            let batch = step(&mut env, &[1, 0]);
            assert!(batch.terminal_agent_id.is_empty());
        }
        let batch = step(&mut env, &[1, 0]); // (2, 4): the door
        assert_eq!(batch.terminal_agent_id, vec![ids[1], ids[2]]);
        assert_eq!(
            batch.terminal_group_reward,
            vec![ESCAPE_REWARD, ESCAPE_REWARD]
        );
        assert_eq!(batch.terminal_reward, vec![0.0, 0.0]);
        assert_eq!(batch.terminal_interrupted, vec![false, false]);
        // The next episode started at once: three new agents, same group id.
        assert_eq!(batch.decision_agent_id.len(), 3);
        assert!(batch.decision_agent_id.iter().all(|id| !ids.contains(id)));
        assert_eq!(batch.decision_group_id, vec![1, 1, 1]);
        assert_eq!(batch.decision_group_reward, vec![0.0; 3]);
    }

    #[test]
    fn time_out_interrupts_everyone_left() {
        let mut env = AreaEnv::new(DungeonEscape::new(), 0, 2).unwrap();
        env.reset();
        let mut last = None;
        for _ in 0..MAX_DECISIONS {
            last = Some(step(&mut env, &[0; 2 * AGENTS]));
        }
        let batch = last.unwrap();
        assert_eq!(batch.terminal_agent_id.len(), 2 * AGENTS);
        assert!(batch.terminal_interrupted.iter().all(|i| *i));
        assert_eq!(batch.terminal_group_id, vec![1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn episode_starts_are_distinct_cells_and_walls_are_masked() {
        let mut env = AreaEnv::new(DungeonEscape::new(), 4, 50).unwrap();
        let batch = env.reset().remove(0);
        for dungeon in env.areas() {
            let dragon = dungeon.dragon.unwrap();
            assert_eq!(dungeon.door.1, ROOM - 1);
            assert!(dragon.1 < ROOM - 1);
            let mut cells: Vec<_> = dungeon.agents.iter().map(|a| (a.x, a.y)).collect();
            cells.push(dragon);
            cells.push(dungeon.door);
            cells.sort();
            cells.dedup();
            assert_eq!(cells.len(), AGENTS + 2);
        }
        for (agent, mask) in batch.action_mask.chunks(5).enumerate() {
            let me = env.areas()[agent / AGENTS].agents[agent % AGENTS];
            assert!(!mask[0]);
            assert_eq!(mask[1], me.y == ROOM - 1);
            assert_eq!(mask[3], me.x == 0);
        }
    }

    #[test]
    fn wrong_action_counts_are_refused_before_anything_moves() {
        let mut env = AreaEnv::new(DungeonEscape::new(), 0, 1).unwrap();
        env.reset();
        let before = env.areas()[0].clone();
        let actions = [BehaviorActions {
            continuous: &[],
            discrete: &[1, 1],
        }];
        let err = env.step(&actions).unwrap_err().to_string();
        assert!(err.contains("expected 3 agents"), "{err}");
        let actions = [BehaviorActions {
            continuous: &[],
            discrete: &[1, 1, 5],
        }];
        assert!(env.step(&actions).is_err());
        assert!(env.step(&[]).is_err());
        assert_eq!(env.areas()[0], before);
    }

    /// Escapes and finished episodes over 600 decisions of 16 areas.
    fn escapes_and_episodes(scripted: bool, seed: u64) -> (usize, usize) {
        let mut env = AreaEnv::new(DungeonEscape::new(), seed, 16).unwrap();
        let mut batch = env.reset().remove(0);
        let mut rng = Pcg32::new(seed, 7);
        let mut escapes = 0;
        let mut episodes = 0;
        for _ in 0..600 {
            let actions: Vec<i32> = batch
                .decision_agent_id
                .iter()
                .enumerate()
                .map(|(row, _)| {
                    let mask = &batch.action_mask[row * 5..row * 5 + 5];
                    if scripted {
                        let agent = env.decided_agents(0)[row];
                        scripted_move(&env.areas()[agent / AGENTS], agent % AGENTS)
                    } else {
                        loop {
                            let a = rng.random_range(0..5);
                            if !mask[a] {
                                break a as i32;
                            }
                        }
                    }
                })
                .collect();
            batch = step(&mut env, &actions);
            // Episodes that ended this step, by group (one group per area, listed
            // area by area): an escape pays every survivor, a time-out interrupts them.
            let mut escaped: Vec<i32> = Vec::new();
            let mut ended: Vec<i32> = Vec::new();
            for (t, group) in batch.terminal_group_id.iter().enumerate() {
                if batch.terminal_group_reward[t] > 0.0 {
                    escaped.push(*group);
                }
                if batch.terminal_group_reward[t] > 0.0 || batch.terminal_interrupted[t] {
                    ended.push(*group);
                }
            }
            escaped.dedup();
            ended.dedup();
            escapes += escaped.len();
            episodes += ended.len();
            assert!(batch.decision_group_reward.iter().all(|r| *r == 0.0));
        }
        (escapes, episodes)
    }

    #[test]
    fn scripted_team_always_escapes_random_team_rarely() {
        let (escapes, episodes) = escapes_and_episodes(true, 3);
        assert!(episodes > 100);
        assert_eq!(escapes, episodes);
        let (escapes, episodes) = escapes_and_episodes(false, 3);
        assert!(episodes > 50);
        assert!(
            (escapes as f32) < 0.5 * episodes as f32,
            "{escapes} of {episodes}"
        );
    }
}
