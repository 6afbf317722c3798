"""PettingZoo environments made from registry entries (``mlagents_envs.envs.pettingzoo_env_factory``).

from mlagents_fast.envs.envs import ThreeDBall   # or PettingZooEnvFactory("3DBall")
env = ThreeDBall.env(seed=1)                       # a UnityAECEnv
"""

from __future__ import annotations

import logging
from typing import Any

from mlagents_fast.envs.envs.unity_aec_env import UnityAECEnv
from mlagents_fast.envs.exception import UnityWorkerInUseException
from mlagents_fast.envs.registry import BuiltinRegistryEntry, default_registry
from mlagents_fast.envs.side_channel.engine_configuration_channel import (
    EngineConfigurationChannel,
)
from mlagents_fast.envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_fast.envs.side_channel.stats_side_channel import StatsSideChannel

__all__ = ["PettingZooEnvFactory", "logger"]

logger = logging.getLogger(__name__)

FIRST_PORT = 6000
"""Without ``base_port``, a Unity build is tried on ports from here up until one is free."""


class PettingZooEnvFactory:
    """Makes the registry entry ``env_id`` and wraps it as a :class:`UnityAECEnv`."""

    def __init__(self, env_id: str) -> None:
        self.env_id = env_id

    def env(self, seed: int | None = None, **kwargs: Any) -> UnityAECEnv:
        """
        :param seed: seed of the agents' action spaces (and of a built-in environment).
        :param kwargs: UnityEnvironment's keywords except ``file_name``; side channels
            default to engine configuration, environment parameters and stats.
        """
        if "side_channels" not in kwargs:
            kwargs["side_channels"] = [
                EngineConfigurationChannel(),
                EnvironmentParametersChannel(),
                StatsSideChannel(),
            ]
        entry = default_registry[self.env_id]
        if isinstance(entry, BuiltinRegistryEntry):
            if seed is not None:
                kwargs.setdefault("seed", seed)
            return UnityAECEnv(entry.make(**kwargs), seed)
        if "base_port" in kwargs:
            return UnityAECEnv(entry.make(**kwargs), seed)
        port = FIRST_PORT
        while True:
            try:
                return UnityAECEnv(entry.make(base_port=port, **kwargs), seed)
            except UnityWorkerInUseException:
                port += 1
