"""One trajectory path per trainer: a batch of trajectories gives what the same trajectories
give one at a time (each a batch of one), and what ML-Agents' per-trajectory algorithm gives."""

import numpy as np
import pytest
import torch
from mlagents_fast.trainers.agent_processor import AgentManagerQueue, AgentProcessor
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey, ObservationKeyPrefix, RewardSignalUtil
from mlagents_fast.trainers.ppo.trainer import PPOTrainer
from mlagents_fast.trainers.sac.trainer import SACTrainer
from mlagents_fast.trainers.settings import TrainerSettings
from mlagents_fast.trainers.stats import StatsAggregationMethod, StatsReporter
from mlagents_fast.trainers.trainer.trainer_utils import get_gae
from mlagents_fast.trainers.trajectory import TrajectoryBatch
from test_trainer_agent_processor import drain
from trainer_fixtures import SignEnv

LSTM = {"memory_size": 8, "sequence_length": 3}


@pytest.fixture(autouse=True)
def _clean_reporter():
    StatsReporter.reset()
    yield
    StatsReporter.reset()


def make_trainer(tmp_path, name, spec, trainer_type="ppo", memory=None):
    hyperparameters = {"batch_size": 16, "buffer_size": 10_000}
    if trainer_type == "ppo":
        hyperparameters["lambd"] = 0.9
    network = {"hidden_units": 8, "num_layers": 1, "normalize": False}
    if memory is not None:
        network["memory"] = memory
    settings = TrainerSettings.structure(
        {
            "trainer_type": trainer_type,
            "hyperparameters": hyperparameters,
            "network_settings": network,
            "time_horizon": 4,
            "summary_freq": 1000,
        },
        TrainerSettings,
    )
    trainer_cls = PPOTrainer if trainer_type == "ppo" else SACTrainer
    trainer = trainer_cls(name, 100, settings, True, False, 0, str(tmp_path / name))
    behavior_id = BehaviorIdentifiers.from_name_behavior_id(name)
    policy = trainer.create_policy(behavior_id, spec)
    trainer.add_policy(behavior_id, policy)
    return trainer


def twin_trainers(tmp_path, spec, trainer_type="ppo", memory=None):
    """Two trainers with the same weights (names differ: each has its own stats)."""
    torch.manual_seed(0)
    first = make_trainer(tmp_path, "A", spec, trainer_type, memory)
    second = make_trainer(tmp_path, "B", spec, trainer_type, memory)
    second.policy.load_weights(first.policy.get_weights())
    second.optimizer.critic.load_state_dict(first.optimizer.critic.state_dict())
    return first, second


def collect(trainer, env, steps):
    """Trajectories of ``steps`` environment steps (time horizon 4), as the processor makes them."""
    processor = AgentProcessor(trainer.policy, "A", StatsReporter("A"), max_trajectory_length=4)
    queue = AgentManagerQueue("A")
    processor.publish_trajectory_queue(queue)
    decision_steps, terminal_steps = env.get_steps("Sign")
    processor.add_experiences(
        decision_steps,
        terminal_steps,
        0,
        trainer.policy.get_action(decision_steps.__class__.empty(env.behavior_specs["Sign"])),
    )
    for _ in range(steps):
        action_info = trainer.policy.get_action(decision_steps)
        env.set_actions("Sign", action_info.env_action)
        env.step()
        decision_steps, terminal_steps = env.get_steps("Sign")
        processor.add_experiences(decision_steps, terminal_steps, 0, action_info)
    return drain(queue)


def update_rows(trainer, keys):
    return {
        key: np.asarray(trainer.update_buffer[key].get_batch(), dtype=np.float64) for key in keys
    }


def assert_same_rows(first, second, keys):
    assert first.update_buffer.num_experiences == second.update_buffer.num_experiences
    ours, theirs = update_rows(first, keys), update_rows(second, keys)
    for key in keys:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=str(key))


def stat_values(trainer, name):
    return trainer.stats_reporter.get_stats_summaries(name).full_dist


PPO_KEYS = [
    BufferKey.ADVANTAGES,
    BufferKey.DISCOUNTED_RETURNS,
    RewardSignalUtil.value_estimates_key("extrinsic"),
    RewardSignalUtil.returns_key("extrinsic"),
    RewardSignalUtil.rewards_key("extrinsic"),
    (ObservationKeyPrefix.OBSERVATION, 0),
    (ObservationKeyPrefix.NEXT_OBSERVATION, 0),
    BufferKey.CONTINUOUS_ACTION,
    BufferKey.DONE,
]


def test_ppo_batch_equals_batches_of_one(tmp_path):
    env = SignEnv(num_agents=3, episode_length=6, seed=4)
    batched, single = twin_trainers(tmp_path, env.behavior_specs["Sign"])
    trajectories = collect(batched, env, 20)
    lengths = sorted({len(t) for t in trajectories})
    kinds = {(t.terminated, t.truncated) for t in trajectories}
    # Cut (bootstrapped), terminated and truncated trajectories are all in the batch.
    assert lengths == [2, 4] and kinds == {(False, False), (True, False), (False, True)}

    batched._process_trajectories(trajectories)
    for trajectory in trajectories:
        single._process_trajectory(trajectory)

    assert_same_rows(batched, single, PPO_KEYS)
    assert batched.get_step == single.get_step == sum(len(t) for t in trajectories)
    assert list(batched.reward_buffer) == list(single.reward_buffer)
    for stat in ("Policy/Extrinsic Value Estimate", "Environment/Cumulative Reward"):
        np.testing.assert_allclose(stat_values(batched, stat), stat_values(single, stat), 1e-5)


def test_ppo_matches_ml_agents_per_trajectory_algorithm(tmp_path):
    """The batch path against ML-Agents' PPO loop written out per trajectory: value estimates
    from get_trajectory_value_estimates (bootstrap 0 only for terminated ends), get_gae."""
    env = SignEnv(num_agents=3, episode_length=6, seed=7)
    trainer = make_trainer(tmp_path, "A", env.behavior_specs["Sign"])
    trajectories = collect(trainer, env, 18)
    trainer._process_trajectories(trajectories)
    gamma, lambd = 0.99, 0.9
    advantages, returns, dones = [], [], []
    for trajectory in trajectories:
        buffer = trajectory.to_agentbuffer()
        values, value_next, _ = trainer.optimizer.get_trajectory_value_estimates(
            buffer, trajectory.next_obs, trajectory.done_reached and not trajectory.interrupted
        )
        rewards = np.asarray(buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch())
        advantage = get_gae(rewards, values["extrinsic"], value_next["extrinsic"], gamma, lambd)
        advantages.append(advantage)
        returns.append(advantage + values["extrinsic"])
        # ML-Agents' DONE, cleared at interrupted ends (as its SAC does): terminal states only.
        done = np.asarray(buffer[BufferKey.DONE].get_batch()).copy()
        done[-1] &= not trajectory.interrupted
        dones.append(done)
    rows = update_rows(
        trainer, [RewardSignalUtil.advantage_key("extrinsic"), BufferKey.DISCOUNTED_RETURNS]
    )
    np.testing.assert_allclose(
        rows[RewardSignalUtil.advantage_key("extrinsic")], np.concatenate(advantages), 1e-5, 1e-6
    )
    np.testing.assert_allclose(
        rows[BufferKey.DISCOUNTED_RETURNS], np.concatenate(returns), 1e-5, 1e-6
    )
    np.testing.assert_array_equal(
        np.asarray(trainer.update_buffer[BufferKey.DONE].get_batch()), np.concatenate(dones)
    )


def test_recurrent_ppo_carries_critic_memory_per_agent(tmp_path):
    env = SignEnv(num_agents=2, episode_length=7, seed=2)
    batched, single = twin_trainers(tmp_path, env.behavior_specs["Sign"], memory=LSTM)
    trajectories = collect(batched, env, 16)
    batched._process_trajectories(trajectories)
    for trajectory in trajectories:
        single._process_trajectory(trajectory)
    assert_same_rows(batched, single, [*PPO_KEYS, BufferKey.CRITIC_MEMORY])

    # Each agent's trajectory starts from the critic memory its previous trajectory ended
    # with (fresh after an episode end): replay that per agent and compare.
    optimizer = batched.optimizer
    expected_first_rows = []
    memories = {}
    for trajectory in trajectories:
        buffer = trajectory.to_agentbuffer()
        start = memories.get(trajectory.agent_id, torch.zeros((1, 1, optimizer.critic.memory_size)))
        expected_first_rows.append(start.reshape(-1).numpy())
        obs = [torch.as_tensor(np.asarray(buffer[(ObservationKeyPrefix.OBSERVATION, 0)]))]
        with torch.no_grad():
            _, _, end = optimizer._evaluate_by_sequence(obs, start)
        if trajectory.done_reached:
            memories.pop(trajectory.agent_id, None)
        else:
            memories[trajectory.agent_id] = end
    # Rows of the update buffer are padded to whole sequences of 3, per trajectory.
    padded = [int(np.ceil(len(t) / 3) * 3) for t in trajectories]
    starts = np.concatenate([[0], np.cumsum(padded)[:-1]])
    critic_memory = np.asarray(batched.update_buffer[BufferKey.CRITIC_MEMORY].get_batch())
    np.testing.assert_allclose(critic_memory[starts], np.stack(expected_first_rows), atol=1e-6)
    assert any(np.abs(row).sum() > 0 for row in critic_memory[starts])
    assert set(optimizer.critic_memory_dict) <= {t.agent_id for t in trajectories}


def test_sac_batch_equals_batches_of_one_and_done_marks_terminal_states(tmp_path):
    env = SignEnv(num_agents=3, episode_length=5, seed=3)
    batched, single = twin_trainers(tmp_path, env.behavior_specs["Sign"], "sac")
    trajectories = collect(batched, env, 15)
    batched._process_trajectories(trajectories)
    for trajectory in trajectories:
        single._process_trajectory(trajectory)
    keys = [
        (ObservationKeyPrefix.OBSERVATION, 0),
        (ObservationKeyPrefix.NEXT_OBSERVATION, 0),
        BufferKey.CONTINUOUS_ACTION,
        BufferKey.ENVIRONMENT_REWARDS,
        BufferKey.DONE,
    ]
    assert_same_rows(batched, single, keys)
    expected_done = np.concatenate(
        [
            np.arange(len(t)) == len(t) - 1 if t.terminated else np.zeros(len(t), bool)
            for t in trajectories
        ]
    )
    assert any(t.truncated for t in trajectories) and any(t.terminated for t in trajectories)
    np.testing.assert_array_equal(
        np.asarray(batched.update_buffer[BufferKey.DONE].get_batch()), expected_done
    )
    np.testing.assert_allclose(
        stat_values(batched, "Policy/Extrinsic Value"),
        stat_values(single, "Policy/Extrinsic Value"),
        1e-5,
    )
    assert list(batched.reward_buffer) == list(single.reward_buffer)


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_ml_agents_style_trajectories_give_the_same_update_buffer(tmp_path, trainer_type):
    env = SignEnv(num_agents=2, episode_length=5, seed=5)
    columnar, per_step = twin_trainers(tmp_path, env.behavior_specs["Sign"], trainer_type)
    trajectories = collect(columnar, env, 12)
    columnar._process_trajectories(trajectories)
    per_step._process_trajectories([t.to_trajectory() for t in trajectories])
    keys = [
        (ObservationKeyPrefix.OBSERVATION, 0),
        (ObservationKeyPrefix.NEXT_OBSERVATION, 0),
        BufferKey.CONTINUOUS_ACTION,
        BufferKey.CONTINUOUS_LOG_PROBS,
        BufferKey.DONE,
    ]
    if trainer_type == "ppo":
        keys += [BufferKey.ADVANTAGES, BufferKey.DISCOUNTED_RETURNS]
    assert_same_rows(columnar, per_step, keys)
    assert columnar.get_step == per_step.get_step == sum(len(t) for t in trajectories)


def test_batch_rows_follow_each_trajectory(tmp_path):
    env = SignEnv(num_agents=2, episode_length=3, seed=1)
    trainer = make_trainer(tmp_path, "A", env.behavior_specs["Sign"])
    trajectories = collect(trainer, env, 7)
    batch = TrajectoryBatch.from_trajectories(trajectories)
    np.testing.assert_array_equal(batch.lengths, [len(t) for t in trajectories])
    next_obs = np.asarray(batch.buffer[(ObservationKeyPrefix.NEXT_OBSERVATION, 0)].get_batch())
    for index, trajectory in enumerate(trajectories):
        alone = trajectory.to_agentbuffer()
        rows = batch.slice(index)
        for key in (
            (ObservationKeyPrefix.OBSERVATION, 0),
            (ObservationKeyPrefix.NEXT_OBSERVATION, 0),
            BufferKey.CONTINUOUS_ACTION,
            BufferKey.NEXT_CONT_ACTION,
            BufferKey.ENVIRONMENT_REWARDS,
        ):
            np.testing.assert_array_equal(
                np.asarray(rows[key].get_batch()), np.asarray(alone[key].get_batch())
            )
        np.testing.assert_array_equal(
            next_obs[batch.offsets[index + 1] - 1], trajectory.next_obs[0]
        )
    np.testing.assert_array_equal(batch.terminated, [t.terminated for t in trajectories])
    np.testing.assert_array_equal(batch.truncated, [t.truncated for t in trajectories])


def test_group_rewards_are_warned_about_once(tmp_path, caplog):
    env = SignEnv(num_agents=2, episode_length=3)
    trainer = make_trainer(tmp_path, "group", env.behavior_specs["Sign"])
    trajectories = collect(trainer, env, 12)
    with caplog.at_level("WARNING"):
        trainer._process_trajectories(trajectories[:2])
    assert "group reward" not in caplog.text  # all zero
    for trajectory in trajectories[2:]:
        trajectory.group_rewards[:] = 0.5
    with caplog.at_level("WARNING"):
        trainer._process_trajectories(trajectories[2:])
    warnings = [r for r in caplog.records if "group reward" in r.getMessage()]
    assert len(warnings) == 1
    assert "PPOTrainer" in warnings[0].getMessage()
    # ML-Agents' form: the trainer checks an AgentBuffer.
    trainer._has_warned_group_rewards = False
    with caplog.at_level("WARNING"):
        trainer._warn_if_group_reward(trajectories[0].to_agentbuffer())
        assert not trainer._has_warned_group_rewards
        trainer._warn_if_group_reward(trajectories[2].to_agentbuffer())
    assert trainer._has_warned_group_rewards


def test_episode_rewards_are_histogram_stats(tmp_path):
    # As ML-Agents: TensorBoard gets "Environment/Cumulative Reward" and its "_hist" histogram.
    env = SignEnv(num_agents=2, episode_length=3)
    trainer = make_trainer(tmp_path, "hist", env.behavior_specs["Sign"])
    for agent, reward in (("a", 1.5), ("b", -0.5)):
        trainer.collected_rewards["environment"][agent] = reward
        trainer._update_end_episode_stats(agent, trainer.optimizer)
    summary = trainer.stats_reporter.get_stats_summaries("Environment/Cumulative Reward")
    assert summary.aggregation_method == StatsAggregationMethod.HISTOGRAM
    assert list(summary.full_dist) == [1.5, -0.5] and summary.aggregated_value == 0.5
