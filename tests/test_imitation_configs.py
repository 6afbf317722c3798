"""ML-Agents' four imitation configs (config/imitation/) load and train.

Each config's ``demo_path`` (GAIL and behavioral cloning) is pointed at the matching
Unity-recorded expert in tests/fixtures/demos (Hallway, PushBlock, Pyramids). The trainer's
optimizer is built from the config as it is (GAIL discriminator, BC module, curiosity,
recurrent Hallway), then a short training run on a small fake BaseEnv with the demo's
behavior spec makes a few updates. ML-Agents ships no Crawler demonstration: for Crawler a
demo is recorded here (random actions) on a fake env of Crawler's documented spec (172
observations, 20 continuous actions), which checks loading and training, not imitation.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from mlagents_fast.envs.base_env import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorMapping,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlagents_fast.envs.demo_policies import RandomPolicy
from mlagents_fast.envs.demo_writer import record_demonstration
from mlagents_fast.trainers.demo_loader import load_demonstration
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RewardSignalType, RunOptions
from mlagents_fast.trainers.settings.config_file import load_config
from mlagents_fast.trainers.torch_entities.components.bc import BCModule
from mlagents_fast.trainers.torch_entities.components.reward_providers import (
    GAILRewardProvider,
)
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import single_thread_torch, tensorboard_event_bytes
from repo_paths import CONFIG_DIR, FIXTURES

single_thread_torch()

DEMOS = os.path.join(FIXTURES, "demos")
EXPERT_DEMOS = {
    "Hallway": "ExpertHallway.demo",
    "PushBlock": "ExpertPushBlock.demo",
    "Pyramids": "ExpertPyramid.demo",
}
CRAWLER_SPEC = BehaviorSpec(
    [
        ObservationSpec(
            (172,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "VectorSensor_size172"
        )
    ],
    ActionSpec.create_continuous(20),
)


class SpecEnv(BaseEnv):
    """Agents of one behavior with random observations of ``spec``: +0.01 per step, episodes
    of ``episode_length`` steps. Enough to drive a trainer through its updates."""

    def __init__(
        self,
        name: str,
        spec: BehaviorSpec,
        num_agents: int = 2,
        seed: int = 0,
        episode_length: int = 30,
    ) -> None:
        self._name, self._spec = name, spec
        self._rng = np.random.default_rng(seed)
        self._num_agents, self._episode_length = num_agents, episode_length
        self.reset()

    @property
    def behavior_specs(self) -> BehaviorMapping:
        return BehaviorMapping({self._name: self._spec})

    def _obs(self, n: int) -> list[np.ndarray]:
        return [
            self._rng.normal(0, 1, (n, *o.shape)).astype(np.float32)
            for o in self._spec.observation_specs
        ]

    def reset(self) -> None:
        self._steps = 0
        self._ended = False

    def step(self) -> None:
        self._steps += 1
        self._ended = self._steps % self._episode_length == 0

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        pass

    def set_action_for_agent(self, behavior_name, agent_id, action) -> None:
        pass

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        n = self._num_agents
        ids = np.arange(n, dtype=np.int32)
        reward = np.full(n, 0.01, np.float32)
        zeros_i, zeros_f = np.zeros(n, np.int32), np.zeros(n, np.float32)
        mask = None
        if self._spec.action_spec.discrete_size:
            mask = [np.zeros((n, b), bool) for b in self._spec.action_spec.discrete_branches]
        decision = DecisionSteps(self._obs(n), reward, ids, mask, zeros_i, zeros_f)
        if self._ended:
            terminal = TerminalSteps(self._obs(n), reward, np.zeros(n, bool), ids, zeros_i, zeros_f)
            self._ended = False
        else:
            terminal = TerminalSteps.empty(self._spec)
        return decision, terminal

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def crawler_demo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("crawler") / "Crawler.demo"
    env = SpecEnv("Crawler?team=0", CRAWLER_SPEC, seed=7)
    record_demonstration(env, RandomPolicy(CRAWLER_SPEC, 7), str(path), 300)
    return str(path)


def config_with_demo(name: str, demo: str):
    """The config's RunOptions and behavior settings, demo_path pointed at ``demo``."""
    options = RunOptions.from_dict(
        load_config(os.path.join(CONFIG_DIR, "imitation", f"{name}.yaml"))
    )
    settings = options.behaviors[name]
    settings.reward_signals[RewardSignalType.GAIL].demo_path = demo
    if settings.behavioral_cloning is not None:
        settings.behavioral_cloning.demo_path = demo
    return options, settings


@pytest.mark.parametrize("name", ["Crawler", "Hallway", "PushBlock", "Pyramids"])
def test_imitation_config_builds_and_trains(tmp_path, crawler_demo, name):
    demo = crawler_demo if name == "Crawler" else os.path.join(DEMOS, EXPERT_DEMOS[name])
    spec, _, _ = load_demonstration(demo)
    options, settings = config_with_demo(name, demo)

    # The optimizer of the config as written: discriminator, BC module, other signals.
    policy = TorchPolicy(
        0,
        spec,
        settings.network_settings,
        SimpleActor,
        {"conditional_sigma": False, "tanh_squash": False},
    )
    optimizer = TorchPPOOptimizer(policy, settings)
    gail = optimizer.reward_signals["gail"]
    assert isinstance(gail, GAILRewardProvider)
    assert gail.strength == settings.reward_signals[RewardSignalType.GAIL].strength
    assert "Module:GAIL" in optimizer.get_modules()
    assert isinstance(optimizer.bc_module, BCModule) == (settings.behavioral_cloning is not None)
    if name == "Hallway":
        assert policy.use_recurrent and policy.sequence_length == 64

    # A short run: small buffers so a few updates happen in a few hundred steps.
    sequence = policy.sequence_length
    settings.hyperparameters.batch_size = max(32, sequence)
    settings.hyperparameters.buffer_size = 2 * settings.hyperparameters.batch_size
    settings.time_horizon = min(settings.time_horizon, 64)
    settings.max_steps = 3 * settings.hyperparameters.buffer_size
    settings.summary_freq = settings.max_steps
    settings.checkpoint_interval = settings.max_steps
    env = SpecEnv(f"{name}?team=0", spec, seed=1)
    result = train(env, options, run_id=name, results_dir=str(tmp_path), seed=1)
    assert result.steps[name] >= settings.max_steps
    behavior_dir = tmp_path / name / name
    data = tensorboard_event_bytes(behavior_dir)
    assert b"Losses/GAIL Loss" in data
    assert (b"Losses/Pretraining Loss" in data) == (settings.behavioral_cloning is not None)
    assert (tmp_path / name / f"{name}.onnx").is_file()
