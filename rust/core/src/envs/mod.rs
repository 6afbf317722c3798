//! Built-in vectorized environments that need no Unity.
//!
//! Each environment is a [`Task`]: the rules for one agent (episode start,
//! one decision's worth of dynamics, observations, action mask). [`VecEnv`]
//! runs many agents of a task side by side, like the training areas of a
//! Unity scene, and does what is common to all tasks: per-agent seeded random
//! streams, episode ids that change at every episode start (Unity's agent ids
//! are episode ids), the max-step interruption, and the split of one step's
//! result into decision agents and terminal agents.
//!
//! An agent whose episode ends is reset at once: the same step reports it in
//! the terminal batch (its last observation, under the old id) and in the
//! decision batch (its first observation, under a new id, with reward 0), as
//! Unity does when an agent ends its episode between two decisions.
//!
//! Multi-agent environments (agents that share an area, groups with group
//! rewards, several behaviors such as the two teams of a game) are
//! [`area::AreaTask`]s run by [`area::AreaEnv`]. Bindings hold either kind as a
//! [`BuiltinEnv`]: one [`StepBatch`] per behavior per step.

pub mod area;
pub mod ball3d;
pub mod dungeon_escape;
pub mod goal_seeker;
pub mod grid_world;
pub mod memory_corridor;
pub mod parameters;
pub mod sorter;
pub mod tennis;

use rand::SeedableRng;
use rand_pcg::Pcg32;
use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};
pub use parameters::{Parameter, Parameters};

/// Below this many agents a step runs on the calling thread: splitting work
/// costs more than it saves.
pub(crate) const PARALLEL_MIN_AGENTS: usize = 2048;

/// `DimensionProperty.NONE`: a plain axis.
pub const DIMENSION_NONE: i32 = 1;
/// `DimensionProperty.VARIABLE_SIZE`: an entity axis whose unused rows are zeros.
pub const DIMENSION_VARIABLE_SIZE: i32 = 4;

/// One observation of every agent, as ML-Agents' `ObservationSpec` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservationLayout {
    /// Shape of one agent's observation (`[n]` for vectors, `[C, H, W]` for images).
    pub shape: Vec<usize>,
    /// `DimensionProperty` flags per dimension, as Unity sends them.
    pub dimension_properties: Vec<i32>,
    /// The sensor name Unity would send.
    pub name: String,
}

impl ObservationLayout {
    pub fn vector(size: usize) -> Self {
        ObservationLayout {
            shape: vec![size],
            dimension_properties: vec![DIMENSION_NONE],
            name: format!("VectorSensor_size{size}"),
        }
    }

    pub fn visual(channels: usize, height: usize, width: usize) -> Self {
        ObservationLayout {
            shape: vec![channels, height, width],
            dimension_properties: vec![1, 2, 2],
            name: "CameraSensor".to_string(),
        }
    }

    /// A buffer sensor: up to `max_entities` rows of `entity_size` floats, the
    /// unused rows all zeros (`VARIABLE_SIZE` on the entity axis, as Unity's
    /// `BufferSensor` sends it).
    pub fn entities(max_entities: usize, entity_size: usize) -> Self {
        ObservationLayout {
            shape: vec![max_entities, entity_size],
            dimension_properties: vec![DIMENSION_VARIABLE_SIZE, DIMENSION_NONE],
            name: "BufferSensor".to_string(),
        }
    }

    /// Floats per agent.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }
}

/// What one behavior looks like from the trainer's side.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSpec {
    /// Behavior name with Unity's team suffix (`3DBall?team=0`).
    pub behavior_name: String,
    pub observations: Vec<ObservationLayout>,
    pub continuous_size: usize,
    pub discrete_branches: Vec<usize>,
    /// Agents of this behavior in one training area.
    pub agents_per_area: usize,
    /// Decisions after which an episode is interrupted (0 = never).
    pub max_decisions: u32,
}

impl EnvSpec {
    pub fn discrete_size(&self) -> usize {
        self.discrete_branches.len()
    }

    pub fn mask_size(&self) -> usize {
        self.discrete_branches.iter().sum()
    }
}

/// The result of one decision of one agent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub reward: f32,
    /// The task ended the episode (fell off, reached a goal).
    pub terminated: bool,
}

/// The rules of one environment for a single agent.
pub trait Task: Send + Sync {
    /// Everything one agent needs between decisions.
    type Agent: Send + Sync + Clone + Default;

    fn spec(&self) -> &EnvSpec;

    /// Starts an episode. Called sequentially in agent order, so samplers in
    /// `parameters` draw the same values for the same seed.
    fn begin_episode(&self, agent: &mut Self::Agent, rng: &mut Pcg32, parameters: &mut Parameters);

    /// Applies one decision's actions (already validated: finite, in range).
    fn act(
        &self,
        agent: &mut Self::Agent,
        continuous: &[f32],
        discrete: &[i32],
        rng: &mut Pcg32,
    ) -> Transition;

    /// Writes observation `index` of `agent` into `out` (length = its size).
    fn observe(&self, agent: &Self::Agent, index: usize, out: &mut [f32]);

    /// Writes the action mask (true = action not allowed) over all branches.
    fn write_mask(&self, _agent: &Self::Agent, mask: &mut [bool]) {
        mask.fill(false);
    }
}

/// One step's output for one behavior: the agents that ask for a decision,
/// and the agents whose episode just ended in the terminal batch. Arrays are
/// flat, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepBatch {
    /// Per observation: `decision_count * size` floats.
    pub decision_obs: Vec<Vec<f32>>,
    pub decision_reward: Vec<f32>,
    pub decision_agent_id: Vec<i32>,
    /// The agent's group (0 = no group), as Unity's `SimpleMultiAgentGroup` ids.
    pub decision_group_id: Vec<i32>,
    /// Reward given to the agent's whole group since its last decision.
    pub decision_group_reward: Vec<f32>,
    /// `decision_count * mask_size` flags (true = masked), empty without discrete branches.
    pub action_mask: Vec<bool>,
    /// Per observation: `terminal_count * size` floats.
    pub terminal_obs: Vec<Vec<f32>>,
    pub terminal_reward: Vec<f32>,
    pub terminal_agent_id: Vec<i32>,
    pub terminal_group_id: Vec<i32>,
    pub terminal_group_reward: Vec<f32>,
    /// True where the episode hit max_decisions rather than ending by the task's rules.
    pub terminal_interrupted: Vec<bool>,
}

/// One behavior's actions for one step: a row per agent of that behavior's
/// last decision batch, in its order.
#[derive(Clone, Copy, Debug, Default)]
pub struct BehaviorActions<'a> {
    /// `rows * continuous_size` floats.
    pub continuous: &'a [f32],
    /// `rows * discrete_size` ints.
    pub discrete: &'a [i32],
}

/// Any built-in environment, single- or multi-agent, as the bindings hold it.
pub trait BuiltinEnv: Send + Sync {
    /// One spec per behavior, in a fixed order (batches and actions follow it).
    fn behaviors(&self) -> &[EnvSpec];
    /// Agents over every behavior and area.
    fn num_agents(&self) -> usize;
    /// Agents of every behavior in one training area.
    fn agents_per_area(&self) -> usize;
    /// Decisions after which an episode is interrupted (0 = never).
    fn max_decisions(&self) -> u32;
    fn parameters_mut(&mut self) -> &mut Parameters;
    /// Starts a new episode everywhere (new ids); terminal batches are empty.
    fn reset(&mut self) -> Vec<StepBatch>;
    /// Restarts the random streams from `seed` (from the next episode start).
    fn reseed(&mut self, seed: u64);
    /// One decision for every agent that asked for one: `actions[b]` holds a
    /// row per agent of behavior `b`'s last decision batch. Validated before
    /// anything changes.
    fn step(&mut self, actions: &[BehaviorActions<'_>]) -> CoreResult<Vec<StepBatch>>;
}

/// Checks one behavior's actions for `rows` agents: lengths, finite floats,
/// discrete values inside their branch.
pub(crate) fn validate_actions(
    spec: &EnvSpec,
    rows: usize,
    continuous: &[f32],
    discrete: &[i32],
) -> CoreResult<()> {
    let expected_continuous = rows * spec.continuous_size;
    if continuous.len() != expected_continuous {
        return Err(CoreError::invalid(
            "continuous actions",
            format!(
                "{}: expected {} agents x {} values, got {} values",
                spec.behavior_name,
                rows,
                spec.continuous_size,
                continuous.len()
            ),
        ));
    }
    let expected_discrete = rows * spec.discrete_size();
    if discrete.len() != expected_discrete {
        return Err(CoreError::invalid(
            "discrete actions",
            format!(
                "{}: expected {} agents x {} branches, got {} values",
                spec.behavior_name,
                rows,
                spec.discrete_size(),
                discrete.len()
            ),
        ));
    }
    if let Some(position) = continuous.iter().position(|v| !v.is_finite()) {
        return Err(CoreError::invalid(
            "continuous actions",
            format!(
                "{}: agent index {} has a non-finite value {}",
                spec.behavior_name,
                position / spec.continuous_size.max(1),
                continuous[position]
            ),
        ));
    }
    let branches = &spec.discrete_branches;
    if !branches.is_empty() {
        for (position, action) in discrete.iter().enumerate() {
            let branch = position % branches.len();
            if *action < 0 || *action as usize >= branches[branch] {
                return Err(CoreError::invalid(
                    "discrete actions",
                    format!(
                        "{}: agent index {} branch {branch}: action {action} is outside [0, {})",
                        spec.behavior_name,
                        position / branches.len(),
                        branches[branch]
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Object-safe face of [`VecEnv`], so a binding can hold any task.
pub trait VectorEnv: Send + Sync {
    fn spec(&self) -> &EnvSpec;
    fn num_agents(&self) -> usize;
    fn parameters_mut(&mut self) -> &mut Parameters;
    /// Starts a new episode for every agent (new ids); the terminal batch is empty.
    fn reset(&mut self) -> StepBatch;
    /// Restarts every agent's random stream from `seed` (takes effect from the next
    /// episode start, as after construction with that seed).
    fn reseed(&mut self, seed: u64);
    /// One decision for every agent. `continuous` is `num_agents * continuous_size`
    /// floats, `discrete` is `num_agents * discrete_size` ints.
    fn step(&mut self, continuous: &[f32], discrete: &[i32]) -> CoreResult<StepBatch>;
}

/// Many agents of one task.
pub struct VecEnv<T: Task> {
    task: T,
    /// The task's spec, with the agents per area this instance was built with.
    spec: EnvSpec,
    agents: Vec<T::Agent>,
    rngs: Vec<Pcg32>,
    agent_ids: Vec<i32>,
    decisions_in_episode: Vec<u32>,
    next_agent_id: i32,
    parameters: Parameters,
    num_agents: usize,
}

impl<T: Task> VecEnv<T> {
    /// `num_areas` training areas of `task.spec().agents_per_area` agents each.
    pub fn new(task: T, seed: u64, num_areas: usize) -> CoreResult<Self> {
        Self::with_agents_per_area(task, seed, num_areas, None)
    }

    /// Like [`VecEnv::new`], with `agents_per_area` agents per area instead of
    /// the task's default (1 makes a single-agent environment).
    pub fn with_agents_per_area(
        task: T,
        seed: u64,
        num_areas: usize,
        agents_per_area: Option<usize>,
    ) -> CoreResult<Self> {
        if num_areas == 0 {
            return Err(CoreError::invalid("num_areas", "must be at least 1"));
        }
        let mut spec = task.spec().clone();
        if let Some(agents) = agents_per_area {
            if agents == 0 {
                return Err(CoreError::invalid("agents_per_area", "must be at least 1"));
            }
            spec.agents_per_area = agents;
        }
        let num_agents = num_areas
            .checked_mul(spec.agents_per_area)
            .filter(|n| *n <= i32::MAX as usize)
            .ok_or_else(|| CoreError::invalid("num_areas", format!("{num_areas} is too large")))?;
        // One independent stream per agent: results do not depend on how the
        // agents are split across threads.
        let rngs = (0..num_agents)
            .map(|index| Pcg32::new(seed, index as u64))
            .collect();
        let mut env = VecEnv {
            task,
            spec,
            agents: vec![T::Agent::default(); num_agents],
            rngs,
            agent_ids: vec![0; num_agents],
            decisions_in_episode: vec![0; num_agents],
            next_agent_id: 0,
            parameters: Parameters::default(),
            num_agents,
        };
        env.begin_all_episodes();
        Ok(env)
    }

    pub fn task(&self) -> &T {
        &self.task
    }

    /// Per-agent state, for tests and diagnostics.
    pub fn agents(&self) -> &[T::Agent] {
        &self.agents
    }

    fn begin_episode(&mut self, index: usize) {
        self.task.begin_episode(
            &mut self.agents[index],
            &mut self.rngs[index],
            &mut self.parameters,
        );
        self.agent_ids[index] = self.next_agent_id;
        self.next_agent_id = self.next_agent_id.wrapping_add(1);
        self.decisions_in_episode[index] = 0;
    }

    fn begin_all_episodes(&mut self) {
        for index in 0..self.num_agents {
            self.begin_episode(index);
        }
    }

    /// Observations, masks and ids of every agent, with the given rewards.
    fn decision_batch(&self, decision_reward: Vec<f32>) -> StepBatch {
        let spec = &self.spec;
        let parallel = self.num_agents >= PARALLEL_MIN_AGENTS && crate::parallel::enabled();
        let decision_obs = spec
            .observations
            .iter()
            .enumerate()
            .map(|(index, layout)| {
                let size = layout.size();
                let mut buffer = vec![0.0f32; self.num_agents * size];
                if size > 0 {
                    if parallel {
                        buffer
                            .par_chunks_mut(size)
                            .zip(self.agents.par_iter())
                            .with_min_len(256)
                            .for_each(|(out, agent)| self.task.observe(agent, index, out));
                    } else {
                        for (out, agent) in buffer.chunks_mut(size).zip(&self.agents) {
                            self.task.observe(agent, index, out);
                        }
                    }
                }
                buffer
            })
            .collect();
        let mask_size = spec.mask_size();
        let mut action_mask = vec![false; self.num_agents * mask_size];
        if mask_size > 0 {
            for (out, agent) in action_mask.chunks_mut(mask_size).zip(&self.agents) {
                self.task.write_mask(agent, out);
            }
        }
        StepBatch {
            decision_obs,
            decision_reward,
            decision_agent_id: self.agent_ids.clone(),
            decision_group_id: vec![0; self.num_agents],
            decision_group_reward: vec![0.0; self.num_agents],
            action_mask,
            terminal_obs: vec![Vec::new(); spec.observations.len()],
            ..StepBatch::default()
        }
    }
}

impl<T: Task> VectorEnv for VecEnv<T> {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn num_agents(&self) -> usize {
        self.num_agents
    }

    fn parameters_mut(&mut self) -> &mut Parameters {
        &mut self.parameters
    }

    fn reseed(&mut self, seed: u64) {
        for (index, rng) in self.rngs.iter_mut().enumerate() {
            *rng = Pcg32::new(seed, index as u64);
        }
    }

    fn reset(&mut self) -> StepBatch {
        self.begin_all_episodes();
        self.decision_batch(vec![0.0; self.num_agents])
    }

    fn step(&mut self, continuous: &[f32], discrete: &[i32]) -> CoreResult<StepBatch> {
        validate_actions(&self.spec, self.num_agents, continuous, discrete)?;
        let spec = &self.spec;
        let continuous_size = spec.continuous_size;
        let discrete_size = spec.discrete_size();
        let max_decisions = spec.max_decisions;
        let task = &self.task;

        let mut transitions = vec![
            Transition {
                reward: 0.0,
                terminated: false
            };
            self.num_agents
        ];
        let act = |(index, ((transition, agent), rng)): (
            usize,
            ((&mut Transition, &mut T::Agent), &mut Pcg32),
        )| {
            let continuous_actions =
                &continuous[index * continuous_size..(index + 1) * continuous_size];
            let discrete_actions = &discrete[index * discrete_size..(index + 1) * discrete_size];
            *transition = task.act(agent, continuous_actions, discrete_actions, rng);
        };
        if self.num_agents >= PARALLEL_MIN_AGENTS && crate::parallel::enabled() {
            transitions
                .par_iter_mut()
                .zip(self.agents.par_iter_mut())
                .zip(self.rngs.par_iter_mut())
                .enumerate()
                .with_min_len(256)
                .for_each(act);
        } else {
            transitions
                .iter_mut()
                .zip(self.agents.iter_mut())
                .zip(self.rngs.iter_mut())
                .enumerate()
                .for_each(act);
        }

        // Episode ends, in agent order (samplers draw in a fixed order).
        let observation_sizes: Vec<usize> = spec.observations.iter().map(|o| o.size()).collect();
        let mut terminal_obs: Vec<Vec<f32>> = vec![Vec::new(); observation_sizes.len()];
        let mut terminal_reward = Vec::new();
        let mut terminal_agent_id = Vec::new();
        let mut terminal_interrupted = Vec::new();
        let mut decision_reward = Vec::with_capacity(self.num_agents);
        for (index, transition) in transitions.iter().enumerate() {
            self.decisions_in_episode[index] += 1;
            let interrupted = !transition.terminated
                && max_decisions > 0
                && self.decisions_in_episode[index] >= max_decisions;
            if !(transition.terminated || interrupted) {
                decision_reward.push(transition.reward);
                continue;
            }
            for (observation, size) in observation_sizes.iter().enumerate() {
                let start = terminal_obs[observation].len();
                terminal_obs[observation].resize(start + size, 0.0);
                self.task.observe(
                    &self.agents[index],
                    observation,
                    &mut terminal_obs[observation][start..],
                );
            }
            terminal_reward.push(transition.reward);
            terminal_agent_id.push(self.agent_ids[index]);
            terminal_interrupted.push(interrupted);
            self.begin_episode(index);
            decision_reward.push(0.0);
        }

        let mut batch = self.decision_batch(decision_reward);
        batch.terminal_obs = terminal_obs;
        batch.terminal_group_id = vec![0; terminal_reward.len()];
        batch.terminal_group_reward = vec![0.0; terminal_reward.len()];
        batch.terminal_reward = terminal_reward;
        batch.terminal_agent_id = terminal_agent_id;
        batch.terminal_interrupted = terminal_interrupted;
        Ok(batch)
    }
}

/// A single-agent task is a built-in with one behavior whose agents always decide.
impl<T: Task> BuiltinEnv for VecEnv<T> {
    fn behaviors(&self) -> &[EnvSpec] {
        std::slice::from_ref(&self.spec)
    }

    fn num_agents(&self) -> usize {
        self.num_agents
    }

    fn agents_per_area(&self) -> usize {
        self.spec.agents_per_area
    }

    fn max_decisions(&self) -> u32 {
        self.spec.max_decisions
    }

    fn parameters_mut(&mut self) -> &mut Parameters {
        &mut self.parameters
    }

    fn reset(&mut self) -> Vec<StepBatch> {
        vec![VectorEnv::reset(self)]
    }

    fn reseed(&mut self, seed: u64) {
        VectorEnv::reseed(self, seed)
    }

    fn step(&mut self, actions: &[BehaviorActions<'_>]) -> CoreResult<Vec<StepBatch>> {
        match actions {
            [only] => Ok(vec![VectorEnv::step(self, only.continuous, only.discrete)?]),
            _ => Err(CoreError::invalid(
                "actions",
                format!(
                    "{} has one behavior, got actions for {}",
                    self.spec.behavior_name,
                    actions.len()
                ),
            )),
        }
    }
}

/// Names accepted by [`make`], in the order they are listed to users.
pub const BUILTIN_NAMES: [&str; 10] = [
    "3DBall",
    "GridWorld",
    "VisualGridWorld",
    "MemoryCorridor",
    "GoalSeeker1D",
    "GoalSeeker1DDiscrete",
    "GoalSeeker1DHybrid",
    "Sorter",
    "DungeonEscape",
    "Tennis",
];

/// Builds a built-in environment by its registry name (case-sensitive).
/// `agents_per_area` overrides the task's default number of agents per area
/// (for multi-agent tasks, the agents of every behavior in one area).
pub fn make(
    name: &str,
    seed: u64,
    num_areas: usize,
    agents_per_area: Option<usize>,
) -> CoreResult<Box<dyn BuiltinEnv>> {
    fn boxed<T: Task + 'static>(
        task: T,
        seed: u64,
        num_areas: usize,
        agents_per_area: Option<usize>,
    ) -> CoreResult<Box<dyn BuiltinEnv>> {
        Ok(Box::new(VecEnv::with_agents_per_area(
            task,
            seed,
            num_areas,
            agents_per_area,
        )?))
    }
    match name {
        "3DBall" => boxed(ball3d::Ball3D::new(), seed, num_areas, agents_per_area),
        "GridWorld" => boxed(
            grid_world::GridWorld::new(grid_world::GridView::Vector),
            seed,
            num_areas,
            agents_per_area,
        ),
        "VisualGridWorld" => boxed(
            grid_world::GridWorld::new(grid_world::GridView::Visual),
            seed,
            num_areas,
            agents_per_area,
        ),
        "MemoryCorridor" => boxed(
            memory_corridor::MemoryCorridor::new(),
            seed,
            num_areas,
            agents_per_area,
        ),
        "GoalSeeker1D" => boxed(
            goal_seeker::GoalSeeker1D::new(goal_seeker::ActionKind::Continuous),
            seed,
            num_areas,
            agents_per_area,
        ),
        "GoalSeeker1DDiscrete" => boxed(
            goal_seeker::GoalSeeker1D::new(goal_seeker::ActionKind::Discrete),
            seed,
            num_areas,
            agents_per_area,
        ),
        "GoalSeeker1DHybrid" => boxed(
            goal_seeker::GoalSeeker1D::new(goal_seeker::ActionKind::Hybrid),
            seed,
            num_areas,
            agents_per_area,
        ),
        "Sorter" => boxed(sorter::Sorter::new(), seed, num_areas, agents_per_area),
        "DungeonEscape" => {
            if agents_per_area.is_some_and(|n| n != dungeon_escape::AGENTS) {
                return Err(CoreError::invalid(
                    "agents_per_area",
                    format!(
                        "DungeonEscape has {} agents per area",
                        dungeon_escape::AGENTS
                    ),
                ));
            }
            Ok(Box::new(area::AreaEnv::new(
                dungeon_escape::DungeonEscape::new(),
                seed,
                num_areas,
            )?))
        }
        "Tennis" => Ok(Box::new(area::AreaEnv::new(
            tennis::Tennis::for_agents_per_area(agents_per_area)?,
            seed,
            num_areas,
        )?)),
        _ => Err(CoreError::invalid(
            "name",
            format!(
                "unknown built-in environment {name:?}; known: {}",
                BUILTIN_NAMES.join(", ")
            ),
        )),
    }
}

/// Seeds a task-local stream (used by tasks that need randomness at construction).
pub fn seeded_rng(seed: u64) -> Pcg32 {
    Pcg32::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zero actions (the first action of every branch) for each behavior's decision rows.
    fn zero_actions(specs: &[EnvSpec], batches: &[StepBatch]) -> Vec<(Vec<f32>, Vec<i32>)> {
        specs
            .iter()
            .zip(batches)
            .map(|(spec, batch)| {
                let rows = batch.decision_agent_id.len();
                (
                    vec![0.0; rows * spec.continuous_size],
                    vec![0; rows * spec.discrete_size()],
                )
            })
            .collect()
    }

    fn step_all(env: &mut dyn BuiltinEnv, actions: &[(Vec<f32>, Vec<i32>)]) -> Vec<StepBatch> {
        let views: Vec<BehaviorActions> = actions
            .iter()
            .map(|(continuous, discrete)| BehaviorActions {
                continuous,
                discrete,
            })
            .collect();
        env.step(&views).unwrap()
    }

    #[test]
    fn every_name_builds_and_steps() {
        for name in BUILTIN_NAMES {
            let mut env = make(name, 1, 2, None).unwrap();
            let specs = env.behaviors().to_vec();
            let n = env.num_agents();
            assert_eq!(n, 2 * env.agents_per_area());
            assert_eq!(
                env.agents_per_area(),
                specs.iter().map(|s| s.agents_per_area).sum::<usize>()
            );
            let first = env.reset();
            assert_eq!(first.len(), specs.len());
            let deciding: usize = first.iter().map(|b| b.decision_agent_id.len()).sum();
            assert_eq!(deciding, n, "{name}");
            for (batch, spec) in first.iter().zip(&specs) {
                let rows = batch.decision_agent_id.len();
                for (obs, layout) in batch.decision_obs.iter().zip(&spec.observations) {
                    assert_eq!(obs.len(), rows * layout.size());
                }
                assert_eq!(batch.decision_group_id.len(), rows);
                assert_eq!(batch.decision_group_reward.len(), rows);
            }
            let actions = zero_actions(&specs, &first);
            let batches = step_all(env.as_mut(), &actions);
            for (batch, spec) in batches.iter().zip(&specs) {
                let rows = batch.decision_agent_id.len();
                assert_eq!(batch.decision_reward.len(), rows);
                assert_eq!(batch.action_mask.len(), rows * spec.mask_size());
                let terminals = batch.terminal_agent_id.len();
                assert_eq!(batch.terminal_group_id.len(), terminals);
                assert_eq!(batch.terminal_group_reward.len(), terminals);
            }
        }
    }

    #[test]
    fn multi_agent_names_refuse_other_agent_counts() {
        assert!(make("DungeonEscape", 0, 1, Some(2)).is_err());
        assert!(make("Tennis", 0, 1, Some(3)).is_err());
        let doubles = make("Tennis", 0, 1, Some(4)).unwrap();
        assert_eq!(doubles.behaviors()[0].agents_per_area, 2);
    }

    #[test]
    fn unknown_name_lists_known_names() {
        let err = make("3dball", 0, 1, None).err().unwrap();
        let message = err.to_string();
        assert!(
            message.contains("3dball") && message.contains("3DBall"),
            "{message}"
        );
    }

    #[test]
    fn actions_are_validated_before_any_change() {
        let mut env = make("GridWorld", 0, 1, None).unwrap();
        let n = env.num_agents();
        let before = env.reset().remove(0);
        let too_many = vec![0; n + 1];
        let step = |env: &mut Box<dyn BuiltinEnv>, continuous: &[f32], discrete: &[i32]| {
            env.step(&[BehaviorActions {
                continuous,
                discrete,
            }])
        };
        assert!(step(&mut env, &[], &too_many).is_err());
        let mut out_of_range = vec![0; n];
        out_of_range[n - 1] = 5;
        let err = step(&mut env, &[], &out_of_range).unwrap_err().to_string();
        assert!(err.contains("outside [0, 5)"), "{err}");
        assert!(env.step(&[]).is_err());
        // The rejected calls changed nothing: a no-op step keeps the ids.
        let after = step(&mut env, &[], &vec![0; n]).unwrap().remove(0);
        assert_eq!(before.decision_agent_id, after.decision_agent_id);

        let mut ball = make("3DBall", 0, 1, None).unwrap();
        let mut continuous = vec![0.0; ball.num_agents() * 2];
        continuous[3] = f32::NAN;
        let err = step(&mut ball, &continuous, &[]).unwrap_err().to_string();
        assert!(err.contains("agent index 1"), "{err}");
    }

    #[test]
    fn reseed_replays_the_episode_starts_of_that_seed() {
        for name in ["3DBall", "Sorter", "DungeonEscape", "Tennis"] {
            let mut fresh = make(name, 9, 1, None).unwrap();
            let mut reseeded = make(name, 1, 1, None).unwrap();
            let first = reseeded.reset();
            let actions = zero_actions(reseeded.behaviors(), &first);
            step_all(reseeded.as_mut(), &actions);
            reseeded.reseed(9);
            // A fresh env drew its first episodes at construction; reset draws the second.
            let fresh_batch = fresh.reset();
            let mut replay = make(name, 9, 1, None).unwrap();
            replay.reseed(9);
            let replayed = replay.reset();
            let obs = |batches: &[StepBatch]| -> Vec<Vec<Vec<f32>>> {
                batches.iter().map(|b| b.decision_obs.clone()).collect()
            };
            assert_eq!(obs(&replayed), obs(&reseeded.reset()), "{name}");
            assert_ne!(obs(&fresh_batch), obs(&replayed), "{name}");
        }
    }

    #[test]
    fn num_areas_zero_is_refused() {
        assert!(make("3DBall", 0, 0, None).is_err());
        assert!(make("3DBall", 0, 1, Some(0)).is_err());
    }

    #[test]
    fn agents_per_area_overrides_the_default() {
        let env = make("3DBall", 0, 3, Some(1)).unwrap();
        assert_eq!((env.num_agents(), env.agents_per_area()), (3, 1));
    }
}
