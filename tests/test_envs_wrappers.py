"""envs.envs: ML-Agents' Gym and PettingZoo wrappers on today's Gymnasium and PettingZoo."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="the gym extra is not installed")

from gymnasium.utils.env_checker import check_env
from mlagents_fast.envs.base_env import (
    ActionSpec,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlagents_fast.envs.builtin import BuiltinEnv
from mlagents_fast.envs.envs.unity_gym_env import (
    ActionFlattener,
    UnityGymException,
    UnityToGymWrapper,
)


class BranchedEnv(BaseEnv):
    """One agent, one 2-float observation, actions in branches (3, 2); records actions."""

    def __init__(self, branches=(3, 2), agents=1, behaviors=("B?team=0",)):
        obs = ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "v")
        self.specs = {name: BehaviorSpec([obs], ActionSpec(0, branches)) for name in behaviors}
        self.agents = agents
        self.received = []

    @property
    def behavior_specs(self):
        return self.specs

    def step(self):
        pass

    def reset(self):
        pass

    def close(self):
        pass

    def get_steps(self, behavior_name):
        ids = np.arange(self.agents, dtype=np.int32)
        obs = [np.ones((self.agents, 2), np.float32)]
        zeros = np.zeros(self.agents, np.float32)
        decision = DecisionSteps(obs, zeros, ids, None, np.zeros(self.agents, np.int32), zeros)
        return decision, TerminalSteps.empty(self.specs[behavior_name])

    def set_actions(self, behavior_name, action):
        self.received.append(action.discrete.copy())

    def set_action_for_agent(self, behavior_name, agent_id, action):
        raise NotImplementedError


def goal_seeker(name="GoalSeeker1DDiscrete", **kw):
    return BuiltinEnv(name, seed=2, agents_per_area=1, **kw)


def test_gym_wrapper_plays_an_episode_with_gymnasium_results():
    env = UnityToGymWrapper(goal_seeker(), action_space_seed=3)
    assert env.action_space == gymnasium.spaces.Discrete(3)
    assert env.observation_space.shape == (2,)
    obs, info = env.reset()
    assert isinstance(info["step"], DecisionSteps)
    total, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(2 if obs[1] > obs[0] else 0)
        total += reward
    assert terminated and not truncated and isinstance(info["step"], TerminalSteps)
    assert total == pytest.approx(0.96)
    with pytest.raises(UnityGymException, match="reset"):
        env.step(0)
    env.reset()
    for _ in range(40):  # standing still: interrupted at 40 decisions
        _, _, terminated, truncated, _ = env.step(1)
    assert truncated and not terminated
    env.close()


class WithoutStepInfo(UnityToGymWrapper):
    # The checker compares infos of two seeded runs; info["step"] holds step objects that
    # compare by identity, so it is left out here.
    def _info(self, steps):
        return {}


@pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value is")
def test_gym_wrapper_passes_the_gymnasium_checker():
    check_env(WithoutStepInfo(goal_seeker("GoalSeeker1D")), skip_render_check=True)
    check_env(WithoutStepInfo(goal_seeker()), skip_render_check=True)


def test_gym_wrapper_visual_observations_as_uint8_and_multiple():
    env = UnityToGymWrapper(
        goal_seeker("VisualGridWorld"), uint8_visual=True, allow_multiple_obs=True
    )
    assert env.observation_space == gymnasium.spaces.Tuple(
        [gymnasium.spaces.Box(0, 255, (3, 20, 20), np.uint8)]
    )
    (image,), _ = env.reset()
    assert image.dtype == np.uint8 and image.shape == (3, 20, 20) and image.max() > 1
    np.testing.assert_array_equal(env.render(), image)
    float_env = UnityToGymWrapper(goal_seeker("VisualGridWorld"))
    image, _ = float_env.reset()
    assert image.dtype == np.float32 and image.max() <= 1.0


def test_gym_wrapper_branches_and_flattening():
    branched = UnityToGymWrapper(BranchedEnv())
    assert branched.action_space == gymnasium.spaces.MultiDiscrete([3, 2])
    flat_env = BranchedEnv()
    flat = UnityToGymWrapper(flat_env, flatten_branched=True)
    assert flat.action_space == gymnasium.spaces.Discrete(6)
    flat.reset()
    flat.step(5)
    np.testing.assert_array_equal(flat_env.received[-1], [[2, 1]])
    flattener = ActionFlattener([2, 3])
    assert [flattener.lookup_action(k) for k in range(6)] == [
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 0],
        [1, 1],
        [1, 2],
    ]


def test_gym_wrapper_refusals():
    with pytest.raises(UnityGymException, match="one behavior"):
        UnityToGymWrapper(BranchedEnv(behaviors=("A?team=0", "B?team=0")))
    with pytest.raises(UnityGymException, match="one Agent"):
        UnityToGymWrapper(BranchedEnv(agents=2))
    with pytest.raises(UnityGymException, match="both discrete and continuous"):
        UnityToGymWrapper(goal_seeker("GoalSeeker1DHybrid"))


# --- PettingZoo -------------------------------------------------------------------------

# The checker's advice that does not fit Unity environments: agent names are ML-Agents'
# (<behavior>?agent_id=<id>), observations carry no bounds, and masked behaviors observe a
# dict with the action mask (as PettingZoo's own board games do).
PETTINGZOO_ADVICE = [
    "ignore:We recommend agents to be named",
    "ignore:Agent's (minimum|maximum) observation space value is",
    "ignore:Observation space for each agent probably should be",
    "ignore:Observation is not a NumPy array",
    "ignore:Action space for each agent probably should be",
]


def pettingzoo_test():
    return pytest.importorskip("pettingzoo.test", reason="the pettingzoo extra is not installed")


def pettingzoo_advice_ignored(test):
    for advice in PETTINGZOO_ADVICE:
        test = pytest.mark.filterwarnings(advice)(test)
    return test


@pytest.mark.parametrize(
    "name", ["GoalSeeker1DDiscrete", "GridWorld", "3DBall", "GoalSeeker1DHybrid"]
)
@pettingzoo_advice_ignored
def test_aec_and_parallel_wrappers_pass_pettingzoo_api_tests(name):
    test = pettingzoo_test()
    from mlagents_fast.envs.envs.unity_aec_env import UnityAECEnv
    from mlagents_fast.envs.envs.unity_parallel_env import UnityParallelEnv

    test.api_test(UnityAECEnv(BuiltinEnv(name, seed=0, num_areas=2, agents_per_area=1), 1))
    test.parallel_api_test(
        UnityParallelEnv(BuiltinEnv(name, seed=0, num_areas=2, agents_per_area=1), 1),
        num_cycles=300,
    )


def test_parallel_agents_finish_once_with_their_terminal_reward():
    pettingzoo_test()
    from mlagents_fast.envs.envs.unity_parallel_env import UnityParallelEnv

    env = UnityParallelEnv(BuiltinEnv("3DBall", seed=5), seed=0)  # 12 agents in one area
    _, infos = env.reset()
    assert len(env.agents) == 12 and env.agents == env.possible_agents
    assert env.agents[0].startswith("3DBall?team=0?agent_id=")
    assert infos[env.agents[0]]["behavior_name"] == "3DBall?team=0"
    finished = {}
    for _ in range(100):
        actions = {agent: np.full(2, 0.8, np.float32) for agent in env.agents}
        playing = set(env.agents)
        _, rewards, terminated, truncated, _ = env.step(actions)
        # Built-in environments give a new episode a new agent id: it joins.
        joined = set(rewards) - playing
        assert joined <= set(env.agents) and joined <= set(env.possible_agents)
        for agent in playing:
            if terminated[agent] or truncated[agent]:
                assert agent not in env.agents and agent not in finished
                finished[agent] = rewards[agent]
            else:
                assert rewards[agent] == pytest.approx(0.1)  # 3DBall: +0.1 per decision
        assert not set(env.agents) & set(finished)
    assert len(finished) >= 12
    assert all(reward == pytest.approx(-1.0) for reward in finished.values())  # ball dropped


class RestartingEnv(BranchedEnv):
    """Unity's way: agent 0 ends its episode at step 2 and asks for a decision in its next
    episode under the same id; agent 1 plays on."""

    def __init__(self):
        super().__init__(branches=(2,), agents=2)
        self.steps = 0

    def reset(self):
        self.steps = 0

    def step(self):
        self.steps += 1

    def get_steps(self, behavior_name):
        decision, _ = super().get_steps(behavior_name)
        if self.steps != 2:
            return decision, TerminalSteps.empty(self.specs[behavior_name])
        obs = [np.full((1, 2), 7.0, np.float32)]
        one = np.ones(1, np.float32)
        terminal = TerminalSteps(
            obs, one, np.zeros(1, bool), np.zeros(1, np.int32), np.zeros(1, np.int32), one
        )
        return decision, terminal


def test_an_agent_that_restarts_under_its_id_stays_out_until_reset():
    pettingzoo_test()
    from mlagents_fast.envs.envs.unity_parallel_env import UnityParallelEnv

    base = RestartingEnv()
    env = UnityParallelEnv(base)
    env.reset()
    first, second = "B?team=0?agent_id=0", "B?team=0?agent_id=1"
    assert env.agents == [first, second]
    env.step({first: 1, second: 1})
    obs, rewards, terminated, _, _ = env.step({first: 1, second: 1})
    assert terminated == {first: True, second: False} and rewards[first] == 1.0
    assert obs[first]["observation"][0] == 7.0  # its final observation
    assert env.agents == [second]
    obs, rewards, _, _, _ = env.step({second: 1})
    assert set(rewards) == {second}
    np.testing.assert_array_equal(base.received[-1], [[0], [1]])  # zero action for agent 0
    env.reset()
    assert env.agents == [first, second]


def test_action_masks_follow_pettingzoo_convention():
    pettingzoo_test()
    from mlagents_fast.envs.envs.unity_parallel_env import UnityParallelEnv

    base = BuiltinEnv("GridWorld", seed=3, agents_per_area=1, num_areas=4)
    env = UnityParallelEnv(base, seed=0)
    obs, _ = env.reset()
    decision, _ = base.get_steps("GridWorld?team=0")
    for row, agent_id in enumerate(decision.agent_id):
        agent = f"GridWorld?team=0?agent_id={agent_id}"
        mask = obs[agent]["action_mask"]
        assert mask.dtype == np.int8 and mask.shape == (5,)
        np.testing.assert_array_equal(mask, 1 - decision.action_mask[0][row])
        assert env.observation_space(agent).contains(obs[agent])
        action = env.action_space(agent).sample(mask=mask)
        assert mask[action] == 1


def test_pettingzoo_factory_makes_built_ins_from_the_registry():
    pettingzoo_test()
    from mlagents_fast.envs.envs import ThreeDBall
    from mlagents_fast.envs.envs.unity_aec_env import UnityAECEnv

    env = ThreeDBall.env(seed=4)
    try:
        assert isinstance(env, UnityAECEnv)
        env.reset()
        assert len(env.agents) == 12
        assert set(env.side_channel) >= {"EngineConfigurationChannel", "StatsSideChannel"}
        obs, reward, terminated, truncated, info = env.last()
        assert obs.shape == (8,) and reward == 0.0 and not (terminated or truncated)
        assert info["behavior_name"] == "3DBall?team=0"
    finally:
        env.close()
