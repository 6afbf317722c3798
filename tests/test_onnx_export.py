"""The exported .onnx model against docs/onnx.md, run in onnxruntime next to the torch policy."""

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.settings import EncoderType
from mlagents_fast.trainers.torch_entities.model_serialization import ModelSerializer
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import (
    behavior_spec,
    network_settings,
    random_obs,
    single_thread_torch,
    vector_spec,
    visual_spec,
)

single_thread_torch()

PPO_KWARGS = {"conditional_sigma": False, "tanh_squash": False}
SAC_KWARGS = {"conditional_sigma": True, "tanh_squash": True}


def export(policy, tmp_path, name="policy"):
    path = os.path.join(str(tmp_path), name)
    ModelSerializer(policy).export_policy_model(path)
    return path + ".onnx"


def io_signature(values):
    out = {}
    for v in values:
        dims = [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]
        out[v.name] = (v.type.tensor_type.elem_type, dims)
    return out


def run(path, feeds):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def torch_deterministic(policy, obs, masks=None, memories=None):
    """Mean / argmax actions of the torch actor, mapped as the export maps them."""
    with torch.no_grad():
        tensors = [torch.from_numpy(o) for o in obs]
        mem = None if memories is None else torch.from_numpy(memories).transpose(0, 1)
        encoding, mem_out = policy.actor.network_body(tensors, memories=mem)
        dists = policy.actor.action_model._get_dists(
            encoding, None if masks is None else torch.from_numpy(masks)
        )
        cont = disc = None
        if dists.continuous is not None:
            cont = dists.continuous.deterministic_sample()
            if policy.actor.action_model.clip_action:
                cont = torch.clamp(cont, -3, 3) / 3
            cont = cont.numpy()
        if dists.discrete is not None:
            disc = torch.cat([d.deterministic_sample() for d in dists.discrete], dim=1).numpy()
        if mem_out is not None:
            mem_out = mem_out.transpose(0, 1).numpy()
        return cont, disc, mem_out


def test_continuous_model_contract(tmp_path):
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(5), vector_spec(3)], continuous=2)
    policy = TorchPolicy(0, spec, network_settings(normalize=True), SimpleActor, PPO_KWARGS)
    path = export(policy, tmp_path)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 9)]
    inputs = io_signature(model.graph.input)
    assert inputs == {"obs_0": (1, ["batch", 5]), "obs_1": (1, ["batch", 3])}
    outputs = io_signature(model.graph.output)
    assert list(outputs) == [
        "version_number",
        "memory_size",
        "continuous_actions",
        "continuous_action_output_shape",
        "deterministic_continuous_actions",
    ]
    assert outputs["continuous_actions"] == (1, ["batch", 2])
    obs = random_obs(spec, 6, np.random.default_rng(0))
    result = run(path, {"obs_0": obs[0], "obs_1": obs[1]})
    np.testing.assert_array_equal(result["version_number"], np.array([3.0], np.float32))
    np.testing.assert_array_equal(result["memory_size"], np.array([0.0], np.float32))
    np.testing.assert_array_equal(result["continuous_action_output_shape"], [2.0])
    assert result["continuous_actions"].shape == (6, 2)
    assert np.all(np.abs(result["continuous_actions"]) <= 1.0)
    cont, _, _ = torch_deterministic(policy, obs)
    np.testing.assert_allclose(
        result["deterministic_continuous_actions"], cont, rtol=1e-5, atol=1e-6
    )


def test_normalisation_is_inside_the_graph(tmp_path):
    from mlagents_fast.trainers.buffer import AgentBuffer
    from mlagents_fast.trainers.trajectory import ObsUtil

    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(3)], continuous=1)
    policy = TorchPolicy(0, spec, network_settings(normalize=True), SimpleActor, PPO_KWARGS)
    buffer = AgentBuffer()
    for row in np.random.default_rng(1).normal(50.0, 10.0, (100, 3)).astype(np.float32):
        buffer[ObsUtil.get_name_at(0)].append(row)
    policy.update_normalization(buffer)
    path = export(policy, tmp_path)
    obs = [np.random.default_rng(2).normal(50.0, 10.0, (4, 3)).astype(np.float32)]
    result = run(path, {"obs_0": obs[0]})
    cont, _, _ = torch_deterministic(policy, obs)
    np.testing.assert_allclose(
        result["deterministic_continuous_actions"], cont, rtol=1e-5, atol=1e-6
    )


def test_discrete_model_masks_and_outputs(tmp_path):
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(4)], branches=(3, 2))
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, PPO_KWARGS)
    path = export(policy, tmp_path)
    model = onnx.load(path)
    inputs = io_signature(model.graph.input)
    assert inputs == {"obs_0": (1, ["batch", 4]), "action_masks": (1, ["batch", 5])}
    outputs = io_signature(model.graph.output)
    assert list(outputs) == [
        "version_number",
        "memory_size",
        "discrete_actions",
        "discrete_action_output_shape",
        "deterministic_discrete_actions",
    ]
    assert outputs["discrete_actions"] == (7, ["batch", 2])  # int64
    assert outputs["discrete_action_output_shape"] == (1, [1, 2])
    n = 50
    obs = random_obs(spec, n, np.random.default_rng(0))
    masks = np.ones((n, 5), np.float32)
    masks[:, [0, 2]] = 0.0  # branch 0: only action 1 allowed
    masks[:25, 4] = 0.0  # branch 1, first half: only action 0 allowed
    result = run(path, {"obs_0": obs[0], "action_masks": masks})
    np.testing.assert_array_equal(result["discrete_action_output_shape"], [[3.0, 2.0]])
    for key in ("discrete_actions", "deterministic_discrete_actions"):
        assert result[key].dtype == np.int64 and result[key].shape == (n, 2)
        assert np.all(result[key][:, 0] == 1)
        assert np.all(result[key][:25, 1] == 0)
    _, disc, _ = torch_deterministic(policy, obs, masks)
    np.testing.assert_array_equal(result["deterministic_discrete_actions"], disc)


def test_hybrid_lstm_model_matches_torch_over_steps(tmp_path):
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(4)], continuous=2, branches=(3,))
    policy = TorchPolicy(0, spec, network_settings(memory=(8, 6)), SimpleActor, PPO_KWARGS)
    path = export(policy, tmp_path)
    model = onnx.load(path)
    inputs = io_signature(model.graph.input)
    assert inputs["recurrent_in"] == (1, ["batch", 1, 6])
    outputs = io_signature(model.graph.output)
    assert list(outputs)[-1] == "recurrent_out"
    assert list(outputs)[2:8] == [
        "continuous_actions",
        "continuous_action_output_shape",
        "deterministic_continuous_actions",
        "discrete_actions",
        "discrete_action_output_shape",
        "deterministic_discrete_actions",
    ]
    rng = np.random.default_rng(0)
    memories = np.zeros((3, 1, 6), np.float32)
    torch_memories = memories.copy()
    for _ in range(3):  # memory carried through several steps stays in agreement
        obs = random_obs(spec, 3, rng)
        masks = np.ones((3, 3), np.float32)
        result = run(path, {"obs_0": obs[0], "action_masks": masks, "recurrent_in": memories})
        cont, disc, torch_memories = torch_deterministic(policy, obs, masks, torch_memories)
        assert result["memory_size"][0] == 6.0
        np.testing.assert_allclose(result["recurrent_out"], torch_memories, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            result["deterministic_continuous_actions"], cont, rtol=1e-4, atol=1e-5
        )
        np.testing.assert_array_equal(result["deterministic_discrete_actions"], disc)
        memories = result["recurrent_out"]
        assert not np.allclose(memories, 0)


@pytest.mark.parametrize("encoder", list(EncoderType))
def test_visual_encoders_export(tmp_path, encoder):
    torch.manual_seed(0)
    side = {EncoderType.NATURE_CNN: 36}.get(encoder, 20)
    spec = behavior_spec([visual_spec(3, side, side), vector_spec(2)], continuous=1)
    settings = network_settings(hidden_units=8, vis_encode_type=encoder)
    policy = TorchPolicy(0, spec, settings, SimpleActor, PPO_KWARGS)
    path = export(policy, tmp_path)
    inputs = io_signature(onnx.load(path).graph.input)
    assert inputs["obs_0"] == (1, ["batch", 3, side, side])
    obs = [
        np.random.default_rng(0).random((2, 3, side, side), dtype=np.float32),
        np.ones((2, 2), np.float32),
    ]
    result = run(path, {"obs_0": obs[0], "obs_1": obs[1]})
    cont, _, _ = torch_deterministic(policy, obs)
    np.testing.assert_allclose(
        result["deterministic_continuous_actions"], cont, rtol=1e-4, atol=1e-5
    )


def test_sac_export_squashes_samples_and_keeps_raw_mean(tmp_path):
    torch.manual_seed(0)
    spec = behavior_spec([vector_spec(3)], continuous=2)
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, SAC_KWARGS)
    with torch.no_grad():  # a large mean, so that a clip or tanh would show
        policy.actor.action_model._continuous_distribution.mu.bias.fill_(5.0)
    path = export(policy, tmp_path)
    obs = random_obs(spec, 4, np.random.default_rng(0))
    result = run(path, {"obs_0": obs[0]})
    assert np.all(np.abs(result["continuous_actions"]) <= 1.0)
    cont, _, _ = torch_deterministic(policy, obs)  # raw mu, as upstream exports it
    assert np.all(cont > 3.0)
    np.testing.assert_allclose(result["deterministic_continuous_actions"], cont, rtol=1e-5)


def test_export_replaces_file_atomically_and_keeps_training_mode(tmp_path):
    spec = behavior_spec([vector_spec(3)], continuous=1)
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, PPO_KWARGS)
    target = tmp_path / "policy.onnx"
    target.write_bytes(b"old")
    policy.actor.train()
    export(policy, tmp_path)
    assert policy.actor.training
    onnx.checker.check_model(onnx.load(str(target)))
    assert [p.name for p in tmp_path.iterdir()] == ["policy.onnx"]  # no temp files left


def test_goal_conditioned_hypernetwork_exports_and_matches_torch(tmp_path):
    from mlagents_fast.envs.base_env import DimensionProperty, ObservationSpec, ObservationType
    from mlagents_fast.trainers.settings import ConditioningType
    from mlagents_fast.trainers.torch_entities.conditioning import ConditionalEncoder
    from mlagents_fast.trainers.torch_entities.layers import LinearEncoder

    torch.manual_seed(0)
    goal = ObservationSpec(
        shape=(2,),
        dimension_property=(DimensionProperty.NONE,),
        observation_type=ObservationType.GOAL_SIGNAL,
        name="goal",
    )
    spec = behavior_spec([vector_spec(4), goal], continuous=1, branches=(2,))
    hyper = TorchPolicy(0, spec, network_settings(), SimpleActor, PPO_KWARGS)
    body = hyper.actor.network_body._body_endoder
    assert isinstance(body, ConditionalEncoder)
    plain_settings = network_settings(goal_conditioning_type=ConditioningType.NONE)
    plain = TorchPolicy(0, spec, plain_settings, SimpleActor, PPO_KWARGS)
    assert isinstance(plain.actor.network_body._body_endoder, LinearEncoder)

    obs = random_obs(spec, 5, np.random.default_rng(0))
    # The goal changes the action even with the same other observation.
    other_goal = [obs[0], obs[1] + 1.0]
    first, _, _ = torch_deterministic(hyper, obs, np.ones((5, 2), np.float32))
    second, _, _ = torch_deterministic(hyper, other_goal, np.ones((5, 2), np.float32))
    assert not np.allclose(first, second)

    path = export(hyper, tmp_path)
    result = run(
        path, {"obs_0": obs[0], "obs_1": obs[1], "action_masks": np.ones((5, 2), np.float32)}
    )
    np.testing.assert_allclose(
        result["deterministic_continuous_actions"], first, rtol=1e-4, atol=1e-5
    )


def test_buffer_sensor_model_contract_and_padding(tmp_path):
    from mlagents_fast.envs.base_env import DimensionProperty, ObservationSpec, ObservationType

    torch.manual_seed(0)
    entities = ObservationSpec(
        shape=(6, 5),
        dimension_property=(DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
        observation_type=ObservationType.DEFAULT,
        name="BufferSensor",
    )
    spec = behavior_spec([vector_spec(4), entities], continuous=1, branches=(3,))
    policy = TorchPolicy(0, spec, network_settings(normalize=True), SimpleActor, PPO_KWARGS)
    path = export(policy, tmp_path)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    inputs = io_signature(model.graph.input)
    # Unity feeds a buffer sensor as [batch, max_entities, entity_size] under obs_<index>.
    assert inputs == {
        "obs_0": (1, ["batch", 4]),
        "obs_1": (1, ["batch", 6, 5]),
        "action_masks": (1, ["batch", 3]),
    }
    rng = np.random.default_rng(0)
    n = 5
    vector = rng.standard_normal((n, 4)).astype(np.float32)
    padded = np.zeros((n, 6, 5), np.float32)
    for row, count in enumerate([0, 1, 3, 6, 2]):
        padded[row, :count] = rng.standard_normal((count, 5)) + 0.5
    masks = np.ones((n, 3), np.float32)
    result = run(path, {"obs_0": vector, "obs_1": padded, "action_masks": masks})
    cont, disc, _ = torch_deterministic(policy, [vector, padded], masks)
    np.testing.assert_allclose(
        result["deterministic_continuous_actions"], cont, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(result["deterministic_discrete_actions"], disc)
    # Moving the real entities to other rows (padding in between) changes nothing in the graph.
    shuffled = padded[:, ::-1].copy()
    again = run(path, {"obs_0": vector, "obs_1": shuffled, "action_masks": masks})
    np.testing.assert_allclose(
        again["deterministic_continuous_actions"],
        result["deterministic_continuous_actions"],
        rtol=1e-4,
        atol=1e-5,
    )


def test_buffer_sensor_only_model_exports(tmp_path):
    from mlagents_fast.envs.base_env import DimensionProperty, ObservationSpec, ObservationType

    torch.manual_seed(0)
    entities = ObservationSpec(
        shape=(4, 3),
        dimension_property=(DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
        observation_type=ObservationType.DEFAULT,
        name="BufferSensor",
    )
    spec = behavior_spec([entities], branches=(2,))
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, PPO_KWARGS)
    path = export(policy, tmp_path)
    inputs = io_signature(onnx.load(path).graph.input)
    assert inputs == {"obs_0": (1, ["batch", 4, 3]), "action_masks": (1, ["batch", 2])}
    obs = np.random.default_rng(1).standard_normal((3, 4, 3)).astype(np.float32)
    obs[:, 2:] = 0.0
    masks = np.ones((3, 2), np.float32)
    result = run(path, {"obs_0": obs, "action_masks": masks})
    _, disc, _ = torch_deterministic(policy, [obs], masks)
    np.testing.assert_array_equal(result["deterministic_discrete_actions"], disc)
