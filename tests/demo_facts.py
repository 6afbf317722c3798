"""What a demonstration buffer holds, in a form both ML-Agents and mlagents-fast can report.

Imported by the tests and, under ML-Agents 1.1.0's anchor venv, by
``tests/fixtures/demos/make_facts.py``: numpy only. A field is summarized by its shape, the
SHA-256 of its values as float64 (so float32 against float64 storage of the same values
compares equal) and its first and last rows (at most 16 values each, for a readable diff).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

# Files of tests/fixtures/demos and the sequence lengths their buffers are checked at.
DEMO_FILES = [
    "Expert3DBall.demo",
    "Expert3DBallHard.demo",
    "ExpertBasic.demo",
    "ExpertGridWorld.demo",
    "ExpertHallway.demo",
    "ExpertPushBlock.demo",
    "ExpertPyramid.demo",
    "test.demo",
    "test_demo_dir",
    "testdcvis.demo",
    "testhybridvis.demo",
]
SEQUENCE_LENGTHS = [1, 16]


def field_name(key: Any) -> str:
    """``done``, ``obs_0``... for ML-Agents' and our AgentBuffer keys alike."""
    if isinstance(key, tuple):
        return f"{key[0].value}_{key[1]}"
    return key.value


def summarize_array(values: Any) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    flat = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
    return {
        "shape": list(array.shape),
        "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
        "first": flat[0][:16].tolist() if len(flat) else [],
        "last": flat[-1][:16].tolist() if len(flat) else [],
    }


def summarize_buffer(buffer: Any) -> dict[str, Any]:
    """Field name -> summary, in the buffer's key order."""
    return {field_name(key): summarize_array(list(buffer[key])) for key in buffer}


def summarize_spec(spec: Any) -> dict[str, Any]:
    return {
        "observation_shapes": [list(obs.shape) for obs in spec.observation_specs],
        "continuous_size": int(spec.action_spec.continuous_size),
        "discrete_branches": [int(b) for b in spec.action_spec.discrete_branches],
    }
