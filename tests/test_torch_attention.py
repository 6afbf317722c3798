"""Variable-length observations: entity embedding, residual self-attention, masking of padded
entities, and the networks ObservationEncoder builds around them."""

import numpy as np
import pytest
import torch
from mlagents_fast.envs.base_env import DimensionProperty, ObservationSpec, ObservationType
from mlagents_fast.trainers.exception import UnityTrainerException
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.settings import PPOSettings, ScheduleType, TrainerSettings
from mlagents_fast.trainers.torch_entities.attention import (
    EntityEmbedding,
    ResidualSelfAttention,
    get_zero_entities_mask,
)
from mlagents_fast.trainers.torch_entities.model_serialization import exporting_to_onnx
from mlagents_fast.trainers.torch_entities.networks import NetworkBody, SimpleActor
from policy_fixtures import (
    behavior_spec,
    decision_steps,
    network_settings,
    single_thread_torch,
    training_batch,
    vector_spec,
)

single_thread_torch()

PPO_ROUNDS = 20


def entity_spec(max_entities: int, entity_size: int, name: str = "BufferSensor"):
    return ObservationSpec(
        shape=(max_entities, entity_size),
        dimension_property=(DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
        observation_type=ObservationType.DEFAULT,
        name=name,
    )


def padded_entities(rng, counts, max_entities, entity_size):
    """(batch, max_entities, entity_size) with ``counts[b]`` real rows first, zeros after."""
    out = np.zeros((len(counts), max_entities, entity_size), np.float32)
    for row, count in enumerate(counts):
        out[row, :count] = rng.standard_normal((count, entity_size)) + 0.5
    return out


def test_zero_entities_mask_marks_padding_rows():
    entities = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.05, 0.05]]])
    (mask,) = get_zero_entities_mask([entities])
    # Squared sum below 0.01 is padding: (0.05^2 * 2 = 0.005).
    np.testing.assert_array_equal(mask.numpy(), [[1.0, 0.0, 1.0]])
    assert mask.dtype == torch.float32 and not mask.requires_grad


def test_attention_ignores_padding_and_entity_order():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    embedding = EntityEmbedding(entity_size=5, entity_num_max_elements=6, embedding_size=16)
    attention = ResidualSelfAttention(16, 6, num_heads=4)
    entities = torch.from_numpy(padded_entities(rng, [3, 6, 1], 6, 5))
    with torch.no_grad():
        padded = attention(embedding(None, entities), get_zero_entities_mask([entities]))
        for row, count in enumerate([3, 6, 1]):
            # The same entities alone, no padding and no mask, through unbounded modules
            # that share the weights.
            alone_embedding = EntityEmbedding(5, None, 16)
            alone_embedding.load_state_dict(embedding.state_dict())
            alone_attention = ResidualSelfAttention(16, None, num_heads=4)
            alone_attention.load_state_dict(attention.state_dict())
            real = entities[row : row + 1, :count]
            no_mask = [torch.zeros(1, count)]
            alone = alone_attention(alone_embedding(None, real), no_mask)
            torch.testing.assert_close(padded[row : row + 1], alone, rtol=1e-5, atol=1e-5)
            # Shuffling the rows (padding included) changes nothing.
            order = torch.from_numpy(rng.permutation(6))
            shuffled = entities[row : row + 1, order]
            again = attention(embedding(None, shuffled), get_zero_entities_mask([shuffled]))
            torch.testing.assert_close(padded[row : row + 1], again, rtol=1e-5, atol=1e-5)


def test_attention_over_no_entity_is_zero():
    attention = ResidualSelfAttention(8, 3, num_heads=2)
    embedding = EntityEmbedding(4, 3, 8)
    entities = torch.zeros(2, 3, 4)
    with torch.no_grad():
        out = attention(embedding(None, entities), get_zero_entities_mask([entities]))
    torch.testing.assert_close(out, torch.zeros(2, 8))


def test_self_embedding_is_concatenated_to_every_entity():
    torch.manual_seed(1)
    embedding = EntityEmbedding(entity_size=3, entity_num_max_elements=4, embedding_size=8)
    embedding.add_self_embedding(2)
    x_self = torch.randn(5, 2)
    entities = torch.randn(5, 4, 3)
    layer = embedding.self_ent_encoder.seq_layers[0]
    assert layer.in_features == 5
    with torch.no_grad():
        out = embedding(x_self, entities)
        joined = torch.cat([x_self.unsqueeze(1).expand(5, 4, 2), entities], dim=2)
        expected = embedding.self_ent_encoder(joined)
    torch.testing.assert_close(out, expected)
    with pytest.raises(UnityTrainerException, match="x_self"):
        embedding(None, entities)


def test_unbounded_entities_refuse_to_export():
    embedding = EntityEmbedding(3, None, 8)
    attention = ResidualSelfAttention(8, None, num_heads=2)
    with exporting_to_onnx(), pytest.raises(UnityTrainerException, match="maximum number"):
        embedding(None, torch.ones(1, 2, 3))
    with exporting_to_onnx(), pytest.raises(UnityTrainerException, match="maximum number"):
        attention(torch.ones(1, 2, 8), [torch.zeros(1, 2)])


def test_network_body_appends_attention_after_fixed_size_encodings():
    torch.manual_seed(0)
    specs = [vector_spec(4), entity_spec(6, 5), entity_spec(3, 2, "other")]
    body = NetworkBody(specs, network_settings(hidden_units=16))
    encoder = body.observation_encoder
    assert encoder.total_enc_size == 4 + encoder.ATTENTION_EMBEDDING_SIZE
    assert encoder.rsa is not None and encoder.rsa.max_num_ent == 9
    assert encoder.x_self_encoder is not None
    # Every entity embedding sees the 128-wide self encoding.
    assert encoder.processors[1].self_ent_encoder.seq_layers[0].in_features == 128 + 5
    assert encoder.processors[2].self_ent_encoder.seq_layers[0].in_features == 128 + 2
    rng = np.random.default_rng(0)
    inputs = [
        torch.randn(3, 4),
        torch.from_numpy(padded_entities(rng, [2, 0, 6], 6, 5)),
        torch.from_numpy(padded_entities(rng, [1, 3, 0], 3, 2)),
    ]
    encoding, _ = body(inputs)
    assert encoding.shape == (3, 16) and torch.all(torch.isfinite(encoding))
    # A padding row that gets content becomes one more entity and changes the encoding.
    noisy = [inputs[0], inputs[1].clone(), inputs[2]]
    noisy[1][0, 4] = 3.0
    assert not torch.allclose(body(noisy)[0][0], encoding[0])


def test_only_variable_length_observations_need_no_self_encoder():
    body = NetworkBody([entity_spec(4, 3)], network_settings(hidden_units=8))
    encoder = body.observation_encoder
    assert encoder.x_self_encoder is None
    assert encoder.processors[0].self_size == 0
    assert encoder.total_enc_size == encoder.ATTENTION_EMBEDDING_SIZE
    encoding, _ = body([torch.randn(2, 4, 3)])
    assert encoding.shape == (2, 8)


def test_unsupported_rank_or_properties_are_refused():
    bad = ObservationSpec(
        shape=(4, 3),
        dimension_property=(DimensionProperty.NONE, DimensionProperty.NONE),
        observation_type=ObservationType.DEFAULT,
        name="matrix",
    )
    with pytest.raises(UnityTrainerException, match="Unsupported Sensor"):
        NetworkBody([bad], network_settings())


def test_variable_length_goal_signal_is_refused_when_encoding_goals():
    goal = ObservationSpec(
        shape=(4, 3),
        dimension_property=(DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
        observation_type=ObservationType.GOAL_SIGNAL,
        name="goals",
    )
    body = NetworkBody([vector_spec(2), goal], network_settings())
    with pytest.raises(UnityTrainerException, match="variable length"):
        body.observation_encoder.get_goal_encoding([torch.randn(1, 2), torch.randn(1, 4, 3)])


def test_ppo_learns_to_act_on_the_marked_entity():
    """A one-step task only the entities can solve: three entities (marker, one-hot id) in
    random slots among padding, one of them marked; the advantage favours the action that
    names the marked entity's id."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = behavior_spec([vector_spec(1), entity_spec(5, 4)], branches=(3,))
    settings = TrainerSettings(
        trainer_type="ppo",
        hyperparameters=PPOSettings(
            batch_size=128,
            buffer_size=128,
            learning_rate=3e-3,
            learning_rate_schedule=ScheduleType.CONSTANT,
        ),
        network_settings=network_settings(hidden_units=32),
        max_steps=10_000,
    )
    policy = TorchPolicy(0, spec, settings.network_settings, SimpleActor, {})
    optimizer = TorchPPOOptimizer(policy, settings)

    def sample(n):
        entities = np.zeros((n, 5, 4), np.float32)
        marked = rng.integers(0, 3, n)
        for row in range(n):
            for ident, slot in enumerate(rng.permutation(5)[:3]):
                entities[row, slot, 0] = float(ident == marked[row])
                entities[row, slot, 1 + ident] = 1.0
        return [np.ones((n, 1), np.float32), entities], marked

    def accuracy():
        obs, marked = sample(300)
        with torch.no_grad():
            chosen = policy.get_action(decision_steps(spec, obs)).action.discrete[:, 0]
        return float(np.mean(chosen == marked))

    before = accuracy()
    for _ in range(PPO_ROUNDS):
        obs, marked = sample(128)
        info = policy.get_action(decision_steps(spec, obs))
        chosen = info.action.discrete[:, 0]
        advantages = np.where(chosen == marked, 1.0, -0.5).astype(np.float32)
        batch = training_batch(
            spec,
            obs,
            None,
            info.action.discrete,
            None,
            info.outputs["log_probs"].discrete,
            advantages,
            {"extrinsic": advantages},
            {"extrinsic": np.zeros(128, np.float32)},
        )
        optimizer.update(batch, num_sequences=128)
    after = accuracy()
    assert before < 0.5
    assert after > 0.9, (before, after)


def test_training_kernels_match_the_exported_graph():
    """Training uses a fused layer norm and broadcasts the self part of the entity embedding;
    the export writes ML-Agents' operators. Both give the same encoding and gradients."""
    torch.manual_seed(2)
    body = NetworkBody([vector_spec(3), entity_spec(6, 5)], network_settings(hidden_units=8))
    rng = np.random.default_rng(3)
    inputs = [torch.randn(4, 3), torch.from_numpy(padded_entities(rng, [0, 2, 6, 4], 6, 5))]

    def encode_and_grads():
        body.zero_grad()
        encoding, _ = body(inputs)
        encoding.square().sum().backward()
        return encoding.detach(), [p.grad.clone() for p in body.parameters()]

    fast, fast_grads = encode_and_grads()
    with exporting_to_onnx():
        exported, exported_grads = encode_and_grads()
    torch.testing.assert_close(fast, exported, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(fast_grads, exported_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)
