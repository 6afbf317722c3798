//! `MemoryCorridor`: a Hallway-like memory task, small enough for PPO with an
//! LSTM to learn in minutes.
//!
//! The agent walks down a corridor of `corridor_length` cells (environment
//! parameter, default 3, read at each episode start, clamped to 1..=50) and
//! then picks one of two goals. Observations (3 floats): the cue (+1 means
//! the left goal is right, -1 the right goal) shown only at the first
//! decision and 0 afterwards, the walked fraction of the corridor, and 1 at
//! the junction. One discrete branch: 0 walk on, 1 take the left goal, 2 take
//! the right goal. Masks allow only "walk on" inside the corridor and only
//! the two goals at the junction, so every episode lasts exactly
//! `corridor_length + 1` decisions. Reward +1 for the cued goal, -1 for the
//! other: a policy without memory averages 0, one that remembers the cue 1.

use rand::Rng;
use rand_pcg::Pcg32;

use super::{EnvSpec, ObservationLayout, Parameters, Task, Transition};

pub const DEFAULT_CORRIDOR_LENGTH: u32 = 3;
pub const MAX_CORRIDOR_LENGTH: u32 = 50;
pub const AGENTS_PER_AREA: usize = 8;

pub const WALK_ON: i32 = 0;
pub const TAKE_LEFT: i32 = 1;
pub const TAKE_RIGHT: i32 = 2;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Corridor {
    /// True when the left goal is the rewarded one.
    pub left_is_correct: bool,
    pub length: u32,
    /// Cells walked so far; `length` means at the junction.
    pub position: u32,
}

pub struct MemoryCorridor {
    spec: EnvSpec,
}

impl Default for MemoryCorridor {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCorridor {
    pub fn new() -> Self {
        MemoryCorridor {
            spec: EnvSpec {
                behavior_name: "MemoryCorridor?team=0".to_string(),
                observations: vec![ObservationLayout::vector(3)],
                continuous_size: 0,
                discrete_branches: vec![3],
                agents_per_area: AGENTS_PER_AREA,
                // Episodes end at the junction; this only guards a stuck agent.
                max_decisions: MAX_CORRIDOR_LENGTH + 10,
            },
        }
    }
}

impl Task for MemoryCorridor {
    type Agent = Corridor;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn begin_episode(&self, corridor: &mut Corridor, rng: &mut Pcg32, parameters: &mut Parameters) {
        let length = parameters
            .get_with_default("corridor_length", DEFAULT_CORRIDOR_LENGTH as f32)
            .round();
        corridor.length = if length.is_finite() {
            length.clamp(1.0, MAX_CORRIDOR_LENGTH as f32) as u32
        } else {
            DEFAULT_CORRIDOR_LENGTH
        };
        corridor.left_is_correct = rng.random::<bool>();
        corridor.position = 0;
    }

    fn act(
        &self,
        corridor: &mut Corridor,
        _continuous: &[f32],
        discrete: &[i32],
        _rng: &mut Pcg32,
    ) -> Transition {
        if corridor.position < corridor.length {
            // Inside the corridor every action walks on (goals are masked).
            corridor.position += 1;
            return Transition {
                reward: 0.0,
                terminated: false,
            };
        }
        match discrete[0] {
            TAKE_LEFT | TAKE_RIGHT => {
                let chose_left = discrete[0] == TAKE_LEFT;
                Transition {
                    reward: if chose_left == corridor.left_is_correct {
                        1.0
                    } else {
                        -1.0
                    },
                    terminated: true,
                }
            }
            // Masked at the junction; taken anyway it waits there.
            _ => Transition {
                reward: 0.0,
                terminated: false,
            },
        }
    }

    fn observe(&self, corridor: &Corridor, _index: usize, out: &mut [f32]) {
        let cue = match (corridor.position, corridor.left_is_correct) {
            (0, true) => 1.0,
            (0, false) => -1.0,
            _ => 0.0,
        };
        let at_junction = corridor.position >= corridor.length;
        out[0] = cue;
        out[1] = corridor.position as f32 / corridor.length as f32;
        out[2] = if at_junction { 1.0 } else { 0.0 };
    }

    fn write_mask(&self, corridor: &Corridor, mask: &mut [bool]) {
        let at_junction = corridor.position >= corridor.length;
        mask[WALK_ON as usize] = at_junction;
        mask[TAKE_LEFT as usize] = !at_junction;
        mask[TAKE_RIGHT as usize] = !at_junction;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::{Parameter, VecEnv, VectorEnv};

    /// Plays episodes with a policy given (cue remembered, observation) and
    /// returns the mean episode reward.
    fn mean_reward(remember: bool, episodes_per_agent: usize) -> f32 {
        let mut env = VecEnv::new(MemoryCorridor::new(), 2, 4).unwrap();
        let n = env.num_agents();
        let mut batch = env.reset();
        let mut cues = vec![0.0f32; n];
        let mut rewards = Vec::new();
        while rewards.len() < n * episodes_per_agent {
            let mut actions = vec![WALK_ON; n];
            for (index, obs) in batch.decision_obs[0].chunks(3).enumerate() {
                if obs[0] != 0.0 {
                    cues[index] = obs[0];
                }
                if obs[2] == 1.0 {
                    let left = if remember { cues[index] > 0.0 } else { true };
                    actions[index] = if left { TAKE_LEFT } else { TAKE_RIGHT };
                }
            }
            batch = env.step(&[], &actions).unwrap();
            rewards.extend_from_slice(&batch.terminal_reward);
        }
        rewards.iter().sum::<f32>() / rewards.len() as f32
    }

    #[test]
    fn memory_wins_and_guessing_averages_zero() {
        assert_eq!(mean_reward(true, 50), 1.0);
        assert!(mean_reward(false, 100).abs() < 0.15);
    }

    #[test]
    fn cue_only_at_start_and_masks_by_position() {
        let task = MemoryCorridor::new();
        let mut corridor = Corridor {
            left_is_correct: false,
            length: 2,
            position: 0,
        };
        let mut obs = [0.0; 3];
        let mut mask = [false; 3];
        task.observe(&corridor, 0, &mut obs);
        task.write_mask(&corridor, &mut mask);
        assert_eq!((obs, mask), ([-1.0, 0.0, 0.0], [false, true, true]));
        let mut rng = Pcg32::new(0, 0);
        task.act(&mut corridor, &[], &[TAKE_LEFT], &mut rng);
        task.act(&mut corridor, &[], &[WALK_ON], &mut rng);
        task.observe(&corridor, 0, &mut obs);
        task.write_mask(&corridor, &mut mask);
        assert_eq!((obs, mask), ([0.0, 1.0, 1.0], [true, false, false]));
        let done = task.act(&mut corridor, &[], &[TAKE_RIGHT], &mut rng);
        assert_eq!((done.reward, done.terminated), (1.0, true));
    }

    #[test]
    fn corridor_length_parameter_sets_episode_length() {
        let mut env = VecEnv::new(MemoryCorridor::new(), 0, 1).unwrap();
        env.parameters_mut()
            .set("corridor_length", Parameter::Float(6.0));
        env.reset();
        let n = env.num_agents();
        for _ in 0..6 {
            assert!(env
                .step(&[], &vec![WALK_ON; n])
                .unwrap()
                .terminal_agent_id
                .is_empty());
        }
        let batch = env.step(&[], &vec![TAKE_LEFT; n]).unwrap();
        assert_eq!(batch.terminal_agent_id.len(), n);
        assert!(batch.terminal_interrupted.iter().all(|i| !*i));
    }
}
