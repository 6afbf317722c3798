"""The GAE workload of issue 2, shared by bench_advantages.py and its reference scripts.

64 trajectories of 1000 steps, float32, seeded; it imports only numpy (>= 1.17) so that
the ML-Agents anchor venv (numpy 1.23) and the peers venv build the very same arrays.
"""

from __future__ import annotations

import numpy as np

TRAJECTORIES = 64
STEPS = 1000
GAMMA = 0.99
LAMBD = 0.95
POCA_LAMBD = 0.8  # ML-Agents' default lambd for lambda_return


def make_workload(seed: int = 0) -> dict[str, np.ndarray]:
    """Env-major arrays ``[TRAJECTORIES, STEPS]`` plus one bootstrap value per trajectory."""
    rng = np.random.default_rng(seed)
    shape = (TRAJECTORIES, STEPS)
    return {
        "rewards": rng.normal(size=shape).astype(np.float32),
        "values": rng.normal(size=shape).astype(np.float32),
        "value_next": rng.normal(size=TRAJECTORIES).astype(np.float32),
    }
