"""A mapping of environment names to registry entries (``mlagents_envs.registry.unity_env_registry``)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from mlagents_fast.envs.builtin import BUILTIN_NAMES
from mlagents_fast.envs.registry.base_registry_entry import BaseRegistryEntry
from mlagents_fast.envs.registry.binary_utils import load_local_manifest, load_remote_manifest
from mlagents_fast.envs.registry.builtin_registry_entry import BuiltinRegistryEntry
from mlagents_fast.envs.registry.remote_registry_entry import RemoteRegistryEntry

__all__ = ["ML_AGENTS_MANIFEST_URL", "UnityEnvRegistry", "default_registry"]

logger = logging.getLogger(__name__)

ML_AGENTS_MANIFEST_URL = (
    "https://storage.googleapis.com/mlagents-test-environments/1.1.0/manifest.yaml"
)
"""ML-Agents 1.1.0's manifest of downloadable example builds."""


class UnityEnvRegistry(Mapping):
    """Environment name -> :class:`BaseRegistryEntry`; ``registry[name].make()`` opens it.

    Entries come from :meth:`register` and from YAML manifests (:meth:`register_from_yaml`),
    read lazily on first access::

        environments:
        - <identifier>:
            expected_reward: <float>
            description: <text>
            linux_url: <url of a .zip>
            darwin_url: <url of a .zip>
            win_url: <url of a .zip>

    When two entries share a name, the one registered last wins; a manifest's entries count
    as registered when ``register_from_yaml`` was called. A manifest that cannot be read is
    kept for the next access, logged once, and named in the KeyError of a missing entry.
    """

    def __init__(self) -> None:
        self._REGISTERED_ENVS: dict[str, BaseRegistryEntry] = {}
        self._registered_at: dict[str, int] = {}
        self._manifests: list[tuple[int, str]] = []
        self._manifest_errors: dict[str, str] = {}
        self._clock = itertools.count()

    def register(self, new_entry: BaseRegistryEntry) -> None:
        """Add ``new_entry`` under its identifier, replacing an entry of that name."""
        self._add(new_entry, next(self._clock))

    def _add(self, entry: BaseRegistryEntry, registered_at: int) -> None:
        if self._registered_at.get(entry.identifier, -1) > registered_at:
            return  # registered after this manifest was: it stays
        self._REGISTERED_ENVS[entry.identifier] = entry
        self._registered_at[entry.identifier] = registered_at

    def register_from_yaml(self, path_to_yaml: str) -> None:
        """Register the entries of the manifest at ``path_to_yaml`` (a file or an http(s)
        URL) when the registry is next read."""
        self._manifests.append((next(self._clock), path_to_yaml))

    def _load_all_manifests(self) -> None:
        pending = []
        for registered_at, path in self._manifests:
            try:
                manifest = (
                    load_remote_manifest(path)
                    if path.startswith(("http://", "https://"))
                    else load_local_manifest(path)
                )
            except OSError as err:
                if path not in self._manifest_errors:
                    logger.warning("Could not read the environment manifest %s: %s", path, err)
                self._manifest_errors[path] = str(getattr(err, "reason", err))
                pending.append((registered_at, path))
                continue
            self._manifest_errors.pop(path, None)
            for item in manifest.get("environments") or []:
                ((identifier, arguments),) = item.items()
                self._add(RemoteRegistryEntry(identifier=identifier, **arguments), registered_at)
        self._manifests = pending

    def clear(self) -> None:
        """Remove every entry and pending manifest."""
        self._REGISTERED_ENVS.clear()
        self._registered_at.clear()
        self._manifests = []
        self._manifest_errors.clear()

    def __getitem__(self, identifier: str) -> BaseRegistryEntry:
        # An entry registered after every pending manifest is final: no need to read them
        # (a built-in entry of the default registry never waits on the network).
        registered_at = self._registered_at.get(identifier, -1)
        if any(at > registered_at for at, _ in self._manifests):
            self._load_all_manifests()
        if identifier not in self._REGISTERED_ENVS:
            unread = "".join(
                f"; manifest {path} could not be read ({reason})"
                for path, reason in self._manifest_errors.items()
            )
            raise KeyError(f"The entry {identifier} is not present in the registry{unread}.")
        return self._REGISTERED_ENVS[identifier]

    def __len__(self) -> int:
        self._load_all_manifests()
        return len(self._REGISTERED_ENVS)

    def __iter__(self) -> Iterator[Any]:
        self._load_all_manifests()
        yield from list(self._REGISTERED_ENVS)


def _default_registry() -> UnityEnvRegistry:
    registry = UnityEnvRegistry()
    registry.register_from_yaml(ML_AGENTS_MANIFEST_URL)
    for name in BUILTIN_NAMES:  # registered after the manifest: built-ins win
        registry.register(BuiltinRegistryEntry(name))
    return registry


default_registry = _default_registry()
"""Built-in environments, plus ML-Agents' downloadable example builds when online."""
