"""Registry entries for the built-in environments (no download, no Unity)."""

from __future__ import annotations

from typing import Any

from mlagents_fast.envs.base_env import BaseEnv
from mlagents_fast.envs.env_opener import BUILTIN_PREFIX, make_env
from mlagents_fast.envs.registry.base_registry_entry import BaseRegistryEntry

__all__ = ["BuiltinRegistryEntry"]

# Keywords UnityEnvironment takes that mean nothing to an in-process environment.
_UNITY_ONLY_KEYWORDS = ("file_name", "no_graphics_monitor")


class BuiltinRegistryEntry(BaseRegistryEntry):
    """``builtin:<identifier>``: a built-in environment of :mod:`mlagents_fast.envs.builtin`."""

    def __init__(
        self,
        identifier: str,
        expected_reward: float | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(
            identifier,
            expected_reward,
            description
            or f"Built-in environment {identifier}: runs in Rust in this process, no Unity "
            "build needed. make() takes seed, worker_id, side_channels, num_areas and "
            "agents_per_area (see mlagents_fast.envs.builtin).",
        )

    def make(self, **kwargs: Any) -> BaseEnv:
        """The built-in environment; UnityEnvironment keywords (seed, worker_id,
        side_channels, num_areas, base_port, no_graphics, ...) are accepted."""
        for key in _UNITY_ONLY_KEYWORDS:
            kwargs.pop(key, None)
        # UnityEnvironment treats None as "the default"; so does make_env without the key.
        kwargs = {key: value for key, value in kwargs.items() if value is not None}
        seed = kwargs.pop("seed", 0)
        return make_env(BUILTIN_PREFIX + self.identifier, seed=seed, **kwargs)
