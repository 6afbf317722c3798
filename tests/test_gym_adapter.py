"""The Gymnasium adapter both ways: gym:<id> as a BaseEnv, a BaseEnv behavior as a gym Env."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="the gym extra is not installed")

from gymnasium.utils.env_checker import check_env
from mlagents_fast.envs.base_env import ActionTuple, BaseEnv, DimensionProperty
from mlagents_fast.envs.builtin import BuiltinEnv
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.envs.exception import UnityEnvironmentException
from mlagents_fast.envs.gym_adapter import BehaviorGymEnv, GymVectorEnv


def test_cartpole_as_base_env_episodes_ids_and_terminated():
    env = make_env("gym:CartPole-v1", seed=0, num_areas=3)
    assert isinstance(env, GymVectorEnv) and isinstance(env, BaseEnv)
    behavior = "CartPole-v1?team=0"
    spec = env.behavior_specs[behavior]
    assert spec.observation_specs[0].shape == (4,)
    assert spec.action_spec.discrete_branches == (2,) and spec.action_spec.continuous_size == 0
    env.reset()
    decision_steps, _ = env.get_steps(behavior)
    assert decision_steps.agent_id.tolist() == [0, 1, 2]
    assert [m.shape for m in decision_steps.action_mask] == [(3, 2)]
    running = {int(a): 0.0 for a in decision_steps.agent_id}
    ended = []
    for _ in range(60):  # always pushing right topples the pole in ~10 steps
        env.set_actions(behavior, ActionTuple(discrete=np.ones((3, 1), np.int32)))
        env.step()
        decision_steps, terminal_steps = env.get_steps(behavior)
        for agent_id, reward, interrupted, obs in zip(
            terminal_steps.agent_id,
            terminal_steps.reward,
            terminal_steps.interrupted,
            terminal_steps.obs[0],
        ):
            ended.append((running.pop(int(agent_id)) + float(reward), bool(interrupted)))
            # The last observation is the fallen pole, past the 12-degree limit.
            assert abs(obs[2]) > 0.2 or abs(obs[0]) > 2.4
        for agent_id, reward in zip(decision_steps.agent_id, decision_steps.reward):
            running[int(agent_id)] = running.get(int(agent_id), 0.0) + float(reward)
    assert len(ended) >= 6
    assert all(not interrupted for _, interrupted in ended)
    assert all(5 <= total <= 20 for total, _ in ended)
    # New ids for new episodes, never reused.
    assert len(running) == 3 and min(running) >= 3
    env.close()


def test_pendulum_truncates_as_interrupted_and_scales_actions():
    env = make_env("gym:Pendulum-v1", seed=1, num_areas=2, max_episode_steps=5)
    behavior = "Pendulum-v1?team=0"
    assert env.behavior_specs[behavior].action_spec.continuous_size == 1
    env.reset()
    for _ in range(5):
        env.set_actions(behavior, ActionTuple(continuous=np.ones((2, 1), np.float32)))
        env.step()
    _, terminal_steps = env.get_steps(behavior)
    assert terminal_steps.interrupted.tolist() == [True, True]
    assert np.all(terminal_steps.reward < 0)
    # Action 1.0 maps to the top of Pendulum's [-2, 2] torque range.
    np.testing.assert_allclose(env._action(ActionTuple(continuous=np.ones((1, 1)))), [[2.0]])
    np.testing.assert_allclose(env._action(ActionTuple(continuous=-np.ones((1, 1)))), [[-2.0]])


def test_same_seed_same_observations():
    def first_obs(seed):
        env = make_env("gym:CartPole-v1", seed=seed, num_areas=2)
        env.reset()
        return env.get_steps("CartPole-v1?team=0")[0].obs[0]

    np.testing.assert_array_equal(first_obs(4), first_obs(4))
    assert not np.array_equal(first_obs(4), first_obs(5))


def test_discrete_observations_become_one_hot_and_images_chw():
    env = GymVectorEnv("FrozenLake-v1", seed=0, num_envs=2)
    (obs_spec,) = env.behavior_specs["FrozenLake-v1?team=0"].observation_specs
    assert obs_spec.shape == (16,)
    env.reset()
    obs = env.get_steps("FrozenLake-v1?team=0")[0].obs[0]
    np.testing.assert_array_equal(obs.sum(axis=1), 1.0)
    assert obs[0, 0] == 1.0  # the start cell

    from mlagents_fast.envs.gym_adapter import _ObservationConverter

    image_space = gymnasium.spaces.Box(0, 255, shape=(8, 6, 3), dtype=np.uint8)
    convert = _ObservationConverter(image_space, "image")
    assert convert.spec.shape == (3, 8, 6)
    assert convert.spec.dimension_property[1] == DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
    batch = np.zeros((2, 8, 6, 3), np.uint8)
    batch[1, 2, 4, 1] = 255
    chw = convert(batch)
    assert chw.shape == (2, 3, 8, 6) and chw.dtype == np.float32
    assert chw[1, 1, 2, 4] == 1.0 and chw.sum() == 1.0


def test_unknown_gym_id_and_bad_actions():
    with pytest.raises(UnityEnvironmentException, match="gym:NoSuchEnv-v0"):
        make_env("gym:NoSuchEnv-v0", seed=0)
    env = make_env("gym:CartPole-v1", seed=0, num_areas=2)
    env.reset()
    from mlagents_fast.envs.exception import UnityActionException

    with pytest.raises(UnityActionException, match=r"received input of dimension \(3, 0\)"):
        env.set_actions("CartPole-v1?team=0", ActionTuple(discrete=np.ones((3, 1), np.int32)))


# BaseEnv observations carry no bounds, so the spaces are unbounded, as in ML-Agents'
# UnityToGymWrapper; the checker warns about that and nothing else.
@pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value is")
def test_builtin_behavior_as_gymnasium_env_passes_the_checker():
    for name in ("GoalSeeker1D", "GoalSeeker1DDiscrete", "GoalSeeker1DHybrid", "GridWorld"):
        env = BehaviorGymEnv(BuiltinEnv(name, seed=0, agents_per_area=1))
        check_env(env, skip_render_check=True)


def test_builtin_goal_seeker_episode_through_gymnasium():
    env = BehaviorGymEnv(BuiltinEnv("GoalSeeker1DDiscrete", seed=2, agents_per_area=1))
    assert env.action_space == gymnasium.spaces.Discrete(3)
    obs, _ = env.reset()
    total, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, _ = env.step(2 if obs[1] > obs[0] else 0)
        total += reward
    assert terminated and not truncated
    assert total == pytest.approx(0.96)
    # Standing still ends in a truncation at 40 decisions.
    env.reset()
    for step in range(40):
        _, _, terminated, truncated, _ = env.step(1)
    assert truncated and not terminated and step == 39


def test_behavior_gym_env_needs_one_agent():
    with pytest.raises(UnityEnvironmentException, match="exactly one agent"):
        BehaviorGymEnv(BuiltinEnv("3DBall", seed=0)).reset()
