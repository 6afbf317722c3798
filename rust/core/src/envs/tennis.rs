//! `Tennis`: a two-team, zero-sum paddle game (Pong seen from above), with
//! ML-Agents' team convention: team 0 plays behavior `Tennis?team=0`, team 1
//! `Tennis?team=1`, each team is one group.
//!
//! The court is `[-1, 1] x [-1, 1]`; team 0 defends the line `x = -1`, team 1
//! the line `x = 1`. Each team has `team_size` paddles (1 by default, set
//! through `agents_per_area = 2 * team_size`) of half-length 0.2, the first at
//! depth `x = -/+0.9`, the next 0.3 further in. A paddle moves along y by 0.08
//! per decision (one branch of 3: down, stay, up). The ball starts at the
//! centre line at a random height, towards a random side at up to 45 degrees,
//! at 0.05 per decision; it bounces off the side walls `y = +-1`, and off a
//! paddle it crosses while coming towards that paddle's goal: it leaves at an
//! angle set by where it hit (up to 60 degrees at the paddle's ends), 5 %
//! faster (at most 0.12). A ball past a goal line ends the point: every agent
//! of the scoring team gets +1, every agent of the other team -1, and the
//! episode ends for both. A rally longer than 400 decisions is interrupted
//! (no reward).
//!
//! Observations (a vector of `5 + 2 * team_size` floats), mirrored for team
//! 1 so that both teams see their own goal at `x = -1` and one policy can play
//! either side: own depth and height; ball x, y; ball velocity divided by the
//! top speed; the heights of the teammates (slot order), then of the
//! opponents.

use rand::Rng;
use rand_pcg::Pcg32;

use super::area::{AgentSlot, AreaActions, AreaOutcome, AreaSpec, AreaTask};
use super::{EnvSpec, ObservationLayout, Parameters};
use crate::error::{CoreError, CoreResult};

pub const PADDLE_HALF_LENGTH: f32 = 0.2;
pub const PADDLE_SPEED: f32 = 0.08;
pub const BALL_RADIUS: f32 = 0.03;
pub const START_SPEED: f32 = 0.05;
pub const TOP_SPEED: f32 = 0.12;
pub const SPEED_UP: f32 = 1.05;
pub const MAX_DECISIONS: u32 = 400;
pub const MAX_TEAM_SIZE: usize = 3;
const BACK_DEPTH: f32 = 0.9;
const DEPTH_STEP: f32 = 0.3;
const MAX_BOUNCE_ANGLE: f32 = std::f32::consts::FRAC_PI_3;
const MAX_START_ANGLE: f32 = std::f32::consts::FRAC_PI_4;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Court {
    /// Paddle heights, team 0's slots first (`2 * team_size` used).
    pub paddles: [f32; 2 * MAX_TEAM_SIZE],
    pub ball: (f32, f32),
    pub velocity: (f32, f32),
}

pub struct Tennis {
    team_size: usize,
    spec: AreaSpec,
}

impl Tennis {
    /// `team_size` paddles per team (1 to [`MAX_TEAM_SIZE`]).
    pub fn new(team_size: usize) -> CoreResult<Self> {
        if !(1..=MAX_TEAM_SIZE).contains(&team_size) {
            return Err(CoreError::invalid(
                "agents_per_area",
                format!(
                    "Tennis needs 2 to {} agents per area, an even number (two equal teams)",
                    2 * MAX_TEAM_SIZE
                ),
            ));
        }
        let behavior = |team: usize| EnvSpec {
            behavior_name: format!("Tennis?team={team}"),
            observations: vec![ObservationLayout::vector(5 + 2 * team_size)],
            continuous_size: 0,
            discrete_branches: vec![3],
            agents_per_area: team_size,
            max_decisions: MAX_DECISIONS,
        };
        let slots = (0..2 * team_size)
            .map(|slot| {
                let team = slot / team_size;
                AgentSlot {
                    behavior: team,
                    group: Some(team),
                }
            })
            .collect();
        Ok(Tennis {
            team_size,
            spec: AreaSpec {
                behaviors: vec![behavior(0), behavior(1)],
                slots,
                groups_per_area: 2,
                max_decisions: MAX_DECISIONS,
            },
        })
    }

    /// `Tennis` for `agents_per_area` agents (None: 2, one per team).
    pub fn for_agents_per_area(agents_per_area: Option<usize>) -> CoreResult<Self> {
        match agents_per_area {
            None => Tennis::new(1),
            Some(agents) if agents % 2 == 0 => Tennis::new(agents / 2),
            Some(_) => Tennis::new(0),
        }
    }

    pub fn team_size(&self) -> usize {
        self.team_size
    }

    fn team(&self, slot: usize) -> usize {
        slot / self.team_size
    }

    /// Signed depth of a paddle: negative for team 0.
    pub fn depth(&self, slot: usize) -> f32 {
        let rank = (slot % self.team_size) as f32;
        let depth = BACK_DEPTH - DEPTH_STEP * rank;
        if self.team(slot) == 0 {
            -depth
        } else {
            depth
        }
    }
}

/// Reflects `y` off the walls at +-1 (turning `vy` around when it does).
fn bounce_off_walls(y: &mut f32, vy: &mut f32) {
    if *y > 1.0 {
        *y = 2.0 - *y;
        *vy = -*vy;
    } else if *y < -1.0 {
        *y = -2.0 - *y;
        *vy = -*vy;
    }
}

impl AreaTask for Tennis {
    type Area = Court;

    fn spec(&self) -> &AreaSpec {
        &self.spec
    }

    fn begin_episode(&self, court: &mut Court, rng: &mut Pcg32, _parameters: &mut Parameters) {
        court.paddles = [0.0; 2 * MAX_TEAM_SIZE];
        for y in court.paddles[..2 * self.team_size].iter_mut() {
            *y = rng.random_range(-0.5..0.5);
        }
        court.ball = (0.0, rng.random_range(-0.5..0.5));
        let angle = rng.random_range(-MAX_START_ANGLE..MAX_START_ANGLE);
        let side = if rng.random::<bool>() { 1.0 } else { -1.0 };
        court.velocity = (side * START_SPEED * angle.cos(), START_SPEED * angle.sin());
    }

    fn act(
        &self,
        court: &mut Court,
        actions: &AreaActions<'_>,
        _active: &[bool],
        _rng: &mut Pcg32,
        outcome: &mut AreaOutcome,
    ) {
        let reach = 1.0 - PADDLE_HALF_LENGTH;
        for (slot, y) in court.paddles[..2 * self.team_size].iter_mut().enumerate() {
            let direction = (actions.discrete(slot)[0] - 1) as f32;
            *y = (*y + PADDLE_SPEED * direction).clamp(-reach, reach);
        }
        let (old_x, old_y) = court.ball;
        let (mut vx, mut vy) = court.velocity;
        let (mut x, mut y) = (old_x + vx, old_y + vy);
        bounce_off_walls(&mut y, &mut vy);
        // The defending team's paddles the ball crosses, nearest to its start first: the
        // paddles further in (higher rank) come first.
        let defending = if vx < 0.0 { 0 } else { 1 };
        let first = defending * self.team_size;
        for slot in (first..first + self.team_size).rev() {
            let depth = self.depth(slot);
            if (old_x - depth) * (x - depth) > 0.0 || old_x == depth {
                continue;
            }
            let along = (depth - old_x) / (x - old_x);
            let crossing = old_y + along * (y - old_y);
            let offset = (crossing - court.paddles[slot]) / (PADDLE_HALF_LENGTH + BALL_RADIUS);
            if offset.abs() > 1.0 {
                continue;
            }
            let speed = ((vx * vx + vy * vy).sqrt() * SPEED_UP).min(TOP_SPEED);
            let angle = offset * MAX_BOUNCE_ANGLE;
            let away = if defending == 0 { 1.0 } else { -1.0 };
            vx = away * speed * angle.cos();
            vy = speed * angle.sin();
            // The rest of the move goes back out from the paddle.
            x = depth + vx * (1.0 - along);
            y = crossing + vy * (1.0 - along);
            bounce_off_walls(&mut y, &mut vy);
            break;
        }
        court.ball = (x, y);
        court.velocity = (vx, vy);
        let scorer = if x < -1.0 {
            Some(1)
        } else if x > 1.0 {
            Some(0)
        } else {
            None
        };
        if let Some(scorer) = scorer {
            for (slot, reward) in outcome.rewards.iter_mut().enumerate() {
                *reward = if self.team(slot) == scorer { 1.0 } else { -1.0 };
            }
            outcome.episode_over = true;
        }
    }

    fn observe(&self, court: &Court, slot: usize, _index: usize, out: &mut [f32]) {
        let team = self.team(slot);
        // Team 1 sees the court turned around, its own goal on the left.
        let mirror = if team == 0 { 1.0 } else { -1.0 };
        out[0] = mirror * self.depth(slot);
        out[1] = court.paddles[slot];
        out[2] = mirror * court.ball.0;
        out[3] = court.ball.1;
        out[4] = mirror * court.velocity.0 / TOP_SPEED;
        out[5] = court.velocity.1 / TOP_SPEED;
        let ours = team * self.team_size..(team + 1) * self.team_size;
        let theirs = (1 - team) * self.team_size..(2 - team) * self.team_size;
        let others = ours.filter(|s| *s != slot).chain(theirs);
        for (out, other) in out[6..].iter_mut().zip(others) {
            *out = court.paddles[other];
        }
    }
}

/// The move (branch value) of a paddle that follows the ball's height while
/// the ball comes towards its goal. For tests and benchmarks.
pub fn tracking_move(court: &Court, tennis: &Tennis, slot: usize) -> i32 {
    let incoming = (court.velocity.0 < 0.0) == (tennis.depth(slot) < 0.0);
    let target = if incoming { court.ball.1 } else { 0.0 };
    let gap = target - court.paddles[slot];
    if gap > PADDLE_SPEED / 2.0 {
        2
    } else if gap < -PADDLE_SPEED / 2.0 {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::area::AreaEnv;
    use crate::envs::{BehaviorActions, BuiltinEnv, StepBatch};

    fn step(env: &mut AreaEnv<Tennis>, team0: &[i32], team1: &[i32]) -> Vec<StepBatch> {
        let actions = [
            BehaviorActions {
                continuous: &[],
                discrete: team0,
            },
            BehaviorActions {
                continuous: &[],
                discrete: team1,
            },
        ];
        env.step(&actions).unwrap()
    }

    #[test]
    fn two_behaviors_with_team_names_and_one_group_per_team() {
        let mut env = AreaEnv::new(Tennis::new(2).unwrap(), 0, 3).unwrap();
        let names: Vec<_> = env
            .behaviors()
            .iter()
            .map(|b| b.behavior_name.clone())
            .collect();
        assert_eq!(names, ["Tennis?team=0", "Tennis?team=1"]);
        assert_eq!(env.num_agents(), 12);
        let batches = env.reset();
        assert_eq!(batches[0].decision_group_id, vec![1, 1, 3, 3, 5, 5]);
        assert_eq!(batches[1].decision_group_id, vec![2, 2, 4, 4, 6, 6]);
        assert_eq!(batches[0].decision_obs[0].len(), 6 * 9);
        assert!(Tennis::for_agents_per_area(Some(3)).is_err());
        assert!(Tennis::for_agents_per_area(Some(8)).is_err());
        assert_eq!(Tennis::for_agents_per_area(None).unwrap().team_size(), 1);
    }

    #[test]
    fn observations_are_mirrored_for_team_one() {
        let tennis = Tennis::new(1).unwrap();
        let court = Court {
            paddles: [0.3, -0.4, 0.0, 0.0, 0.0, 0.0],
            ball: (0.5, 0.1),
            velocity: (0.06, -0.02),
        };
        let mut left = [0.0; 7];
        let mut right = [0.0; 7];
        tennis.observe(&court, 0, 0, &mut left);
        tennis.observe(&court, 1, 0, &mut right);
        assert_eq!(left, [-0.9, 0.3, 0.5, 0.1, 0.5, -0.02 / TOP_SPEED, -0.4]);
        assert_eq!(right, [-0.9, -0.4, -0.5, 0.1, -0.5, -0.02 / TOP_SPEED, 0.3]);
    }

    #[test]
    fn a_paddle_in_the_way_returns_the_ball_faster_and_angled() {
        let tennis = Tennis::new(1).unwrap();
        let mut court = Court {
            paddles: [0.1, 0.0, 0.0, 0.0, 0.0, 0.0],
            ball: (-0.88, 0.0),
            velocity: (-0.05, 0.0),
        };
        let actions = AreaActions::new(&[], &[1, 1], 0, 1);
        let mut outcome = AreaOutcome::new(2, 2);
        let mut rng = Pcg32::new(0, 0);
        tennis.act(&mut court, &actions, &[true, true], &mut rng, &mut outcome);
        assert!(!outcome.episode_over);
        let (vx, vy) = court.velocity;
        assert!(vx > 0.0 && vy < 0.0, "{vx} {vy}");
        let speed = (vx * vx + vy * vy).sqrt();
        assert!((speed - 0.05 * SPEED_UP).abs() < 1e-6);
        assert!(court.ball.0 > -0.9);
        // A paddle too far away lets it through: team 1 scores.
        let mut court = Court {
            paddles: [0.8, 0.0, 0.0, 0.0, 0.0, 0.0],
            ball: (-0.98, 0.0),
            velocity: (-0.05, 0.0),
        };
        outcome.clear();
        tennis.act(&mut court, &actions, &[true, true], &mut rng, &mut outcome);
        assert!(outcome.episode_over);
        assert_eq!(outcome.rewards, vec![-1.0, 1.0]);
    }

    #[test]
    fn walls_reflect_and_paddles_stay_on_court() {
        let tennis = Tennis::new(1).unwrap();
        let mut court = Court {
            paddles: [0.78, -0.78, 0.0, 0.0, 0.0, 0.0],
            ball: (0.0, 0.98),
            velocity: (0.03, 0.04),
        };
        let actions = AreaActions::new(&[], &[2, 0], 0, 1);
        let mut outcome = AreaOutcome::new(2, 2);
        tennis.act(
            &mut court,
            &actions,
            &[true, true],
            &mut Pcg32::new(0, 0),
            &mut outcome,
        );
        assert!((court.ball.1 - 0.98).abs() < 1e-6 && court.velocity.1 < 0.0);
        assert_eq!(court.paddles[..2], [0.8, -0.8]);
    }

    /// Points won by each team over `decisions` decisions of 32 areas.
    fn points(seed: u64, team0_tracks: bool, team1_tracks: bool) -> (usize, usize, usize) {
        let mut env = AreaEnv::new(Tennis::new(1).unwrap(), seed, 32).unwrap();
        env.reset();
        let mut rng = Pcg32::new(seed, 1);
        let (mut won0, mut won1, mut draws) = (0, 0, 0);
        for _ in 0..3000 {
            let mut moves = [Vec::new(), Vec::new()];
            for (behavior, (out, tracks)) in moves
                .iter_mut()
                .zip([team0_tracks, team1_tracks])
                .enumerate()
            {
                for agent in env.decided_agents(behavior) {
                    out.push(if tracks {
                        tracking_move(&env.areas()[agent / 2], env.task(), agent % 2)
                    } else {
                        rng.random_range(0..3)
                    });
                }
            }
            let batches = step(&mut env, &moves[0], &moves[1]);
            // Zero-sum: the two sides of every finished point add up to nothing.
            let total: f32 = batches.iter().flat_map(|b| b.terminal_reward.iter()).sum();
            assert_eq!(total, 0.0);
            for (reward, interrupted) in batches[0]
                .terminal_reward
                .iter()
                .zip(&batches[0].terminal_interrupted)
            {
                match (*reward > 0.0, *reward < 0.0, *interrupted) {
                    (true, _, _) => won0 += 1,
                    (_, true, _) => won1 += 1,
                    (_, _, true) => draws += 1,
                    _ => panic!("a point ended without a winner or a time-out"),
                }
            }
            assert_eq!(
                batches[0].terminal_agent_id.len(),
                batches[1].terminal_agent_id.len()
            );
        }
        (won0, won1, draws)
    }

    #[test]
    fn tracking_beats_random_and_random_is_even() {
        let (tracker, random, _) = points(2, true, false);
        assert!(tracker > 9 * random, "{tracker} to {random}");
        let (mirrored_random, mirrored_tracker, _) = points(2, false, true);
        assert!(mirrored_tracker > 9 * mirrored_random);
        let (left, right, _) = points(5, false, false);
        let total = (left + right) as f32;
        assert!(
            total > 200.0 && (left as f32 / total - 0.5).abs() < 0.1,
            "{left} {right}"
        );
    }
}
