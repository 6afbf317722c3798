"""Decoding messages received from Unity (issue 4 item 8), ours against ML-Agents 1.1.0.

Workloads (``unity_link_workload.py``): 1000 agents x 8 floats; 16 agents x 84x84x3 PNG.
Ours: ``rpc_utils.decode_output`` (the Rust decoder: envelope parsed once, floats copied
straight into the batch, PNGs decoded in parallel across agents, interpreter released) plus
``steps_from_decoded`` (wrapping the numpy arrays in DecisionSteps/TerminalSteps), i.e.
everything UnityEnvironment does with the bytes. ML-Agents 1.1.0: ``FromString`` plus
``steps_from_proto`` on the same bytes in its anchor venv (``ref_mlagents_unity_link.py``).
Also: encoding the step reply with 1000 agents' actions (ours only; ML-Agents builds protobuf
objects per agent).
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from common import best_time, mlagents_python, report, run_reference
from mlagents_fast import _native
from mlagents_fast.envs.rpc_utils import (
    behavior_spec_from_decoded,
    decode_output,
    steps_from_decoded,
)
from unity_link_workload import BEHAVIOR, VECTOR_AGENTS, build_messages, write_messages

TARGETS_S = {"vector": 0.3e-3, "png": 1.5e-3}
LABELS = {
    "vector": "decode 1000 agents x 8 floats",
    "png": "decode 16 agents x 84x84x3 PNG",
}


def decode_steps(data: bytes, specs: dict):
    decoded = decode_output(data, specs)
    return steps_from_decoded(decoded.behaviors[0])


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        write_messages(Path(folder))
        mlagents = run_reference(mlagents_python(), "ref_mlagents_unity_link.py", folder) or {}
    for workload, (repeat, number) in (("vector", (60, 10)), ("png", (60, 5))):
        announce, steady = build_messages(workload)
        new_spec = decode_output(announce, {}).behaviors[0].new_spec
        assert new_spec is not None
        specs = {BEHAVIOR: behavior_spec_from_decoded(new_spec)}
        decision, _ = decode_steps(steady, specs)
        assert len(decision) > 0 and np.isfinite(decision.obs[0]).all()
        ours_s = best_time(partial(decode_steps, steady, specs), repeat=repeat, number=number)
        n_agents = len(decision)
        report(
            LABELS[workload],
            ours_s,
            {"ML-Agents 1.1.0": mlagents.get(workload), "target": TARGETS_S[workload]},
            f"{n_agents / ours_s:,.0f} agents/s",
        )

    actions = [
        (
            BEHAVIOR,
            np.random.default_rng(0).uniform(-1, 1, (VECTOR_AGENTS, 2)).astype(np.float32),
            np.zeros((VECTOR_AGENTS, 0), np.int32),
        )
    ]
    encode_s = best_time(partial(_native.encode_rl_input, 0, b"", actions), repeat=30, number=20)
    report("encode step reply, 1000 agents x 2 actions", encode_s, {})


if __name__ == "__main__":
    main()
