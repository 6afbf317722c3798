"""The PPO trainer's batched trajectory processing gives what one-at-a-time processing gives."""

import numpy as np
import torch
from mlagents_fast.trainers.agent_processor import AgentManagerQueue, AgentProcessor
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey, ObservationKeyPrefix, RewardSignalUtil
from mlagents_fast.trainers.ppo.trainer import PPOTrainer
from mlagents_fast.trainers.settings import TrainerSettings
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.trainer.rl_trainer import concatenate_trajectories
from test_trainer_agent_processor import drain
from trainer_fixtures import SignEnv


def make_trainer(tmp_path, name, spec):
    settings = TrainerSettings.structure(
        {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 16, "buffer_size": 10_000, "lambd": 0.9},
            "network_settings": {"hidden_units": 8, "num_layers": 1, "normalize": False},
            "time_horizon": 4,
        },
        TrainerSettings,
    )
    trainer = PPOTrainer("Sign", 100, settings, True, False, 0, str(tmp_path / name))
    behavior_id = BehaviorIdentifiers.from_name_behavior_id("Sign")
    policy = trainer.create_policy(behavior_id, spec)
    trainer.add_policy(behavior_id, policy)
    return trainer


def collect(trainer, env, steps):
    processor = AgentProcessor(
        trainer.policy, "Sign", StatsReporter("Sign"), max_trajectory_length=4
    )
    queue = AgentManagerQueue("Sign")
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


def test_batched_processing_matches_one_at_a_time(tmp_path):
    torch.manual_seed(0)
    env = SignEnv(num_agents=3, episode_length=6, seed=4)
    spec = env.behavior_specs["Sign"]
    batched = make_trainer(tmp_path, "a", spec)
    single = make_trainer(tmp_path, "b", spec)
    single.policy.load_weights(batched.policy.get_weights())
    single.optimizer.critic.load_state_dict(batched.optimizer.critic.state_dict())
    trajectories = collect(batched, env, 20)
    lengths = sorted({len(t) for t in trajectories})
    kinds = {(t.done_reached, t.interrupted) for t in trajectories}
    # Cut (bootstrapped), terminated and interrupted trajectories are all in the batch.
    assert lengths == [2, 4] and kinds == {(False, False), (True, False), (True, True)}

    batched._process_trajectories(trajectories)
    for trajectory in trajectories:
        single._process_trajectory(trajectory)

    keys = [
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
    assert batched.update_buffer.num_experiences == sum(len(t) for t in trajectories)
    for key in keys:
        np.testing.assert_allclose(
            np.asarray(batched.update_buffer[key].get_batch(), dtype=np.float64),
            np.asarray(single.update_buffer[key].get_batch(), dtype=np.float64),
            rtol=1e-5,
            atol=1e-6,
            err_msg=str(key),
        )
    assert batched.get_step == single.get_step == sum(len(t) for t in trajectories)
    assert list(batched.reward_buffer) == list(single.reward_buffer)


def test_concatenated_next_observations_come_from_each_trajectory(tmp_path):
    env = SignEnv(num_agents=2, episode_length=3, seed=1)
    trainer = make_trainer(tmp_path, "c", env.behavior_specs["Sign"])
    trajectories = collect(trainer, env, 7)
    buffer, lengths = concatenate_trajectories(trajectories)
    next_obs = np.asarray(buffer[(ObservationKeyPrefix.NEXT_OBSERVATION, 0)].get_batch())
    ends = np.cumsum(lengths) - 1
    for end, trajectory in zip(ends, trajectories):
        np.testing.assert_array_equal(next_obs[end], trajectory.next_obs[0])
