"""Policy and optimizer workloads shared by ``bench_policy.py`` (ours) and
``ref_mlagents_policy.py`` (ML-Agents 1.1.0 in its anchor venv).

The same code builds both sides through the public ML-Agents module paths, so it also checks
that ours are drop-ins: ``flavor="fast"`` imports ``mlagents_fast.trainers.X`` and
``mlagents_fast.envs.X``, ``flavor="mlagents"`` imports ``mlagents.trainers.X`` and
``mlagents_envs.X``. Shapes follow 3DBall (8 vector observations, 2 continuous actions,
12 agents per environment) and config/{ppo,sac}/3DBall.yaml.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

N_AGENTS = 12
OBS_SIZE = 8
N_ACTIONS = 2
MINIBATCH = 64
TRAJECTORY = 1000


def modules(flavor: str) -> SimpleNamespace:
    trainers = "mlagents_fast.trainers" if flavor == "fast" else "mlagents.trainers"
    envs = "mlagents_fast.envs" if flavor == "fast" else "mlagents_envs"

    def load(name: str) -> Any:
        return importlib.import_module(name)

    return SimpleNamespace(
        base_env=load(f"{envs}.base_env"),
        settings=load(f"{trainers}.settings"),
        buffer=load(f"{trainers}.buffer"),
        trajectory=load(f"{trainers}.trajectory"),
        torch_policy=load(f"{trainers}.policy.torch_policy"),
        networks=load(f"{trainers}.torch_entities.networks"),
        ppo=load(f"{trainers}.ppo.optimizer_torch"),
        sac=load(f"{trainers}.sac.optimizer_torch"),
    )


def behavior_spec(m: SimpleNamespace) -> Any:
    be = m.base_env
    obs_spec = be.ObservationSpec(
        shape=(OBS_SIZE,),
        dimension_property=(be.DimensionProperty.NONE,),
        observation_type=be.ObservationType.DEFAULT,
        name="vector",
    )
    return be.BehaviorSpec([obs_spec], be.ActionSpec(N_ACTIONS, ()))


def fill(buffer: Any, key: Any, rows: np.ndarray) -> None:
    for row in rows:
        buffer[key].append(row)


def workloads(flavor: str) -> dict[str, Callable[[], object]]:
    """Name -> a zero-argument callable doing one unit of that workload."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = modules(flavor)
    s = m.settings
    spec = behavior_spec(m)
    rng = np.random.default_rng(0)

    ppo_net = s.NetworkSettings(normalize=True, hidden_units=128, num_layers=2)
    ppo_settings = s.TrainerSettings(
        trainer_type="ppo",
        hyperparameters=m.ppo.PPOSettings(
            batch_size=MINIBATCH, buffer_size=12000, beta=1e-3, lambd=0.99
        ),
        network_settings=ppo_net,
        max_steps=500000,
    )
    ppo_policy = m.torch_policy.TorchPolicy(
        0, spec, ppo_net, m.networks.SimpleActor, {"conditional_sigma": False, "tanh_squash": False}
    )
    ppo_optimizer = m.ppo.TorchPPOOptimizer(ppo_policy, ppo_settings)

    obs = rng.standard_normal((N_AGENTS, OBS_SIZE)).astype(np.float32)
    decision_steps = m.base_env.DecisionSteps(
        [obs],
        np.zeros(N_AGENTS, np.float32),
        np.arange(N_AGENTS, dtype=np.int32),
        None,
        np.zeros(N_AGENTS, np.int32),
        np.zeros(N_AGENTS, np.float32),
    )

    bk = m.buffer.BufferKey
    rs = m.buffer.RewardSignalUtil
    obs_key = m.trajectory.ObsUtil.get_name_at(0)
    next_obs_key = m.trajectory.ObsUtil.get_name_at_next(0)

    batch_obs = rng.standard_normal((MINIBATCH, OBS_SIZE)).astype(np.float32)
    ppo_batch = m.buffer.AgentBuffer()
    fill(ppo_batch, obs_key, batch_obs)
    fill(
        ppo_batch,
        bk.CONTINUOUS_ACTION,
        rng.standard_normal((MINIBATCH, N_ACTIONS)).astype(np.float32),
    )
    fill(ppo_batch, bk.DISCRETE_ACTION, np.zeros((MINIBATCH, 0), np.int32))
    fill(ppo_batch, bk.CONTINUOUS_LOG_PROBS, np.full((MINIBATCH, N_ACTIONS), -1.0, np.float32))
    fill(ppo_batch, bk.DISCRETE_LOG_PROBS, np.zeros((MINIBATCH, 0), np.float32))
    fill(ppo_batch, bk.ACTION_MASK, np.ones((MINIBATCH, 0), np.float32))
    fill(ppo_batch, bk.ADVANTAGES, rng.standard_normal(MINIBATCH).astype(np.float32))
    fill(ppo_batch, bk.MASKS, np.ones(MINIBATCH, np.float32))
    # set(), not append: ML-Agents 1.1.0 maps value_estimates_key to the returns key, and its
    # trainer overwrites the value estimates with the returns the same way.
    ppo_batch[rs.value_estimates_key("extrinsic")].set(list(np.full(MINIBATCH, 0.9, np.float32)))
    ppo_batch[rs.returns_key("extrinsic")].set(list(np.ones(MINIBATCH, np.float32)))

    trajectory = m.buffer.AgentBuffer()
    fill(trajectory, obs_key, rng.standard_normal((TRAJECTORY, OBS_SIZE)).astype(np.float32))
    next_obs = [rng.standard_normal(OBS_SIZE).astype(np.float32)]

    sac_net = s.NetworkSettings(normalize=True, hidden_units=64, num_layers=2)
    sac_settings = s.TrainerSettings(
        trainer_type="sac",
        hyperparameters=m.sac.SACSettings(batch_size=MINIBATCH, init_entcoef=0.5),
        network_settings=sac_net,
        max_steps=500000,
    )
    sac_policy = m.torch_policy.TorchPolicy(
        0, spec, sac_net, m.networks.SimpleActor, {"conditional_sigma": True, "tanh_squash": True}
    )
    sac_optimizer = m.sac.TorchSACOptimizer(sac_policy, sac_settings)
    sac_batch = m.buffer.AgentBuffer()
    fill(sac_batch, obs_key, batch_obs)
    fill(sac_batch, next_obs_key, rng.standard_normal((MINIBATCH, OBS_SIZE)).astype(np.float32))
    fill(
        sac_batch,
        bk.CONTINUOUS_ACTION,
        np.tanh(rng.standard_normal((MINIBATCH, N_ACTIONS))).astype(np.float32),
    )
    fill(sac_batch, bk.DISCRETE_ACTION, np.zeros((MINIBATCH, 0), np.int32))
    fill(sac_batch, bk.ACTION_MASK, np.ones((MINIBATCH, 0), np.float32))
    fill(sac_batch, bk.MASKS, np.ones(MINIBATCH, np.float32))
    fill(sac_batch, bk.DONE, np.zeros(MINIBATCH, np.float32))
    fill(sac_batch, rs.rewards_key("extrinsic"), np.ones(MINIBATCH, np.float32))

    return {
        "get_action (12 agents, PPO 3DBall actor)": lambda: ppo_policy.get_action(decision_steps),
        "PPO update (minibatch 64, 3DBall)": lambda: ppo_optimizer.update(ppo_batch, MINIBATCH),
        "trajectory values (1000 steps)": lambda: ppo_optimizer.get_trajectory_value_estimates(
            trajectory, next_obs, False
        ),
        "SAC update (minibatch 64, 3DBall)": lambda: sac_optimizer.update(sac_batch, MINIBATCH),
    }
