"""Built-in environments through the BaseEnv API: specs, episodes, ids, masks, parameters
sent over a real EnvironmentParametersChannel, and bad actions."""

from __future__ import annotations

import numpy as np
import pytest
from mlagents_fast import _native
from mlagents_fast.envs.base_env import ActionTuple, BaseEnv, DimensionProperty
from mlagents_fast.envs.builtin import BUILTIN_NAMES, BuiltinEnv
from mlagents_fast.envs.exception import UnityActionException, UnityEnvironmentException
from mlagents_fast.envs.side_channel import (
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
)
from mlagents_fast.exceptions import InvalidArgumentError

BALL = "3DBall?team=0"


def balancing_actions(obs: np.ndarray) -> np.ndarray:
    """A hand-written 3DBall controller: tilt so the ball accelerates back to the center.

    Positive rotation about z rolls the ball toward -x, positive rotation about x toward +z.
    """
    rot_z, rot_x = obs[:, 0], obs[:, 1]
    x, z, vx, vz = obs[:, 2], obs[:, 4], obs[:, 5], obs[:, 7]
    target_z = np.clip(0.04 * x + 0.05 * vx, -0.2, 0.2)
    target_x = np.clip(-0.04 * z - 0.05 * vz, -0.2, 0.2)
    actions = np.stack([(target_z - rot_z) * 20.0, (target_x - rot_x) * 20.0], axis=1)
    return np.clip(actions, -1.0, 1.0).astype(np.float32)


def run_ball(env: BuiltinEnv, decisions: int, policy) -> tuple[list[float], list[bool], np.ndarray]:
    """Steps 3DBall; returns the episode returns, their interrupted flags and the last obs."""
    env.reset()
    decision_steps, _ = env.get_steps(BALL)
    running = {int(a): 0.0 for a in decision_steps.agent_id}
    returns, interrupted = [], []
    for _ in range(decisions):
        env.set_actions(BALL, ActionTuple(continuous=policy(decision_steps.obs[0])))
        env.step()
        decision_steps, terminal_steps = env.get_steps(BALL)
        for agent_id, reward, cut in zip(
            terminal_steps.agent_id, terminal_steps.reward, terminal_steps.interrupted
        ):
            returns.append(running.pop(int(agent_id)) + float(reward))
            interrupted.append(bool(cut))
        for agent_id, reward in zip(decision_steps.agent_id, decision_steps.reward):
            running[int(agent_id)] = running.get(int(agent_id), 0.0) + float(reward)
    return returns, interrupted, decision_steps.obs[0]


def test_every_builtin_is_a_base_env_with_consistent_batches():
    for name in BUILTIN_NAMES:
        env = BuiltinEnv(name, seed=1, num_areas=2)
        assert isinstance(env, BaseEnv)
        env.reset()
        deciding = 0
        for behavior_name, spec in env.behavior_specs.items():
            decision_steps, terminal_steps = env.get_steps(behavior_name)
            n = len(decision_steps)
            deciding += n
            assert len(terminal_steps) == 0
            for obs, obs_spec in zip(decision_steps.obs, spec.observation_specs):
                assert obs.shape == (n,) + obs_spec.shape and obs.dtype == np.float32
            for obs, obs_spec in zip(terminal_steps.obs, spec.observation_specs):
                assert obs.shape == (0,) + obs_spec.shape
            assert decision_steps.reward.dtype == np.float32
            assert decision_steps.agent_id.dtype == np.int32
            assert decision_steps.group_id.dtype == np.int32 and len(decision_steps.group_id) == n
            assert decision_steps.group_reward.dtype == np.float32
            assert len(set(decision_steps.agent_id.tolist())) == n
            if spec.action_spec.discrete_size:
                assert [m.shape for m in decision_steps.action_mask] == [
                    (n, b) for b in spec.action_spec.discrete_branches
                ]
            else:
                assert decision_steps.action_mask is None
            env.set_actions(behavior_name, spec.action_spec.random_action(n))
        assert deciding == env.num_agents
        env.step()
        env.close()


def test_3dball_spec_matches_the_example():
    env = BuiltinEnv("3DBall", seed=0)
    spec = env.behavior_specs[BALL]
    (obs_spec,) = spec.observation_specs
    assert obs_spec.shape == (8,)
    assert obs_spec.dimension_property == (DimensionProperty.NONE,)
    assert obs_spec.name == "VectorSensor_size8"
    assert spec.action_spec.continuous_size == 2 and spec.action_spec.discrete_branches == ()
    assert env.num_agents == 12
    assert env.max_decisions == 1000
    assert BuiltinEnv("3DBall", seed=0, num_areas=3).num_agents == 36


def test_3dball_observations_are_in_the_frame_of_unity_demonstrations():
    """The example's platform is a 5 x 5 x 5 cube and observations are relative to its
    centre: the ball drops from y = 4 and rests at y = 2.5 + 0.5, as in the Unity-recorded
    Expert3DBall.demo (ball y between 2.9 and 3.2 once landed), so its experts transfer."""
    env = BuiltinEnv("3DBall", seed=2)
    _, _, last_obs = run_ball(env, 60, balancing_actions)
    np.testing.assert_allclose(np.median(last_obs[:, 3]), 3.0, atol=0.05)
    assert np.all((last_obs[:, 3] > 2.9) & (last_obs[:, 3] < 3.2))


def test_visual_gridworld_is_chw():
    env = BuiltinEnv("VisualGridWorld", seed=0)
    (obs_spec,) = env.behavior_specs["GridWorld?team=0"].observation_specs
    assert obs_spec.shape == (3, 20, 20)
    assert obs_spec.dimension_property == (
        DimensionProperty.NONE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    )
    env.reset()
    decision_steps, _ = env.get_steps("GridWorld?team=0")
    # One agent pixel block, one goal block, one pit block of 4 x 4 each.
    assert np.all(decision_steps.obs[0].sum(axis=(2, 3)) == 16.0)


def test_controller_balances_3dball_for_full_episodes():
    env = BuiltinEnv("3DBall", seed=3, num_areas=2)
    returns, interrupted, _ = run_ball(env, 1000, balancing_actions)
    assert len(returns) == env.num_agents
    assert all(interrupted)
    np.testing.assert_allclose(returns, 100.0, atol=1e-3)


def test_controller_balances_3dball_randomized_as_in_3dball_randomize_yaml():
    """The ranges of ML-Agents' 3DBall_randomize.yaml (plus gravity 4-20) stay solvable."""
    channel = EnvironmentParametersChannel()
    channel.set_uniform_sampler_parameters("mass", 0.5, 10.0, 1)
    channel.set_uniform_sampler_parameters("scale", 0.75, 3.0, 2)
    channel.set_uniform_sampler_parameters("gravity", 4.0, 20.0, 3)
    env = BuiltinEnv("3DBall", seed=1, num_areas=2, side_channels=[channel])
    returns, interrupted, _ = run_ball(env, 1000, balancing_actions)
    assert len(returns) == env.num_agents and all(interrupted)
    np.testing.assert_allclose(returns, 100.0, atol=1e-3)


def test_scale_and_mass_change_the_motion():
    """A bigger ball rests higher; a heavier one is slowed less by drag."""

    def rest_height_and_speed(scale, mass):
        channel = EnvironmentParametersChannel()
        channel.set_float_parameter("scale", scale)
        channel.set_float_parameter("mass", mass)
        env = BuiltinEnv("3DBall", seed=0, side_channels=[channel])
        env.reset()
        push = ActionTuple(continuous=np.tile(np.float32([1.0, 0.0]), (12, 1)))
        for _ in range(10):  # land on the cube (a 1-unit drop), then tilt it, not off
            env.set_actions(BALL, push)
            env.step()
        obs = env.get_steps(BALL)[0].obs[0]
        return obs[:, 3], np.linalg.norm(obs[:, 5:8], axis=1)

    small_height, light_speed = rest_height_and_speed(1.0, 0.5)
    big_height, _ = rest_height_and_speed(2.0, 0.5)
    _, heavy_speed = rest_height_and_speed(1.0, 10.0)
    assert np.all(big_height > small_height + 0.3)
    assert np.all(heavy_speed > light_speed)


def test_random_actions_drop_the_ball():
    env = BuiltinEnv("3DBall", seed=5)
    rng = np.random.default_rng(0)
    returns, interrupted, _ = run_ball(
        env, 300, lambda obs: rng.uniform(-1, 1, (len(obs), 2)).astype(np.float32)
    )
    assert len(returns) >= env.num_agents
    assert not any(interrupted)
    assert np.mean(returns) < 10.0


def test_same_seed_same_episodes_other_seed_differs():
    def last_obs(seed):
        rng = np.random.default_rng(1)
        _, _, obs = run_ball(
            BuiltinEnv("3DBall", seed=seed),
            60,
            lambda o: rng.uniform(-1, 1, (len(o), 2)).astype(np.float32),
        )
        return obs

    np.testing.assert_array_equal(last_obs(7), last_obs(7))
    assert not np.array_equal(last_obs(7), last_obs(8))


def test_terminal_step_carries_last_observation_and_ids_change():
    env = BuiltinEnv("GoalSeeker1DDiscrete", seed=0, agents_per_area=1)
    env.reset()
    decision_steps, _ = env.get_steps("GoalSeeker1DDiscrete?team=0")
    first_id = int(decision_steps.agent_id[0])
    goal = float(decision_steps.obs[0][0, 1])
    toward = 2 if goal > 0 else 0
    for _ in range(4):
        env.set_actions(
            "GoalSeeker1DDiscrete?team=0", ActionTuple(discrete=np.array([[toward]], np.int32))
        )
        env.step()
        decision_steps, terminal_steps = env.get_steps("GoalSeeker1DDiscrete?team=0")
        assert len(terminal_steps) == 0 and decision_steps.agent_id[0] == first_id
        np.testing.assert_allclose(decision_steps.reward, [-0.01])
    env.set_action_for_agent(
        "GoalSeeker1DDiscrete?team=0", first_id, ActionTuple(discrete=np.array([[toward]]))
    )
    env.step()
    decision_steps, terminal_steps = env.get_steps("GoalSeeker1DDiscrete?team=0")
    assert terminal_steps.agent_id.tolist() == [first_id]
    assert terminal_steps.interrupted.tolist() == [False]
    np.testing.assert_allclose(terminal_steps.reward, [1.0])
    np.testing.assert_allclose(terminal_steps.obs[0][0], [goal, goal], atol=1e-5)
    # Reset at once: a new episode id, at the start, with no reward yet.
    assert decision_steps.agent_id[0] != first_id
    np.testing.assert_allclose(decision_steps.obs[0][0, 0], 0.0)
    assert decision_steps.reward[0] == 0.0


def test_gridworld_masks_match_the_walls():
    env = BuiltinEnv("GridWorld", seed=4, num_areas=5)
    env.reset()
    for _ in range(20):
        decision_steps, _ = env.get_steps("GridWorld?team=0")
        (mask,) = decision_steps.action_mask
        x = np.rint(decision_steps.obs[0][:, 0] * 4).astype(int)
        z = np.rint(decision_steps.obs[0][:, 1] * 4).astype(int)
        np.testing.assert_array_equal(mask[:, 0], False)
        np.testing.assert_array_equal(mask[:, 1], z == 4)
        np.testing.assert_array_equal(mask[:, 2], z == 0)
        np.testing.assert_array_equal(mask[:, 3], x == 0)
        np.testing.assert_array_equal(mask[:, 4], x == 4)
        spec = env.behavior_specs["GridWorld?team=0"]
        env.set_actions("GridWorld?team=0", spec.action_spec.random_action(len(decision_steps)))
        env.step()


def test_gravity_zero_through_the_parameters_channel_keeps_the_ball_floating():
    channel = EnvironmentParametersChannel()
    env = BuiltinEnv("3DBall", seed=0, side_channels=[channel])
    channel.set_float_parameter("gravity", 0.0)
    env.reset()
    for _ in range(50):
        env.step()
    decision_steps, terminal_steps = env.get_steps(BALL)
    assert len(terminal_steps) == 0
    np.testing.assert_array_equal(decision_steps.obs[0][:, 3], 4.0)  # still 4 above
    np.testing.assert_array_equal(decision_steps.obs[0][:, 6], 0.0)  # not falling
    # Without the parameter the same balls land on the cube (top face 2.5 above its centre)
    # within 15 decisions.
    plain = BuiltinEnv("3DBall", seed=0)
    plain.reset()
    for _ in range(15):
        plain.step()
        assert len(plain.get_steps(BALL)[1]) == 0
    assert np.all(plain.get_steps(BALL)[0].obs[0][:, 3] < 3.5)


def test_samplers_draw_per_episode_and_are_seeded():
    def goal_distances(sampler_seed):
        channel = EnvironmentParametersChannel()
        channel.set_uniform_sampler_parameters("goal_distance", 0.5, 3.0, sampler_seed)
        env = BuiltinEnv("GoalSeeker1D", seed=0, side_channels=[channel])
        env.reset()
        decision_steps, _ = env.get_steps("GoalSeeker1D?team=0")
        return np.abs(decision_steps.obs[0][:, 1])

    first = goal_distances(5)
    assert np.all((first >= 0.5) & (first < 3.0))
    assert len(np.unique(first)) > 8  # one draw per agent's episode
    np.testing.assert_array_equal(first, goal_distances(5))
    assert not np.array_equal(first, goal_distances(6))


def test_gaussian_and_multirange_samplers_reach_the_environment():
    channel = EnvironmentParametersChannel()
    channel.set_multirangeuniform_sampler_parameters("goal_distance", [(1.0, 1.5), (4.0, 4.5)], 2)
    env = BuiltinEnv("GoalSeeker1D", seed=0, num_areas=4, side_channels=[channel])
    env.reset()
    distances = np.abs(env.get_steps("GoalSeeker1D?team=0")[0].obs[0][:, 1])
    assert np.all(
        ((distances >= 1.0) & (distances <= 1.5)) | ((distances >= 4.0) & (distances <= 4.5))
    )
    assert np.any(distances > 3.0) and np.any(distances < 2.0)
    channel.set_gaussian_sampler_parameters("goal_distance", 2.0, 0.0, 1)
    env.reset()
    distances = np.abs(env.get_steps("GoalSeeker1D?team=0")[0].obs[0][:, 1])
    np.testing.assert_allclose(distances, 2.0)


def test_parameter_change_applies_at_the_next_episode_start():
    channel = EnvironmentParametersChannel()
    env = BuiltinEnv("MemoryCorridor", seed=0, side_channels=[channel])
    env.reset()
    channel.set_float_parameter("corridor_length", 6)
    behavior = "MemoryCorridor?team=0"
    walk = ActionTuple(discrete=np.zeros((env.num_agents, 1), np.int32))
    # The running episodes keep the default length 3: at the junction after 3 steps.
    for _ in range(3):
        env.set_actions(behavior, walk)
        env.step()
    decision_steps, _ = env.get_steps(behavior)
    assert np.all(decision_steps.obs[0][:, 2] == 1.0)
    env.set_actions(behavior, ActionTuple(discrete=np.ones((env.num_agents, 1), np.int32)))
    env.step()
    decision_steps, terminal_steps = env.get_steps(behavior)
    assert len(terminal_steps) == env.num_agents
    # New episodes are 6 long: progress moves by 1/6 per step.
    env.set_actions(behavior, walk)
    env.step()
    np.testing.assert_allclose(env.get_steps(behavior)[0].obs[0][:, 1], 1 / 6, rtol=1e-6)


def test_engine_configuration_is_accepted_and_ignored():
    engine = EngineConfigurationChannel()
    engine.set_configuration_parameters(time_scale=20.0)
    env = BuiltinEnv("3DBall", seed=0, side_channels=[engine])
    env.reset()
    assert engine.message_queue == []


def test_bad_sampler_is_refused_with_its_name():
    channel = EnvironmentParametersChannel()
    channel.set_uniform_sampler_parameters("mass", 5.0, 1.0, 0)
    env = BuiltinEnv("3DBall", seed=0, side_channels=[channel])
    with pytest.raises(InvalidArgumentError, match="uniform sampler"):
        env.reset()


def test_bad_actions_raise_clear_errors():
    env = BuiltinEnv("3DBall", seed=0)
    env.reset()
    with pytest.raises(UnityActionException, match=r"continuous input of dimension \(12, 2\)"):
        env.set_actions(BALL, ActionTuple(continuous=np.zeros((12, 3), np.float32)))
    with pytest.raises(UnityActionException, match="NaN"):
        env.set_actions(BALL, ActionTuple(continuous=np.full((12, 2), np.nan, np.float32)))
    with pytest.raises(UnityActionException, match="does not correspond"):
        env.set_actions("3DBall", ActionTuple(continuous=np.zeros((12, 2), np.float32)))
    with pytest.raises(UnityEnvironmentException, match="agent_id 999"):
        env.set_action_for_agent(BALL, 999, ActionTuple(continuous=np.zeros((1, 2))))

    grid = BuiltinEnv("GridWorld", seed=0)
    grid.reset()
    with pytest.raises(UnityActionException, match=r"action 5 of agent index 2, branch 0"):
        actions = np.zeros((grid.num_agents, 1), np.int32)
        actions[2, 0] = 5
        grid.set_actions("GridWorld?team=0", ActionTuple(discrete=actions))


def test_native_step_checks_dtype_and_shape_before_moving():
    env = _native.BuiltinVectorEnv("3DBall", 0, 1)
    before = env.reset()
    discrete = np.zeros((12, 0), np.int32)
    with pytest.raises(
        InvalidArgumentError, match="continuous: expected a numpy array of dtype float32"
    ):
        env.step([(np.zeros((12, 2), np.float64), discrete)])
    with pytest.raises(InvalidArgumentError, match=r"continuous: expected shape \(\*, 2\)"):
        env.step([(np.zeros((12, 3), np.float32), discrete)])
    with pytest.raises(InvalidArgumentError, match="expected 12 agents x 2 values"):
        env.step([(np.zeros((11, 2), np.float32), discrete)])
    with pytest.raises(InvalidArgumentError, match="C-contiguous"):
        env.step([(np.zeros((2, 12), np.float32).T, discrete)])
    with pytest.raises(
        InvalidArgumentError, match="discrete: expected a numpy array of dtype int32"
    ):
        env.step([(np.zeros((12, 2), np.float32), [[0]] * 12)])
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        env.step([(np.full((12, 2), np.inf, np.float32), discrete)])
    with pytest.raises(InvalidArgumentError, match="one per behavior"):
        env.step([])
    with pytest.raises(InvalidArgumentError, match="tuples"):
        env.step([[np.zeros((12, 2), np.float32), discrete]])
    after = env.step([(np.zeros((12, 2), np.float32), discrete)])
    # Same agents, nothing ended.
    np.testing.assert_array_equal(before[0]["decision_agent_id"], after[0]["decision_agent_id"])


def test_lifecycle_errors():
    with pytest.raises(UnityEnvironmentException, match="known: 3DBall"):
        BuiltinEnv("3dball")
    with pytest.raises(UnityEnvironmentException, match="num_areas"):
        BuiltinEnv("3DBall", num_areas=0)
    env = BuiltinEnv("3DBall")
    with pytest.raises(UnityEnvironmentException, match="reset"):
        env.get_steps(BALL)
    with pytest.raises(UnityEnvironmentException, match="reset"):
        env.step()
    env.reset()
    env.close()
    with pytest.raises(UnityEnvironmentException, match="closed"):
        env.step()


def test_step_outputs_are_fresh_arrays_owned_by_numpy():
    env = _native.BuiltinVectorEnv("3DBall", 0, 1)
    (first,) = env.reset()
    (second,) = env.step([(np.zeros((12, 2), np.float32), np.zeros((12, 0), np.int32))])
    assert not np.shares_memory(first["decision_obs"][0], second["decision_obs"][0])
    obs = first["decision_obs"][0]
    assert obs.flags.c_contiguous and obs.flags.writeable
