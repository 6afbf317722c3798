"""The Rust wire codec against golden messages built with protobuf classes generated from protos/.

The reference for PNG decoding is a plain PIL + numpy re-statement of docs/protocol.md section 6
(``reference_process_pixels``), independent of the Rust code.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from mlagents_fast import _native
from mlagents_fast.envs import rpc_utils
from mlagents_fast.envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)
from mlagents_fast.envs.exception import (
    UnityCommunicationException,
    UnityMessageDecodeException,
    UnityNonFiniteValueException,
    UnityObservationException,
)
from mlagents_fast.envs.rpc_utils import (
    behavior_spec_from_decoded,
    decode_output,
    steps_from_decoded,
)
from mlagents_fast.exceptions import MessageDecodeError, MlagentsFastError
from PIL import Image
from proto_golden import (
    agent,
    agent_pb2,
    brain,
    brain_parameters_pb2,
    observation_pb2,
    unity_message,
    unity_message_pb2,
    vector_obs,
)

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def decode_behavior(data, specs=None):
    decoded = decode_output(data, specs or {})
    return decoded, {b.name: b for b in decoded.behaviors}


def test_protocol_b5_example():
    """docs/protocol.md section 5: cont 1 + branch (3); agent 7; obs [0.5,-0.5]; mask [F,T,F]."""
    first = unity_message(
        {"Ex?team=0": [agent(7, [vector_obs([0.5, -0.5])], mask=[False, True, False])]},
        brains=[brain("Ex?team=0", continuous=1, branches=(3,))],
    )
    decoded, behaviors = decode_behavior(first)
    assert decoded.status == 200 and decoded.has_output
    spec = behavior_spec_from_decoded(behaviors["Ex?team=0"].new_spec)
    assert spec.action_spec == ActionSpec(1, (3,))
    assert spec.observation_specs == [
        ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "VectorSensor")
    ]
    decision, terminal = steps_from_decoded(behaviors["Ex?team=0"])
    np.testing.assert_array_equal(decision.agent_id, [7])
    assert decision.agent_id.dtype == np.int32
    np.testing.assert_array_equal(decision.obs[0], [[0.5, -0.5]])
    assert decision.obs[0].dtype == np.float32
    assert len(decision.action_mask) == 1
    np.testing.assert_array_equal(decision.action_mask[0], [[False, True, False]])
    assert len(terminal) == 0 and terminal.obs[0].shape == (0, 2)

    second = unity_message(
        {"Ex?team=0": [agent(7, [vector_obs([0.0, 0.0])], reward=1.0, done=True, max_step=True)]}
    )
    _, behaviors = decode_behavior(second, {"Ex?team=0": spec})
    assert behaviors["Ex?team=0"].new_spec is None  # already known: no new spec
    decision, terminal = steps_from_decoded(behaviors["Ex?team=0"])
    np.testing.assert_array_equal(terminal.agent_id, [7])
    np.testing.assert_array_equal(terminal.reward, [1.0])
    np.testing.assert_array_equal(terminal.interrupted, [True])
    assert decision.action_mask is None and len(decision) == 0


def test_decoded_results_are_named_read_only_types():
    data = unity_message(
        {"Ex": [agent(7, [vector_obs([0.5, -0.5])], mask=[False, True, False])]},
        brains=[brain("Ex", continuous=1, branches=(3,))],
        side_channel=b"\x05",
    )
    decoded = decode_output(data, {})
    assert isinstance(decoded, rpc_utils.DecodedOutput)
    assert (decoded.status, decoded.has_output, decoded.side_channel) == (200, True, b"\x05")
    (behavior,) = decoded.behaviors
    assert isinstance(behavior, rpc_utils.DecodedBehavior) and behavior.name == "Ex"
    assert behavior.discrete_branches == (3,)
    np.testing.assert_array_equal(behavior.action_mask, [[False, True, False]])
    spec = behavior.new_spec
    assert isinstance(spec, rpc_utils.DecodedSpec)
    assert (spec.continuous_size, spec.discrete_branches) == (1, (3,))
    (observation,) = spec.observations
    assert isinstance(observation, rpc_utils.DecodedObservation)
    assert (observation.shape, observation.name) == ((2,), "VectorSensor")
    assert isinstance(observation.observation_type, int)
    decision, terminal = behavior.decision, behavior.terminal
    assert isinstance(decision, rpc_utils.DecodedSteps)
    assert (len(decision), len(terminal)) == (1, 0)
    np.testing.assert_array_equal(decision.obs[0], [[0.5, -0.5]])
    assert decision.agent_id.dtype == np.int32 and decision.interrupted.dtype == np.bool_
    brains = decoded.init_output.brain_parameters
    assert [type(b) for b in brains] == [rpc_utils.DecodedBrainParameters]
    assert (brains[0].brain_name, brains[0].continuous_size) == ("Ex", 1)
    assert "name='Ex'" in repr(behavior) and "<1 agents>" in repr(behavior)
    assert "shape=(2,)" in repr(spec)
    for frozen, attribute in ((decoded, "status"), (behavior, "name"), (decision, "reward")):
        with pytest.raises(AttributeError):
            setattr(frozen, attribute, None)


def test_many_agents_split_masks_groups_and_two_behaviors():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(6, 4)).astype(np.float32)
    done = [False, True, False, False, True, False]
    masks = [[True, False, False, True, False], [], [], [False] * 5, [], [True] * 5]
    agents = [
        agent(
            i * 10,
            [vector_obs(values[i]), vector_obs([float(i)], "second")],
            reward=float(i),
            done=done[i],
            max_step=(i == 4),
            mask=masks[i],
            group=i % 2,
            group_reward=0.5 * i,
        )
        for i in range(6)
    ]
    other = [agent(99, [vector_obs([1.0, 2.0, 3.0])])]
    data = unity_message(
        {"A": agents, "B": other},
        brains=[brain("A", branches=(3, 2)), brain("B", continuous=2)],
        side_channel=b"\x01\x02",
    )
    decoded, behaviors = decode_behavior(data)
    assert decoded.side_channel == b"\x01\x02"
    decision, terminal = steps_from_decoded(behaviors["A"])
    decision_rows = [i for i in range(6) if not done[i]]
    terminal_rows = [i for i in range(6) if done[i]]
    np.testing.assert_array_equal(decision.agent_id, [10 * i for i in decision_rows])
    np.testing.assert_array_equal(decision.obs[0], values[decision_rows])
    np.testing.assert_array_equal(decision.obs[1], [[float(i)] for i in decision_rows])
    np.testing.assert_array_equal(decision.reward, decision_rows)
    np.testing.assert_array_equal(decision.group_id, [i % 2 for i in decision_rows])
    np.testing.assert_allclose(decision.group_reward, [0.5 * i for i in decision_rows])
    # Agents without a full-length mask mask nothing; masks are split per branch.
    expected_mask = np.array(
        [masks[i] if len(masks[i]) == 5 else [False] * 5 for i in decision_rows]
    )
    assert [m.shape for m in decision.action_mask] == [(4, 3), (4, 2)]
    np.testing.assert_array_equal(np.concatenate(decision.action_mask, axis=1), expected_mask)
    np.testing.assert_array_equal(terminal.agent_id, [10 * i for i in terminal_rows])
    np.testing.assert_array_equal(terminal.interrupted, [False, True])
    np.testing.assert_array_equal(terminal.obs[0], values[terminal_rows])
    b_decision, _ = steps_from_decoded(behaviors["B"])
    assert b_decision.action_mask is None
    np.testing.assert_array_equal(b_decision.obs[0], [[1.0, 2.0, 3.0]])


def test_unannounced_behavior_ignored_and_brain_without_agents_not_announced():
    data = unity_message({"Ghost": [agent(1, [vector_obs([1.0])])]}, brains=[brain("Lonely", 1)])
    decoded, behaviors = decode_behavior(data)
    assert behaviors == {}
    assert [b.brain_name for b in decoded.init_output.brain_parameters] == ["Lonely"]


def test_deprecated_brain_parameters_fallback():
    continuous = brain_parameters_pb2.BrainParametersProto(
        brain_name="Old", vector_action_size_deprecated=[2], vector_action_space_type_deprecated=1
    )
    discrete = brain_parameters_pb2.BrainParametersProto(
        brain_name="OldD", vector_action_size_deprecated=[3, 4]
    )
    data = unity_message(
        {"Old": [agent(1, [vector_obs([0.0])])], "OldD": [agent(2, [vector_obs([0.0])])]},
        brains=[continuous, discrete],
    )
    _, behaviors = decode_behavior(data)
    assert behavior_spec_from_decoded(behaviors["Old"].new_spec).action_spec == ActionSpec(2, ())
    assert behavior_spec_from_decoded(behaviors["OldD"].new_spec).action_spec == ActionSpec(
        0, (3, 4)
    )


def test_init_output_fields():
    message = unity_message_pb2.UnityMessageProto()
    message.header.status = 200
    init = message.unity_output.rl_initialization_output
    init.name = "AcademySingleton"
    init.communication_version = "1.5.0"
    init.package_version = "3.0.0"
    init.capabilities.baseRLCapabilities = True
    init.capabilities.multiAgentGroups = True
    decoded = _native.decode_unity_output(message.SerializeToString(), [])
    assert decoded.init_output.name == "AcademySingleton"
    assert decoded.init_output.communication_version == "1.5.0"
    assert decoded.init_output.package_version == "3.0.0"
    assert decoded.init_output.capabilities == (True, False, False, False, False, False, True)
    assert decoded.behaviors == []


def test_empty_output_and_close_status():
    empty = unity_message_pb2.UnityMessageProto(header=unity_message_pb2.HeaderProto(status=200))
    decoded = _native.decode_unity_output(empty.SerializeToString(), [])
    assert decoded.status == 200 and not decoded.has_output
    closing = unity_message_pb2.UnityMessageProto(header=unity_message_pb2.HeaderProto(status=400))
    assert _native.decode_unity_output(closing.SerializeToString(), []).status == 400


# ---------------------------------------------------------------- visual observations


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG of an HWC uint8 array (1, 3 or 4 channels)."""
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    image = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def reference_process_pixels(image_bytes: bytes, expected_channels: int, mapping) -> np.ndarray:
    """docs/protocol.md section 6 PNG rule, restated with PIL + numpy."""
    starts = []
    position = image_bytes.find(PNG_HEADER)
    while position != -1:
        starts.append(position)
        position = image_bytes.find(PNG_HEADER, position + 1)
    arrays = []
    for start, end in zip(starts, starts[1:] + [len(image_bytes)], strict=True):
        pixels = np.asarray(Image.open(io.BytesIO(image_bytes[start:end])), dtype=np.float32)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        arrays.append(np.moveaxis(pixels / 255.0, -1, 0))
    if mapping:
        channels = np.concatenate(arrays, axis=0)
        out = [[] for _ in range(max(mapping) + 1)]
        for target, channel in zip(mapping, channels, strict=True):
            if target > -1:
                out[target].append(channel)
        return np.stack([np.mean(group, axis=0) for group in out], axis=0)
    if expected_channels == 1:
        return np.mean(arrays[0], axis=0, keepdims=True)
    return np.concatenate(arrays, axis=0)[:expected_channels]


def visual_obs(shape, compressed, mapping=()):
    return observation_pb2.ObservationProto(
        shape=list(shape),
        compression_type=observation_pb2.PNG,
        compressed_data=compressed,
        compressed_channel_mapping=list(mapping),
        dimension_properties=[1, 2, 2],
        name="CameraSensor",
    )


@pytest.mark.parametrize(
    ("channels_per_image", "expected_shape", "mapping"),
    [
        ([3], (3, 6, 5), ()),
        ([3], (1, 6, 5), ()),  # grayscale mean
        ([4], (4, 6, 5), ()),  # RGBA
        ([3, 3], (5, 6, 5), ()),  # concatenated, one padding channel dropped
        ([3, 3], (2, 6, 5), (0, 0, -1, 1, 1, 1)),  # channel mapping with averaging and a drop
        ([1], (1, 6, 5), ()),
    ],
)
def test_png_observations_match_reference(channels_per_image, expected_shape, mapping):
    rng = np.random.default_rng(sum(channels_per_image) + len(mapping))
    agents, references = [], []
    for agent_id in range(4):
        data = b"".join(
            png_bytes(rng.integers(0, 256, size=(6, 5, c), dtype=np.uint8))
            for c in channels_per_image
        )
        agents.append(agent(agent_id, [visual_obs(expected_shape, data, mapping)]))
        references.append(reference_process_pixels(data, expected_shape[0], list(mapping)))
    _, behaviors = decode_behavior(unity_message({"V": agents}, brains=[brain("V", 1)]))
    decision, _ = steps_from_decoded(behaviors["V"])
    assert decision.obs[0].shape == (4, *expected_shape)
    np.testing.assert_allclose(decision.obs[0], np.stack(references), rtol=0, atol=1e-6)


def test_uncompressed_rank3_and_wrong_png_shape():
    floats = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    obs = observation_pb2.ObservationProto(shape=[2, 3, 4], name="grid")
    obs.float_data.data.extend(floats.ravel())
    _, behaviors = decode_behavior(unity_message({"G": [agent(1, [obs])]}, brains=[brain("G", 1)]))
    decision, _ = steps_from_decoded(behaviors["G"])
    np.testing.assert_array_equal(decision.obs[0], floats[None])
    spec = behavior_spec_from_decoded(behaviors["G"].new_spec)
    assert spec.observation_specs[0].dimension_property == (DimensionProperty.UNSPECIFIED,) * 3

    image = png_bytes(np.zeros((4, 4, 3), dtype=np.uint8))
    bad = unity_message({"V": [agent(1, [visual_obs((3, 5, 5), image)])]}, brains=[brain("V", 1)])
    with pytest.raises(UnityObservationException, match="did not have the expected shape"):
        decode_output(bad, {})
    corrupt = image[:20] + bytes(b ^ 0x5A for b in image[20:40]) + image[40:]
    bad = unity_message({"V": [agent(1, [visual_obs((3, 4, 4), corrupt)])]}, brains=[brain("V", 1)])
    with pytest.raises(UnityObservationException, match="PNG"):
        decode_output(bad, {})


# ---------------------------------------------------------------- errors


def test_nan_and_inf_raise_runtime_errors_like_mlagents():
    nan_obs = unity_message({"A": [agent(1, [vector_obs([math.nan])])]}, brains=[brain("A", 1)])
    with pytest.raises(UnityNonFiniteValueException, match="observations provided had NaN"):
        decode_output(nan_obs, {})
    with pytest.raises(RuntimeError):
        decode_output(nan_obs, {})
    inf_reward = unity_message(
        {"A": [agent(1, [vector_obs([0.0])], reward=math.inf)]}, brains=[brain("A", 1)]
    )
    with pytest.raises(UnityNonFiniteValueException, match="rewards provided had Infinite"):
        decode_output(inf_reward, {})
    nan_group = unity_message(
        {"A": [agent(1, [vector_obs([0.0])], group_reward=math.nan)]}, brains=[brain("A", 1)]
    )
    with pytest.raises(UnityNonFiniteValueException, match="group_rewards"):
        decode_output(nan_group, {})


def test_observation_size_mismatch_names_agent():
    spec = BehaviorSpec(
        [ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "v")],
        ActionSpec(1, ()),
    )
    data = unity_message(
        {"A": [agent(1, [vector_obs([0.0, 1.0, 2.0])]), agent(5, [vector_obs([0.0])])]}
    )
    with pytest.raises(UnityObservationException, match="agent with id=5"):
        decode_output(data, {"A": spec})
    missing = unity_message({"A": [agent(3, [])]})
    with pytest.raises(UnityObservationException, match="index=0"):
        decode_output(missing, {"A": spec})


def test_truncated_and_malformed_bytes_raise_clear_errors():
    rng = np.random.default_rng(0)
    data = unity_message(
        {
            "A": [
                agent(i, [vector_obs(rng.normal(size=3).tolist())], mask=[True, False])
                for i in range(3)
            ]
        },
        brains=[brain("A", branches=(2,))],
        side_channel=b"abc",
    )
    decode_output(data, {})
    failures = 0
    for cut in range(len(data)):
        try:
            decode_output(data[:cut], {})
        except MlagentsFastError:
            failures += 1
    # Every strict prefix that ends inside a field is an error (some cuts end on a field boundary).
    assert failures > len(data) // 2
    with pytest.raises(UnityMessageDecodeException, match="runs past the end"):
        decode_output(data[:-1], {})
    assert issubclass(UnityMessageDecodeException, MessageDecodeError)
    assert issubclass(UnityMessageDecodeException, UnityCommunicationException)
    for garbage in (b"\xff" * 12, b"\x0b", b"\x0a\x05\x08", bytes(range(256))):
        with pytest.raises(MessageDecodeError):
            _native.decode_unity_output(garbage, [])
    with pytest.raises(TypeError):
        _native.decode_unity_output("not bytes", [])


def test_unknown_fields_are_skipped():
    known = unity_message({"A": [agent(1, [vector_obs([2.0])])]}, brains=[brain("A", 1)])
    # Append an unknown varint field 15 and an unknown length-delimited field 16 to the envelope.
    extended = known + b"\x78\x05" + b"\x82\x01\x03xyz"
    _, behaviors = decode_behavior(extended)
    decision, _ = steps_from_decoded(behaviors["A"])
    np.testing.assert_array_equal(decision.obs[0], [[2.0]])


# ---------------------------------------------------------------- encoders


def test_init_input_bytes_match_protocol_and_protobuf():
    ours = _native.encode_init_input(42, "1.5.0", "1.1.0", [True] * 7, 1)
    expected = bytes.fromhex(
        "0a0308c801"
        "1a24"
        "1222"
        "082a"
        "1205" + b"1.5.0".hex() + "1a05" + b"1.1.0".hex() + "220e"
        "0801100118012001280130013801"
        "2801"
    )
    assert ours == expected
    message = unity_message_pb2.UnityMessageProto()
    message.header.status = 200
    init = message.unity_input.rl_initialization_input
    init.seed, init.communication_version, init.package_version, init.num_areas = (
        42,
        "1.5.0",
        "1.1.0",
        1,
    )
    for flag in (
        "baseRLCapabilities",
        "concatenatedPngObservations",
        "compressedChannelMapping",
        "hybridActions",
        "trainingAnalytics",
        "variableLengthObservation",
        "multiAgentGroups",
    ):
        setattr(init.capabilities, flag, True)
    assert message.SerializeToString() == ours


def test_rl_input_parsed_by_protobuf():
    continuous = np.array([[0.25], [-1.0]], dtype=np.float32)
    discrete = np.array([[2], [0]], dtype=np.int32)
    data = _native.encode_rl_input(
        0,
        b"side",
        [
            ("A?team=0", continuous, discrete),
            ("Idle", np.zeros((0, 1), np.float32), np.zeros((0, 0), np.int32)),
        ],
    )
    message = unity_message_pb2.UnityMessageProto.FromString(data)
    assert message.header.status == 200
    rl_input = message.unity_input.rl_input
    assert rl_input.command == unity_message_pb2.STEP
    assert rl_input.side_channel == b"side"
    assert list(rl_input.agent_actions) == ["A?team=0"]  # behaviors without agents are skipped
    actions = rl_input.agent_actions["A?team=0"].value
    assert list(actions[0].vector_actions_deprecated) == [0.25, 2.0]
    assert list(actions[0].continuous_actions) == [0.25]
    assert list(actions[0].discrete_actions) == [2]
    assert list(actions[1].continuous_actions) == [-1.0]
    reset = unity_message_pb2.UnityMessageProto.FromString(_native.encode_rl_input(1, b"", []))
    assert reset.unity_input.rl_input.command == unity_message_pb2.RESET
    assert reset.unity_input.HasField("rl_input")
    assert _native.encode_close() == bytes.fromhex("0a03089003")


def test_rl_input_rejects_wrong_dtypes_and_shapes():
    with pytest.raises(ValueError, match=r"continuous.*float32"):
        _native.encode_rl_input(0, b"", [("A", np.zeros((2, 1)), np.zeros((2, 0), np.int32))])
    with pytest.raises(ValueError, match="discrete"):
        _native.encode_rl_input(
            0, b"", [("A", np.zeros((2, 1), np.float32), np.zeros((3, 1), np.int32))]
        )


def test_host_output_encoder_parsed_by_protobuf_and_decoder():
    obs = np.arange(6, dtype=np.float32).reshape(3, 2)
    batch = {
        "name": "H?team=0",
        "agent_id": np.array([1, 2, 3], np.int32),
        "reward": np.array([0.0, 1.5, -1.0], np.float32),
        "done": np.array([False, True, False]),
        "max_step_reached": np.array([False, True, False]),
        "group_id": np.zeros(3, np.int32),
        "group_reward": np.zeros(3, np.float32),
        "observations": [(obs, (1,), 0, "VectorSensor_size2")],
        "action_mask": np.array([[False, True], [False, False], [False, False]]),
    }
    init = {
        "name": "AcademySingleton",
        "communication_version": "1.5.0",
        "package_version": "mlagents-fast",
        "capabilities": (True,) * 7,
        "brain_parameters": [
            {"brain_name": "H?team=0", "continuous_size": 0, "discrete_branches": (2,)}
        ],
    }
    data = _native.encode_unity_output(200, True, init, [batch], b"sc")
    message = unity_message_pb2.UnityMessageProto.FromString(data)
    infos = message.unity_output.rl_output.agentInfos["H?team=0"].value
    assert [i.id for i in infos] == [1, 2, 3]
    assert list(infos[0].action_mask) == [False, True]
    assert list(infos[1].action_mask) == []  # nothing masked: no mask sent, as Unity does
    assert list(infos[2].observations[0].float_data.data) == [4.0, 5.0]
    assert infos[1].done and infos[1].max_step_reached and infos[1].reward == 1.5
    brain_params = message.unity_output.rl_initialization_output.brain_parameters[0]
    assert brain_params.action_spec.discrete_branch_sizes == [2]
    assert message.unity_output.rl_output.side_channel == b"sc"
    _, behaviors = decode_behavior(data)
    decision, terminal = steps_from_decoded(behaviors["H?team=0"])
    np.testing.assert_array_equal(decision.obs[0], obs[[0, 2]])
    np.testing.assert_array_equal(terminal.reward, [1.5])
    handshake_two = _native.encode_unity_output(200, False, None, [], b"")
    assert handshake_two == bytes.fromhex("0a0308c801")
    with pytest.raises(ValueError, match=r"reward"):
        _native.encode_unity_output(
            200, True, None, [{**batch, "reward": np.zeros(2, np.float32)}], b""
        )


def test_input_decoder_reads_protobuf_built_actions():
    message = unity_message_pb2.UnityMessageProto()
    message.header.status = 200
    rl_input = message.unity_input.rl_input
    rl_input.command = unity_message_pb2.RESET
    rl_input.side_channel = b"xy"
    for values in ([0.5, 1.0], [2.0, 3.0]):
        rl_input.agent_actions["B"].value.append(
            agent_pb2.AgentActionProto(continuous_actions=values, discrete_actions=[1])
        )
    decoded = _native.decode_unity_input(message.SerializeToString())
    assert decoded["status"] == 200 and decoded["init_input"] is None
    assert decoded["rl_input"]["command"] == 1 and decoded["rl_input"]["side_channel"] == b"xy"
    continuous, discrete = decoded["rl_input"]["actions"]["B"]
    np.testing.assert_array_equal(continuous, [[0.5, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(discrete, [[1], [1]])
    assert continuous.dtype == np.float32 and discrete.dtype == np.int32
    init = _native.decode_unity_input(_native.encode_init_input(7, "1.5.0", "1.1.0", [True] * 7, 2))
    assert init["init_input"]["seed"] == 7 and init["init_input"]["num_areas"] == 2
