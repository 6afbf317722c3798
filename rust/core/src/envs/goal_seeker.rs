//! `GoalSeeker1D`: move to a goal on a line. The quickest task to learn,
//! for learning tests of PPO and SAC with every action type.
//!
//! Each episode starts at 0 with the goal at `+goal_distance` or
//! `-goal_distance` (equal odds; environment parameter `goal_distance`,
//! default 1.0, clamped to [0, 10], read at each episode start: a curriculum
//! can grow it). Observations (2 floats): position and goal position.
//! Reaching within 0.15 of the goal pays +1 and ends the episode; every other
//! decision costs 0.01; 40 decisions at most. Positions stay inside +-10.
//!
//! Action variants (same dynamics, different action spaces):
//! - `Continuous` (`GoalSeeker1D`): 1 value in [-1, 1] moves by `0.2 * value`.
//! - `Discrete` (`GoalSeeker1DDiscrete`): 1 branch of 3: left, stay, right, by 0.2.
//! - `Hybrid` (`GoalSeeker1DHybrid`): 1 branch of 3 picks the direction (left,
//!   stay, right) and 1 continuous value in [-1, 1] the stride
//!   `0.1 * (1 + value)`, so both heads must learn to move at full speed.
//!
//! From distance 1 the best return is 1 - 4 * 0.01 = 0.96.

use rand::Rng;
use rand_pcg::Pcg32;

use super::{EnvSpec, ObservationLayout, Parameters, Task, Transition};

pub const DEFAULT_GOAL_DISTANCE: f32 = 1.0;
pub const MAX_GOAL_DISTANCE: f32 = 10.0;
pub const GOAL_RADIUS: f32 = 0.15;
pub const MAX_STRIDE: f32 = 0.2;
pub const STEP_PENALTY: f32 = -0.01;
pub const MAX_DECISIONS: u32 = 40;
pub const AGENTS_PER_AREA: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Continuous,
    Discrete,
    Hybrid,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinePosition {
    pub position: f32,
    pub goal: f32,
}

pub struct GoalSeeker1D {
    kind: ActionKind,
    spec: EnvSpec,
}

impl GoalSeeker1D {
    pub fn new(kind: ActionKind) -> Self {
        let (name, continuous_size, discrete_branches) = match kind {
            ActionKind::Continuous => ("GoalSeeker1D", 1, vec![]),
            ActionKind::Discrete => ("GoalSeeker1DDiscrete", 0, vec![3]),
            ActionKind::Hybrid => ("GoalSeeker1DHybrid", 1, vec![3]),
        };
        GoalSeeker1D {
            kind,
            spec: EnvSpec {
                behavior_name: format!("{name}?team=0"),
                observations: vec![ObservationLayout::vector(2)],
                continuous_size,
                discrete_branches,
                agents_per_area: AGENTS_PER_AREA,
                max_decisions: MAX_DECISIONS,
            },
        }
    }
}

/// Branch value 0, 1, 2 as direction -1, 0, +1.
fn direction(action: i32) -> f32 {
    (action - 1) as f32
}

impl Task for GoalSeeker1D {
    type Agent = LinePosition;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn begin_episode(&self, line: &mut LinePosition, rng: &mut Pcg32, parameters: &mut Parameters) {
        let distance = parameters.get_with_default("goal_distance", DEFAULT_GOAL_DISTANCE);
        let distance = if distance.is_finite() {
            distance.clamp(0.0, MAX_GOAL_DISTANCE)
        } else {
            DEFAULT_GOAL_DISTANCE
        };
        line.position = 0.0;
        line.goal = if rng.random::<bool>() {
            distance
        } else {
            -distance
        };
    }

    fn act(
        &self,
        line: &mut LinePosition,
        continuous: &[f32],
        discrete: &[i32],
        _rng: &mut Pcg32,
    ) -> Transition {
        let movement = match self.kind {
            ActionKind::Continuous => MAX_STRIDE * continuous[0].clamp(-1.0, 1.0),
            ActionKind::Discrete => MAX_STRIDE * direction(discrete[0]),
            ActionKind::Hybrid => {
                direction(discrete[0]) * 0.5 * MAX_STRIDE * (1.0 + continuous[0].clamp(-1.0, 1.0))
            }
        };
        line.position = (line.position + movement).clamp(-MAX_GOAL_DISTANCE, MAX_GOAL_DISTANCE);
        if (line.position - line.goal).abs() <= GOAL_RADIUS {
            Transition {
                reward: 1.0,
                terminated: true,
            }
        } else {
            Transition {
                reward: STEP_PENALTY,
                terminated: false,
            }
        }
    }

    fn observe(&self, line: &LinePosition, _index: usize, out: &mut [f32]) {
        out[0] = line.position;
        out[1] = line.goal;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::{Parameter, VecEnv, VectorEnv};

    /// Runs a greedy policy and returns the mean terminal reward per episode
    /// (including the step penalties paid on the way).
    fn greedy_return(kind: ActionKind, distance: f32) -> f32 {
        let mut env = VecEnv::new(GoalSeeker1D::new(kind), 1, 2).unwrap();
        env.parameters_mut()
            .set("goal_distance", Parameter::Float(distance));
        let mut batch = env.reset();
        let n = env.num_agents();
        let mut running = vec![0.0f32; n];
        let mut returns = Vec::new();
        for _ in 0..200 {
            let toward: Vec<f32> = batch.decision_obs[0]
                .chunks(2)
                .map(|o| (o[1] - o[0]).signum())
                .collect();
            let (continuous, discrete): (Vec<f32>, Vec<i32>) = match kind {
                ActionKind::Continuous => (toward.clone(), vec![]),
                ActionKind::Discrete => (vec![], toward.iter().map(|d| *d as i32 + 1).collect()),
                ActionKind::Hybrid => {
                    (vec![1.0; n], toward.iter().map(|d| *d as i32 + 1).collect())
                }
            };
            let ids_before = batch.decision_agent_id.clone();
            batch = env.step(&continuous, &discrete).unwrap();
            for (index, id) in ids_before.iter().enumerate() {
                if let Some(t) = batch.terminal_agent_id.iter().position(|t| t == id) {
                    returns.push(running[index] + batch.terminal_reward[t]);
                    running[index] = 0.0;
                } else {
                    running[index] += batch.decision_reward[index];
                }
            }
        }
        returns.iter().sum::<f32>() / returns.len() as f32
    }

    #[test]
    fn greedy_policy_gets_the_best_return_in_every_variant() {
        for kind in [
            ActionKind::Continuous,
            ActionKind::Discrete,
            ActionKind::Hybrid,
        ] {
            let mean = greedy_return(kind, 1.0);
            assert!((mean - 0.96).abs() < 1e-4, "{kind:?}: {mean}");
        }
    }

    #[test]
    fn goal_distance_parameter_is_honored() {
        let mut env = VecEnv::new(GoalSeeker1D::new(ActionKind::Continuous), 0, 1).unwrap();
        env.parameters_mut()
            .set("goal_distance", Parameter::Float(3.0));
        let batch = env.reset();
        for o in batch.decision_obs[0].chunks(2) {
            assert_eq!((o[0], o[1].abs()), (0.0, 3.0));
        }
        let goals: Vec<f32> = batch.decision_obs[0].chunks(2).map(|o| o[1]).collect();
        assert!(goals.iter().any(|g| *g > 0.0) && goals.iter().any(|g| *g < 0.0));
        assert!((greedy_return(ActionKind::Discrete, 3.0) - (1.0 - 14.0 * 0.01)).abs() < 1e-4);
    }

    #[test]
    fn standing_still_is_interrupted_at_max_step() {
        let mut env = VecEnv::new(GoalSeeker1D::new(ActionKind::Hybrid), 0, 1).unwrap();
        env.reset();
        let n = env.num_agents();
        let mut last = None;
        for _ in 0..MAX_DECISIONS {
            last = Some(env.step(&vec![1.0; n], &vec![1; n]).unwrap());
        }
        let batch = last.unwrap();
        assert_eq!(batch.terminal_agent_id.len(), n);
        assert!(batch.terminal_interrupted.iter().all(|i| *i));
    }
}
