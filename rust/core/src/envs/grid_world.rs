//! `GridWorld` and `VisualGridWorld`, after ML-Agents' GridWorld example: an
//! agent on a 5 x 5 grid with a goal (+1) and a pit, the wrong goal (-1),
//! both ending the episode; -0.01 per decision otherwise; at most 100
//! decisions. One discrete branch of 5 actions (0 no-op, 1 up (+z), 2 down
//! (-z), 3 left (-x), 4 right (+x)); moves that would leave the grid are
//! masked, as the example's `WriteDiscreteActionMask` does (a masked move
//! that is taken anyway leaves the agent in place).
//!
//! Observations: `GridWorld` sees 6 floats (agent, goal and pit cells as
//! x, z divided by grid size - 1); `VisualGridWorld` sees a `[3, 20, 20]`
//! image (channels agent, goal, pit; each cell 4 x 4 pixels of 1.0), the
//! smallest size ML-Agents' `simple` visual encoder accepts.

use rand::Rng;
use rand_pcg::Pcg32;

use super::{EnvSpec, ObservationLayout, Parameters, Task, Transition};

pub const GRID_SIZE: usize = 5;
pub const PIXELS_PER_CELL: usize = 4;
pub const AGENTS_PER_AREA: usize = 9;
pub const MAX_DECISIONS: u32 = 100;
pub const STEP_PENALTY: f32 = -0.01;

pub const NO_ACTION: i32 = 0;
pub const UP: i32 = 1;
pub const DOWN: i32 = 2;
pub const LEFT: i32 = 3;
pub const RIGHT: i32 = 4;

/// What the agent sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridView {
    Vector,
    Visual,
}

/// Cells as `(x, z)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GridArea {
    pub agent: (usize, usize),
    pub goal: (usize, usize),
    pub pit: (usize, usize),
}

pub struct GridWorld {
    view: GridView,
    spec: EnvSpec,
}

impl GridWorld {
    pub fn new(view: GridView) -> Self {
        let side = GRID_SIZE * PIXELS_PER_CELL;
        let observation = match view {
            GridView::Vector => ObservationLayout::vector(6),
            GridView::Visual => ObservationLayout::visual(3, side, side),
        };
        GridWorld {
            view,
            spec: EnvSpec {
                behavior_name: "GridWorld?team=0".to_string(),
                observations: vec![observation],
                continuous_size: 0,
                discrete_branches: vec![5],
                agents_per_area: AGENTS_PER_AREA,
                max_decisions: MAX_DECISIONS,
            },
        }
    }
}

fn random_cell(rng: &mut Pcg32) -> (usize, usize) {
    (
        rng.random_range(0..GRID_SIZE),
        rng.random_range(0..GRID_SIZE),
    )
}

impl Task for GridWorld {
    type Agent = GridArea;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn begin_episode(&self, area: &mut GridArea, rng: &mut Pcg32, _parameters: &mut Parameters) {
        // Three distinct cells, as the example places its objects.
        area.agent = random_cell(rng);
        area.goal = loop {
            let cell = random_cell(rng);
            if cell != area.agent {
                break cell;
            }
        };
        area.pit = loop {
            let cell = random_cell(rng);
            if cell != area.agent && cell != area.goal {
                break cell;
            }
        };
    }

    fn act(
        &self,
        area: &mut GridArea,
        _continuous: &[f32],
        discrete: &[i32],
        _rng: &mut Pcg32,
    ) -> Transition {
        let (x, z) = area.agent;
        let last = GRID_SIZE - 1;
        area.agent = match discrete[0] {
            UP => (x, (z + 1).min(last)),
            DOWN => (x, z.saturating_sub(1)),
            LEFT => (x.saturating_sub(1), z),
            RIGHT => ((x + 1).min(last), z),
            _ => (x, z),
        };
        if area.agent == area.goal {
            Transition {
                reward: 1.0,
                terminated: true,
            }
        } else if area.agent == area.pit {
            Transition {
                reward: -1.0,
                terminated: true,
            }
        } else {
            Transition {
                reward: STEP_PENALTY,
                terminated: false,
            }
        }
    }

    fn observe(&self, area: &GridArea, _index: usize, out: &mut [f32]) {
        match self.view {
            GridView::Vector => {
                let scale = 1.0 / (GRID_SIZE - 1) as f32;
                let cells = [area.agent, area.goal, area.pit];
                for (slot, (x, z)) in out.chunks_mut(2).zip(cells) {
                    slot[0] = x as f32 * scale;
                    slot[1] = z as f32 * scale;
                }
            }
            GridView::Visual => {
                out.fill(0.0);
                let side = GRID_SIZE * PIXELS_PER_CELL;
                let cells = [area.agent, area.goal, area.pit];
                for (channel, (x, z)) in cells.into_iter().enumerate() {
                    // Row 0 is the top of the image: the highest z.
                    let top = (GRID_SIZE - 1 - z) * PIXELS_PER_CELL;
                    let left = x * PIXELS_PER_CELL;
                    for row in top..top + PIXELS_PER_CELL {
                        let start = channel * side * side + row * side + left;
                        out[start..start + PIXELS_PER_CELL].fill(1.0);
                    }
                }
            }
        }
    }

    fn write_mask(&self, area: &GridArea, mask: &mut [bool]) {
        let (x, z) = area.agent;
        let last = GRID_SIZE - 1;
        mask.fill(false);
        mask[LEFT as usize] = x == 0;
        mask[RIGHT as usize] = x == last;
        mask[DOWN as usize] = z == 0;
        mask[UP as usize] = z == last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::{VecEnv, VectorEnv};

    #[test]
    fn masks_follow_the_walls() {
        let world = GridWorld::new(GridView::Vector);
        let mut mask = [false; 5];
        let corner = GridArea {
            agent: (0, 0),
            goal: (2, 2),
            pit: (3, 3),
        };
        world.write_mask(&corner, &mut mask);
        assert_eq!(mask, [false, false, true, true, false]);
        let other = GridArea {
            agent: (4, 4),
            ..corner.clone()
        };
        world.write_mask(&other, &mut mask);
        assert_eq!(mask, [false, true, false, false, true]);
        let middle = GridArea {
            agent: (2, 1),
            ..corner
        };
        world.write_mask(&middle, &mut mask);
        assert_eq!(mask, [false; 5]);
    }

    #[test]
    fn walking_to_the_goal_pays_one_and_ends() {
        let world = GridWorld::new(GridView::Vector);
        let mut area = GridArea {
            agent: (0, 0),
            goal: (1, 0),
            pit: (0, 1),
        };
        let mut rng = Pcg32::new(0, 0);
        let stay = world.act(&mut area, &[], &[NO_ACTION], &mut rng);
        assert_eq!(stay.reward, STEP_PENALTY);
        let wall = world.act(&mut area, &[], &[LEFT], &mut rng);
        assert_eq!((area.agent, wall.terminated), ((0, 0), false));
        let goal = world.act(&mut area, &[], &[RIGHT], &mut rng);
        assert_eq!((goal.reward, goal.terminated), (1.0, true));
        let mut area = GridArea {
            agent: (0, 0),
            goal: (1, 0),
            pit: (0, 1),
        };
        let pit = world.act(&mut area, &[], &[UP], &mut rng);
        assert_eq!((pit.reward, pit.terminated), (-1.0, true));
    }

    #[test]
    fn visual_observation_paints_each_object_in_its_channel() {
        let world = GridWorld::new(GridView::Visual);
        let area = GridArea {
            agent: (0, 4),
            goal: (4, 0),
            pit: (2, 2),
        };
        let side = GRID_SIZE * PIXELS_PER_CELL;
        let mut image = vec![0.0; 3 * side * side];
        world.observe(&area, 0, &mut image);
        let pixel = |c: usize, row: usize, col: usize| image[c * side * side + row * side + col];
        assert_eq!(pixel(0, 0, 0), 1.0); // agent top-left
        assert_eq!(pixel(1, side - 1, side - 1), 1.0); // goal bottom-right
        assert_eq!(pixel(2, 10, 10), 1.0); // pit center
        let lit: f32 = image.iter().sum();
        assert_eq!(lit, (3 * PIXELS_PER_CELL * PIXELS_PER_CELL) as f32);
    }

    #[test]
    fn objects_start_on_distinct_cells() {
        let env = VecEnv::new(GridWorld::new(GridView::Vector), 5, 50).unwrap();
        for area in env.agents() {
            assert!(area.agent != area.goal && area.agent != area.pit && area.goal != area.pit);
        }
        assert_eq!(env.spec().mask_size(), 5);
    }

    #[test]
    fn idle_agents_are_interrupted_at_max_step() {
        let mut env = VecEnv::new(GridWorld::new(GridView::Vector), 5, 1).unwrap();
        env.reset();
        let n = env.num_agents();
        for _ in 0..MAX_DECISIONS - 1 {
            let batch = env.step(&[], &vec![NO_ACTION; n]).unwrap();
            assert!(batch.terminal_agent_id.is_empty());
        }
        let batch = env.step(&[], &vec![NO_ACTION; n]).unwrap();
        assert_eq!(batch.terminal_agent_id.len(), n);
        assert!(batch.terminal_interrupted.iter().all(|i| *i));
        assert!(batch.terminal_reward.iter().all(|r| *r == STEP_PENALTY));
    }
}
