"""envs.registry: ML-Agents' UnityEnvRegistry API over built-in and downloadable environments.

No test touches the internet: built-in entries never read the remote manifest, remote
entries are served from file:// URLs or from a port where nothing listens.
"""

from __future__ import annotations

import socket
import urllib.request
import zipfile

import numpy as np
import pytest
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.envs.builtin import BUILTIN_NAMES, BuiltinEnv
from mlagents_fast.envs.cli import write_launcher
from mlagents_fast.envs.exception import UnityEnvironmentException
from mlagents_fast.envs.registry import (
    BaseRegistryEntry,
    BuiltinRegistryEntry,
    RemoteRegistryEntry,
    UnityEnvRegistry,
    default_registry,
)
from mlagents_fast.envs.registry.binary_utils import get_local_binary_path_if_exists
from mlagents_fast.envs.side_channel import EnvironmentParametersChannel

NOWHERE = "http://127.0.0.1:1"  # connection refused at once


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the registry tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_default_registry_makes_every_built_in_without_the_network(no_network):
    for name in BUILTIN_NAMES:
        entry = default_registry[name]
        assert isinstance(entry, BuiltinRegistryEntry) and entry.identifier == name
        assert name in entry.description
    channel = EnvironmentParametersChannel()
    env = default_registry["3DBall"].make(
        seed=4, worker_id=1, side_channels=[channel], num_areas=2, no_graphics=True
    )
    try:
        assert isinstance(env, BuiltinEnv)
        env.reset()
        (behavior,) = env.behavior_specs
        decision, _ = env.get_steps(behavior)
        assert len(decision) == 24  # 2 areas x 12 agents
        env.set_actions(behavior, ActionTuple(continuous=np.zeros((24, 2), np.float32)))
        env.step()
    finally:
        env.close()


class CountingEntry(BaseRegistryEntry):
    def make(self, **kwargs):
        return kwargs


def manifest(tmp_path, name, *identifiers):
    lines = ["environments:"]
    for identifier in identifiers:
        lines += [
            f"- {identifier}:",
            "    expected_reward: 0.9",
            f"    description: {identifier} from {name}",
            f"    linux_url: {NOWHERE}/{identifier}.zip",
            "    darwin_url: null",
            "    win_url: null",
        ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_registry_mapping_precedence_and_lazy_manifests(tmp_path):
    registry = UnityEnvRegistry()
    registry.register(CountingEntry("Early", 1.0, "registered before the manifest"))
    registry.register_from_yaml(manifest(tmp_path, "first.yaml", "Early", "Remote"))
    registry.register(CountingEntry("Late", None, None))
    registry.register_from_yaml(manifest(tmp_path, "second.yaml", "Late"))
    assert registry._manifests  # nothing read yet
    assert sorted(registry) == ["Early", "Late", "Remote"]
    assert len(registry) == 3
    # The manifest registered after "Early" replaces it; the later manifest replaces "Late".
    assert isinstance(registry["Early"], RemoteRegistryEntry)
    assert registry["Early"].description == "Early from first.yaml"
    assert registry["Late"].description == "Late from second.yaml"
    assert registry["Remote"].expected_reward == 0.9
    registry.register(CountingEntry("Remote", None, None))  # registered last: wins
    assert registry["Remote"].make(seed=1) == {"seed": 1}
    with pytest.raises(KeyError, match="Missing"):
        registry["Missing"]
    registry.clear()
    assert len(registry) == 0


def test_an_unreadable_manifest_keeps_other_entries_and_names_itself(tmp_path):
    registry = UnityEnvRegistry()
    registry.register_from_yaml(str(tmp_path / "absent.yaml"))
    registry.register(CountingEntry("Here", None, None))
    assert registry["Here"].make() == {}
    assert list(registry) == ["Here"]
    with pytest.raises(KeyError, match=r"absent\.yaml could not be read"):
        registry["Elsewhere"]
    assert registry._manifests  # retried on the next access


def test_a_remote_entry_that_cannot_download_says_so(tmp_path):
    entry = RemoteRegistryEntry(
        "Basic", 0.9, "d", f"{NOWHERE}/Basic.zip", None, None, tmp_dir=str(tmp_path)
    )
    with pytest.raises(UnityEnvironmentException, match="could not download .*'Basic'"):
        entry.make()
    no_build = RemoteRegistryEntry("Basic", 0.9, "d", None, None, None)
    with pytest.raises(FileNotFoundError, match="valid url for this platform"):
        no_build.make()


def test_a_remote_entry_downloads_once_and_runs_the_build(tmp_path):
    # The "Unity build": a launcher that serves a built-in environment over the Unity link.
    build_dir = tmp_path / "build" / "GoalSeeker"
    launcher = write_launcher("builtin:GoalSeeker1D", str(build_dir), name="GoalSeeker")
    archive = tmp_path / "GoalSeeker.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(launcher, "GoalSeeker/GoalSeeker.x86_64")
    url = archive.as_uri()
    cache = tmp_path / "cache"
    entry = RemoteRegistryEntry("GoalSeeker", 0.9, "d", url, url, url, tmp_dir=str(cache))
    env = entry.make(base_port=free_port(), seed=2, timeout_wait=60)
    try:
        env.reset()
        (behavior,) = env.behavior_specs
        decision, _ = env.get_steps(behavior)
        assert len(decision) > 0
    finally:
        env.close()
    archive.unlink()  # the unpacked build is found again without downloading
    assert get_local_binary_path_if_exists("GoalSeeker", url, str(cache)) is not None


def test_an_archive_escaping_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.x86_64", "#!/bin/sh\n")  # not a repository path
    entry = RemoteRegistryEntry(
        "Evil", None, None, archive.as_uri(), None, None, tmp_dir=str(tmp_path / "cache")
    )
    with pytest.raises(UnityEnvironmentException, match="outside"):
        entry.make()
    assert not (tmp_path / "cache" / "ml-agents-binaries" / "binaries" / "outside.x86_64").exists()
