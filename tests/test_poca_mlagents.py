"""POCA against ML-Agents 1.1.0's own, side by side.

ML-Agents (anchor venv) builds a POCA trainer, saves its policy and optimizer as
``checkpoint.pt`` and processes four trajectories with group mates (a group that terminates
together, an agent that leaves its group, a trajectory cut at the time horizon, an
interrupted one); it records the values, baselines, bootstrap values, lambda returns and
advantages. Our POCA trainer loads that checkpoint (same state-dict names), processes the same
trajectories and must put the same numbers in its update buffer; the policy gives the same
actions. Needs the anchor venv; skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.buffer import BufferKey, RewardSignalUtil
from mlagents_fast.trainers.poca.trainer import POCATrainer
from mlagents_fast.trainers.settings import POCASettings, TrainerSettings
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents_fast.trainers.trajectory import AgentExperience, AgentStatus, Trajectory
from policy_fixtures import behavior_spec, network_settings, single_thread_torch, vector_spec

single_thread_torch()

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

pytestmark = pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)

# (steps, mates at each step, mates after the last step, done, interrupted, mates done at end)
TRAJECTORIES = [
    (5, [2, 2, 2, 2, 2], 2, True, False, True),  # the whole group terminates
    (4, [2, 2, 1, 1], 1, True, False, False),  # the agent leaves; its mates go on
    (6, [1, 2, 2, 2, 2, 2], 2, False, False, False),  # cut at the time horizon
    (3, [2, 2, 2], 2, True, True, True),  # interrupted (max step)
]

# Runs under the anchor venv; argv[1] is the output folder.
ANCHOR_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import torch
    from mlagents_envs.base_env import (
        ActionSpec, ActionTuple, BehaviorSpec, DimensionProperty, ObservationSpec,
        ObservationType,
    )
    from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
    from mlagents.trainers.buffer import BufferKey, RewardSignalUtil
    from mlagents.trainers.poca.optimizer_torch import POCASettings
    from mlagents.trainers.poca.trainer import POCATrainer
    from mlagents.trainers.settings import NetworkSettings, TrainerSettings
    from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple
    from mlagents.trainers.trajectory import AgentExperience, AgentStatus, Trajectory

    out = sys.argv[1]
    TRAJECTORIES = __TRAJECTORIES__
    torch.manual_seed(4)
    spec = BehaviorSpec(
        [ObservationSpec((6,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "v")],
        ActionSpec(2, (3,)),
    )
    net = NetworkSettings(normalize=False, hidden_units=16, num_layers=2)
    settings = TrainerSettings(
        trainer_type="poca", hyperparameters=POCASettings(lambd=0.9), network_settings=net
    )
    trainer = POCATrainer("Team", 10, settings, True, False, 0, os.path.join(out, "run"))
    parsed = BehaviorIdentifiers.from_name_behavior_id("Team?team=0")
    policy = trainer.create_policy(parsed, spec)
    trainer.add_policy(parsed, policy)
    optimizer = trainer.optimizer

    rng = np.random.default_rng(8)
    saved = {}

    def action():
        return ActionTuple(
            continuous=rng.normal(size=2).astype(np.float32),
            discrete=rng.integers(0, 3, 1).astype(np.int32),
        )

    def vector():
        return rng.normal(size=6).astype(np.float32)

    for index, (length, mates, next_mates, done, interrupted, mates_done) in enumerate(
        TRAJECTORIES
    ):
        width = max(max(mates), next_mates)
        arrays = dict(
            obs=np.zeros((length, 6), np.float32), cont=np.zeros((length, 2), np.float32),
            disc=np.zeros((length, 1), np.int32), reward=rng.normal(size=length).astype(np.float32),
            group_reward=rng.normal(size=length).astype(np.float32),
            mate_obs=np.full((length, width, 6), np.nan, np.float32),
            mate_cont=np.zeros((length, width, 2), np.float32),
            mate_disc=np.zeros((length, width, 1), np.int32),
            mate_reward=np.zeros((length, width), np.float32),
            mate_done=np.zeros((length, width), bool),
            next_obs=vector(), next_group=np.full((width, 6), np.nan, np.float32),
        )
        steps = []
        for t in range(length):
            statuses = []
            for j in range(mates[t]):
                status = AgentStatus(
                    obs=[vector()], reward=float(rng.normal()), action=action(),
                    done=bool(mates_done and t == length - 1),
                )
                statuses.append(status)
                arrays["mate_obs"][t, j] = status.obs[0]
                arrays["mate_cont"][t, j] = status.action.continuous
                arrays["mate_disc"][t, j] = status.action.discrete
                arrays["mate_reward"][t, j] = status.reward
                arrays["mate_done"][t, j] = status.done
            own = action()
            arrays["obs"][t] = vector()
            arrays["cont"][t] = own.continuous
            arrays["disc"][t] = own.discrete
            steps.append(AgentExperience(
                obs=[arrays["obs"][t]], reward=float(arrays["reward"][t]),
                done=bool(done and t == length - 1), action=own,
                action_probs=LogProbsTuple(continuous=np.zeros(2, np.float32),
                                           discrete=np.zeros(1, np.float32)),
                action_mask=None, prev_action=np.zeros(1, np.int32),
                interrupted=bool(interrupted and t == length - 1), memory=None,
                group_status=statuses, group_reward=float(arrays["group_reward"][t]),
            ))
        next_group = []
        for j in range(next_mates):
            arrays["next_group"][j] = vector()
            next_group.append([arrays["next_group"][j]])
        trajectory = Trajectory(steps=steps, next_obs=[arrays["next_obs"]],
                                next_group_obs=next_group, agent_id=f"agent_0-{index}",
                                behavior_id="Team?team=0")
        values, baselines, value_next, _, _ = optimizer.get_trajectory_and_baseline_value_estimates(
            trajectory.to_agentbuffer(), trajectory.next_obs, trajectory.next_group_obs,
            trajectory.all_group_dones_reached and trajectory.done_reached
            and not trajectory.interrupted,
        )
        before = trainer.update_buffer.num_experiences
        trainer._process_trajectory(trajectory)
        buffer = trainer.update_buffer
        arrays["values"] = values["extrinsic"]
        arrays["baselines"] = baselines["extrinsic"]
        arrays["value_next"] = np.array(value_next["extrinsic"]).reshape(-1)
        arrays["returns"] = np.asarray(
            buffer[RewardSignalUtil.returns_key("extrinsic")].get_batch())[before:]
        arrays["advantages"] = np.asarray(buffer[BufferKey.ADVANTAGES].get_batch())[before:]
        arrays["stored_baselines"] = np.asarray(
            buffer[RewardSignalUtil.baseline_estimates_key("extrinsic")].get_batch())[before:]
        for name, value in arrays.items():
            saved[f"{index}/{name}"] = value

    # The policy, on fixed observations.
    probe = torch.as_tensor(rng.normal(size=(5, 6)).astype(np.float32))
    with torch.no_grad():
        encoding, _ = policy.actor.network_body([probe])
        dists = policy.actor.action_model._get_dists(encoding, torch.ones(5, 3))
    saved["probe"] = probe.numpy()
    saved["probe_mean"] = dists.continuous.deterministic_sample().numpy()
    saved["probe_probs"] = dists.discrete[0].probs.numpy()
    modules = {**policy.get_modules(), **optimizer.get_modules()}
    os.makedirs(os.path.join(out, "Team"), exist_ok=True)
    torch.save({n: m.state_dict() for n, m in modules.items()},
               os.path.join(out, "Team", "checkpoint.pt"))
    np.savez(os.path.join(out, "outputs.npz"), **saved)
    """
).replace("__TRAJECTORIES__", repr(TRAJECTORIES))


def _trajectory(arrays: dict, index: int, spec: tuple) -> Trajectory:
    length, mates, next_mates, done, interrupted, _ = spec
    steps = []
    for t in range(length):
        statuses = [
            AgentStatus(
                obs=[arrays["mate_obs"][t, j]],
                reward=float(arrays["mate_reward"][t, j]),
                action=ActionTuple(
                    continuous=arrays["mate_cont"][t, j], discrete=arrays["mate_disc"][t, j]
                ),
                done=bool(arrays["mate_done"][t, j]),
            )
            for j in range(mates[t])
        ]
        steps.append(
            AgentExperience(
                obs=[arrays["obs"][t]],
                reward=float(arrays["reward"][t]),
                done=bool(done and t == length - 1),
                action=ActionTuple(continuous=arrays["cont"][t], discrete=arrays["disc"][t]),
                action_probs=LogProbsTuple(
                    continuous=np.zeros(2, np.float32), discrete=np.zeros(1, np.float32)
                ),
                action_mask=None,
                prev_action=np.zeros(1, np.int32),
                interrupted=bool(interrupted and t == length - 1),
                memory=None,
                group_status=statuses,
                group_reward=float(arrays["group_reward"][t]),
            )
        )
    return Trajectory(
        steps=steps,
        next_obs=[arrays["next_obs"]],
        next_group_obs=[[arrays["next_group"][j]] for j in range(next_mates)],
        agent_id=f"agent_0-{index}",
        behavior_id="Team?team=0",
    )


def test_poca_matches_ml_agents_values_baselines_returns_and_advantages(tmp_path):
    completed = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", ANCHOR_SCRIPT, str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    expected = np.load(tmp_path / "outputs.npz")

    StatsReporter.reset()
    torch.manual_seed(77)  # other initial weights: everything must come from the checkpoint
    settings = TrainerSettings(
        trainer_type="poca",
        hyperparameters=POCASettings(lambd=0.9),
        network_settings=network_settings(hidden_units=16, num_layers=2),
    )
    trainer = POCATrainer("Team", 10, settings, True, True, 0, str(tmp_path / "Team"))
    parsed = BehaviorIdentifiers.from_name_behavior_id("Team?team=0")
    spec = behavior_spec([vector_spec(6)], continuous=2, branches=(3,))
    trainer.add_policy(parsed, trainer.create_policy(parsed, spec))

    probe = torch.from_numpy(expected["probe"])
    with torch.no_grad():
        encoding, _ = trainer.policy.actor.network_body([probe])
        dists = trainer.policy.actor.action_model._get_dists(encoding, torch.ones(5, 3))
    np.testing.assert_allclose(
        dists.continuous.deterministic_sample().numpy(), expected["probe_mean"], atol=1e-6
    )
    np.testing.assert_allclose(dists.discrete[0].probs.numpy(), expected["probe_probs"], atol=1e-6)

    buffer = trainer.update_buffer
    for index, spec_row in enumerate(TRAJECTORIES):
        arrays = {
            name.split("/", 1)[1]: expected[name]
            for name in expected.files
            if name.startswith(f"{index}/")
        }
        before = buffer.num_experiences
        trainer._process_trajectory(_trajectory(arrays, index, spec_row))

        def rows(key):
            return np.asarray(buffer[key].get_batch())[before:]  # noqa: B023

        message = f"trajectory {index}"
        np.testing.assert_allclose(
            rows(RewardSignalUtil.value_estimates_key("extrinsic")),
            arrays["values"],
            atol=1e-5,
            err_msg=message,
        )
        np.testing.assert_allclose(
            rows(RewardSignalUtil.baseline_estimates_key("extrinsic")),
            arrays["baselines"],
            atol=1e-5,
            err_msg=message,
        )
        np.testing.assert_allclose(
            rows(RewardSignalUtil.returns_key("extrinsic")),
            arrays["returns"],
            atol=1e-5,
            err_msg=message,
        )
        np.testing.assert_allclose(
            rows(BufferKey.ADVANTAGES), arrays["advantages"], atol=1e-5, err_msg=message
        )
    StatsReporter.reset()
