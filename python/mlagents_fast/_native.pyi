# Type stub of the private compiled module. Public names are re-exported by the
# Python modules that wrap them; import from those, not from here.

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
