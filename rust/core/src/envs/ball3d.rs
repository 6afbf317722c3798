//! `3DBall`, after ML-Agents' `Ball3DAgent`: a ball dropped onto a square
//! platform that the agent tilts about its z and x axes to keep the ball on.
//!
//! Rules taken from the example: 8 observations (platform rotation
//! quaternion z and x, ball position relative to the platform, ball
//! velocity); two continuous actions, clamped to [-1, 1] and scaled to
//! 2 degrees of rotation per physics step, applied only while the quaternion
//! component on that axis is inside +-0.25 or the rotation moves it back;
//! episode start with the platform tilted by up to 10 degrees on each axis and
//! the ball 4 units above it, up to 1.5 off-center; reward +0.1 per decision
//! while the ball stays, -1 and the end of the episode when it drops 2 below
//! the platform or leaves the 3-unit box; a decision every 5 physics steps of
//! 0.02 s, actions repeated between decisions, 5000 physics steps (1000
//! decisions) per episode; environment parameters `mass`, `gravity` and
//! `scale` read at each episode start.
//!
//! Physics (ours, not PhysX): the platform is the example's 5 x 5 x 5 cube,
//! centred on the agent's origin (observations are relative to it, so a ball
//! resting on a level top face is seen at y = 2.5 + radius, as in Unity's
//! demonstrations); the ball is a sphere of radius `0.5 * scale`. While the ball rests on the
//! top face it rolls without slipping (a solid sphere accelerates at 5/7 of
//! the gravity component along the surface); contacts are inelastic. Air drag
//! with coefficient `DRAG * scale^2` slows the ball by `drag / mass`, which is
//! how mass changes the motion (a heavy ball keeps its momentum). Semi-implicit
//! Euler integration, f32, deterministic.

use rand::Rng;
use rand_pcg::Pcg32;

use super::{EnvSpec, ObservationLayout, Parameters, Task, Transition};

pub const PHYSICS_DT: f32 = 0.02;
pub const DECISION_PERIOD: u32 = 5;
pub const MAX_PHYSICS_STEPS: u32 = 5000;
pub const AGENTS_PER_AREA: usize = 12;
/// Half of the platform's width and depth.
pub const PLATFORM_HALF_EXTENT: f32 = 2.5;
/// Half of the platform's thickness: the example's agent is a cube of scale 5,
/// so its top face is 2.5 above the origin the observations are taken from.
pub const PLATFORM_HALF_THICKNESS: f32 = 2.5;
/// Degrees of rotation per physics step at full action.
pub const DEGREES_PER_ACTION: f32 = 2.0;
/// Quaternion component beyond which an axis only rotates back.
pub const ROTATION_LIMIT: f32 = 0.25;
/// Air-drag force per unit speed for a ball of scale 1.
pub const DRAG: f32 = 0.25;
pub const DEFAULT_GRAVITY: f32 = 9.81;
/// Rolling without slipping: a solid sphere's acceleration along a slope is
/// 1 / (1 + 2/5) of a sliding particle's.
const ROLLING_FACTOR: f32 = 5.0 / 7.0;
/// Tolerance for "touching the platform".
const CONTACT_SLOP: f32 = 1e-3;

/// Quaternion `(x, y, z, w)`, Unity's component order.
pub type Quaternion = [f32; 4];

fn axis_angle(axis: [f32; 3], degrees: f32) -> Quaternion {
    let (sin, cos) = (degrees.to_radians() * 0.5).sin_cos();
    [axis[0] * sin, axis[1] * sin, axis[2] * sin, cos]
}

/// `a * b`: rotate by `b` in `a`'s local frame (Unity's `Transform.Rotate`).
fn multiply(a: Quaternion, b: Quaternion) -> Quaternion {
    let [ax, ay, az, aw] = a;
    let [bx, by, bz, bw] = b;
    [
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ]
}

fn normalize(q: Quaternion) -> Quaternion {
    let norm = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    [q[0] / norm, q[1] / norm, q[2] / norm, q[3] / norm]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The platform's local x, y (surface normal) and z axes in world space.
pub fn platform_axes(q: Quaternion) -> ([f32; 3], [f32; 3], [f32; 3]) {
    let [x, y, z, w] = q;
    let local_x = [
        1.0 - 2.0 * (y * y + z * z),
        2.0 * (x * y + w * z),
        2.0 * (x * z - w * y),
    ];
    let normal = [
        2.0 * (x * y - w * z),
        1.0 - 2.0 * (x * x + z * z),
        2.0 * (y * z + w * x),
    ];
    let local_z = [
        2.0 * (x * z + w * y),
        2.0 * (y * z - w * x),
        1.0 - 2.0 * (x * x + y * y),
    ];
    (local_x, normal, local_z)
}

/// One platform and its ball.
#[derive(Clone, Debug, PartialEq)]
pub struct BallArea {
    pub platform_rotation: Quaternion,
    /// Ball center relative to the platform center.
    pub ball_position: [f32; 3],
    pub ball_velocity: [f32; 3],
    pub ball_radius: f32,
    pub ball_mass: f32,
    pub gravity: f32,
}

impl Default for BallArea {
    fn default() -> Self {
        BallArea {
            platform_rotation: [0.0, 0.0, 0.0, 1.0],
            ball_position: [0.0, 4.0, 0.0],
            ball_velocity: [0.0; 3],
            ball_radius: 0.5,
            ball_mass: 1.0,
            gravity: DEFAULT_GRAVITY,
        }
    }
}

impl BallArea {
    /// The example's failure test: the ball dropped 2 below the platform or
    /// left the 3-unit box around it.
    pub fn ball_fell(&self) -> bool {
        let [x, y, z] = self.ball_position;
        y < -2.0 || x.abs() > 3.0 || z.abs() > 3.0
    }

    /// One physics step with the platform rotating by the given per-step
    /// rotations (`None` where the limit forbids it).
    fn physics_step(&mut self, rotate_z: Quaternion, rotate_x: Quaternion, action: [f32; 2]) {
        // Rotation limits read the current quaternion, as the example does.
        let q = self.platform_rotation;
        if (q[2] < ROTATION_LIMIT && action[0] > 0.0) || (q[2] > -ROTATION_LIMIT && action[0] < 0.0)
        {
            self.platform_rotation = multiply(self.platform_rotation, rotate_z);
        }
        let q = self.platform_rotation;
        if (q[0] < ROTATION_LIMIT && action[1] > 0.0) || (q[0] > -ROTATION_LIMIT && action[1] < 0.0)
        {
            self.platform_rotation = multiply(self.platform_rotation, rotate_x);
        }

        let (local_x, normal, local_z) = platform_axes(self.platform_rotation);
        let contact_height = PLATFORM_HALF_THICKNESS + self.ball_radius;
        let p = self.ball_position;
        let above_top_face = dot(p, local_x).abs() <= PLATFORM_HALF_EXTENT
            && dot(p, local_z).abs() <= PLATFORM_HALF_EXTENT;
        let height = dot(p, normal);
        let touching = above_top_face && height > 0.0 && height <= contact_height + CONTACT_SLOP;

        let gravity = [0.0, -self.gravity, 0.0];
        let mut acceleration = if touching {
            // The surface cancels the normal part of gravity; rolling scales the rest.
            let along_normal = dot(gravity, normal);
            [
                ROLLING_FACTOR * (gravity[0] - along_normal * normal[0]),
                ROLLING_FACTOR * (gravity[1] - along_normal * normal[1]),
                ROLLING_FACTOR * (gravity[2] - along_normal * normal[2]),
            ]
        } else {
            gravity
        };
        let drag_rate = DRAG * (2.0 * self.ball_radius).powi(2) / self.ball_mass;
        let v = &mut self.ball_velocity;
        for axis in 0..3 {
            acceleration[axis] -= drag_rate * v[axis];
            v[axis] += acceleration[axis] * PHYSICS_DT;
        }
        let p = &mut self.ball_position;
        for axis in 0..3 {
            p[axis] += v[axis] * PHYSICS_DT;
        }

        self.push_out_of_platform();
    }

    /// Resolves contact: a ball sunk into the top face is pushed out along the
    /// normal and loses its velocity into the face (inelastic). Also run at
    /// episode start, where a large ball can begin inside the cube (PhysX
    /// separates them the same way).
    fn push_out_of_platform(&mut self) {
        let (local_x, normal, local_z) = platform_axes(self.platform_rotation);
        let contact_height = PLATFORM_HALF_THICKNESS + self.ball_radius;
        let p = &mut self.ball_position;
        let height = dot(*p, normal);
        let above_top_face = dot(*p, local_x).abs() <= PLATFORM_HALF_EXTENT
            && dot(*p, local_z).abs() <= PLATFORM_HALF_EXTENT;
        if above_top_face && height < contact_height && height > 0.0 {
            let push = contact_height - height;
            for axis in 0..3 {
                p[axis] += push * normal[axis];
            }
            let v = &mut self.ball_velocity;
            let into = dot(*v, normal);
            if into < 0.0 {
                for axis in 0..3 {
                    v[axis] -= into * normal[axis];
                }
            }
        }
    }
}

/// The 3DBall task.
pub struct Ball3D {
    spec: EnvSpec,
}

impl Default for Ball3D {
    fn default() -> Self {
        Self::new()
    }
}

impl Ball3D {
    pub fn new() -> Self {
        Ball3D {
            spec: EnvSpec {
                behavior_name: "3DBall?team=0".to_string(),
                observations: vec![ObservationLayout::vector(8)],
                continuous_size: 2,
                discrete_branches: Vec::new(),
                agents_per_area: AGENTS_PER_AREA,
                max_decisions: MAX_PHYSICS_STEPS / DECISION_PERIOD,
            },
        }
    }
}

impl Task for Ball3D {
    type Agent = BallArea;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn begin_episode(&self, area: &mut BallArea, rng: &mut Pcg32, parameters: &mut Parameters) {
        let tilt_x = rng.random_range(-10.0f32..10.0);
        let tilt_z = rng.random_range(-10.0f32..10.0);
        area.platform_rotation = multiply(
            axis_angle([1.0, 0.0, 0.0], tilt_x),
            axis_angle([0.0, 0.0, 1.0], tilt_z),
        );
        area.ball_velocity = [0.0; 3];
        area.ball_position = [
            rng.random_range(-1.5f32..1.5),
            4.0,
            rng.random_range(-1.5f32..1.5),
        ];
        // Parameters are read in the example's order; non-physical values
        // are clamped so a bad sampler cannot produce NaN physics.
        area.ball_mass = parameters.get_with_default("mass", 1.0).max(1e-3);
        area.ball_radius = 0.5 * parameters.get_with_default("scale", 1.0).max(1e-3);
        area.gravity = parameters.get_with_default("gravity", DEFAULT_GRAVITY);
        area.push_out_of_platform();
    }

    fn act(
        &self,
        area: &mut BallArea,
        continuous: &[f32],
        _discrete: &[i32],
        _rng: &mut Pcg32,
    ) -> Transition {
        let action = [
            continuous[0].clamp(-1.0, 1.0),
            continuous[1].clamp(-1.0, 1.0),
        ];
        let rotate_z = axis_angle([0.0, 0.0, 1.0], DEGREES_PER_ACTION * action[0]);
        let rotate_x = axis_angle([1.0, 0.0, 0.0], DEGREES_PER_ACTION * action[1]);
        for _ in 0..DECISION_PERIOD {
            area.physics_step(rotate_z, rotate_x, action);
            if area.ball_fell() {
                return Transition {
                    reward: -1.0,
                    terminated: true,
                };
            }
        }
        area.platform_rotation = normalize(area.platform_rotation);
        Transition {
            reward: 0.1,
            terminated: false,
        }
    }

    fn observe(&self, area: &BallArea, _index: usize, out: &mut [f32]) {
        let q = area.platform_rotation;
        let p = area.ball_position;
        let v = area.ball_velocity;
        out.copy_from_slice(&[q[2], q[0], p[0], p[1], p[2], v[0], v[1], v[2]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::{Parameter, VecEnv, VectorEnv};

    /// A hand-written balancing controller: tilt so that the ball accelerates
    /// back toward the center, damped by its velocity.
    pub fn balancing_actions(observations: &[f32]) -> Vec<f32> {
        observations
            .chunks(8)
            .flat_map(|o| {
                let (rot_z, rot_x, x, z, vx, vz) = (o[0], o[1], o[2], o[4], o[5], o[7]);
                // Positive z rotation rolls the ball toward -x; positive x rotation toward +z.
                let target_rot_z = (0.04 * x + 0.05 * vx).clamp(-0.2, 0.2);
                let target_rot_x = (-0.04 * z - 0.05 * vz).clamp(-0.2, 0.2);
                [
                    ((target_rot_z - rot_z) * 20.0).clamp(-1.0, 1.0),
                    ((target_rot_x - rot_x) * 20.0).clamp(-1.0, 1.0),
                ]
            })
            .collect()
    }

    #[test]
    fn controller_keeps_the_ball_up_for_full_episodes() {
        let mut env = VecEnv::new(Ball3D::new(), 3, 4).unwrap();
        let mut batch = env.reset();
        let mut total = vec![0.0f32; env.num_agents()];
        for decision in 0..1000 {
            let actions = balancing_actions(&batch.decision_obs[0]);
            batch = env.step(&actions, &[]).unwrap();
            for (sum, r) in total.iter_mut().zip(&batch.decision_reward) {
                *sum += r;
            }
            if decision < 999 {
                assert!(
                    batch.terminal_agent_id.is_empty(),
                    "fell at decision {decision}"
                );
            }
        }
        // Every episode is interrupted at max step with the full reward.
        assert_eq!(batch.terminal_agent_id.len(), env.num_agents());
        assert!(batch.terminal_interrupted.iter().all(|i| *i));
        let expected = 0.1 * 999.0;
        assert!(
            total.iter().all(|t| (t - expected).abs() < 1e-2),
            "{total:?}"
        );
    }

    #[test]
    fn random_actions_drop_the_ball() {
        let mut env = VecEnv::new(Ball3D::new(), 11, 2).unwrap();
        env.reset();
        let mut rng = Pcg32::new(5, 0);
        let mut falls = 0;
        for _ in 0..300 {
            let actions: Vec<f32> = (0..env.num_agents() * 2)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect();
            let batch = env.step(&actions, &[]).unwrap();
            falls += batch.terminal_reward.iter().filter(|r| **r == -1.0).count();
        }
        assert!(falls >= env.num_agents(), "only {falls} falls");
    }

    /// Over random actions and random parameters: the platform quaternion stays a unit
    /// quaternion close to the rotation limit, the ball never sinks into the
    /// top face, nothing becomes NaN, and rewards are exactly 0.1 or -1.
    #[test]
    fn physics_invariants_hold_under_random_actions_and_parameters() {
        for seed in 0..8u64 {
            let mut env = VecEnv::new(Ball3D::new(), seed, 4).unwrap();
            let parameters = env.parameters_mut();
            parameters.set("mass", Parameter::uniform(seed as i32, 0.5, 10.0).unwrap());
            parameters.set(
                "scale",
                Parameter::uniform(seed as i32 + 1, 0.75, 3.0).unwrap(),
            );
            parameters.set(
                "gravity",
                Parameter::uniform(seed as i32 + 2, 4.0, 20.0).unwrap(),
            );
            let mut batch = env.reset();
            let mut rng = Pcg32::new(seed, 99);
            // The limit is checked per component before each rotation, and a rotation
            // about one axis also moves the other component a little (as in the
            // example), so the components may pass 0.25 by a few steps' worth (up to
            // ~0.07 over these seeds' longest episodes).
            let bound = ROTATION_LIMIT + 0.1;
            for _ in 0..400 {
                let actions: Vec<f32> = (0..env.num_agents() * 2)
                    .map(|_| rng.random_range(-1.5f32..1.5))
                    .collect();
                batch = env.step(&actions, &[]).unwrap();
                assert!(batch.decision_obs[0].iter().all(|v| v.is_finite()));
                assert!(batch.decision_reward.iter().all(|r| *r == 0.1 || *r == 0.0));
                assert!(batch.terminal_reward.iter().all(|r| *r == -1.0));
                for area in env.agents() {
                    let q = area.platform_rotation;
                    let norm = q.iter().map(|c| c * c).sum::<f32>().sqrt();
                    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
                    assert!(q[0].abs() <= bound && q[2].abs() <= bound, "{q:?}");
                    let (local_x, normal, local_z) = platform_axes(q);
                    let p = area.ball_position;
                    let over = dot(p, local_x).abs() <= PLATFORM_HALF_EXTENT
                        && dot(p, local_z).abs() <= PLATFORM_HALF_EXTENT;
                    let height = dot(p, normal);
                    if over && height > 0.0 {
                        let contact = PLATFORM_HALF_THICKNESS + area.ball_radius;
                        assert!(height >= contact - 1e-3, "sank to {height} < {contact}");
                    }
                }
            }
            assert_eq!(batch.decision_agent_id.len(), env.num_agents());
        }
    }

    #[test]
    fn same_seed_same_trajectory_other_seed_differs() {
        let run = |seed| {
            let mut env = VecEnv::new(Ball3D::new(), seed, 1).unwrap();
            let mut batch = env.reset();
            let mut rng = Pcg32::new(9, 0);
            for _ in 0..50 {
                let actions: Vec<f32> = (0..24).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                batch = env.step(&actions, &[]).unwrap();
            }
            batch
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1).decision_obs, run(2).decision_obs);
    }

    #[test]
    fn parallel_and_serial_steps_agree() {
        // 200 areas = 2400 agents crosses the parallel threshold; the first
        // 12 agents must match a 1-area run with the same seed.
        let mut big = VecEnv::new(Ball3D::new(), 4, 200).unwrap();
        let mut small = VecEnv::new(Ball3D::new(), 4, 1).unwrap();
        let mut big_batch = big.reset();
        let mut small_batch = small.reset();
        for _ in 0..20 {
            big_batch = big.step(&vec![0.3; 4800], &[]).unwrap();
            small_batch = small.step(&[0.3; 24], &[]).unwrap();
        }
        assert_eq!(
            big_batch.decision_obs[0][..96],
            small_batch.decision_obs[0][..]
        );
    }

    #[test]
    fn episode_start_matches_the_example() {
        let env = VecEnv::new(Ball3D::new(), 8, 10).unwrap();
        for area in env.agents() {
            let [x, y, z] = area.ball_position;
            assert!(x.abs() <= 1.5 && z.abs() <= 1.5 && y == 4.0);
            assert_eq!(area.ball_velocity, [0.0; 3]);
            // Up to 10 degrees per axis: |q.x|, |q.z| <= sin(5 degrees).
            let limit = 5.0f32.to_radians().sin() + 1e-6;
            assert!(area.platform_rotation[0].abs() <= limit);
            assert!(area.platform_rotation[2].abs() <= limit);
        }
    }

    #[test]
    fn ball_lands_and_rests_on_a_level_platform() {
        let mut area = BallArea::default();
        let none = axis_angle([0.0, 0.0, 1.0], 0.0);
        for _ in 0..200 {
            area.physics_step(none, none, [0.0, 0.0]);
        }
        let rest = PLATFORM_HALF_THICKNESS + area.ball_radius;
        assert!(
            (area.ball_position[1] - rest).abs() < 1e-3,
            "{:?}",
            area.ball_position
        );
        assert!(area.ball_velocity.iter().all(|v| v.abs() < 1e-3));
        assert!(!area.ball_fell());
    }

    #[test]
    fn tilted_platform_rolls_the_ball_downhill_at_five_sevenths_g_sin() {
        let mut area = BallArea {
            platform_rotation: axis_angle([0.0, 0.0, 1.0], 10.0),
            ball_position: [0.0, 0.75, 0.0],
            ball_mass: 1e6, // no drag
            ..BallArea::default()
        };
        let none = axis_angle([0.0, 0.0, 1.0], 0.0);
        for _ in 0..10 {
            area.physics_step(none, none, [0.0, 0.0]);
        }
        let speed = dot(area.ball_velocity, area.ball_velocity).sqrt();
        let expected = ROLLING_FACTOR * DEFAULT_GRAVITY * 10.0f32.to_radians().sin() * 0.2;
        assert!(
            (speed - expected).abs() < 0.05 * expected,
            "{speed} vs {expected}"
        );
        // Positive rotation about z rolls the ball toward -x.
        assert!(area.ball_velocity[0] < 0.0);
    }

    #[test]
    fn rotation_is_rate_limited_and_bounded() {
        let mut area = BallArea {
            gravity: 0.0,
            ..BallArea::default()
        };
        let rotate_z = axis_angle([0.0, 0.0, 1.0], DEGREES_PER_ACTION);
        let rotate_x = axis_angle([1.0, 0.0, 0.0], DEGREES_PER_ACTION);
        area.physics_step(rotate_z, rotate_x, [1.0, 1.0]);
        let expected = (1.0f32).to_radians().sin();
        assert!((area.platform_rotation[2] - expected).abs() < 1e-3);
        for _ in 0..100 {
            area.physics_step(rotate_z, rotate_x, [1.0, 1.0]);
        }
        // Stops one step past the limit: 0.25 plus at most one step's worth.
        assert!(area.platform_rotation[2] <= ROTATION_LIMIT + 0.02);
        assert!(area.platform_rotation[0] <= ROTATION_LIMIT + 0.02);
        assert!(area.platform_rotation[2] >= ROTATION_LIMIT);
    }

    #[test]
    fn parameters_change_the_physics_at_episode_start() {
        let mut env = VecEnv::new(Ball3D::new(), 0, 1).unwrap();
        env.parameters_mut().set("gravity", Parameter::Float(0.0));
        env.parameters_mut().set("scale", Parameter::Float(2.0));
        env.parameters_mut().set("mass", Parameter::Float(5.0));
        // Set after construction: takes effect at the next episode start.
        assert_eq!(env.agents()[0].gravity, DEFAULT_GRAVITY);
        env.reset();
        let mut batch = env.reset();
        for _ in 0..100 {
            batch = env.step(&[0.0; 24], &[]).unwrap();
        }
        assert!(env
            .agents()
            .iter()
            .all(|a| a.ball_radius == 1.0 && a.ball_mass == 5.0));
        // No gravity: the ball floats where it started.
        for o in batch.decision_obs[0].chunks(8) {
            assert_eq!(o[3], 4.0);
            assert_eq!(o[6], 0.0);
        }
    }

    #[test]
    fn heavier_ball_keeps_more_speed() {
        let speed_after = |mass: f32| {
            let mut area = BallArea {
                gravity: 0.0,
                ball_mass: mass,
                ball_velocity: [1.0, 0.0, 0.0],
                ..BallArea::default()
            };
            let none = axis_angle([0.0, 0.0, 1.0], 0.0);
            for _ in 0..50 {
                area.physics_step(none, none, [0.0, 0.0]);
            }
            area.ball_velocity[0]
        };
        assert!(speed_after(10.0) > speed_after(1.0));
        assert!(speed_after(1.0) > speed_after(0.5));
    }
}
