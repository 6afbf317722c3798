"""AgentProcessor: per-agent trajectories from batched environment steps."""

from types import SimpleNamespace

import numpy as np
import pytest
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.trainers.agent_processor import AgentManager, AgentManagerQueue, AgentProcessor
from mlagents_fast.trainers.buffer import BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.stats import StatsReporter
from trainer_fixtures import SignEnv


class FakePolicy:
    """Deterministic actions: +0.5 for every agent; log prob = -agent_id; entropy 1."""

    use_recurrent = False

    def __init__(self, spec):
        self.behavior_spec = spec
        self.previous_actions = {}
        self.removed = []

    def get_action(self, decision_steps, worker_id=0):
        n = len(decision_steps)
        if self.behavior_spec.action_spec.is_discrete():
            action = ActionTuple(discrete=np.ones((n, 1), dtype=np.int32))
        else:
            action = ActionTuple(continuous=np.full((n, 1), 0.5, dtype=np.float32))
        log_probs = SimpleNamespace(
            continuous=-decision_steps.agent_id[:, None].astype(np.float32)
            if not self.behavior_spec.action_spec.is_discrete()
            else np.zeros((n, 0), np.float32),
            discrete=-decision_steps.agent_id[:, None].astype(np.float32)
            if self.behavior_spec.action_spec.is_discrete()
            else np.zeros((n, 0), np.float32),
        )
        outputs = {"action": action, "log_probs": log_probs, "entropy": np.ones(n, np.float32)}
        return SimpleNamespace(
            action=action,
            env_action=action,
            outputs=outputs,
            agent_ids=list(decision_steps.agent_id),
        )

    def save_previous_action(self, agent_ids, action):
        for i, agent_id in enumerate(agent_ids):
            self.previous_actions[agent_id] = (
                action.discrete[i] if action.discrete.shape[1] else np.zeros(0, np.int32)
            )

    def retrieve_previous_action(self, agent_ids):
        return np.stack(
            [
                self.previous_actions.get(
                    a, np.zeros(1 if self.behavior_spec.action_spec.is_discrete() else 0, np.int32)
                )
                for a in agent_ids
            ]
        )

    def remove_previous_action(self, agent_ids):
        self.removed.extend(agent_ids)

    def remove_memories(self, agent_ids):
        pass


def run_steps(env, processor, policy, n_steps):
    """Drive env + processor as an env manager does."""
    decision_steps, terminal_steps = env.get_steps(env.behavior_name)
    processor.add_experiences(
        decision_steps, terminal_steps, 0, SimpleNamespace(outputs={}, agent_ids=[])
    )
    for _ in range(n_steps):
        action_info = policy.get_action(decision_steps)
        env.set_actions(env.behavior_name, action_info.env_action)
        env.step()
        decision_steps, terminal_steps = env.get_steps(env.behavior_name)
        processor.add_experiences(decision_steps, terminal_steps, 0, action_info)


def drain(queue):
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


@pytest.fixture(autouse=True)
def _clean_reporter():
    StatsReporter.reset()
    yield
    StatsReporter.reset()


def test_episode_end_cuts_trajectories_with_rewards_dones_and_next_obs():
    env = SignEnv(num_agents=4, episode_length=5)
    policy = FakePolicy(env.behavior_specs["Sign"])
    reporter = StatsReporter("Sign")
    processor = AgentProcessor(policy, "Sign", reporter, max_trajectory_length=1000)
    queue = AgentManagerQueue("Sign")
    processor.publish_trajectory_queue(queue)
    first_obs = env.get_steps("Sign")[0].obs[0].copy()
    run_steps(env, processor, policy, 5)
    trajectories = drain(queue)
    assert sorted(t.agent_id for t in trajectories) == [f"agent_0-{i}" for i in range(4)]
    for trajectory in trajectories:
        agent = int(trajectory.agent_id.split("-")[1])
        assert len(trajectory) == 5
        assert trajectory.done_reached
        # Even slots end by max step (interrupted), odd ones terminate.
        assert trajectory.interrupted == (agent % 2 == 0)
        np.testing.assert_array_equal(trajectory.obs[0][0], first_obs[agent])
        np.testing.assert_array_equal(trajectory.dones, [False] * 4 + [True])
        # Action +0.5 is right when the sign is +1: reward 0.1 then.
        expected_rewards = np.where(trajectory.obs[0][:, 0] > 0, 0.1, 0.0)
        np.testing.assert_allclose(trajectory.rewards, expected_rewards, atol=1e-7)
        np.testing.assert_allclose(trajectory.continuous_log_probs[:, 0], -agent)
        buffer = trajectory.to_agentbuffer()
        assert buffer.num_experiences == 5
        next_obs = np.asarray(buffer[(ObservationKeyPrefix.NEXT_OBSERVATION, 0)].get_batch())
        np.testing.assert_array_equal(next_obs[:-1], trajectory.obs[0][1:])
        np.testing.assert_allclose(np.asarray(buffer[BufferKey.CONTINUOUS_ACTION].get_batch()), 0.5)
    assert reporter.get_stats_summaries("Environment/Episode Length").full_dist == [4.0] * 4
    assert reporter.get_stats_summaries("Policy/Entropy").mean == 1.0
    # Ended agents' previous actions were dropped from the policy.
    assert sorted(policy.removed) == [f"agent_0-{i}" for i in range(4)]


def test_time_horizon_cuts_long_episodes_and_next_obs_bootstraps():
    env = SignEnv(num_agents=2, episode_length=100)
    policy = FakePolicy(env.behavior_specs["Sign"])
    processor = AgentProcessor(policy, "Sign", StatsReporter("Sign"), max_trajectory_length=3)
    queue = AgentManagerQueue("Sign")
    processor.publish_trajectory_queue(queue)
    run_steps(env, processor, policy, 7)
    trajectories = drain(queue)
    assert len(trajectories) == 4  # 2 agents x (3 + 3) steps; the 7th step is pending
    for trajectory in trajectories:
        assert len(trajectory) == 3 and not trajectory.done_reached and not trajectory.interrupted
    by_agent = [t for t in trajectories if t.agent_id == "agent_0-0"]
    # The second trajectory starts at the observation the first one bootstraps from.
    np.testing.assert_array_equal(by_agent[0].next_obs[0], by_agent[1].obs[0][0])


def test_discrete_actions_carry_masks_and_new_agent_ids_start_clean():
    env = SignEnv(num_agents=2, episode_length=2, discrete=True, new_ids_per_episode=True)
    policy = FakePolicy(env.behavior_specs["Sign"])
    manager = AgentManager(
        policy, "Sign", StatsReporter("Sign"), max_trajectory_length=10, threaded=False
    )
    run_steps(env, manager, policy, 4)
    trajectories = drain(manager.trajectory_queue)
    assert sorted(t.agent_id for t in trajectories) == [
        "agent_0-0",
        "agent_0-1",
        "agent_0-2",
        "agent_0-3",
    ]
    for trajectory in trajectories:
        assert len(trajectory) == 2
        np.testing.assert_array_equal(trajectory.discrete_actions, [[1], [1]])
        assert trajectory.action_masks.shape == (2, 2) and not trajectory.action_masks.any()
        buffer = trajectory.to_agentbuffer()
        np.testing.assert_array_equal(np.asarray(buffer[BufferKey.ACTION_MASK].get_batch()), 1.0)


def test_end_episode_drops_partial_trajectories():
    env = SignEnv(num_agents=2, episode_length=10)
    policy = FakePolicy(env.behavior_specs["Sign"])
    processor = AgentProcessor(policy, "Sign", StatsReporter("Sign"), max_trajectory_length=100)
    queue = AgentManagerQueue("Sign")
    processor.publish_trajectory_queue(queue)
    run_steps(env, processor, policy, 3)
    processor.end_episode()
    env.reset()
    run_steps(env, processor, policy, 10)
    trajectories = drain(queue)
    # Only the fresh episodes, none with the 3 dropped steps.
    assert [len(t) for t in trajectories] == [10, 10]
