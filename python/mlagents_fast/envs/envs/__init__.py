"""Gymnasium and PettingZoo wrappers of a BaseEnv (the counterpart of ``mlagents_envs.envs``).

- :mod:`.unity_gym_env`: ``UnityToGymWrapper``, one single-agent behavior as a
  ``gymnasium.Env`` (needs the ``gym`` extra);
- :mod:`.unity_aec_env`, :mod:`.unity_parallel_env`: every agent of every behavior as a
  PettingZoo ``AECEnv`` / ``ParallelEnv`` (needs the ``pettingzoo`` extra);
- :mod:`.pettingzoo_env_factory`: ``PettingZooEnvFactory(name).env()`` for an entry of
  :data:`mlagents_fast.envs.registry.default_registry`.

They speak today's Gymnasium and PettingZoo APIs (``reset`` returns ``(obs, info)``, a step
reports ``terminated`` and ``truncated`` apart), where ML-Agents 1.1.0's speak the retired
``gym`` API.
"""

from typing import Any

from mlagents_fast.envs.builtin import BUILTIN_NAMES


def __getattr__(name: str) -> Any:
    """``ThreeDBall``, ``GridWorld``, ...: a PettingZooEnvFactory per built-in environment
    (a leading ``3`` spelled ``Three``, as ML-Agents names them), made on first use."""
    for env_id in BUILTIN_NAMES:
        if name == (env_id.replace("3", "Three", 1) if env_id[0].isdigit() else env_id):
            from mlagents_fast.envs.envs.pettingzoo_env_factory import PettingZooEnvFactory

            factory = PettingZooEnvFactory(env_id)
            globals()[name] = factory
            return factory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
