"""ML-Agents 1.1.0 side of ``bench_replay.py``; runs under the anchor venv.

ML-Agents' SAC keeps its replay data in an ``AgentBuffer`` (one Python list of numpy rows per
field) and calls ``sample_mini_batch``, ``truncate``, ``save_to_file``/``load_from_file``
(h5py, gzip). Prints one JSON line {workload: seconds}.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from functools import partial

import numpy as np
from common import best_time
from mlagents.trainers.buffer import (
    AgentBuffer,
    AgentBufferField,
    BufferKey,
    ObservationKeyPrefix,
)
from replay_workload import (
    BATCH_SIZE,
    SAMPLE_BUFFER_STEPS,
    SAVE_LOAD_STEPS,
    TRUNCATE_TO,
    make_columns,
)


def agent_buffer(steps: int) -> AgentBuffer:
    """An AgentBuffer holding ``steps`` SAC steps, one numpy row per step as ML-Agents stores."""
    columns = make_columns(steps)
    keys = {
        "obs": (ObservationKeyPrefix.OBSERVATION, 0),
        "next_obs": (ObservationKeyPrefix.NEXT_OBSERVATION, 0),
        "continuous_action": BufferKey.CONTINUOUS_ACTION,
        "reward": BufferKey.ENVIRONMENT_REWARDS,
        "done": BufferKey.DONE,
    }
    buffer = AgentBuffer()
    for name, key in keys.items():
        values = columns[name]
        if values.ndim == 1:
            values = values.astype(np.float32)
        buffer[key].extend(list(values))
    return buffer


def main() -> None:
    np.random.seed(0)
    results: dict[str, float] = {}
    big = agent_buffer(SAMPLE_BUFFER_STEPS)
    results["sample"] = best_time(partial(big.sample_mini_batch, BATCH_SIZE), repeat=7, number=10)

    truncate_times = []
    for _ in range(3):
        fresh = AgentBuffer()
        for key, field in big.items():
            fresh[key] = AgentBufferField(field)
        start = time.perf_counter()
        fresh.truncate(TRUNCATE_TO)
        truncate_times.append(time.perf_counter() - start)
        assert fresh.num_experiences == TRUNCATE_TO
    results["truncate"] = min(truncate_times)
    del big

    small = agent_buffer(SAVE_LOAD_STEPS)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "buffer.hdf5")

        def save():
            with open(path, "wb") as file:
                small.save_to_file(file)

        def load():
            loaded = AgentBuffer()
            with open(path, "rb") as file:
                loaded.load_from_file(file)
            return loaded

        results["save"] = best_time(save, repeat=3)
        results["load"] = best_time(load, repeat=3)
        assert load().num_experiences == SAVE_LOAD_STEPS
    print(json.dumps(results))


if __name__ == "__main__":
    main()
