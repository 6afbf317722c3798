"""rlox 1.2.0 side of ``bench_replay.py``; runs under the peers venv when it exists.

rlox's ``ReplayBuffer(capacity, obs_dim, act_dim)`` stores single transitions with their next
observation; the workload is its ``sample(batch_size, seed)`` of 128 from 500k. Prints one
JSON line {workload: seconds}; prints {} when rlox is missing.
"""

from __future__ import annotations

import json

from common import best_time
from replay_workload import ACTION_SIZE, BATCH_SIZE, OBS_SIZE, SAMPLE_BUFFER_STEPS, make_columns


def main() -> None:
    results: dict[str, float] = {}
    try:
        import rlox
    except ImportError:
        print(json.dumps(results))
        return
    columns = make_columns(SAMPLE_BUFFER_STEPS)
    buffer = rlox.ReplayBuffer(SAMPLE_BUFFER_STEPS, OBS_SIZE, ACTION_SIZE)
    for t in range(SAMPLE_BUFFER_STEPS):
        buffer.push(
            columns["obs"][t],
            columns["continuous_action"][t],
            float(columns["reward"][t]),
            bool(columns["done"][t]),
            False,
            columns["next_obs"][t],
        )
    calls = iter(range(10**9))
    results["sample"] = best_time(
        lambda: buffer.sample(batch_size=BATCH_SIZE, seed=next(calls)), repeat=7, number=50
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
