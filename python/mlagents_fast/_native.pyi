# Type stub of the private compiled module. Public names are re-exported by the
# Python modules that wrap them; import from those, not from here.

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__version__: str

# --- field files (rust/python/src/replay.rs) ---
import os
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

def save_fields(
    path: str | os.PathLike[str], kind: str, fields: Mapping[str, npt.NDArray[np.generic]]
) -> None: ...
def load_fields(path: str | os.PathLike[str], kind: str) -> dict[str, npt.NDArray[np.generic]]: ...

# --- advantages (rust/python/src/advantages.rs); public API: mlagents_fast.trainers.trainer.trainer_utils
# Every array argument is a C-contiguous numpy array; float arrays of one call share one dtype
# (float32 or float64) and results have that dtype.
_FloatArray: TypeAlias = npt.NDArray[np.float32] | npt.NDArray[np.float64]

def discount_rewards(r: _FloatArray, gamma: float, value_next: float) -> _FloatArray: ...
def get_gae(
    rewards: _FloatArray,
    value_estimates: _FloatArray,
    value_next: float,
    gamma: float,
    lambd: float,
) -> _FloatArray: ...
def lambda_return(
    r: _FloatArray, value_estimates: _FloatArray, gamma: float, lambd: float, value_next: float
) -> _FloatArray: ...
def gae_ragged(
    rewards: _FloatArray,
    values: _FloatArray,
    offsets: npt.NDArray[np.int64],
    value_next: _FloatArray,
    gamma: float,
    lambd: float,
) -> tuple[_FloatArray, _FloatArray]: ...
def gae_time_major(
    rewards: _FloatArray,
    values: _FloatArray,
    next_values: _FloatArray,
    terminated: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
    truncated: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
    gamma: float,
    lambd: float,
) -> tuple[_FloatArray, _FloatArray]: ...
def disable_parallelism() -> None:
    """Runs every kernel on the calling thread from now on (called in a child after fork)."""
