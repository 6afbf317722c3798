"""One entry point from an ``--env`` string to a :class:`BaseEnv`.

- ``builtin:<Name>``: a built-in environment (:mod:`mlagents_fast.envs.builtin`).
- ``gym:<id>``: a registered Gymnasium environment, vectorized over ``num_areas`` copies
  (:mod:`mlagents_fast.envs.gym_adapter`; needs the ``gym`` extra).
- anything else, or None (the Editor): a Unity build through
  ``mlagents_fast.envs.environment.UnityEnvironment``.

Names resolve case-sensitively; an unknown one raises UnityEnvironmentException listing
the known names.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from mlagents_fast.envs.base_env import BaseEnv
from mlagents_fast.envs.builtin import BUILTIN_NAMES, BuiltinEnv
from mlagents_fast.envs.env_utils import validate_environment_path
from mlagents_fast.envs.exception import UnityEnvironmentException
from mlagents_fast.envs.side_channel import SideChannel

__all__ = ["BUILTIN_PREFIX", "GYM_PREFIX", "check_env_path", "environment_seed", "make_env"]

BUILTIN_PREFIX = "builtin:"
GYM_PREFIX = "gym:"


def environment_seed(seed: int, worker_id: int) -> int:
    """The seed a built-in or Gymnasium environment of ``worker_id`` runs with.

    ML-Agents hands every worker the same seed, which for a simulated environment would
    make every worker replay the same episodes; worker ``w`` runs ``seed + w * 2**32``
    instead (worker 0 keeps ``seed``).
    """
    return (seed + (worker_id << 32)) % 2**64


def _check_builtin_name(env_path: str) -> None:
    name = env_path[len(BUILTIN_PREFIX) :]
    if name not in BUILTIN_NAMES:
        raise UnityEnvironmentException(
            f"unknown built-in environment {name!r} in --env {env_path!r}; "
            f"known: {', '.join(BUILTIN_PREFIX + known for known in BUILTIN_NAMES)}"
        )


def check_env_path(env_path: str | None) -> None:
    """Raise UnityEnvironmentException, naming the problem, when ``env_path`` names no
    environment that :func:`make_env` can open: an unknown built-in, a Gymnasium id that is
    not registered (or no Gymnasium), or no Unity executable at that path. None (the Editor)
    is always fine. Opens nothing: a trainer calls it before it writes its results folder.
    """
    if env_path is None:
        return
    if env_path.startswith(BUILTIN_PREFIX):
        _check_builtin_name(env_path)
    elif env_path.startswith(GYM_PREFIX):
        env_id = env_path[len(GYM_PREFIX) :]
        try:
            import gymnasium
        except ImportError:
            raise UnityEnvironmentException(
                f"--env {env_path!r} needs Gymnasium: pip install 'mlagents-fast[gym]'"
            ) from None
        try:
            if ":" in env_id:  # "module:EnvId": gymnasium.make imports the module first
                module, _, env_id = env_id.partition(":")
                importlib.import_module(module)
            gymnasium.spec(env_id)
        except (gymnasium.error.Error, ImportError) as error:
            raise UnityEnvironmentException(f"--env {env_path!r}: {error}") from None
    else:
        if validate_environment_path(env_path) is None:
            raise UnityEnvironmentException(
                f"Couldn't launch the {env_path} environment. Provided filename does not "
                "match any environments (a Unity executable, builtin:<Name> or gym:<id>)."
            )


def make_env(
    env_path: str | None,
    *,
    seed: int,
    worker_id: int = 0,
    side_channels: Sequence[SideChannel] = (),
    num_areas: int = 1,
    base_port: int | None = None,
    timeout_wait: int = 60,
    additional_args: Sequence[str] = (),
    no_graphics: bool = True,
    log_folder: str | None = None,
    **kw: Any,
) -> BaseEnv:
    """Open the environment ``env_path`` names.

    ``seed``, ``worker_id``, ``side_channels`` and ``num_areas`` apply to every kind.
    ``base_port``, ``timeout_wait``, ``additional_args``, ``no_graphics`` and
    ``log_folder`` only concern Unity builds (built-in and Gymnasium environments run in
    this process). Extra keywords go to the environment's constructor:
    ``agents_per_area`` for built-ins, ``gymnasium.make`` keywords for ``gym:``, and
    UnityEnvironment's own (``no_graphics_monitor``, ...) for Unity.
    """
    if env_path is not None and env_path.startswith(BUILTIN_PREFIX):
        _check_builtin_name(env_path)
        name = env_path[len(BUILTIN_PREFIX) :]
        unknown = set(kw) - {"agents_per_area"}
        if unknown:
            raise TypeError(
                f"built-in environments take no option(s) {sorted(unknown)}; only agents_per_area"
            )
        return BuiltinEnv(
            name,
            seed=environment_seed(seed, worker_id),
            num_areas=num_areas,
            side_channels=side_channels,
            **kw,
        )
    if env_path is not None and env_path.startswith(GYM_PREFIX):
        from mlagents_fast.envs.gym_adapter import GymVectorEnv

        return GymVectorEnv(
            env_path[len(GYM_PREFIX) :],
            seed=environment_seed(seed, worker_id),
            num_envs=num_areas,
            side_channels=side_channels,
            **kw,
        )
    # Imported here: the Unity link pulls in grpc, which built-ins do not need.
    from mlagents_fast.envs.environment import UnityEnvironment

    return UnityEnvironment(
        file_name=env_path,
        worker_id=worker_id,
        base_port=base_port,
        seed=seed,
        no_graphics=no_graphics,
        timeout_wait=timeout_wait,
        additional_args=list(additional_args),
        side_channels=list(side_channels),
        log_folder=log_folder,
        num_areas=num_areas,
        **kw,
    )
