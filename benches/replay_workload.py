"""Issue 2's SAC replay workloads, shared by ``bench_replay.py`` and its reference scripts.

3DBall-like SAC steps: an 8-float observation, its next observation, 2 continuous actions,
a reward and a done flag, in episodes of ``EPISODE_STEPS`` steps that all terminate.
Workloads: sample 128 steps from a 500k-step buffer; truncate 500k -> 400k steps; save and
load 100k steps. Needs only numpy, so every venv can import it.
"""

from __future__ import annotations

import numpy as np

SAMPLE_BUFFER_STEPS = 500_000
BATCH_SIZE = 128
TRUNCATE_TO = 400_000
SAVE_LOAD_STEPS = 100_000
EPISODE_STEPS = 1000
OBS_SIZE = 8
ACTION_SIZE = 2


def make_columns(steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Flat per-step columns: obs, next_obs, continuous_action, reward, done (float32/bool).

    ``next_obs[t] = obs[t + 1]`` inside an episode; the last step of each episode gets a
    fresh terminal observation.
    """
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((steps, OBS_SIZE), dtype=np.float32)
    episode_end = (np.arange(steps) % EPISODE_STEPS) == EPISODE_STEPS - 1
    episode_end[-1] = True
    next_obs = np.empty_like(obs)
    next_obs[:-1] = obs[1:]
    next_obs[episode_end] = rng.standard_normal(
        (int(episode_end.sum()), OBS_SIZE), dtype=np.float32
    )
    return {
        "obs": obs,
        "next_obs": next_obs,
        "continuous_action": rng.uniform(-1, 1, (steps, ACTION_SIZE)).astype(np.float32),
        "reward": rng.standard_normal(steps, dtype=np.float32),
        "done": episode_end,
    }


def episodes(columns: dict[str, np.ndarray]):
    """Yields (start, end) of each episode in ``columns``."""
    ends = np.flatnonzero(columns["done"]) + 1
    starts = np.concatenate([[0], ends[:-1]])
    return zip(starts.tolist(), ends.tolist())
