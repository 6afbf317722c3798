"""Every module path of ML-Agents 1.1.0 imports here with only the prefix changed.

``mlagents.trainers.X`` -> ``mlagents_fast.trainers.X`` and ``mlagents_envs.X`` ->
``mlagents_fast.envs.X`` (the list: tests/fixtures/mlagents-1.1.0-modules.txt), all 132 of
them. The other tests here exercise names that user code imports from those paths.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from repo_paths import FIXTURES

MODULE_LIST = Path(FIXTURES) / "mlagents-1.1.0-modules.txt"


def ml_agents_modules() -> list[str]:
    lines = MODULE_LIST.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def our_path(module: str) -> str:
    if module.startswith("mlagents.trainers"):
        return "mlagents_fast.trainers" + module[len("mlagents.trainers") :]
    assert module.startswith("mlagents_envs"), module
    return "mlagents_fast.envs" + module[len("mlagents_envs") :]


def test_the_module_list_is_ml_agents_1_1_0s():
    modules = ml_agents_modules()
    assert len(modules) == 132 and len(set(modules)) == len(modules)


@pytest.mark.parametrize("module", ml_agents_modules(), ids=our_path)
def test_ml_agents_module_path_imports(module):
    importlib.import_module(our_path(module))


# --- names user code imports from those paths ----------------------------------------------


def test_trainer_factory_from_the_trainer_package_builds_trainers(tmp_path):
    from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
    from mlagents_fast.trainers.environment_parameter_manager import EnvironmentParameterManager
    from mlagents_fast.trainers.ppo.trainer import PPOTrainer
    from mlagents_fast.trainers.settings import RunOptions
    from mlagents_fast.trainers.trainer import Trainer, TrainerFactory

    options = RunOptions.from_dict({"behaviors": {"Ball": {"trainer_type": "ppo"}}})
    factory = TrainerFactory(
        trainer_config=options.behaviors,
        output_path=str(tmp_path),
        train_model=True,
        load_model=False,
        seed=0,
        param_manager=EnvironmentParameterManager(),
    )
    trainer = factory.generate(BehaviorIdentifiers.from_name_behavior_id("Ball?team=0").brain_name)
    assert isinstance(trainer, PPOTrainer) and isinstance(trainer, Trainer)


def test_hyperparameter_classes_at_the_trainer_and_optimizer_paths():
    from mlagents_fast.trainers.ppo.optimizer_torch import PPOSettings as PPOBesideOptimizer
    from mlagents_fast.trainers.ppo.trainer import PPOSettings
    from mlagents_fast.trainers.sac.optimizer_torch import SACSettings as SACBesideOptimizer
    from mlagents_fast.trainers.sac.trainer import SACSettings
    from mlagents_fast.trainers.settings import RunOptions

    assert PPOSettings is PPOBesideOptimizer and SACSettings is SACBesideOptimizer
    options = RunOptions.from_dict(
        {
            "behaviors": {
                "A": {"trainer_type": "ppo", "hyperparameters": {"epsilon": 0.3}},
                "B": {"trainer_type": "sac", "hyperparameters": {"tau": 0.01}},
            }
        }
    )
    assert isinstance(options.behaviors["A"].hyperparameters, PPOSettings)
    assert options.behaviors["A"].hyperparameters.epsilon == 0.3
    assert isinstance(options.behaviors["B"].hyperparameters, SACSettings)
    assert SACSettings(tau=0.01) == options.behaviors["B"].hyperparameters


def test_logging_util_loggers_share_level_and_format(capsys):
    from mlagents_fast.envs import logging_util

    logger = logging_util.get_logger("compat.test.logging_util")
    assert logging_util.get_logger("compat.test.logging_util") is logger
    assert len(logger.handlers) == 1  # asking again adds no second handler
    try:
        logging_util.set_log_level(logging_util.WARNING)
        logger.info("hidden")
        logger.warning("shown")
        assert capsys.readouterr().out == "[WARNING] shown\n"
        logging_util.set_log_level(logging_util.DEBUG)
        logger.debug("detail")
        line = capsys.readouterr().out
        assert "DEBUG [test_mlagents_module_paths.py:" in line and line.endswith("detail\n")
    finally:
        logging_util.set_log_level(logging_util.INFO)
        logger.handlers.clear()


def test_timers_at_the_envs_path_share_the_run_timer_tree():
    from mlagents_fast.envs import timers
    from mlagents_fast.trainers import timers as trainer_timers

    timers.reset_timers()

    @timers.timed
    def decode():
        return 1

    with timers.hierarchical_timer("exchange"):
        decode()
    timers.set_gauge("queue", 3.0)
    tree = trainer_timers.get_timer_tree()
    (timed_name,) = tree["children"]["exchange"]["children"]  # named by its __qualname__
    assert timed_name.endswith("decode")
    assert tree["children"]["exchange"]["children"][timed_name]["count"] == 1
    assert tree["gauges"]["queue"]["value"] == 3.0
    timers.reset_timers()


def short_goal_seeker_run(run_id, results_dir):
    """A whole RunOptions dict: a few PPO steps on builtin:GoalSeeker1D."""
    return {
        "behaviors": {
            "GoalSeeker1D": {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 32, "buffer_size": 64},
                "network_settings": {"hidden_units": 8, "num_layers": 1},
                "max_steps": 64,
                "summary_freq": 32,
                "time_horizon": 8,
            }
        },
        "env_settings": {"env_path": "builtin:GoalSeeker1D", "seed": 1},
        "checkpoint_settings": {"run_id": run_id, "results_dir": str(results_dir)},
    }


def test_learn_create_environment_factory_and_run_training(tmp_path):
    from mlagents_fast.envs.side_channel import EnvironmentParametersChannel
    from mlagents_fast.trainers.learn import create_environment_factory, run_training
    from mlagents_fast.trainers.settings import RunOptions

    factory = create_environment_factory(
        "builtin:GoalSeeker1D", True, False, 7, 2, 60, None, [], str(tmp_path)
    )
    env = factory(1, [EnvironmentParametersChannel()])  # ML-Agents' call
    env.reset()
    (behavior,) = env.behavior_specs
    assert len(env.get_steps(behavior)[0]) == 2 * 16  # num_areas=2
    env.close()

    options = RunOptions.from_dict(short_goal_seeker_run("learn", tmp_path))
    try:
        run_training(3, options, 1)
    finally:
        logging.getLogger("mlagents_fast").handlers.clear()
    run_dir = tmp_path / "learn"
    assert (run_dir / "GoalSeeker1D.onnx").exists()
    status = json.loads((run_dir / "run_logs" / "training_status.json").read_text())
    assert "GoalSeeker1D" in status


def test_training_analytics_messages_hide_user_names():
    from google.protobuf.any_pb2 import Any as AnyProto
    from mlagents_fast.envs.communicator_objects.training_analytics_pb2 import (
        TrainingBehaviorInitialized,
        TrainingEnvironmentInitialized,
    )
    from mlagents_fast.trainers.settings import RunOptions
    from mlagents_fast.trainers.training_analytics_side_channel import (
        TrainingAnalyticsSideChannel,
    )

    options = RunOptions.from_dict(
        {
            "behaviors": {
                "SecretWalker": {
                    "trainer_type": "sac",
                    "reward_signals": {"curiosity": {"strength": 0.1}},
                    "network_settings": {"memory": {"memory_size": 32}},
                }
            },
            "env_settings": {"env_path": "builtin:3DBall", "num_envs": 3},
            "environment_parameters": {
                "secret_height": {
                    "curriculum": [
                        {
                            "name": "SecretLesson",
                            "completion_criteria": {
                                "measure": "progress",
                                "behavior": "SecretWalker",
                                "threshold": 0.5,
                            },
                            "value": 1.0,
                        },
                        {"name": "Last", "value": 2.0},
                    ]
                }
            },
        }
    )
    channel = TrainingAnalyticsSideChannel()
    channel.environment_initialized(options)
    channel.training_started("SecretWalker", options.behaviors["SecretWalker"])
    sent = [AnyProto.FromString(bytes(payload)) for payload in channel.message_queue]
    environment = TrainingEnvironmentInitialized()
    assert sent[0].Unpack(environment)
    assert environment.num_envs == 3 and environment.num_environment_parameters == 1
    assert "Secret" not in environment.run_options
    assert json.loads(environment.run_options)["env_settings"]["num_envs"] == 3
    behavior = TrainingBehaviorInitialized()
    assert sent[1].Unpack(behavior)
    assert behavior.trainer_type == "sac" and behavior.curiosity_reward_enabled
    assert behavior.recurrent_enabled and behavior.curriculum_enabled
    assert not behavior.gail_reward_enabled and "Secret" not in behavior.behavior_name


def test_action_flattener_one_hot_after_continuous():
    from mlagents_fast.envs.base_env import ActionSpec
    from mlagents_fast.trainers.torch_entities.action_flattener import ActionFlattener
    from mlagents_fast.trainers.torch_entities.agent_action import AgentAction

    flattener = ActionFlattener(ActionSpec(1, (3, 2)))
    assert flattener.flattened_size == 6
    action = AgentAction(
        torch.tensor([[0.5], [-1.0]]), [torch.tensor([2, 0]), torch.tensor([1, 1])]
    )
    expected = [[0.5, 0, 0, 1, 0, 1], [-1.0, 1, 0, 0, 0, 1]]
    np.testing.assert_allclose(flattener.forward(action).numpy(), expected)


def test_unity_environment_over_a_mock_communicator():
    from mlagents_fast.envs.base_env import ActionTuple
    from mlagents_fast.envs.environment import UnityEnvironment
    from mlagents_fast.envs.mock_communicator import MockCommunicator

    communicator = MockCommunicator(discrete_action=True, visual_inputs=1, num_agents=3)

    class FakeUnity(UnityEnvironment):
        def _get_communicator(self, worker_id, base_port, timeout_wait):
            return communicator

    env = FakeUnity(file_name=None, base_port=1)
    try:
        spec = env.behavior_specs["RealFakeBrain"]
        assert spec.action_spec.discrete_branches == (3, 2)
        assert [o.shape for o in spec.observation_specs] == [(3, 30, 40), (3,)]
        env.reset()
        decision, terminal = env.get_steps("RealFakeBrain")
        np.testing.assert_array_equal(decision.agent_id, [0, 1])
        np.testing.assert_array_equal(terminal.agent_id, [2])
        np.testing.assert_array_equal(decision.obs[1], [[1, 2, 3], [1, 2, 3]])
        env.set_actions("RealFakeBrain", ActionTuple(discrete=np.array([[2, 1], [0, 1]], np.int32)))
        env.step()
        sent = communicator.received[-1].rl_input.agent_actions["RealFakeBrain"].value
        assert [list(a.discrete_actions) for a in sent] == [[2, 1], [0, 1]]
    finally:
        env.close()
    assert communicator.has_been_closed


def test_pettingzoo_agent_names():
    from mlagents_fast.envs.envs.env_helpers import (
        _agent_id_to_behavior,
        _behavior_to_agent_id,
        _parse_behavior,
    )

    agent = _behavior_to_agent_id("Striker?team=1", 7)
    assert agent == "Striker?team=1?agent_id=7"
    assert _agent_id_to_behavior(agent) == "Striker?team=1"
    assert _parse_behavior("Striker?team=1") == ("Striker", 1)
    assert _parse_behavior("Walker") == ("Walker", 0)


@pytest.mark.smoke
def test_run_experiment_trains_from_one_run_options_file(tmp_path):
    config = short_goal_seeker_run("experiment", tmp_path)
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = subprocess.run(
        [sys.executable, "-m", "mlagents_fast.trainers.run_experiment", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "experiment" / "GoalSeeker1D.onnx").exists()
    path.write_text(yaml.safe_dump({"behaviors": {"X": {"trainer_type": "ppo", "bogus": 1}}}))
    bad = subprocess.run(
        [sys.executable, "-m", "mlagents_fast.trainers.run_experiment", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "bogus" in bad.stderr and "Traceback" not in bad.stderr
