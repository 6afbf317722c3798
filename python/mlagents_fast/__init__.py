"""mlagents-fast: a Rust-accelerated drop-in replacement for the Unity ML-Agents trainers.

Module paths follow ML-Agents: ``mlagents.trainers.X`` is ``mlagents_fast.trainers.X`` and
``mlagents_envs.X`` is ``mlagents_fast.envs.X``.
"""

from mlagents_fast._native import __version__
from mlagents_fast.exceptions import MlagentsFastError

__all__ = ["__version__", "MlagentsFastError"]
