"""A checkpoint written by ML-Agents 1.1.0 itself loads into our policy and critic and gives the
same outputs (``--resume`` / ``--initialize-from`` of an upstream run).

The anchor venv builds an ML-Agents PPO policy and optimizer (hybrid actions, LSTM, normalised
observations), trains its normaliser, saves ``checkpoint.pt`` the way its TorchModelSaver
does, and records the mean action, the discrete probabilities, the new memories and the
critic values for fixed inputs. Needs the anchor venv described in
docs/reference-venvs.md; without it there is nothing to compare against.
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
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
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


# --- Attention networks (buffer-sensor observations) ---------------------------------------
# Both sides build the same PPO policy and critic over a vector and a variable-length
# observation; one side saves, the other loads and must give the same outputs.

ATTENTION_ANCHOR_COMMON = textwrap.dedent(
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
    from mlagents.trainers.model_saver.torch_model_saver import TorchModelSaver
    from mlagents.trainers.torch_entities.model_serialization import ModelSerializer

    out = sys.argv[1]
    spec = BehaviorSpec(
        [
            ObservationSpec((6,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "v"),
            ObservationSpec(
                (5, 4),
                (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
                ObservationType.DEFAULT,
                "BufferSensor",
            ),
        ],
        ActionSpec(1, (3,)),
    )
    net = NetworkSettings(normalize=True, hidden_units=16, num_layers=2)
    settings = TrainerSettings(trainer_type="ppo", hyperparameters=PPOSettings(), network_settings=net)
    policy = TorchPolicy(0, spec, net, SimpleActor, {"conditional_sigma": False, "tanh_squash": False})
    optimizer = TorchPPOOptimizer(policy, settings)

    def outputs(vector, entities, masks):
        with torch.no_grad():
            inputs = [torch.as_tensor(vector), torch.as_tensor(entities)]
            encoding, _ = policy.actor.network_body(inputs)
            dists = policy.actor.action_model._get_dists(encoding, torch.as_tensor(masks))
            values, _ = optimizer.critic.critic_pass(inputs)
        return dict(
            mean=dists.continuous.deterministic_sample().numpy(),
            probs=dists.discrete[0].probs.numpy(),
            values=values["extrinsic"].numpy(),
        )
    """
)

# Loads our checkpoint from argv[1]/ours, then writes its own to argv[1]/theirs.
ATTENTION_ANCHOR_BOTH_WAYS = ATTENTION_ANCHOR_COMMON + textwrap.dedent(
    """
    data = np.load(os.path.join(out, "inputs.npz"))
    torch.manual_seed(99)  # different initial weights: everything must come from the file
    policy = TorchPolicy(0, spec, net, SimpleActor, {"conditional_sigma": False, "tanh_squash": False})
    optimizer = TorchPPOOptimizer(policy, settings)
    saver = TorchModelSaver(settings, os.path.join(out, "ours"), load=True)
    saver.register(policy)
    saver.register(optimizer)
    saver.initialize_or_load()
    loaded = outputs(data["vector"], data["entities"], data["masks"])
    loaded["step"] = np.array(policy.get_current_step())
    np.savez(os.path.join(out, "loaded.npz"), **loaded)
    ModelSerializer(policy).export_policy_model(os.path.join(out, "anchor"))

    torch.manual_seed(3)
    policy = TorchPolicy(0, spec, net, SimpleActor, {"conditional_sigma": False, "tanh_squash": False})
    optimizer = TorchPPOOptimizer(policy, settings)
    rng = np.random.default_rng(5)
    seen = torch.as_tensor(rng.normal(2.0, 3.0, (40, 6)).astype(np.float32))
    policy.actor.network_body.observation_encoder.processors[0].normalizer.update(seen)
    optimizer.critic.network_body.observation_encoder.processors[0].normalizer.update(seen)
    policy.set_step(321)
    modules = {**policy.get_modules(), **optimizer.get_modules()}
    os.makedirs(os.path.join(out, "theirs"))
    torch.save(
        {name: m.state_dict() for name, m in modules.items()},
        os.path.join(out, "theirs", "checkpoint.pt"),
    )
    np.savez(
        os.path.join(out, "saved.npz"),
        **outputs(data["vector"], data["entities"], data["masks"]),
    )
    """
)


def attention_inputs():
    from test_torch_attention import padded_entities

    rng = np.random.default_rng(8)
    vector = rng.normal(2.0, 3.0, (4, 6)).astype(np.float32)
    entities = padded_entities(rng, [0, 2, 5, 3], 5, 4)
    masks = np.ones((4, 3), np.float32)
    masks[:, 1] = 0.0
    return vector, entities, masks


def attention_parts(seed):
    from test_torch_attention import entity_spec

    spec = behavior_spec([vector_spec(6, "v"), entity_spec(5, 4)], continuous=1, branches=(3,))
    net = network_settings(hidden_units=16, num_layers=2, normalize=True)
    settings = TrainerSettings(
        trainer_type="ppo", hyperparameters=PPOSettings(), network_settings=net
    )
    torch.manual_seed(seed)
    policy = TorchPolicy(
        0, spec, net, SimpleActor, {"conditional_sigma": False, "tanh_squash": False}
    )
    return policy, TorchPPOOptimizer(policy, settings), settings


def attention_outputs(policy, optimizer, vector, entities, masks):
    with torch.no_grad():
        inputs = [torch.from_numpy(vector), torch.from_numpy(entities)]
        encoding, _ = policy.actor.network_body(inputs)
        dists = policy.actor.action_model._get_dists(encoding, torch.from_numpy(masks))
        values, _ = optimizer.critic.critic_pass(inputs)
    return {
        "mean": dists.continuous.deterministic_sample().numpy(),
        "probs": dists.discrete[0].probs.numpy(),
        "values": values["extrinsic"].numpy(),
    }


def assert_same_outputs(ours, theirs):
    for key in ("mean", "probs", "values"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_attention_checkpoints_load_both_ways_with_mlagents(tmp_path):
    import onnx

    vector, entities, masks = attention_inputs()
    np.savez(tmp_path / "inputs.npz", vector=vector, entities=entities, masks=masks)
    # Ours, saved by our TorchModelSaver, to be loaded by ML-Agents' TorchModelSaver.
    policy, optimizer, settings = attention_parts(seed=4)
    seen = torch.as_tensor(np.random.default_rng(2).normal(-1.0, 2.0, (30, 6)).astype(np.float32))
    for network in (policy.actor, optimizer.critic):
        network.network_body.observation_encoder.processors[0].normalizer.update(seen)
    policy.set_step(654)
    saver = TorchModelSaver(settings, str(tmp_path / "ours"))
    saver.register(policy)
    saver.register(optimizer)
    saver.save_checkpoint("Sorter", 654)
    ours = attention_outputs(policy, optimizer, vector, entities, masks)

    subprocess.run(
        [str(ANCHOR_PYTHON), "-c", ATTENTION_ANCHOR_BOTH_WAYS, str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    loaded_there = np.load(tmp_path / "loaded.npz")
    assert int(loaded_there["step"]) == 654
    assert_same_outputs(ours, loaded_there)
    # The exported graphs use the same operators (what Unity's importer must support).
    our_ops = {
        node.op_type for node in onnx.load(str(tmp_path / "ours/Sorter-654.onnx")).graph.node
    }
    their_ops = {node.op_type for node in onnx.load(str(tmp_path / "anchor.onnx")).graph.node}
    assert our_ops == their_ops

    # ML-Agents' checkpoint, loaded here.
    policy, optimizer, settings = attention_parts(seed=11)
    saver = TorchModelSaver(settings, str(tmp_path / "theirs"), load=True)
    saver.register(policy)
    saver.register(optimizer)
    saver.initialize_or_load()
    assert policy.get_current_step() == 321
    loaded_here = attention_outputs(policy, optimizer, vector, entities, masks)
    assert_same_outputs(loaded_here, np.load(tmp_path / "saved.npz"))
