"""The one atomic-write helper: old file or whole new one, the user's umask, no temp file left
behind on failure, and leftovers of killed writers found and removed at the next start."""

import json
import os
import stat

import numpy as np
import pytest
from mlagents_fast import _native
from mlagents_fast.atomic_io import (
    atomic_write,
    atomic_write_with,
    is_interrupted_write,
    remove_interrupted_writes,
    write_bytes_atomically,
    write_json_atomically,
    write_text_atomically,
)
from mlagents_fast.exceptions import StorageIOError


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_text_bytes_and_json(tmp_path):
    write_text_atomically(tmp_path / "a.txt", "héllo\n")
    write_bytes_atomically(tmp_path / "b.bin", b"\x00\x01")
    write_json_atomically(tmp_path / "sub" / "c.json", {"x": [1, 2]})
    assert (tmp_path / "a.txt").read_bytes() == "héllo\n".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "sub" / "c.json").read_text()) == {"x": [1, 2]}
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.bin", "sub"]


def test_files_get_the_users_umask_not_0600(tmp_path, umask_022):
    write_text_atomically(tmp_path / "a.txt", "x")
    atomic_write_with(tmp_path / "b.bin", lambda tmp: open(tmp, "wb").close())
    write_text_atomically(tmp_path / "run.sh", "#!/bin/sh\n", permissions=0o777)
    assert _mode(tmp_path / "a.txt") == 0o644
    assert _mode(tmp_path / "b.bin") == 0o644
    assert _mode(tmp_path / "run.sh") == 0o755
    os.umask(0o027)
    write_text_atomically(tmp_path / "a.txt", "y")
    assert _mode(tmp_path / "a.txt") == 0o640


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, error):
    target = tmp_path / "status.json"
    target.write_text("old")
    with pytest.raises(type(error)), atomic_write(target, text=True) as f:
        f.write("half of the new")
        raise error
    with pytest.raises(type(error)):

        def write(tmp):
            with open(tmp, "w") as f:
                f.write("half")
            raise error

        atomic_write_with(target, write)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["status.json"]


def test_unencodable_json_leaves_the_old_file(tmp_path):
    target = tmp_path / "status.json"
    target.write_text("{}")
    with pytest.raises(TypeError):
        write_json_atomically(target, {"x": object()})
    assert target.read_text() == "{}" and os.listdir(tmp_path) == ["status.json"]


def test_system_refusals_are_storage_errors_naming_the_file(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with pytest.raises(StorageIOError, match="not_a_folder"):
        write_text_atomically(blocker / "x.txt", "x")
    # A writer's OSError (a full disk) is reported against the destination, temp removed.
    with pytest.raises(StorageIOError, match="out.bin"):
        atomic_write_with(
            tmp_path / "out.bin",
            lambda tmp: (_ for _ in ()).throw(OSError(28, "No space left on device")),
        )
    assert sorted(os.listdir(tmp_path)) == ["not_a_folder"]
    assert issubclass(StorageIOError, OSError)


def test_file_and_folder_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )
    write_text_atomically(tmp_path / "a.txt", "x")
    assert events == ["fsync", "replace", "fsync"]


def test_temp_names_follow_one_pattern_shared_with_the_rust_writer(tmp_path):
    seen = []

    def write(tmp):
        seen.append(os.path.basename(tmp))
        open(tmp, "wb").close()

    atomic_write_with(tmp_path / "Walker-100.onnx", write)
    assert seen[0].startswith(".Walker-100.onnx.") and is_interrupted_write(seen[0])
    # storage.rs: ".<name>.<pid>-<n>.tmp", seen while a save is in flight.
    assert is_interrupted_write(".last_replay_buffer.hdf5.4242-7.tmp")
    for name in ["checkpoint.pt", ".hidden", "notes.tmp", ".x.tmp", ".x.12.tmp", "a.12-3.tmp"]:
        assert not is_interrupted_write(name), name


def test_leftovers_of_killed_writers_are_removed_and_nothing_else(tmp_path):
    behavior = tmp_path / "3DBall"
    logs = tmp_path / "run_logs"
    behavior.mkdir()
    logs.mkdir()
    leftovers = [
        behavior / ".checkpoint.pt.999999-0.tmp",
        behavior / ".last_replay_buffer.hdf5.12-3.tmp",
        logs / ".training_status.json.77-1.tmp",
        # names of earlier versions (tempfile.mkstemp)
        behavior / ".tmp-a1b2c3d4checkpoint.pt",
        behavior / ".export-k9_x0zzz.onnx.tmp",
        logs / ".tmp-abcdefgh.json",
        tmp_path / ".tmp-q1w2e3r4.png",
        tmp_path / ".configuration.yaml.4321.tmp",
    ]
    kept = [
        behavior / "checkpoint.pt",
        behavior / "3DBall-100.onnx",
        logs / "training_status.json",
        tmp_path / "configuration.yaml",
        tmp_path / ".gitignore",
        tmp_path / "notes.tmp",
        behavior / f".checkpoint.pt.{os.getpid()}-5.tmp",  # a write of this process
    ]
    for path in leftovers + kept:
        path.write_bytes(b"x")
    outside = tmp_path.parent / f".outside-{tmp_path.name}.1-1.tmp"
    outside.write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path.parent)
    try:
        removed = remove_interrupted_writes(tmp_path)
        assert sorted(removed) == sorted(str(p) for p in leftovers)
        assert all(p.exists() for p in kept) and not any(p.exists() for p in leftovers)
        assert outside.exists()
    finally:
        outside.unlink()


def test_rust_buffer_files_get_the_umask_too(tmp_path, umask_022):
    target = tmp_path / "buffer.fields"
    _native.save_fields(str(target), "agent_buffer", {"x": np.zeros((2, 1), np.float32)})
    assert os.listdir(tmp_path) == ["buffer.fields"]
    assert _mode(target) == 0o644
