"""Demonstration loading (issue 12): ``demo_to_buffer(path, 1)`` on Unity-recorded files.

Ours reads the file, checks its header, decodes every record in Rust (raw floats, PNG) and
fills the AgentBuffer with one extend per field. References: ML-Agents 1.1.0's
``demo_to_buffer`` in its anchor venv (``ref_mlagents_demo.py``), and in this process the
floor any protobuf-object loader pays: parsing every record into an
``AgentInfoActionPairProto`` (upb) without decoding anything. Each timed buffer is first
checked against the file's records.
"""

from __future__ import annotations

import os

import numpy as np
from common import best_time, mlagents_python, report, run_reference
from demo_workload import WORKLOADS, path_of
from mlagents_fast.trainers.buffer import BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.demo_loader import demo_to_buffer, load_demonstration


def parse_records_only(path: str) -> int:
    """Every record parsed into a protobuf message, nothing decoded (the reference floor)."""
    _, records, _ = load_demonstration(path)
    return sum(1 for _ in records)


def check(path: str) -> None:
    """The buffer's last row must be the second-to-last record (obs) and the last (done)."""
    _, records, _ = load_demonstration(path)
    _, buffer = demo_to_buffer(path, 1)
    assert buffer.num_experiences == len(records) - 1
    assert bool(buffer[BufferKey.DONE][-1]) == records[-1].agent_info.done
    obs = records[-2].agent_info.observations[0]
    if obs.compression_type == 0:
        np.testing.assert_array_equal(
            np.asarray(buffer[ObservationKeyPrefix.OBSERVATION, 0])[-1].ravel(),
            np.asarray(obs.float_data.data, dtype=np.float32),
        )


def main() -> None:
    mlagents = run_reference(mlagents_python(), "ref_mlagents_demo.py")
    for name, content in WORKLOADS.items():
        path = path_of(name)
        check(path)
        ours = best_time(lambda path=path: demo_to_buffer(path, 1), repeat=7)
        floor = best_time(lambda path=path: parse_records_only(path), repeat=3)
        steps = len(load_demonstration(path)[1])
        megabytes = os.path.getsize(path) / 1e6
        report(
            f"demo_to_buffer {name} ({content})",
            ours,
            {
                "protobuf parse only": floor,
                "ML-Agents 1.1.0": None if mlagents is None else mlagents[name],
            },
            f"{steps / ours / 1e3:.0f}k steps/s, {megabytes / ours:.0f} MB/s",
        )


if __name__ == "__main__":
    main()
