"""What trainers receive offers ML-Agents' Trajectory API, steps are counted as steps for both
trajectory forms, and the agent processor says how each trajectory ended (terminated,
truncated, or cut at the time horizon) for every way an agent's episode can stop."""

from types import SimpleNamespace

import numpy as np
import pytest
from mlagents_fast.envs.base_env import ActionTuple, DecisionSteps, TerminalSteps
from mlagents_fast.trainers.agent_processor import AgentManagerQueue, AgentProcessor
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.ppo.trainer import PPOTrainer
from mlagents_fast.trainers.sac.trainer import SACTrainer
from mlagents_fast.trainers.settings import TrainerSettings
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents_fast.trainers.trajectory import (
    AgentExperience,
    ColumnarTrajectory,
    Trajectory,
    TrajectoryBatch,
)
from test_trainer_agent_processor import FakePolicy, drain, run_steps
from test_trajectory import make_trajectory
from trainer_fixtures import SignEnv


@pytest.fixture(autouse=True)
def _clean_reporter():
    StatsReporter.reset()
    yield
    StatsReporter.reset()


# -- the steps view -------------------------------------------------------------------------


def test_steps_view_equals_the_columns_with_ml_agents_types():
    per_step = make_trajectory(6)
    columnar = ColumnarTrajectory.from_trajectory(per_step)
    steps = columnar.steps
    assert len(steps) == 6 and columnar.discrete_branches == (2, 3)
    for t, (ours, original) in enumerate(zip(steps, per_step.steps)):
        assert isinstance(ours, AgentExperience)
        for k in range(2):
            np.testing.assert_array_equal(ours.obs[k], original.obs[k])
        assert isinstance(ours.reward, np.float32) and ours.reward == np.float32(original.reward)
        assert ours.done is (t == 5) and ours.interrupted is False
        assert isinstance(ours.action, ActionTuple)
        np.testing.assert_array_equal(ours.action.continuous, original.action.continuous)
        np.testing.assert_array_equal(ours.action.discrete, original.action.discrete)
        assert ours.action.discrete.dtype == np.int32
        assert isinstance(ours.action_probs, LogProbsTuple)
        np.testing.assert_allclose(ours.action_probs.discrete, original.action_probs.discrete)
        # Masks come back per branch, as the environment sent them.
        assert [m.tolist() for m in ours.action_mask] == [m.tolist() for m in original.action_mask]
        np.testing.assert_array_equal(ours.prev_action, original.prev_action)
        np.testing.assert_array_equal(ours.memory, original.memory)
        assert ours.group_status == [] and ours.group_reward == np.float32(original.group_reward)
    assert columnar.next_group_obs == [] and columnar.all_group_dones_reached
    # Rebuilding ML-Agents' per-step form from the view gives the same buffer.
    rebuilt = columnar.to_trajectory()
    assert isinstance(rebuilt, Trajectory) and len(rebuilt.steps) == 6
    fast, slow = columnar.to_agentbuffer(), rebuilt.to_agentbuffer()
    assert list(fast.keys()) == list(slow.keys())
    for key in fast:
        np.testing.assert_array_equal(np.asarray(fast[key]), np.asarray(slow[key]), str(key))


def test_steps_view_is_a_read_only_sequence():
    columnar = ColumnarTrajectory.from_trajectory(make_trajectory(5, masks=False))
    steps = columnar.steps
    assert steps[-1].done and not steps[0].done and steps[0].action_mask is None
    np.testing.assert_array_equal(steps[-2].obs[0], steps[3].obs[0])
    assert [s.reward for s in steps[1:3]] == [steps[1].reward, steps[2].reward]
    assert sum(1 for _ in steps) == 5 and len(list(steps)) == 5
    with pytest.raises(IndexError):
        steps[5]
    with pytest.raises(TypeError):
        steps[0] = steps[1]


def test_interrupted_is_set_on_the_last_step_only():
    columnar = ColumnarTrajectory.from_trajectory(make_trajectory(4))
    truncated = ColumnarTrajectory(
        **{
            field: getattr(columnar, field)
            for field in ("obs", "next_obs", "rewards", "dones", "continuous_actions")
            + ("discrete_actions", "continuous_log_probs", "discrete_log_probs")
        },
        interrupted=True,
    )
    assert [s.interrupted for s in truncated.steps] == [False, False, False, True]
    assert truncated.truncated and not truncated.terminated and truncated.done_reached
    per_step = truncated.to_trajectory()
    assert per_step.truncated and not per_step.terminated and per_step.interrupted


# -- step counting --------------------------------------------------------------------------


def sign_trainer(tmp_path, trainer_type, summary_freq=20):
    hyperparameters = {"batch_size": 8, "buffer_size": 1000}
    if trainer_type == "sac":
        hyperparameters["buffer_init_steps"] = 1000  # no update: only counting is tested
    settings = TrainerSettings.structure(
        {
            "trainer_type": trainer_type,
            "hyperparameters": hyperparameters,
            "network_settings": {"hidden_units": 8, "num_layers": 1},
            "time_horizon": 15,
            "summary_freq": summary_freq,
            "checkpoint_interval": 10_000,
        },
        TrainerSettings,
    )
    trainer_cls = PPOTrainer if trainer_type == "ppo" else SACTrainer
    trainer = trainer_cls("Sign", 10, settings, True, False, 0, str(tmp_path / trainer_type))
    behavior_id = BehaviorIdentifiers.from_name_behavior_id("Sign")
    env = SignEnv(num_agents=2, episode_length=15, seed=3)
    trainer.add_policy(behavior_id, trainer.create_policy(behavior_id, env.behavior_specs["Sign"]))
    return trainer, env


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
@pytest.mark.parametrize("form", ["columnar", "ml-agents"])
def test_a_15_step_trajectory_counts_15_steps(tmp_path, trainer_type, form, monkeypatch):
    trainer, env = sign_trainer(tmp_path, trainer_type)
    summaries = []
    monkeypatch.setattr(trainer, "_write_summary", summaries.append)
    processor = AgentProcessor(trainer.policy, "Sign", StatsReporter("Sign"), 15)
    collected = AgentManagerQueue("Sign")
    processor.publish_trajectory_queue(collected)
    run_steps(env, processor, trainer.policy, 15)
    trajectories = drain(collected)
    assert [len(t.steps) for t in trajectories] == [15, 15]
    if form == "ml-agents":
        trajectories = [t.to_trajectory() for t in trajectories]
        assert len(trajectories[0]) == 5  # a NamedTuple of 5 fields: not its step count

    queue = AgentManagerQueue("Sign")
    trainer.subscribe_trajectory_queue(queue)
    for trajectory in trajectories:
        queue.put(trajectory)
    assert queue.queued_length == 30
    trainer.advance()
    assert queue.empty() and queue.queued_length == 0
    assert trainer.get_step == 30 and trainer.policy.get_current_step() == 30
    # The second trajectory crosses summary_freq 20: one summary, labelled 20.
    assert summaries == [20]
    assert trainer.update_buffer.num_experiences == 30


# -- how trajectories end -------------------------------------------------------------------


def test_timeouts_true_ends_and_time_horizon_cuts():
    env = SignEnv(num_agents=4, episode_length=6)
    policy = FakePolicy(env.behavior_specs["Sign"])
    processor = AgentProcessor(policy, "Sign", StatsReporter("Sign"), max_trajectory_length=4)
    queue = AgentManagerQueue("Sign")
    processor.publish_trajectory_queue(queue)
    run_steps(env, processor, policy, 6)
    trajectories = drain(queue)
    ends = {}
    for trajectory in trajectories:
        agent = int(trajectory.agent_id.split("-")[1])
        ends.setdefault(agent, []).append(
            (len(trajectory), trajectory.terminated, trajectory.truncated)
        )
    # 6 steps with a time horizon of 4: a cut (neither) then the episode end. SignEnv ends
    # even agents' episodes by max step (truncated) and odd agents' in a terminal state.
    for agent, agent_ends in ends.items():
        assert agent_ends == [(4, False, False), (2, agent % 2 == 1, agent % 2 == 0)]
    batch = TrajectoryBatch.from_trajectories(trajectories)
    done = np.asarray(batch.buffer[BufferKey.DONE].get_batch())
    # DONE marks terminal states only: the last row of each terminated trajectory.
    terminal_rows = [int(batch.offsets[i + 1] - 1) for i in np.nonzero(batch.terminated)[0]]
    assert np.nonzero(done)[0].tolist() == terminal_rows and len(terminal_rows) == 2


class MinimalPolicy:
    """Only what ML-Agents' AgentProcessor asks of a policy: no behavior_spec, no m_size."""

    use_recurrent = True

    def __init__(self):
        self.previous = {}
        self.removed_actions = []
        self.removed_memories = []

    def retrieve_previous_memories(self, agent_ids):
        return np.array([[hash(a) % 7, 1.0, 2.0] for a in agent_ids], dtype=np.float32)

    def retrieve_previous_action(self, agent_ids):
        return np.array([self.previous.get(a, [0]) for a in agent_ids], dtype=np.int32)

    def save_previous_action(self, agent_ids, action):
        for agent_id, row in zip(agent_ids, action.discrete):
            self.previous[agent_id] = list(row)

    def remove_previous_action(self, agent_ids):
        self.removed_actions.extend(agent_ids)

    def remove_memories(self, agent_ids):
        self.removed_memories.extend(agent_ids)


def decisions(ids, rewards=None, masked=None):
    n = len(ids)
    mask = np.zeros((n, 3), dtype=bool)
    if masked is not None:
        mask[:, masked] = True
    return DecisionSteps(
        [np.array([[float(i), 1.0] for i in ids], dtype=np.float32).reshape(n, 2)],
        np.zeros(n, np.float32) if rewards is None else np.asarray(rewards, np.float32),
        np.asarray(ids, np.int32),
        [mask],
        np.zeros(n, np.int32),
        np.zeros(n, np.float32),
    )


def terminals(ids, rewards, interrupted):
    n = len(ids)
    return TerminalSteps(
        [np.array([[float(i), -1.0] for i in ids], dtype=np.float32).reshape(n, 2)],
        np.asarray(rewards, np.float32),
        np.asarray(interrupted, bool),
        np.asarray(ids, np.int32),
        np.zeros(n, np.int32),
        np.zeros(n, np.float32),
    )


def acted(ids):
    n = len(ids)
    action = ActionTuple(discrete=np.full((n, 1), 2, np.int32))
    log_probs = LogProbsTuple(discrete=np.full((n, 1), -0.5, np.float32))
    return SimpleNamespace(
        outputs={"action": action, "log_probs": log_probs, "entropy": np.ones(n)},
        agent_ids=list(ids),
    )


def test_removed_agents_and_a_policy_with_only_ml_agents_attributes():
    policy = MinimalPolicy()
    processor = AgentProcessor(policy, "Maze", StatsReporter("Maze"), max_trajectory_length=100)
    queue = AgentManagerQueue("Maze")
    processor.publish_trajectory_queue(queue)
    none = terminals([], [], [])
    nothing_yet = SimpleNamespace(outputs={}, agent_ids=[])
    processor.add_experiences(decisions([1, 2, 3], masked=0), none, 0, nothing_yet)
    processor.add_experiences(decisions([1, 2, 3], [0.1, 0.2, 0.3]), none, 0, acted([1, 2, 3]))
    # Agent 2 leaves the scene (Unity reports it done, not at max step): a true end. Agent 3
    # is interrupted (EpisodeInterrupted / max step) and starts its next episode at once.
    processor.add_experiences(
        decisions([1, 3]), terminals([2, 3], [1.0, 0.5], [False, True]), 0, acted([1, 2, 3])
    )
    processor.add_experiences(decisions([1, 3]), none, 0, acted([1, 3]))
    ended = {t.agent_id: t for t in drain(queue)}
    assert set(ended) == {"agent_0-2", "agent_0-3"}
    removed, interrupted = ended["agent_0-2"], ended["agent_0-3"]
    assert removed.terminated and not removed.truncated and removed.done_reached
    assert interrupted.truncated and not interrupted.terminated and interrupted.done_reached
    assert [len(removed.steps), len(interrupted.steps)] == [2, 2]
    # Memories and previous actions came from the policy's own methods; the mask width from
    # the environment's masks (the policy has no behavior_spec).
    assert removed.memories.shape == (2, 3) and removed.prev_actions.tolist() == [[0], [2]]
    assert [m.tolist() for m in removed.steps[0].action_mask] == [[True, False, False]]
    np.testing.assert_allclose(removed.rewards, [0.2, 1.0])

    # A forced reset (end_episode) drops agents 1 and 3 mid-episode: no trajectory, and the
    # policy forgets them.
    processor.end_episode()
    assert queue.empty()
    assert {"agent_0-1", "agent_0-3"} <= set(policy.removed_memories)
    assert {"agent_0-1", "agent_0-2", "agent_0-3"} <= set(policy.removed_actions)
