"""The interface of a registry entry (the counterpart of ``mlagents_envs.registry.base_registry_entry``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mlagents_fast.envs.base_env import BaseEnv

__all__ = ["BaseRegistryEntry"]


class BaseRegistryEntry(ABC):
    """A named environment that :meth:`make` opens."""

    def __init__(
        self, identifier: str, expected_reward: float | None, description: str | None
    ) -> None:
        """
        :param identifier: the environment's name, the registry's key.
        :param expected_reward: the cumulative episode reward at which the task counts as
            solved (None when unknown).
        :param description: what the environment is: observations, actions, rewards,
            behaviors and the keywords :meth:`make` takes.
        """
        self._identifier = identifier
        self._expected_reward = expected_reward
        self._description = description

    @property
    def identifier(self) -> str:
        """The entry's unique name."""
        return self._identifier

    @property
    def expected_reward(self) -> float | None:
        """Cumulative reward at which the task counts as solved."""
        return self._expected_reward

    @property
    def description(self) -> str | None:
        """What the environment is and which keywords :meth:`make` takes."""
        return self._description

    @abstractmethod
    def make(self, **kwargs: Any) -> BaseEnv:
        """Open the environment; keywords as UnityEnvironment's (seed, side_channels, ...)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._identifier!r})"
