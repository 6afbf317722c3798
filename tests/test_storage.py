"""Field files (rust/core/src/storage.rs): round trip, and every kind of bad file rejected
with CorruptFileError before anything is returned."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from mlagents_fast import _native
from mlagents_fast.exceptions import (
    CorruptFileError,
    InvalidArgumentError,
    MlagentsFastError,
    StorageIOError,
)

MAGIC = b"\x89MLFAST\n"


def sample_fields() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "obs_0": rng.standard_normal((50, 8), dtype=np.float32),
        "visual": rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8),
        "continuous_action": rng.standard_normal((50, 2)),
        "discrete_action": rng.integers(-5, 5, (50, 3), dtype=np.int32),
        "step": np.arange(50, dtype=np.int64) * (2**40),
        "done": rng.random(50) < 0.1,
        "nothing": np.zeros((0, 5), dtype=np.float32),
    }


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "buffer.fields"
    fields = sample_fields()
    _native.save_fields(path, "agent_buffer", fields)
    return path, fields


def test_round_trip_is_bit_exact_with_dtypes_shapes_and_order(saved):
    path, fields = saved
    loaded = _native.load_fields(str(path), "agent_buffer")
    assert list(loaded) == list(fields)
    for name, original in fields.items():
        assert loaded[name].dtype == original.dtype, name
        assert loaded[name].shape == original.shape, name
        assert loaded[name].tobytes() == original.tobytes(), name
        assert loaded[name].flags.c_contiguous and loaded[name].flags.writeable


def test_nan_payloads_and_negative_zero_survive(tmp_path):
    odd = np.array([0x7FC00001, 0x80000000, 0x7F800000], dtype=np.uint32).view(np.float32)
    _native.save_fields(tmp_path / "f", "k", {"x": odd})
    back = _native.load_fields(tmp_path / "f", "k")["x"]
    assert back.view(np.uint32).tolist() == [0x7FC00001, 0x80000000, 0x7F800000]


def test_file_starts_with_magic_and_data_is_64_byte_aligned(saved):
    path, fields = saved
    raw = path.read_bytes()
    assert raw[:8] == MAGIC
    assert raw[-4:] == b"MLFE"
    (version, header_len) = struct.unpack_from("<II", raw, 8)
    assert version == 1
    first_data = (header_len + 63) // 64 * 64
    assert raw[first_data : first_data + 32] == fields["obs_0"][0].tobytes()


@pytest.mark.parametrize("keep", [0, 5, 8, 15, 40, -9, -5, -1])
def test_truncated_file_is_rejected(saved, keep):
    path, _ = saved
    raw = path.read_bytes()
    path.write_bytes(raw[:keep])
    with pytest.raises(CorruptFileError):
        _native.load_fields(path, "agent_buffer")


def test_empty_file_is_rejected_naming_the_problem(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        _native.load_fields(tmp_path / "empty", "agent_buffer")


def test_flipped_data_byte_fails_the_checksum(saved):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="checksum"):
        _native.load_fields(path, "agent_buffer")


def test_flipped_header_byte_is_reported_as_header_damage(saved):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[30] ^= 0x40  # inside the first field record
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="header"):
        _native.load_fields(path, "agent_buffer")


def test_foreign_file_is_rejected(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(10))
    with pytest.raises(CorruptFileError, match="magic"):
        _native.load_fields(tmp_path / "a.npy", "agent_buffer")


def test_other_kind_is_rejected(saved):
    path, _ = saved
    with pytest.raises(CorruptFileError, match="replay_buffer"):
        _native.load_fields(path, "replay_buffer")


def test_newer_version_is_rejected(saved):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[8:12] = struct.pack("<I", 2)
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="newer"):
        _native.load_fields(path, "agent_buffer")


def test_corrupt_file_error_is_a_value_error_of_ours():
    assert issubclass(CorruptFileError, ValueError)
    assert issubclass(CorruptFileError, MlagentsFastError)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(StorageIOError) as info:
        _native.load_fields(tmp_path / "nope", "agent_buffer")
    assert isinstance(info.value, OSError)


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"x": np.zeros(3, dtype=np.float16)}, "float16"),
        ({"x": np.zeros((4, 4), dtype=np.float32)[:, ::2]}, "C-contiguous"),
        ({"x": np.float32(1.0)}, "numpy array"),
        ({"x": np.array(1.0, dtype=np.float32)}, "0-d"),
        ({"x": [1.0, 2.0]}, "list"),
    ],
)
def test_bad_arrays_are_rejected_naming_the_field(tmp_path, fields, match):
    with pytest.raises(InvalidArgumentError, match=match) as info:
        _native.save_fields(tmp_path / "f", "k", fields)
    assert "x" in str(info.value)
    assert not (tmp_path / "f").exists()


def test_fields_must_be_a_dict(tmp_path):
    with pytest.raises(InvalidArgumentError, match="dict"):
        _native.save_fields(tmp_path / "f", "k", [("x", np.zeros(1))])


def test_empty_kind_is_rejected(tmp_path):
    with pytest.raises(InvalidArgumentError, match="kind"):
        _native.save_fields(tmp_path / "f", "", {"x": np.zeros(1)})


def test_failed_save_leaves_existing_file_intact(saved):
    path, fields = saved
    before = path.read_bytes()
    with pytest.raises(InvalidArgumentError):
        _native.save_fields(
            path, "agent_buffer", {"ok": np.zeros(3), "bad": np.zeros(2, np.float16)}
        )
    assert path.read_bytes() == before
    # A directory where the file should go: the rename fails after the data was written.
    target = path.parent / "occupied"
    target.mkdir()
    (target / "inside").write_text("keep me")
    with pytest.raises(StorageIOError):
        _native.save_fields(target, "agent_buffer", fields)
    assert (target / "inside").read_text() == "keep me"
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_save_to_an_invalid_path_raises_and_leaves_old_file(saved):
    path, fields = saved
    before = path.read_bytes()
    # The parent "directory" is a regular file, so no temporary file can be created.
    with pytest.raises(StorageIOError, match="temporary"):
        _native.save_fields(path / "child.fields", "agent_buffer", {"x": np.ones(4)})
    assert path.read_bytes() == before
    assert list(_native.load_fields(path, "agent_buffer")) == list(fields)


def test_overwrite_replaces_the_whole_file(saved):
    path, _ = saved
    _native.save_fields(path, "agent_buffer", {"only": np.arange(3, dtype=np.int64)})
    loaded = _native.load_fields(path, "agent_buffer")
    assert list(loaded) == ["only"]
    np.testing.assert_array_equal(loaded["only"], [0, 1, 2])
