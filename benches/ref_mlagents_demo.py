"""ML-Agents 1.1.0 side of ``bench_demo.py``; runs under the anchor venv.

Times ``demo_to_buffer(path, 1)`` (read, parse every record into protobuf objects, decode
each through ``steps_from_proto``, append to an AgentBuffer) on each workload file. Prints
one JSON line {file name: seconds}.
"""

from __future__ import annotations

import json
import logging

from common import best_time
from demo_workload import WORKLOADS, path_of
from mlagents.trainers.demo_loader import demo_to_buffer


def main() -> None:
    logging.disable(logging.WARNING)
    times = {
        name: best_time(lambda name=name: demo_to_buffer(path_of(name), 1), repeat=3, warmup=0)
        for name in WORKLOADS
    }
    print(json.dumps(times))


if __name__ == "__main__":
    main()
