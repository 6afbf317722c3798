"""A checkpoint written by ML-Agents 1.1.0 itself loads into our policy and critic and gives the
same outputs (``--resume`` / ``--initialize-from`` of an upstream run).

The anchor venv builds an ML-Agents PPO policy and optimizer (hybrid actions, LSTM, normalised
observations), trains its normaliser, saves ``checkpoint.pt`` the way its TorchModelSaver
does, and records the mean action, the discrete probabilities, the new memories and the
critic values for fixed inputs. Needs the anchor venv built by
``../shared/anchors/mlagents-venv.sh``; without it there is nothing to compare against.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from mlagents_fast.trainers.model_saver.torch_model_saver import TorchModelSaver
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.settings import PPOSettings, TrainerSettings
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import behavior_spec, network_settings, single_thread_torch, vector_spec

single_thread_torch()

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

pytestmark = pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (../shared/anchors/mlagents-venv.sh)",
)

# Runs under the anchor venv; argv[1] is the output folder.
ANCHOR_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import torch
    from mlagents_envs.base_env import (
        ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType,
    )
    from mlagents.trainers.settings import NetworkSettings, TrainerSettings
    from mlagents.trainers.ppo.optimizer_torch import PPOSettings, TorchPPOOptimizer
    from mlagents.trainers.policy.torch_policy import TorchPolicy
    from mlagents.trainers.torch_entities.networks import SimpleActor

    out = sys.argv[1]
    torch.manual_seed(3)
    spec = BehaviorSpec(
        [ObservationSpec((6,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "v")],
        ActionSpec(2, (3,)),
    )
    net = NetworkSettings(
        normalize=True, hidden_units=16, num_layers=2,
        memory=NetworkSettings.MemorySettings(sequence_length=4, memory_size=8),
    )
    settings = TrainerSettings(trainer_type="ppo", hyperparameters=PPOSettings(), network_settings=net)
    policy = TorchPolicy(0, spec, net, SimpleActor, {"conditional_sigma": False, "tanh_squash": False})
    optimizer = TorchPPOOptimizer(policy, settings)
    rng = np.random.default_rng(5)
    seen = torch.as_tensor(rng.normal(2.0, 3.0, (40, 6)).astype(np.float32))
    policy.actor.network_body.observation_encoder.processors[0].normalizer.update(seen)
    optimizer.critic.network_body.observation_encoder.processors[0].normalizer.update(seen)
    policy.set_step(777)
    obs = torch.as_tensor(rng.normal(2.0, 3.0, (5, 6)).astype(np.float32))
    memories = torch.as_tensor(rng.normal(0.0, 0.5, (1, 5, 8)).astype(np.float32))
    masks = torch.ones(5, 3)
    masks[:, 0] = 0.0
    with torch.no_grad():
        encoding, memories_out = policy.actor.network_body([obs], memories=memories)
        dists = policy.actor.action_model._get_dists(encoding, masks)
        values, _ = optimizer.critic.critic_pass([obs], memories=memories)
    modules = {**policy.get_modules(), **optimizer.get_modules()}
    torch.save({name: m.state_dict() for name, m in modules.items()}, os.path.join(out, "checkpoint.pt"))
    np.savez(
        os.path.join(out, "outputs.npz"),
        obs=obs.numpy(), memories=memories.numpy(), masks=masks.numpy(),
        mean=dists.continuous.deterministic_sample().numpy(),
        probs=dists.discrete[0].probs.numpy(),
        memories_out=memories_out.numpy(),
        values=values["extrinsic"].numpy(),
    )
    """
)


def test_mlagents_checkpoint_resumes_with_identical_outputs(tmp_path):
    behavior_dir = tmp_path / "Ball"
    behavior_dir.mkdir()
    subprocess.run(
        [str(ANCHOR_PYTHON), "-c", ANCHOR_SCRIPT, str(behavior_dir)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    expected = np.load(behavior_dir / "outputs.npz")

    spec = behavior_spec([vector_spec(6)], continuous=2, branches=(3,))
    net = network_settings(hidden_units=16, num_layers=2, normalize=True, memory=(4, 8))
    settings = TrainerSettings(
        trainer_type="ppo", hyperparameters=PPOSettings(), network_settings=net
    )
    torch.manual_seed(11)  # different initial weights: everything must come from the file
    policy = TorchPolicy(
        0, spec, net, SimpleActor, {"conditional_sigma": False, "tanh_squash": False}
    )
    optimizer = TorchPPOOptimizer(policy, settings)
    saver = TorchModelSaver(settings, str(behavior_dir), load=True)
    saver.register(policy)
    saver.register(optimizer)
    saver.initialize_or_load()

    assert policy.get_current_step() == 777
    obs = torch.from_numpy(expected["obs"])
    memories = torch.from_numpy(expected["memories"])
    with torch.no_grad():
        encoding, memories_out = policy.actor.network_body([obs], memories=memories)
        dists = policy.actor.action_model._get_dists(encoding, torch.from_numpy(expected["masks"]))
        values, _ = optimizer.critic.critic_pass([obs], memories=memories)
    np.testing.assert_allclose(
        dists.continuous.deterministic_sample().numpy(), expected["mean"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        dists.discrete[0].probs.numpy(), expected["probs"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(memories_out.numpy(), expected["memories_out"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        values["extrinsic"].numpy(), expected["values"], rtol=1e-5, atol=1e-6
    )
    assert np.all(dists.discrete[0].probs.numpy()[:, 0] < 1e-6)  # the masked action
