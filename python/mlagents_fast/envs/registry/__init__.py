"""Named environments that ``make()`` themselves (the counterpart of ``mlagents_envs.registry``).

    from mlagents_fast.envs.registry import default_registry
    env = default_registry["3DBall"].make(seed=1)

``default_registry`` holds every built-in environment (run in Rust, nothing to download)
and, loaded on first need, ML-Agents' manifest of downloadable Unity example builds; a
built-in entry wins over a downloadable one of the same name. A manifest that cannot be
fetched (offline) leaves the built-ins usable and is reported when a missing name is asked
for; a downloadable entry's ``make()`` raises a clear error when its build cannot be fetched.
"""

from mlagents_fast.envs.registry.base_registry_entry import BaseRegistryEntry
from mlagents_fast.envs.registry.builtin_registry_entry import BuiltinRegistryEntry
from mlagents_fast.envs.registry.remote_registry_entry import RemoteRegistryEntry
from mlagents_fast.envs.registry.unity_env_registry import UnityEnvRegistry, default_registry

__all__ = [
    "BaseRegistryEntry",
    "BuiltinRegistryEntry",
    "RemoteRegistryEntry",
    "UnityEnvRegistry",
    "default_registry",
]
