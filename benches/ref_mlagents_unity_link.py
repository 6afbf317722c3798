"""ML-Agents 1.1.0 side of bench_unity_link.py (run under the anchor venv).

    python ref_mlagents_unity_link.py <folder with the workload .bin files>

Times what mlagents_envs does with a received message: ``UnityMessageProto.FromString`` and
``rpc_utils.steps_from_proto`` (the spec built once from the announce message, outside the
timing). Prints one JSON line {workload: seconds}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.rpc_utils import behavior_spec_from_proto, steps_from_proto

WORKLOADS = ("vector", "png")
REPEATS = {"vector": (7, 3), "png": (15, 5)}


def best_time(fn, repeat: int, number: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def main() -> None:
    folder = Path(sys.argv[1])
    results = {}
    for workload in WORKLOADS:
        announce = UnityMessageProto.FromString((folder / f"{workload}.announce.bin").read_bytes())
        brain = announce.unity_output.rl_initialization_output.brain_parameters[0]
        first_agent = announce.unity_output.rl_output.agentInfos[brain.brain_name].value[0]
        spec = behavior_spec_from_proto(brain, first_agent)
        steady = (folder / f"{workload}.steady.bin").read_bytes()

        def decode(data=steady, name=brain.brain_name, spec=spec):
            message = UnityMessageProto.FromString(data)
            return steps_from_proto(message.unity_output.rl_output.agentInfos[name].value, spec)

        decision, _ = decode()
        assert len(decision) > 0
        results[workload] = best_time(decode, *REPEATS[workload])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
