//! Multi-agent built-ins: agents that share a training area.
//!
//! An [`AreaTask`] holds the rules of one area: several agent slots, each of
//! one behavior (two teams are two behaviors, `Name?team=0` and
//! `Name?team=1`) and possibly of one group (Unity's `SimpleMultiAgentGroup`).
//! [`AreaEnv`] runs many areas side by side and does what Unity does around
//! them:
//!
//! - agent ids are episode ids: every slot gets a new id when its area starts
//!   an episode;
//! - group ids are the ids of the group objects, stable across episodes and
//!   unique over the environment (`area * groups_per_area + group + 1`; 0
//!   means no group);
//! - a group reward is reported to every member still in the group, next to
//!   its individual reward, at its next decision or terminal step;
//! - an agent that leaves mid-episode (a disabled agent in Unity) reports a
//!   terminal step (not interrupted) and asks for no decision until its area
//!   starts the next episode;
//! - when the area's episode ends (by the task's rules, or interrupted at
//!   `max_decisions`, or when no agent is left) every remaining agent reports
//!   a terminal step, and the same step starts the next episode: the agents
//!   appear in the decision batch under new ids with reward 0.
//!
//! Batches list agents area by area, slot by slot. Each area has its own
//! random stream, so results do not depend on how areas are split over
//! threads.

use rand_pcg::Pcg32;
use rayon::prelude::*;

use super::{
    validate_actions, BehaviorActions, BuiltinEnv, EnvSpec, Parameters, StepBatch,
    PARALLEL_MIN_AGENTS,
};
use crate::error::{CoreError, CoreResult};

/// Where one agent of an area belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentSlot {
    /// Index into [`AreaSpec::behaviors`].
    pub behavior: usize,
    /// The agent's group within its area, None for no group.
    pub group: Option<usize>,
}

/// The shape of one training area.
#[derive(Clone, Debug, PartialEq)]
pub struct AreaSpec {
    /// One spec per behavior; `agents_per_area` counts this behavior's slots.
    pub behaviors: Vec<EnvSpec>,
    /// Every agent of the area, in the order batches list them.
    pub slots: Vec<AgentSlot>,
    /// Groups in one area (slot groups index below it).
    pub groups_per_area: usize,
    /// Decisions after which the area's episode is interrupted (0 = never).
    pub max_decisions: u32,
}

impl AreaSpec {
    /// Checks that slots, groups and behaviors agree.
    pub fn validate(&self) -> CoreResult<()> {
        for (index, behavior) in self.behaviors.iter().enumerate() {
            let count = self.slots.iter().filter(|s| s.behavior == index).count();
            if count != behavior.agents_per_area {
                return Err(CoreError::invalid(
                    "area spec",
                    format!(
                        "{} declares {} agents per area but {count} slots use it",
                        behavior.behavior_name, behavior.agents_per_area
                    ),
                ));
            }
        }
        if let Some(slot) = self.slots.iter().find(|s| {
            s.behavior >= self.behaviors.len() || s.group.is_some_and(|g| g >= self.groups_per_area)
        }) {
            return Err(CoreError::invalid(
                "area spec",
                format!("slot {slot:?} names a behavior or group that does not exist"),
            ));
        }
        Ok(())
    }
}

/// The actions of one area's agents, by slot (zeros for slots that did not decide).
pub struct AreaActions<'a> {
    continuous: &'a [f32],
    discrete: &'a [i32],
    continuous_stride: usize,
    discrete_stride: usize,
}

impl<'a> AreaActions<'a> {
    /// Actions of an area's slots laid out with a fixed stride per slot.
    pub fn new(
        continuous: &'a [f32],
        discrete: &'a [i32],
        continuous_stride: usize,
        discrete_stride: usize,
    ) -> Self {
        AreaActions {
            continuous,
            discrete,
            continuous_stride,
            discrete_stride,
        }
    }

    /// The continuous actions of `slot` (`continuous_size` of its behavior, or more zeros).
    pub fn continuous(&self, slot: usize) -> &[f32] {
        &self.continuous[slot * self.continuous_stride..(slot + 1) * self.continuous_stride]
    }

    /// The discrete actions of `slot`, one per branch of its behavior (then zeros).
    pub fn discrete(&self, slot: usize) -> &[i32] {
        &self.discrete[slot * self.discrete_stride..(slot + 1) * self.discrete_stride]
    }
}

/// What one decision did to one area, filled by [`AreaTask::act`] (reset to
/// no reward, nobody leaving, episode going on before each call).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AreaOutcome {
    /// Per slot: the agent's individual reward for this decision.
    pub rewards: Vec<f32>,
    /// Per group: the reward given to the group (every member still in it gets it).
    pub group_rewards: Vec<f32>,
    /// Per slot: the agent ends its episode now and sits out the rest of the area's episode.
    pub leaves: Vec<bool>,
    /// The area's episode ended by the task's rules.
    pub episode_over: bool,
}

impl AreaOutcome {
    /// No reward, nobody leaving, for `slots` agents in `groups` groups.
    pub fn new(slots: usize, groups: usize) -> Self {
        AreaOutcome {
            rewards: vec![0.0; slots],
            group_rewards: vec![0.0; groups],
            leaves: vec![false; slots],
            episode_over: false,
        }
    }

    /// Back to no reward, nobody leaving.
    pub fn clear(&mut self) {
        self.rewards.fill(0.0);
        self.group_rewards.fill(0.0);
        self.leaves.fill(false);
        self.episode_over = false;
    }
}

/// The rules of one training area shared by several agents.
pub trait AreaTask: Send + Sync {
    /// Everything one area needs between decisions.
    type Area: Send + Sync + Clone + Default;

    fn spec(&self) -> &AreaSpec;

    /// Starts an episode for the whole area. Called sequentially in area
    /// order, so samplers in `parameters` draw the same values for the same seed.
    fn begin_episode(&self, area: &mut Self::Area, rng: &mut Pcg32, parameters: &mut Parameters);

    /// Applies one decision of the agents with `active[slot]` true (the others
    /// left the episode; their actions are zeros) and writes the outcome.
    fn act(
        &self,
        area: &mut Self::Area,
        actions: &AreaActions<'_>,
        active: &[bool],
        rng: &mut Pcg32,
        outcome: &mut AreaOutcome,
    );

    /// Writes observation `index` of the agent in `slot` into `out` (length = its size).
    fn observe(&self, area: &Self::Area, slot: usize, index: usize, out: &mut [f32]);

    /// Writes the action mask of `slot` (true = action not allowed) over all its branches.
    fn write_mask(&self, _area: &Self::Area, _slot: usize, mask: &mut [bool]) {
        mask.fill(false);
    }
}

/// Many areas of one multi-agent task.
pub struct AreaEnv<T: AreaTask> {
    task: T,
    num_areas: usize,
    slots_per_area: usize,
    areas: Vec<T::Area>,
    rngs: Vec<Pcg32>,
    outcomes: Vec<AreaOutcome>,
    /// Per agent (area-major): its episode id, whether it is still in the episode,
    /// and the rewards it collected since its last decision.
    agent_ids: Vec<i32>,
    active: Vec<bool>,
    pending_reward: Vec<f32>,
    pending_group_reward: Vec<f32>,
    decisions_in_episode: Vec<u32>,
    next_agent_id: i32,
    parameters: Parameters,
    /// Per behavior: the agents (area-major index) of its last decision batch, in order.
    decided: Vec<Vec<usize>>,
    continuous_stride: usize,
    discrete_stride: usize,
    continuous_scratch: Vec<f32>,
    discrete_scratch: Vec<i32>,
}

impl<T: AreaTask> AreaEnv<T> {
    pub fn new(task: T, seed: u64, num_areas: usize) -> CoreResult<Self> {
        if num_areas == 0 {
            return Err(CoreError::invalid("num_areas", "must be at least 1"));
        }
        let spec = task.spec().clone();
        spec.validate()?;
        let slots_per_area = spec.slots.len();
        let num_agents = num_areas
            .checked_mul(slots_per_area)
            .filter(|n| *n <= i32::MAX as usize)
            .ok_or_else(|| CoreError::invalid("num_areas", format!("{num_areas} is too large")))?;
        // Group ids run up to num_areas * groups_per_area and must fit an int32.
        if num_areas
            .checked_mul(spec.groups_per_area)
            .is_none_or(|groups| groups >= i32::MAX as usize)
        {
            return Err(CoreError::invalid(
                "num_areas",
                format!("{num_areas} is too large"),
            ));
        }
        let continuous_stride = spec
            .behaviors
            .iter()
            .map(|b| b.continuous_size)
            .max()
            .unwrap_or(0);
        let discrete_stride = spec
            .behaviors
            .iter()
            .map(|b| b.discrete_size())
            .max()
            .unwrap_or(0);
        let mut env = AreaEnv {
            num_areas,
            slots_per_area,
            areas: vec![T::Area::default(); num_areas],
            rngs: (0..num_areas)
                .map(|index| Pcg32::new(seed, index as u64))
                .collect(),
            outcomes: vec![AreaOutcome::new(slots_per_area, spec.groups_per_area); num_areas],
            agent_ids: vec![0; num_agents],
            active: vec![false; num_agents],
            pending_reward: vec![0.0; num_agents],
            pending_group_reward: vec![0.0; num_agents],
            decisions_in_episode: vec![0; num_areas],
            next_agent_id: 0,
            parameters: Parameters::default(),
            decided: vec![Vec::new(); spec.behaviors.len()],
            continuous_stride,
            discrete_stride,
            continuous_scratch: vec![0.0; num_agents * continuous_stride],
            discrete_scratch: vec![0; num_agents * discrete_stride],
            task,
        };
        for area in 0..num_areas {
            env.begin_episode(area);
        }
        env.record_decisions();
        Ok(env)
    }

    pub fn task(&self) -> &T {
        &self.task
    }

    /// Per-area state, for tests, scripted players and diagnostics.
    pub fn areas(&self) -> &[T::Area] {
        &self.areas
    }

    /// Per-area state to set up a situation by hand (tests); the next step acts on it.
    pub fn areas_mut(&mut self) -> &mut [T::Area] {
        &mut self.areas
    }

    /// The agents (`area * agents_per_area + slot`) behind the rows of
    /// `behavior`'s last decision batch, in order.
    pub fn decided_agents(&self, behavior: usize) -> &[usize] {
        &self.decided[behavior]
    }

    /// The group id Unity would report for `group` of `area`.
    pub fn group_id(&self, area: usize, group: usize) -> i32 {
        (area * self.task.spec().groups_per_area + group + 1) as i32
    }

    fn slot_group_id(&self, area: usize, slot: usize) -> i32 {
        match self.task.spec().slots[slot].group {
            Some(group) => self.group_id(area, group),
            None => 0,
        }
    }

    fn begin_episode(&mut self, area: usize) {
        self.task.begin_episode(
            &mut self.areas[area],
            &mut self.rngs[area],
            &mut self.parameters,
        );
        for agent in area * self.slots_per_area..(area + 1) * self.slots_per_area {
            self.agent_ids[agent] = self.next_agent_id;
            self.next_agent_id = self.next_agent_id.wrapping_add(1);
            self.active[agent] = true;
            self.pending_reward[agent] = 0.0;
            self.pending_group_reward[agent] = 0.0;
        }
        self.decisions_in_episode[area] = 0;
    }

    /// Remembers which agents the next decision batches hold.
    fn record_decisions(&mut self) {
        let slots = &self.task.spec().slots;
        for list in self.decided.iter_mut() {
            list.clear();
        }
        for (agent, active) in self.active.iter().enumerate() {
            if *active {
                self.decided[slots[agent % self.slots_per_area].behavior].push(agent);
            }
        }
    }

    /// Observations of `agents` (area-major indices) for observation `index`.
    fn observe_all(&self, agents: &[usize], index: usize, size: usize) -> Vec<f32> {
        let mut buffer = vec![0.0f32; agents.len() * size];
        if size == 0 {
            return buffer;
        }
        let observe = |(out, agent): (&mut [f32], &usize)| {
            let (area, slot) = (agent / self.slots_per_area, agent % self.slots_per_area);
            self.task.observe(&self.areas[area], slot, index, out);
        };
        if agents.len() >= PARALLEL_MIN_AGENTS && crate::parallel::enabled() {
            buffer
                .par_chunks_mut(size)
                .zip(agents.par_iter())
                .with_min_len(256)
                .for_each(observe);
        } else {
            buffer.chunks_mut(size).zip(agents).for_each(observe);
        }
        buffer
    }

    /// The decision batches of the agents in `decided`, with their pending rewards.
    fn decision_batches(&self) -> Vec<StepBatch> {
        let spec = self.task.spec();
        spec.behaviors
            .iter()
            .zip(&self.decided)
            .map(|(behavior, agents)| {
                let decision_obs = behavior
                    .observations
                    .iter()
                    .enumerate()
                    .map(|(index, layout)| self.observe_all(agents, index, layout.size()))
                    .collect();
                let mask_size = behavior.mask_size();
                let mut action_mask = vec![false; agents.len() * mask_size];
                if mask_size > 0 {
                    for (out, agent) in action_mask.chunks_mut(mask_size).zip(agents) {
                        let (area, slot) =
                            (agent / self.slots_per_area, agent % self.slots_per_area);
                        self.task.write_mask(&self.areas[area], slot, out);
                    }
                }
                StepBatch {
                    decision_obs,
                    decision_reward: agents.iter().map(|a| self.pending_reward[*a]).collect(),
                    decision_agent_id: agents.iter().map(|a| self.agent_ids[*a]).collect(),
                    decision_group_id: agents
                        .iter()
                        .map(|a| {
                            self.slot_group_id(a / self.slots_per_area, a % self.slots_per_area)
                        })
                        .collect(),
                    decision_group_reward: agents
                        .iter()
                        .map(|a| self.pending_group_reward[*a])
                        .collect(),
                    action_mask,
                    terminal_obs: vec![Vec::new(); behavior.observations.len()],
                    ..StepBatch::default()
                }
            })
            .collect()
    }

    /// Copies each behavior's rows into the per-agent action scratch (zeros elsewhere).
    fn scatter_actions(&mut self, actions: &[BehaviorActions<'_>]) {
        self.continuous_scratch.fill(0.0);
        self.discrete_scratch.fill(0);
        let behaviors = &self.task.spec().behaviors;
        for ((behavior, rows), agents) in behaviors.iter().zip(actions).zip(&self.decided) {
            let (cont, disc) = (behavior.continuous_size, behavior.discrete_size());
            for (row, agent) in agents.iter().enumerate() {
                let out = agent * self.continuous_stride;
                self.continuous_scratch[out..out + cont]
                    .copy_from_slice(&rows.continuous[row * cont..(row + 1) * cont]);
                let out = agent * self.discrete_stride;
                self.discrete_scratch[out..out + disc]
                    .copy_from_slice(&rows.discrete[row * disc..(row + 1) * disc]);
            }
        }
    }

    fn act_all(&mut self) {
        let task = &self.task;
        let slots = self.slots_per_area;
        let (cs, ds) = (self.continuous_stride, self.discrete_stride);
        let continuous = &self.continuous_scratch;
        let discrete = &self.discrete_scratch;
        let active = &self.active;
        let act = |(index, ((area, rng), outcome)): (
            usize,
            ((&mut T::Area, &mut Pcg32), &mut AreaOutcome),
        )| {
            outcome.clear();
            let actions = AreaActions::new(
                &continuous[index * slots * cs..(index + 1) * slots * cs],
                &discrete[index * slots * ds..(index + 1) * slots * ds],
                cs,
                ds,
            );
            let active = &active[index * slots..(index + 1) * slots];
            task.act(area, &actions, active, rng, outcome);
        };
        if self.num_areas * slots >= PARALLEL_MIN_AGENTS && crate::parallel::enabled() {
            self.areas
                .par_iter_mut()
                .zip(self.rngs.par_iter_mut())
                .zip(self.outcomes.par_iter_mut())
                .enumerate()
                .with_min_len(64)
                .for_each(act);
        } else {
            self.areas
                .iter_mut()
                .zip(self.rngs.iter_mut())
                .zip(self.outcomes.iter_mut())
                .enumerate()
                .for_each(act);
        }
    }
}

impl<T: AreaTask> BuiltinEnv for AreaEnv<T> {
    fn behaviors(&self) -> &[EnvSpec] {
        &self.task.spec().behaviors
    }

    fn num_agents(&self) -> usize {
        self.num_areas * self.slots_per_area
    }

    fn agents_per_area(&self) -> usize {
        self.slots_per_area
    }

    fn max_decisions(&self) -> u32 {
        self.task.spec().max_decisions
    }

    fn parameters_mut(&mut self) -> &mut Parameters {
        &mut self.parameters
    }

    fn reseed(&mut self, seed: u64) {
        for (index, rng) in self.rngs.iter_mut().enumerate() {
            *rng = Pcg32::new(seed, index as u64);
        }
    }

    fn reset(&mut self) -> Vec<StepBatch> {
        for area in 0..self.num_areas {
            self.begin_episode(area);
        }
        self.record_decisions();
        self.decision_batches()
    }

    fn step(&mut self, actions: &[BehaviorActions<'_>]) -> CoreResult<Vec<StepBatch>> {
        let behaviors = self.task.spec().behaviors.len();
        if actions.len() != behaviors {
            return Err(CoreError::invalid(
                "actions",
                format!(
                    "expected actions for {behaviors} behaviors, got {}",
                    actions.len()
                ),
            ));
        }
        for ((behavior, rows), agents) in self
            .task
            .spec()
            .behaviors
            .iter()
            .zip(actions)
            .zip(&self.decided)
        {
            validate_actions(behavior, agents.len(), rows.continuous, rows.discrete)?;
        }
        self.scatter_actions(actions);
        self.act_all();

        // Episode ends and departures, in area order.
        let spec = self.task.spec();
        let mut terminals: Vec<StepBatch> = spec
            .behaviors
            .iter()
            .map(|b| StepBatch {
                terminal_obs: vec![Vec::new(); b.observations.len()],
                ..StepBatch::default()
            })
            .collect();
        let mut restarts = Vec::new();
        for area in 0..self.num_areas {
            self.decisions_in_episode[area] += 1;
            let outcome = &self.outcomes[area];
            let episode_over = outcome.episode_over;
            let interrupted = !episode_over
                && spec.max_decisions > 0
                && self.decisions_in_episode[area] >= spec.max_decisions;
            let mut anyone_stays = false;
            for (slot, slot_spec) in spec.slots.iter().enumerate() {
                let agent = area * self.slots_per_area + slot;
                if !self.active[agent] {
                    continue;
                }
                let group_reward = slot_spec
                    .group
                    .map_or(0.0, |group| outcome.group_rewards[group]);
                let leaves = outcome.leaves[slot];
                if !(episode_over || interrupted || leaves) {
                    self.pending_reward[agent] = outcome.rewards[slot];
                    self.pending_group_reward[agent] = group_reward;
                    anyone_stays = true;
                    continue;
                }
                let terminal = &mut terminals[slot_spec.behavior];
                for (index, layout) in spec.behaviors[slot_spec.behavior]
                    .observations
                    .iter()
                    .enumerate()
                {
                    let out = &mut terminal.terminal_obs[index];
                    let start = out.len();
                    out.resize(start + layout.size(), 0.0);
                    self.task
                        .observe(&self.areas[area], slot, index, &mut out[start..]);
                }
                terminal.terminal_reward.push(outcome.rewards[slot]);
                terminal.terminal_agent_id.push(self.agent_ids[agent]);
                terminal
                    .terminal_group_id
                    .push(self.slot_group_id(area, slot));
                terminal.terminal_group_reward.push(group_reward);
                // An agent that leaves as time runs out left by the task's rules.
                terminal.terminal_interrupted.push(interrupted && !leaves);
                self.active[agent] = false;
            }
            if !anyone_stays {
                restarts.push(area);
            }
        }
        // In area order, so samplers draw the same values for the same seed.
        for area in restarts {
            self.begin_episode(area);
        }
        self.record_decisions();
        let mut batches = self.decision_batches();
        for (batch, terminal) in batches.iter_mut().zip(terminals) {
            batch.terminal_obs = terminal.terminal_obs;
            batch.terminal_reward = terminal.terminal_reward;
            batch.terminal_agent_id = terminal.terminal_agent_id;
            batch.terminal_group_id = terminal.terminal_group_id;
            batch.terminal_group_reward = terminal.terminal_group_reward;
            batch.terminal_interrupted = terminal.terminal_interrupted;
        }
        Ok(batches)
    }
}
