"""ML-Agents 1.1.0 side of ``bench_policy.py``; runs under the anchor venv and prints one JSON
line {workload: seconds per call}."""

from __future__ import annotations

import json

from common import best_time
from policy_workload import workloads


def main() -> None:
    results = {
        name: best_time(fn, repeat=5, number=50, warmup=10)
        for name, fn in workloads("mlagents").items()
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
