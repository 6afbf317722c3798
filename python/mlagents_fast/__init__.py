"""mlagents-fast: a Rust-accelerated drop-in replacement for the Unity ML-Agents trainers.

Module paths follow ML-Agents: ``mlagents.trainers.X`` is ``mlagents_fast.trainers.X`` and
``mlagents_envs.X`` is ``mlagents_fast.envs.X``.
"""

import os

from mlagents_fast import _native
from mlagents_fast._native import __version__
from mlagents_fast.exceptions import MlagentsFastError

__all__ = ["MlagentsFastError", "__version__"]

# A forked child has none of the parent's rayon worker threads; a parallel kernel there
# would wait for them forever. Children (environment workers) run kernels single-threaded.
os.register_at_fork(after_in_child=_native.disable_parallelism)
