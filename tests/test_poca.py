"""The POCA trainer end to end on a pure-Python cooperative env (groups of 3, one agent
leaving mid-episode): results layout, the exported policy in onnxruntime, checkpoints with
the centralized critic, resume, memory, group rewards, and group columns of changing width."""

from __future__ import annotations

import os

import attrs
import numpy as np
import onnxruntime as ort
import pytest
import torch
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.model_saver.torch_model_saver import load_checkpoint_file
from mlagents_fast.trainers.poca.trainer import POCATrainer
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions, TrainerSettings
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.trajectory import ColumnarTrajectory, group_width
from multiagent_fixtures import coop_env, ragged_trajectory
from policy_fixtures import behavior_spec, network_settings, single_thread_torch, vector_spec

single_thread_torch()


def poca_options(max_steps: int = 300, memory: bool = False) -> RunOptions:
    behavior = {
        "trainer_type": "poca",
        "hyperparameters": {
            "batch_size": 32,
            "buffer_size": 96,
            "num_epoch": 2,
            "learning_rate": 3e-3,
        },
        "network_settings": {"hidden_units": 16, "num_layers": 1},
        "max_steps": max_steps,
        "time_horizon": 8,
        "summary_freq": 100,
        "checkpoint_interval": 150,
    }
    if memory:
        behavior["network_settings"]["memory"] = {"sequence_length": 4, "memory_size": 8}
    return RunOptions.from_dict({"behaviors": {"Coop": behavior}})


@pytest.fixture(autouse=True)
def _clean_reporter():
    StatsReporter.reset()
    yield
    StatsReporter.reset()


def test_poca_trains_exports_its_policy_and_resumes(tmp_path):
    result = train(coop_env(seed=1), poca_options(), run_id="coop", results_dir=tmp_path, seed=2)
    assert result.steps["Coop"] >= 300
    behavior_dir = tmp_path / "coop" / "Coop"
    checkpoint = load_checkpoint_file(str(behavior_dir / "checkpoint.pt"))
    assert {"Policy", "Optimizer:adam", "Optimizer:critic", "global_step"} <= set(checkpoint)
    critic = checkpoint["Optimizer:critic"]
    # ML-Agents' module names for the centralized critic.
    for name in (
        "network_body.obs_encoder.self_ent_encoder.seq_layers.0.weight",
        "network_body.obs_action_encoder.self_ent_encoder.seq_layers.0.weight",
        "network_body.self_attn.fc_q.weight",
        "network_body.linear_encoder.seq_layers.0.weight",
        "network_body._current_max_agents",
        "value_heads.value_heads.extrinsic.weight",
    ):
        assert name in critic, name
    assert float(critic["network_body._current_max_agents"]) == 3.0  # groups of 3
    assert critic["value_heads.value_heads.extrinsic.weight"].shape == (1, 17)

    # The actor is a normal policy: ONNX with one observation and two masked branches.
    session = ort.InferenceSession(str(tmp_path / "coop" / "Coop.onnx"))
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert inputs == {"obs_0": ["batch", 4], "action_masks": ["batch", 5]}
    obs = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    masks = np.ones((6, 5), np.float32)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"obs_0": obs, "action_masks": masks})))
    policy_weights = checkpoint["Policy"]
    trainer = POCATrainer(
        "Coop", 1, poca_options().behaviors["Coop"], False, False, 0, str(tmp_path / "x")
    )
    parsed = BehaviorIdentifiers.from_name_behavior_id("Coop?team=0")
    spec = coop_env().behavior_specs["Coop?team=0"]
    policy = trainer.create_policy(parsed, spec)
    policy.actor.load_state_dict(policy_weights)
    with torch.no_grad():
        encoding, _ = policy.actor.network_body([torch.from_numpy(obs)])
        dists = policy.actor.action_model._get_dists(encoding, torch.from_numpy(masks))
    expected = np.stack([d.probs.argmax(dim=1).numpy() for d in dists.discrete], axis=1)
    np.testing.assert_array_equal(outputs["deterministic_discrete_actions"], expected)

    resumed = train(
        coop_env(seed=1),
        poca_options(max_steps=450),
        run_id="coop",
        results_dir=tmp_path,
        seed=2,
        resume=True,
    )
    assert resumed.steps["Coop"] >= 450
    assert os.path.exists(behavior_dir / f"Coop-{resumed.steps['Coop']}.pt")


def test_recurrent_poca_updates_with_critic_and_baseline_memories(tmp_path):
    result = train(
        coop_env(seed=3), poca_options(max_steps=200, memory=True), run_id="m", results_dir=tmp_path
    )
    assert result.steps["Coop"] >= 200
    checkpoint = load_checkpoint_file(str(tmp_path / "m" / "Coop" / "checkpoint.pt"))
    assert "network_body.lstm.lstm.weight_hh_l0" in checkpoint["Optimizer:critic"]


def _trainer(tmp_path, memory=None) -> POCATrainer:
    settings = TrainerSettings(
        trainer_type="poca",
        network_settings=network_settings(hidden_units=8, num_layers=1, memory=memory),
    )
    settings.hyperparameters.buffer_size = 10_000
    trainer = POCATrainer("Team", 5, settings, True, False, 0, str(tmp_path))
    parsed = BehaviorIdentifiers.from_name_behavior_id("Team?team=0")
    spec = behavior_spec([vector_spec(3), vector_spec(4)], continuous=1, branches=(3, 3))
    trainer.add_policy(parsed, trainer.create_policy(parsed, spec))
    return trainer


def _shaped(trajectory, memory_size=0):
    """ragged_trajectory's second observation is 2x2; this behavior sees it flat (4,). With a
    ``memory_size``, the policy's memories are recorded (zeros), as the processor does."""
    columnar = ColumnarTrajectory.from_trajectory(trajectory)
    if memory_size:
        columnar = attrs.evolve(columnar, memories=np.zeros((len(columnar), memory_size)))
    if columnar.group_obs is None:
        return attrs.evolve(
            columnar,
            obs=[columnar.obs[0], columnar.obs[1].reshape(len(columnar), 4)],
            next_obs=[columnar.next_obs[0], columnar.next_obs[1].reshape(4)],
        )
    return attrs.evolve(
        columnar,
        obs=[columnar.obs[0], columnar.obs[1].reshape(len(columnar), 4)],
        next_obs=[columnar.next_obs[0], columnar.next_obs[1].reshape(4)],
        group_obs=[
            columnar.group_obs[0],
            columnar.group_obs[1].reshape(len(columnar), columnar.group_width, 4),
        ],
        group_next_obs=[
            columnar.group_next_obs[0],
            columnar.group_next_obs[1].reshape(columnar.group_width, 4),
        ],
    )


@pytest.mark.parametrize("memory", [None, (2, 8)])
def test_group_columns_of_changing_width_share_the_update_buffer(tmp_path, memory):
    trainer = _trainer(tmp_path, memory)
    size = 0 if memory is None else memory[1]
    trainer._process_trajectory(_shaped(ragged_trajectory([1, 1, 0], 1, seed=1), size))
    assert group_width(trainer.update_buffer) == 1
    trainer._process_trajectory(_shaped(ragged_trajectory([3, 2, 3, 1], 2, seed=2), size))
    assert group_width(trainer.update_buffer) == 3
    trainer._process_trajectory(_shaped(ragged_trajectory([2, 2], 0, seed=3), size))
    buffer = trainer.update_buffer
    assert group_width(buffer) == 3 and buffer.check_length(list(buffer.keys()))
    if memory is not None:
        assert BufferKey.BASELINE_MEMORY in buffer
    # One update over the mixed widths runs.
    trainer.hyperparameters.batch_size = 4
    trainer.hyperparameters.buffer_size = 4
    assert trainer._update_policy()


def test_group_reward_is_reported_when_the_whole_group_is_done(tmp_path):
    trainer = _trainer(tmp_path)
    reporter = trainer.stats_reporter
    # ragged_trajectory ends done; its last mates are done only where j is odd.
    leaver = _shaped(ragged_trajectory([2, 2], 2, seed=4))  # mate 0 not done: agent left
    assert leaver.done_reached and not leaver.all_group_dones_reached
    trainer._process_trajectory(leaver)
    assert reporter.get_stats_summaries("Environment/Group Cumulative Reward").num == 0
    alone = _shaped(ragged_trajectory([0, 0, 0], 0, seed=6))  # no mates: all([]) is True
    trainer._process_trajectory(alone)
    summary = reporter.get_stats_summaries("Environment/Group Cumulative Reward")
    assert summary.num == 1 and summary.mean == pytest.approx(0.25 * 3)
    assert not trainer.collected_group_rewards
