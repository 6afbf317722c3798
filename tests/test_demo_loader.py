"""Demonstration loading (mlagents_fast.trainers.demo_loader) on Unity-recorded files.

Every file of tests/fixtures/demos is checked against what ML-Agents 1.1.0 reports for it
(tests/fixtures/demos/mlagents-1.1.0-demo-facts.json: spec, record counts, and every
field of the demo_to_buffer AgentBuffer at sequence lengths 1 and 16); bad files must
raise one DemonstrationError naming the file.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from demo_facts import (
    DEMO_FILES,
    SEQUENCE_LENGTHS,
    field_name,
    summarize_buffer,
    summarize_spec,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlagents_fast.envs.base_env import ActionSpec, BehaviorSpec
from mlagents_fast.envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_fast.envs.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from mlagents_fast.envs.communicator_objects.demonstration_meta_pb2 import (
    DemonstrationMetaProto,
)
from mlagents_fast.exceptions import DemonstrationError
from mlagents_fast.trainers.buffer import BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.demo_loader import (
    DemonstrationRecords,
    demo_to_buffer,
    get_demo_files,
    load_demonstration,
    make_demo_buffer,
    write_demo,
)
from repo_paths import FIXTURES

DEMOS = os.path.join(FIXTURES, "demos")
with open(os.path.join(DEMOS, "mlagents-1.1.0-demo-facts.json")) as _facts_file:
    FACTS = json.load(_facts_file)


def demo(name: str) -> str:
    return os.path.join(DEMOS, name)


def _bytes(name: str) -> bytes:
    with open(demo(name), "rb") as file:
        return file.read()


@pytest.mark.parametrize("name", DEMO_FILES)
def test_load_demonstration_matches_mlagents(name):
    facts = FACTS[name]
    spec, records, total = load_demonstration(demo(name))
    assert summarize_spec(spec) == facts["spec"]
    assert len(records) == facts["records"]
    assert total == facts["total_expected"]


@pytest.mark.parametrize("sequence_length", SEQUENCE_LENGTHS)
@pytest.mark.parametrize("name", DEMO_FILES)
def test_demo_to_buffer_matches_mlagents(name, sequence_length):
    expected = FACTS[name][f"buffer_{sequence_length}"]
    if "error" in expected:
        with pytest.raises(DemonstrationError) as info:
            demo_to_buffer(demo(name), sequence_length)
        assert str(info.value).startswith(demo(name))
        assert expected["message"] in str(info.value)
        return
    _, buffer = demo_to_buffer(demo(name), sequence_length)
    ours = summarize_buffer(buffer)
    assert sorted(ours) == sorted(expected)  # same fields (their order: see below)
    for field, summary in expected.items():
        assert ours[field] == summary, field


def test_buffer_dtypes_are_the_trainers():
    _, buffer = demo_to_buffer(demo("testhybridvis.demo"), 1)
    assert buffer[BufferKey.CONTINUOUS_ACTION].dtype == np.float32
    assert buffer[BufferKey.DISCRETE_ACTION].dtype == np.int32
    assert buffer[BufferKey.DONE].dtype == bool
    assert buffer[ObservationKeyPrefix.OBSERVATION, 0].dtype == np.float32
    # ML-Agents keeps prev_action from the deprecated field: empty for modern recordings.
    assert np.asarray(buffer[BufferKey.PREV_ACTION]).shape == (24, 0)


def test_records_are_protobuf_messages():
    _spec, records, _ = load_demonstration(demo("testhybridvis.demo"))
    assert isinstance(records, DemonstrationRecords)
    first = records[0]
    assert isinstance(first, AgentInfoActionPairProto)
    assert list(first.agent_info.observations[0].shape) == [3, 84, 84]
    assert first.agent_info.observations[0].compressed_data.startswith(b"\x89PNG")
    assert len(first.action_info.continuous_actions) == 3
    assert records[-1] == records[len(records) - 1]
    assert [r.agent_info.id for r in records[:2]] == [first.agent_info.id] * 2
    assert len(list(records)) == len(records) == 25
    with pytest.raises(IndexError):
        records[25]
    assert records.metas[0]["demonstration_name"] == "testhybridvis"


def test_make_demo_buffer_from_a_list_of_messages_equals_from_records():
    spec, records, _ = load_demonstration(demo("ExpertPyramid.demo"))
    from_records = summarize_buffer(make_demo_buffer(records, spec, 4))
    from_messages = summarize_buffer(make_demo_buffer(list(records), spec, 4))
    assert from_messages == from_records


def test_folder_loads_as_one_in_sorted_order(tmp_path):
    for name in ("b.demo", "a.demo"):
        shutil.copy(demo("Expert3DBall.demo"), tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a demo")
    assert get_demo_files(str(tmp_path)) == [str(tmp_path / "a.demo"), str(tmp_path / "b.demo")]
    _spec, records, total = load_demonstration(str(tmp_path))
    assert len(records) == total == 2 * 549
    assert records.sources == get_demo_files(str(tmp_path))
    _, buffer = demo_to_buffer(str(tmp_path), 1)
    # The last record of each file carries no action (recording stopped): no row for it.
    assert buffer.num_experiences == 2 * 549 - 2
    _, single = demo_to_buffer(demo("Expert3DBall.demo"), 1)
    obs = np.asarray(buffer[ObservationKeyPrefix.OBSERVATION, 0])
    np.testing.assert_array_equal(
        obs[:548], np.asarray(single[ObservationKeyPrefix.OBSERVATION, 0])
    )


def test_get_demo_files_errors(tmp_path):
    text = tmp_path / "demo.txt"
    text.write_text("x")
    with pytest.raises(ValueError, match="not a '.demo' file: .*demo.txt"):
        get_demo_files(str(text))
    with pytest.raises(ValueError, match="no '.demo' files"):
        get_demo_files(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="missing.demo"):
        get_demo_files(str(tmp_path / "missing.demo"))


def _write(tmp_path, data: bytes, name: str = "bad.demo") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _error(path: str) -> str:
    with pytest.raises(DemonstrationError) as info:
        demo_to_buffer(path, 1)
    assert str(info.value).startswith(path)
    return str(info.value)


def test_truncated_file(tmp_path):
    data = _bytes("Expert3DBall.demo")
    message = _error(_write(tmp_path, data[: len(data) // 2]))
    assert "truncated demonstration file" in message
    assert "declares" in message
    assert "truncated" in _error(_write(tmp_path, data[:20]))
    assert "before the brain parameters" in _error(_write(tmp_path, data[:33]))


def test_not_a_demonstration(tmp_path):
    png = _bytes("testhybridvis.demo")
    start = png.index(b"\x89PNG")
    assert "not a demonstration file" in _error(_write(tmp_path, png[start : start + 4000]))
    assert "not a demonstration file" in _error(_write(tmp_path, b""))
    assert "not a demonstration file" in _error(_write(tmp_path, b"behaviors:\n  x: 1\n" * 10))


def test_unsupported_version(tmp_path):
    meta = DemonstrationMetaProto(api_version=2, demonstration_name="future", number_steps=1)
    path = str(tmp_path / "future.demo")
    write_demo(path, meta, BrainParametersProto(brain_name="B"), [])
    message = _error(path)
    assert "unsupported version (2)" in message


def test_header_without_records(tmp_path):
    path = str(tmp_path / "empty.demo")
    write_demo(path, DemonstrationMetaProto(api_version=1), BrainParametersProto(), [])
    assert "No BrainParameters found" in _error(path)


def test_spec_mismatch_with_the_policy():
    path = demo("Expert3DBall.demo")
    spec, _, _ = load_demonstration(path)
    other_actions = BehaviorSpec(spec.observation_specs, ActionSpec.create_discrete((2,)))
    with pytest.raises(DemonstrationError, match="Expert3DBall.demo: The actions"):
        demo_to_buffer(path, 1, other_actions)
    obs = spec.observation_specs[0]
    other_shape = BehaviorSpec([obs._replace(shape=(9,))], spec.action_spec)
    with pytest.raises(DemonstrationError, match="observation 0 in demonstration"):
        demo_to_buffer(path, 1, other_shape)
    two_obs = BehaviorSpec([obs, obs], spec.action_spec)
    with pytest.raises(DemonstrationError, match="same number of observations"):
        demo_to_buffer(path, 1, two_obs)


def test_folder_of_different_behaviors(tmp_path):
    shutil.copy(demo("Expert3DBall.demo"), tmp_path / "a.demo")
    shutil.copy(demo("ExpertBasic.demo"), tmp_path / "b.demo")
    with pytest.raises(DemonstrationError, match="b.demo: recorded for another behavior spec"):
        load_demonstration(str(tmp_path))


def test_write_demo_round_trip(tmp_path):
    _, records, _ = load_demonstration(demo("ExpertBasic.demo"))
    path = str(tmp_path / "copy.demo")
    meta = DemonstrationMetaProto(api_version=1, demonstration_name="copy", number_steps=10)
    brain = BrainParametersProto(brain_name="Basic", vector_action_size_deprecated=[3])
    write_demo(path, meta, brain, records[:10])
    spec, copied, total = load_demonstration(path)
    assert total == 10 and len(copied) == 10
    assert [r.SerializeToString() for r in copied] == [r.SerializeToString() for r in records[:10]]
    assert spec.action_spec.discrete_branches == (3,)
    assert os.listdir(tmp_path) == ["copy.demo"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_corrupted_files_load_or_raise_a_demonstration_error(tmp_path, data):
    original = _bytes("ExpertBasic.demo")
    corrupted = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(corrupted) - 1))
        corrupted[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(corrupted)))
    path = _write(tmp_path, bytes(corrupted[:cut]), "fuzz.demo")
    try:
        _, buffer = demo_to_buffer(path, data.draw(st.sampled_from([1, 3])))
    except DemonstrationError as error:
        assert str(error).startswith(path)
    else:
        assert all(len(buffer[key]) == buffer.num_experiences for key in buffer)


def test_field_names_cover_every_key():
    _, buffer = demo_to_buffer(demo("ExpertPyramid.demo"), 1)
    assert [field_name(key) for key in buffer] == [
        "done",
        "environment_rewards",
        "obs_0",
        "obs_1",
        "obs_2",
        "obs_3",
        "discrete_action",
        "prev_action",
    ]
