"""Recording demonstrations (envs.demo_writer, envs.demo_policies, envs.builtin.experts).

Demos recorded from built-in environments must read back through our loader with every
record as recorded: the observation the policy saw paired with the action it chose, episodes
contiguous, terminal steps with a zero action, interrupted episodes marked. (That ML-Agents
1.1.0 reads them identically is tests/test_demo_mlagents.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from mlagents_fast.envs.base_env import ActionTuple, DecisionSteps
from mlagents_fast.envs.builtin.experts import EXPERTS, expert_for
from mlagents_fast.envs.demo_policies import OnnxPolicy, RandomPolicy, policy_from_argument
from mlagents_fast.envs.demo_writer import DemonstrationWriter, record_demonstration
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.demo_loader import demo_to_buffer, load_demonstration
from mlagents_fast.trainers.model_saver.torch_model_saver import save_checkpoint_file
from mlagents_fast.trainers.policy.checkpoint_policy import CheckpointPolicy
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.torch_entities.model_serialization import ModelSerializer
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import network_settings, single_thread_torch

single_thread_torch()


def record(tmp_path, env_name: str, steps: int, policy=None, seed: int = 3, name="demo.demo"):
    env = make_env(f"builtin:{env_name}", seed=seed)
    try:
        summary = record_demonstration(
            env, policy or expert_for(env_name), str(tmp_path / name), steps
        )
    finally:
        env.close()
    return summary


def steps_of(record) -> DecisionSteps:
    """A one-agent DecisionSteps of a record (as the policy saw it)."""
    obs = []
    for o in record.agent_info.observations:
        obs.append(np.asarray(o.float_data.data, np.float32).reshape((1, *o.shape)))
    zeros = np.zeros(1, np.float32)
    return DecisionSteps(obs, zeros, np.zeros(1, np.int32), None, np.zeros(1, np.int32), zeros)


@pytest.mark.parametrize("env_name", sorted(EXPERTS))
def test_expert_demo_pairs_each_observation_with_the_action_taken(tmp_path, env_name):
    summary = record(tmp_path, env_name, 240)
    spec, records, total = load_demonstration(summary.path)
    env = make_env(f"builtin:{env_name}", seed=0)
    ((_, env_spec),) = env.behavior_specs.items()
    env.close()
    assert [o.shape for o in spec.observation_specs] == [
        o.shape for o in env_spec.observation_specs
    ]
    assert spec.action_spec == env_spec.action_spec
    assert len(records) == total == summary.number_steps == 240
    expert = expert_for(env_name)
    episode_agent = None
    for record_ in records:
        info, action = record_.agent_info, record_.action_info
        # Episodes are contiguous: one agent per run of records up to its done.
        if episode_agent is not None:
            assert info.id == episode_agent
        episode_agent = None if info.done else info.id
        zero_action = not any(action.continuous_actions) and not any(action.discrete_actions)
        if info.done and not info.max_step_reached:
            assert zero_action  # the agent does not act after its last step
            continue
        if info.done and zero_action:
            continue  # an episode the environment cut at its maximum step
        # A decision, or the last recorded decision of an episode the recording cut.
        chosen = expert(steps_of(record_))
        if spec.action_spec.continuous_size:
            np.testing.assert_allclose(action.continuous_actions, chosen.continuous[0], rtol=1e-6)
        if spec.action_spec.discrete_size:
            assert list(action.discrete_actions) == chosen.discrete[0].tolist()
    assert records[-1].agent_info.done  # the last episode is closed (interrupted)
    assert summary.number_episodes == sum(r.agent_info.done for r in records)


def test_grid_world_expert_reaches_goals_and_records_masks(tmp_path):
    summary = record(tmp_path, "GridWorld", 400)
    _, records, _ = load_demonstration(summary.path)
    finished = [r for r in records if r.agent_info.done and not r.agent_info.max_step_reached]
    assert len(finished) > 40
    assert all(r.agent_info.reward == pytest.approx(1.0) for r in finished)  # never the pit
    masked = [r for r in records if not r.agent_info.done and len(r.agent_info.action_mask)]
    assert masked and all(len(r.agent_info.action_mask) == 5 for r in masked)
    assert summary.mean_reward > 0.8  # interrupted episodes count too


def test_running_episodes_are_closed_as_interrupted_at_the_step_budget(tmp_path):
    summary = record(tmp_path, "3DBall", 120)  # 12 agents, no episode ends in 10 decisions
    _, records, _ = load_demonstration(summary.path)
    assert len(records) == 120
    ends = [r for r in records if r.agent_info.done]
    assert len(ends) == 12 == summary.number_episodes
    assert all(r.agent_info.max_step_reached for r in ends)
    assert [r.agent_info.id for r in ends] == sorted(r.agent_info.id for r in ends)
    _, buffer = demo_to_buffer(summary.path, 1)
    assert buffer.num_experiences == 119


def test_random_policy_is_seeded_and_valid(tmp_path):
    env = make_env("builtin:GoalSeeker1DHybrid", seed=0)
    ((_, spec),) = env.behavior_specs.items()
    env.reset()
    decision, _ = env.get_steps(next(iter(env.behavior_specs)))
    env.close()
    first, second = RandomPolicy(spec, 5)(decision), RandomPolicy(spec, 5)(decision)
    np.testing.assert_array_equal(first.continuous, second.continuous)
    assert first.discrete.min() >= 0 and first.discrete.max() < 3
    assert np.abs(first.continuous).max() <= 1.0


def _torch_deterministic(policy: TorchPolicy, steps: DecisionSteps) -> ActionTuple:
    with torch.no_grad():
        action, _, _ = policy.actor.get_action_and_stats(
            [torch.from_numpy(o) for o in steps.obs],
            masks=policy._extract_masks(steps),
            memories=torch.zeros(1, len(steps), policy.m_size) if policy.use_recurrent else None,
        )
    return action.to_action_tuple(clip=policy.actor.action_model.clip_action)


def _grid_steps(n: int = 9) -> tuple:
    env = make_env("builtin:GridWorld", seed=1)
    ((behavior, spec),) = env.behavior_specs.items()
    env.reset()
    decision, _ = env.get_steps(behavior)
    env.close()
    return behavior, spec, decision


def test_onnx_policy_acts_as_the_exported_torch_policy(tmp_path):
    torch.manual_seed(0)
    behavior, spec, decision = _grid_steps()
    policy = TorchPolicy(
        0,
        spec,
        network_settings(deterministic=True),
        SimpleActor,
        {"conditional_sigma": False, "tanh_squash": False},
    )
    ModelSerializer(policy).export_policy_model(str(tmp_path / "grid"))
    onnx_policy = policy_from_argument(str(tmp_path / "grid.onnx"), behavior, spec)
    assert isinstance(onnx_policy, OnnxPolicy)
    actions = onnx_policy(decision)
    np.testing.assert_array_equal(actions.discrete, _torch_deterministic(policy, decision).discrete)
    # Masked moves are never taken.
    masked = np.concatenate(decision.action_mask, axis=1)
    assert not masked[np.arange(len(decision)), actions.discrete[:, 0]].any()


def test_recurrent_onnx_policy_keeps_memories_per_agent(tmp_path):
    torch.manual_seed(1)
    env = make_env("builtin:GoalSeeker1D", seed=1)
    ((_, spec),) = env.behavior_specs.items()
    policy = TorchPolicy(
        0,
        spec,
        network_settings(memory=(4, 8)),
        SimpleActor,
        {"conditional_sigma": False, "tanh_squash": False},
    )
    ModelSerializer(policy).export_policy_model(str(tmp_path / "lstm"))
    onnx_policy = OnnxPolicy(str(tmp_path / "lstm.onnx"), spec)
    summary = record_demonstration(env, onnx_policy, str(tmp_path / "lstm.demo"), 100)
    env.close()
    assert summary.number_steps == 100
    assert onnx_policy._memories and all(m.shape == (1, 8) for m in onnx_policy._memories.values())
    onnx_policy.episode_ended(list(onnx_policy._memories))
    assert not onnx_policy._memories


def test_checkpoint_policy_rebuilds_the_network_from_the_run_config(tmp_path):
    torch.manual_seed(2)
    behavior, spec, decision = _grid_steps()
    settings = network_settings(hidden_units=24, num_layers=1, deterministic=True)
    policy = TorchPolicy(
        0, spec, settings, SimpleActor, {"conditional_sigma": False, "tanh_squash": False}
    )
    run = tmp_path / "results" / "run"
    save_checkpoint_file(
        str(run / "GridWorld" / "checkpoint.pt"),
        {name: module.state_dict() for name, module in policy.get_modules().items()},
        behavior,
        100,
    )
    config = {
        "behaviors": {
            "GridWorld": {
                "trainer_type": "ppo",
                "network_settings": {"hidden_units": 24, "num_layers": 1, "normalize": False},
            }
        }
    }
    (run / "configuration.yaml").write_text(yaml.safe_dump(config))
    rebuilt = policy_from_argument(
        str(run / "GridWorld" / "checkpoint.pt"), behavior, spec, checkpoint_policy=CheckpointPolicy
    )
    assert isinstance(rebuilt, CheckpointPolicy)
    np.testing.assert_array_equal(
        rebuilt(decision).discrete, _torch_deterministic(policy, decision).discrete
    )
    (run / "configuration.yaml").unlink()
    with pytest.raises(InvalidArgumentError, match="configuration.yaml"):
        CheckpointPolicy(str(run / "GridWorld" / "checkpoint.pt"), behavior, spec)


def test_policy_argument_errors():
    behavior, spec, _ = _grid_steps()
    with pytest.raises(InvalidArgumentError, match="built-in environments only"):
        policy_from_argument("expert", behavior, spec, env="gym:CartPole-v1")
    with pytest.raises(InvalidArgumentError, match="no scripted expert"):
        policy_from_argument("expert", behavior, spec, env="builtin:MemoryCorridor")
    with pytest.raises(InvalidArgumentError, match="existing .onnx or .pt"):
        policy_from_argument("missing.onnx", behavior, spec)
    assert policy_from_argument("python:numpy:zeros_like", behavior, spec) is np.zeros_like


def test_writer_checks_arrays_and_leaves_nothing_on_error(tmp_path):
    _, spec, decision = _grid_steps()
    path = tmp_path / "broken.demo"
    with (
        pytest.raises(InvalidArgumentError, match=r"observations\[0\]: expected shape"),
        DemonstrationWriter(path, "GridWorld?team=0", spec) as writer,
    ):
        writer.write_steps(
            [np.zeros((2, 7), np.float32)], np.zeros(2), np.zeros(2, bool), np.arange(2)
        )
    assert os.listdir(tmp_path) == []
    with DemonstrationWriter(path, "GridWorld?team=0", spec, "a demonstration name too long") as w:
        w.write_steps(
            list(decision.obs),
            decision.reward,
            np.zeros(len(decision), bool),
            decision.agent_id,
            discrete_actions=np.ones((len(decision), 1), np.int32),
        )
    _, records, total = load_demonstration(str(path))
    assert records.metas[0]["demonstration_name"] == "a demonstration "
    assert total == len(decision)
    assert [r.action_info.discrete_actions[0] for r in records] == [1] * len(decision)


@pytest.mark.smoke
def test_record_demo_command_line(tmp_path):
    path = tmp_path / "ball.demo"
    command = [
        sys.executable,
        "-m",
        "mlagents_fast.envs.cli",
        "--record-demo",
        str(path),
        "--policy",
        "expert",
        "builtin:3DBall",
        "--steps",
        "60",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"wrote {path}: 60 steps" in done.stdout
    assert len(load_demonstration(str(path))[1]) == 60
    bad = subprocess.run(
        [*command[:7], "builtin:MemoryCorridor", "--steps", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "no scripted expert" in bad.stderr
    assert not (tmp_path / "ball.demo.tmp").exists()
