"""Protobuf classes at ML-Agents' paths (envs.communicator_objects) and rpc_utils' proto API.

Code written against ``mlagents_envs`` builds and reads Unity messages with these classes;
the messages must carry the same fields as ML-Agents' (so bytes travel both ways), the
committed modules must match ``protos/``, and ``steps_from_proto`` /
``behavior_spec_from_proto`` must give what ML-Agents gives.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from mlagents_fast.envs.base_env import ActionSpec, BehaviorSpec, DimensionProperty
from mlagents_fast.envs.communicator_objects.agent_info_pb2 import AgentInfoProto
from mlagents_fast.envs.communicator_objects.brain_parameters_pb2 import (
    ActionSpecProto,
    BrainParametersProto,
)
from mlagents_fast.envs.communicator_objects.observation_pb2 import (
    PNG,
    ObservationProto,
)
from mlagents_fast.envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_fast.envs.exception import UnityObservationException
from mlagents_fast.envs.rpc_utils import behavior_spec_from_proto, steps_from_proto
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PYTHON_ROOT = ROOT / "python"
PACKAGE = "mlagents_fast.envs.communicator_objects"
ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)
needs_anchor = pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(), reason="ML-Agents 1.1.0 anchor venv not built"
)

# What each of ML-Agents 1.1.0's communicator_objects modules offers user code.
ML_AGENTS_MODULES = {
    "agent_action_pb2": ["AgentActionProto"],
    "agent_info_action_pair_pb2": ["AgentInfoActionPairProto"],
    "agent_info_pb2": ["AgentInfoProto"],
    "brain_parameters_pb2": ["ActionSpecProto", "BrainParametersProto"],
    "capabilities_pb2": ["UnityRLCapabilitiesProto"],
    "command_pb2": ["CommandProto", "QUIT", "RESET", "STEP"],
    "custom_reset_parameters_pb2": ["CustomResetParametersProto"],
    "demonstration_meta_pb2": ["DemonstrationMetaProto"],
    "engine_configuration_pb2": ["EngineConfigurationProto"],
    "header_pb2": ["HeaderProto"],
    "observation_pb2": [
        "CompressionTypeProto",
        "DEFAULT",
        "GOAL_SIGNAL",
        "NONE",
        "ObservationProto",
        "ObservationTypeProto",
        "PNG",
    ],
    "space_type_pb2": ["SpaceTypeProto", "continuous", "discrete"],
    "training_analytics_pb2": ["TrainingBehaviorInitialized", "TrainingEnvironmentInitialized"],
    "unity_input_pb2": ["UnityInputProto"],
    "unity_message_pb2": ["UnityMessageProto"],
    "unity_output_pb2": ["UnityOutputProto"],
    "unity_rl_initialization_input_pb2": ["UnityRLInitializationInputProto"],
    "unity_rl_initialization_output_pb2": ["UnityRLInitializationOutputProto"],
    "unity_rl_input_pb2": ["UnityRLInputProto"],
    "unity_rl_output_pb2": ["UnityRLOutputProto"],
    "unity_to_external_pb2_grpc": [
        "UnityToExternalProtoServicer",
        "UnityToExternalProtoStub",
        "add_UnityToExternalProtoServicer_to_server",
    ],
}


@pytest.mark.parametrize("module_name", sorted(ML_AGENTS_MODULES))
def test_ml_agents_module_paths_offer_their_messages(module_name):
    module = importlib.import_module(f"{PACKAGE}.{module_name}")
    for name in ML_AGENTS_MODULES[module_name]:
        value = getattr(module, name)
        if hasattr(value, "DESCRIPTOR") and isinstance(value, type):
            # A message class: an empty message survives serialization.
            assert value.FromString(value().SerializeToString()) == value()


def test_messages_built_at_ml_agents_paths_round_trip():
    from mlagents_fast.envs.communicator_objects.command_pb2 import RESET
    from mlagents_fast.envs.communicator_objects.unity_rl_input_pb2 import UnityRLInputProto

    rl_input = UnityRLInputProto(command=RESET, side_channel=b"\x01\x02")
    rl_input.agent_actions["Ball?team=0"].value.add(continuous_actions=[0.5, -1.0])
    parsed = UnityRLInputProto.FromString(rl_input.SerializeToString())
    assert parsed.command == RESET and parsed.side_channel == b"\x01\x02"
    assert list(parsed.agent_actions["Ball?team=0"].value[0].continuous_actions) == [0.5, -1.0]


def without_json_names(messages):
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        without_json_names(message.nested_type)


def test_generated_modules_match_the_protos(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools (dev extra) missing")
    proto_root = ROOT / "protos"
    protos = sorted(
        str(p.relative_to(proto_root)) for p in proto_root.rglob("communicator_objects/*.proto")
    )
    out = tmp_path / "protos.desc"
    assert protoc.main(["protoc", f"-I{proto_root}", f"--descriptor_set_out={out}", *protos]) == 0
    expected = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    assert len(expected.file) == len(protos) == 5
    for file_proto in expected.file:
        without_json_names(file_proto.message_type)  # generated code leaves them out
        stem = Path(file_proto.name).stem
        module = importlib.import_module(f"{PACKAGE}.{stem}_pb2")
        committed = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        assert committed == file_proto, f"{stem}_pb2.py is stale: run python protos/generate.py"


def test_generated_modules_carry_no_protoc_runtime_pin(tmp_path):
    pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools (dev extra) missing")
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), str(tmp_path)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    generated = sorted((tmp_path / "mlagents_fast/envs/communicator_objects").glob("*_pb2.py"))
    assert len(generated) == 5
    for path in generated:
        text = path.read_text()
        assert "_runtime_version" not in text and "Protobuf Python Version" not in text
        assert "AddSerializedFile" in text
    # The committed type stubs (what mypy reads) are the ones protoc writes for these protos.
    for path in generated:
        stub = path.with_suffix(".pyi")
        committed = PYTHON_ROOT / stub.relative_to(tmp_path)
        assert committed.read_text() == stub.read_text(), f"{committed.name} is stale"


class EchoServicer:
    """Answers every Exchange with the request's header status plus one."""

    def Exchange(self, request, context):
        answer = UnityMessageProto()
        answer.header.status = request.header.status + 1
        return answer


def test_grpc_stub_and_servicer_exchange_messages():
    from concurrent import futures

    from mlagents_fast.envs.communicator_objects import unity_to_external_pb2_grpc as service

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = type("Servicer", (EchoServicer, service.UnityToExternalProtoServicer), {})()
    service.add_UnityToExternalProtoServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = service.UnityToExternalProtoStub(channel)
            request = UnityMessageProto()
            request.header.status = 200
            assert stub.Exchange(request, timeout=10).header.status == 201
    finally:
        server.stop(None)


# --- rpc_utils ------------------------------------------------------------------------------


def vector_agent(agent_id, values, **fields):
    obs = ObservationProto(shape=[len(values)], dimension_properties=[1])
    obs.float_data.data.extend(values)
    return AgentInfoProto(id=agent_id, observations=[obs], **fields)


def png_bytes(pixels):
    import io

    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def test_behavior_spec_from_proto_reads_action_spec_and_observations():
    brain = BrainParametersProto(
        brain_name="Walker",
        action_spec=ActionSpecProto(
            num_continuous_actions=2, num_discrete_actions=2, discrete_branch_sizes=[3, 2]
        ),
    )
    spec = behavior_spec_from_proto(brain, vector_agent(0, [0.0, 1.0, 2.0]))
    assert spec.action_spec == ActionSpec(2, (3, 2))
    assert spec.observation_specs[0].shape == (3,)
    assert spec.observation_specs[0].dimension_property == (DimensionProperty.NONE,)


def test_behavior_spec_from_proto_falls_back_to_the_deprecated_action_fields():
    agent = vector_agent(0, [1.0])
    continuous = BrainParametersProto(
        vector_action_size_deprecated=[4], vector_action_space_type_deprecated=1
    )
    discrete = BrainParametersProto(
        vector_action_size_deprecated=[3, 2], vector_action_space_type_deprecated=0
    )
    assert behavior_spec_from_proto(continuous, agent).action_spec == ActionSpec(4, ())
    assert behavior_spec_from_proto(discrete, agent).action_spec == ActionSpec(0, (3, 2))


def test_steps_from_proto_splits_done_agents_and_masks_actions():
    spec = BehaviorSpec(
        behavior_spec_from_proto(
            BrainParametersProto(
                action_spec=ActionSpecProto(num_discrete_actions=2, discrete_branch_sizes=[2, 3])
            ),
            vector_agent(0, [0.0, 0.0]),
        ).observation_specs,
        ActionSpec(0, (2, 3)),
    )
    agents = [
        vector_agent(4, [1.0, 2.0], reward=0.5, action_mask=[True, False, False, False, True]),
        vector_agent(7, [3.0, 4.0], reward=-1.0, done=True, max_step_reached=True),
        vector_agent(9, [5.0, 6.0], reward=2.0, group_id=3, group_reward=0.25),
    ]
    decision, terminal = steps_from_proto(agents, spec)
    np.testing.assert_array_equal(decision.agent_id, [4, 9])
    np.testing.assert_array_equal(decision.obs[0], [[1.0, 2.0], [5.0, 6.0]])
    np.testing.assert_array_equal(decision.reward, [0.5, 2.0])
    np.testing.assert_array_equal(decision.group_id, [0, 3])
    np.testing.assert_array_equal(decision.group_reward, [0.0, 0.25])
    np.testing.assert_array_equal(decision.action_mask[0], [[True, False], [False, False]])
    np.testing.assert_array_equal(decision.action_mask[1], [[False, False, True], [False] * 3])
    np.testing.assert_array_equal(terminal.agent_id, [7])
    np.testing.assert_array_equal(terminal.interrupted, [True])
    np.testing.assert_array_equal(terminal.obs[0], [[3.0, 4.0]])
    assert decision.obs[0].dtype == np.float32 and decision.reward.dtype == np.float32


def test_steps_from_proto_of_no_agents_is_empty_with_the_spec_shapes():
    spec = behavior_spec_from_proto(
        BrainParametersProto(action_spec=ActionSpecProto(num_continuous_actions=1)),
        vector_agent(0, [0.0, 0.0, 0.0]),
    )
    decision, terminal = steps_from_proto([], spec)
    assert len(decision) == 0 and len(terminal) == 0
    assert decision.obs[0].shape == (0, 3) and terminal.obs[0].shape == (0, 3)


def test_steps_from_proto_refuses_observations_that_do_not_match_the_spec():
    spec = behavior_spec_from_proto(
        BrainParametersProto(action_spec=ActionSpecProto(num_continuous_actions=1)),
        vector_agent(0, [0.0, 0.0, 0.0]),
    )
    with pytest.raises(UnityObservationException, match="shape"):
        steps_from_proto([vector_agent(1, [1.0, 2.0])], spec)


def test_steps_from_proto_decodes_png_observations():
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    obs = ObservationProto(
        shape=[3, 6, 5],  # channels first, as Unity sends camera observations
        compression_type=PNG,
        compressed_data=png_bytes(pixels),
        dimension_properties=[1, 1, 0],
    )
    agent = AgentInfoProto(id=1, observations=[obs])
    spec = behavior_spec_from_proto(
        BrainParametersProto(action_spec=ActionSpecProto(num_continuous_actions=1)), agent
    )
    decision, _ = steps_from_proto([agent], spec)
    np.testing.assert_allclose(decision.obs[0][0], pixels.transpose(2, 0, 1) / 255.0, atol=1e-6)


# --- against ML-Agents 1.1.0 --------------------------------------------------------------

ANCHOR_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import mlagents_envs.communicator_objects as co
    from mlagents_envs.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
    from mlagents_envs.communicator_objects.brain_parameters_pb2 import BrainParametersProto
    from mlagents_envs.rpc_utils import behavior_spec_from_proto, steps_from_proto

    folder = sys.argv[1]
    output = UnityRLOutputProto.FromString(open(folder + "/output.bin", "rb").read())
    brain = BrainParametersProto.FromString(open(folder + "/brain.bin", "rb").read())
    agents = output.agentInfos["B"].value
    spec = behavior_spec_from_proto(brain, agents[0])
    decision, terminal = steps_from_proto(agents, spec)
    arrays = {
        "d_obs0": decision.obs[0], "d_obs1": decision.obs[1], "d_reward": decision.reward,
        "d_id": decision.agent_id, "d_group": decision.group_id, "d_mask0": decision.action_mask[0],
        "t_obs0": terminal.obs[0], "t_reward": terminal.reward, "t_id": terminal.agent_id,
        "t_interrupted": terminal.interrupted,
    }
    np.savez(folder + "/theirs.npz", **arrays)
    json.dump({
        "continuous": spec.action_spec.continuous_size,
        "branches": list(spec.action_spec.discrete_branches),
        "shapes": [list(o.shape) for o in spec.observation_specs],
        "dims": [[int(d) for d in o.dimension_property] for o in spec.observation_specs],
    }, open(folder + "/spec.json", "w"))
    """
)


@needs_anchor
def test_steps_and_spec_from_proto_match_ml_agents(tmp_path):
    from mlagents_fast.envs.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto

    rng = np.random.default_rng(3)
    output = UnityRLOutputProto()
    for agent_id in range(6):
        pixels = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        camera = ObservationProto(
            shape=[3, 4, 4], compression_type=PNG, compressed_data=png_bytes(pixels)
        )
        agent = vector_agent(
            agent_id,
            rng.normal(size=3).astype(np.float32).tolist(),
            reward=float(rng.normal()),
            done=agent_id % 3 == 2,
            max_step_reached=agent_id == 5,
            group_id=agent_id % 2,
            action_mask=[bool(b) for b in rng.integers(0, 2, 3)] if agent_id % 2 else [],
        )
        agent.observations.append(camera)
        output.agentInfos["B"].value.append(agent)
    brain = BrainParametersProto(
        brain_name="B",
        action_spec=ActionSpecProto(
            num_continuous_actions=1, num_discrete_actions=1, discrete_branch_sizes=[3]
        ),
    )
    (tmp_path / "output.bin").write_bytes(output.SerializeToString())
    (tmp_path / "brain.bin").write_bytes(brain.SerializeToString())
    (tmp_path / "script.py").write_text(ANCHOR_SCRIPT)
    subprocess.run(
        [str(ANCHOR_PYTHON), str(tmp_path / "script.py"), str(tmp_path)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    agents = output.agentInfos["B"].value
    spec = behavior_spec_from_proto(brain, agents[0])
    their_spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec.action_spec == ActionSpec(their_spec["continuous"], tuple(their_spec["branches"]))
    assert [list(o.shape) for o in spec.observation_specs] == their_spec["shapes"]
    assert [[int(d) for d in o.dimension_property] for o in spec.observation_specs] == their_spec[
        "dims"
    ]
    decision, terminal = steps_from_proto(agents, spec)
    ours = {
        "d_obs0": decision.obs[0],
        "d_obs1": decision.obs[1],
        "d_reward": decision.reward,
        "d_id": decision.agent_id,
        "d_group": decision.group_id,
        "d_mask0": decision.action_mask[0],
        "t_obs0": terminal.obs[0],
        "t_reward": terminal.reward,
        "t_id": terminal.agent_id,
        "t_interrupted": terminal.interrupted,
    }
    theirs = np.load(tmp_path / "theirs.npz")
    for key, value in ours.items():
        np.testing.assert_allclose(np.asarray(value), theirs[key], atol=1e-6, err_msg=key)
        assert np.asarray(value).shape == theirs[key].shape, key


DESCRIBE_SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    package = importlib.import_module(sys.argv[1])
    fields = {}
    def walk(message):
        fields[message.full_name] = sorted(
            [f.name, f.number, f.type,
             f.is_repeated if hasattr(f, "is_repeated") else f.label == 3,
             (f.message_type or f.enum_type).full_name if (f.message_type or f.enum_type) else ""]
            for f in message.fields
        )
        for nested in message.nested_types:
            walk(nested)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(sys.argv[1] + "." + info.name)
        descriptor = getattr(module, "DESCRIPTOR", None)
        if descriptor is None:
            continue
        for message in descriptor.message_types_by_name.values():
            walk(message)
        for enum in descriptor.enum_types_by_name.values():
            fields["enum " + enum.full_name] = sorted([v.name, v.number] for v in enum.values)
        for service in descriptor.services_by_name.values():
            fields["service " + service.full_name] = sorted(
                [m.name, m.input_type.full_name, m.output_type.full_name] for m in service.methods
            )
    print(json.dumps(fields, sort_keys=True))
    """
)


@needs_anchor
def test_every_message_has_ml_agents_fields_names_and_numbers(tmp_path):
    script = tmp_path / "describe.py"
    script.write_text(DESCRIBE_SCRIPT)

    def describe(python, package):
        run = subprocess.run(
            [str(python), str(script), package],
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
        return json.loads(run.stdout)

    ours = describe(sys.executable, PACKAGE)
    theirs = describe(ANCHOR_PYTHON, "mlagents_envs.communicator_objects")
    assert len(theirs) > 20
    assert ours == theirs
