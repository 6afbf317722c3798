"""SAC replay workloads of issue 2 on our ReplayBuffer (a Rust ring), against references.

Workloads (``replay_workload.py``; 3DBall-like steps: obs 8 floats, next obs, 2 actions,
reward, done):
- sample 128 steps from a 500k-step buffer (with next observations and done flags);
- truncate a 500k-step buffer to its newest 400k steps;
- save / load 100k steps (ours: checksummed field file, fsync + rename).
The same workloads also run on our Rust-backed ``AgentBuffer`` (``mlagents_fast.trainers.buffer``,
what ML-Agents' SAC uses as its replay buffer), in rows marked "AgentBuffer", and the sample on
``ReplayUpdateBuffer`` (the ring as SAC's ``update_buffer``: a sample handed over as an
AgentBuffer minibatch).
References: plain numpy in this process (fancy indexing of flat arrays; a copy of the newest
rows; ``np.savez``/``np.load``), ML-Agents 1.1.0's ``AgentBuffer`` in its anchor venv
(``ref_mlagents_replay.py``), rlox 1.2.0 in the peers venv (``ref_peers_replay.py``).
"""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial

import numpy as np
from common import best_time, mlagents_python, peers_python, report, run_reference
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.replay_buffer import FieldSpec, ReplayBuffer, ReplayUpdateBuffer
from replay_workload import (
    BATCH_SIZE,
    OBS_SIZE,
    SAMPLE_BUFFER_STEPS,
    SAVE_LOAD_STEPS,
    TRUNCATE_TO,
    episodes,
    make_columns,
)

TARGETS_S = {"sample": 10e-6, "truncate": 1e-3, "save": 40e-3, "load": 20e-3}


def sac_buffer(columns: dict[str, np.ndarray], seed: int = 0) -> ReplayBuffer:
    """Our buffer filled episode by episode from the workload columns."""
    steps = len(columns["reward"])
    buffer = ReplayBuffer(
        steps,
        {
            "obs_0": FieldSpec("float32", (OBS_SIZE,), has_next=True),
            "continuous_action": FieldSpec("float32", (2,)),
            "environment_rewards": FieldSpec("float32"),
        },
        seed=seed,
    )
    for start, end in episodes(columns):
        buffer.push_trajectory(
            {
                "obs_0": columns["obs"][start:end],
                "continuous_action": columns["continuous_action"][start:end],
                "environment_rewards": columns["reward"][start:end],
            },
            {"obs_0": columns["next_obs"][end - 1]},
            terminated=True,
        )
    return buffer


def sac_agent_buffer(columns: dict[str, np.ndarray]) -> AgentBuffer:
    """Our AgentBuffer holding the workload, with ML-Agents' SAC keys (done as float32, as
    ML-Agents stores it)."""
    buffer = AgentBuffer()
    buffer[(ObservationKeyPrefix.OBSERVATION, 0)].extend(columns["obs"])
    buffer[(ObservationKeyPrefix.NEXT_OBSERVATION, 0)].extend(columns["next_obs"])
    buffer[BufferKey.CONTINUOUS_ACTION].extend(columns["continuous_action"])
    buffer[BufferKey.ENVIRONMENT_REWARDS].extend(columns["reward"])
    buffer[BufferKey.DONE].extend(columns["done"].astype(np.float32))
    return buffer


def check_against_columns(buffer: ReplayBuffer, columns: dict[str, np.ndarray]) -> None:
    """The timed buffer must hold exactly the workload: checked on a sample."""
    batch = buffer.sample(4096)
    rows = batch.indices
    np.testing.assert_array_equal(batch["obs_0"], columns["obs"][rows])
    np.testing.assert_array_equal(batch["next_obs_0"], columns["next_obs"][rows])
    np.testing.assert_array_equal(batch.done, columns["done"][rows])
    np.testing.assert_array_equal(batch["environment_rewards"], columns["reward"][rows])


def timed_with_setup(setup, run, repeat: int = 5) -> float:
    """Best time of ``run(setup())`` over ``repeat`` rounds, the setup untimed."""
    best = float("inf")
    for _ in range(repeat):
        state = setup()
        start = time.perf_counter()
        run(state)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    mlagents = run_reference(mlagents_python(), "ref_mlagents_replay.py") or {}
    peers = run_reference(peers_python(), "ref_peers_replay.py") or {}

    def refs(workload: str, numpy_s: float) -> dict[str, float | None]:
        out: dict[str, float | None] = {
            "numpy": numpy_s,
            "ML-Agents 1.1.0 AgentBuffer": mlagents.get(workload),
        }
        if workload == "sample":
            out["rlox 1.2.0"] = peers.get("sample")
        out["target"] = TARGETS_S[workload]
        return out

    # Sample 128 of 500k.
    columns = make_columns(SAMPLE_BUFFER_STEPS)
    buffer = sac_buffer(columns)
    check_against_columns(buffer, columns)
    rng = np.random.default_rng(0)
    flat = [columns[k] for k in ("obs", "next_obs", "continuous_action", "reward", "done")]

    def numpy_sample():
        rows = rng.integers(0, SAMPLE_BUFFER_STEPS, BATCH_SIZE)
        return [column[rows] for column in flat]

    sample_s = best_time(partial(buffer.sample, BATCH_SIZE), repeat=20, number=200)
    numpy_sample_s = best_time(numpy_sample, repeat=20, number=200)
    report(
        "SAC sample 128 of 500k steps",
        sample_s,
        refs("sample", numpy_sample_s),
        f"{BATCH_SIZE / sample_s / 1e6:.1f} M steps/s",
    )

    agent_buffer = sac_agent_buffer(columns)
    assert agent_buffer.num_experiences == SAMPLE_BUFFER_STEPS
    agent_sample_s = best_time(
        partial(agent_buffer.sample_mini_batch, BATCH_SIZE), repeat=20, number=50
    )
    report(
        "  AgentBuffer.sample_mini_batch(128) of 500k",
        agent_sample_s,
        refs("sample", numpy_sample_s),
    )
    # What SAC's update path calls: the ring sample handed over as an AgentBuffer.
    update_buffer = ReplayUpdateBuffer(SAMPLE_BUFFER_STEPS, seed=0)
    update_buffer.append_trajectory(agent_buffer)
    stored = update_buffer.to_agent_buffer()
    for key in agent_buffer:
        np.testing.assert_array_equal(np.asarray(stored[key]), np.asarray(agent_buffer[key]))
    del agent_buffer, stored
    update_sample_s = best_time(
        partial(update_buffer.sample_mini_batch, BATCH_SIZE), repeat=20, number=200
    )
    report(
        "  ReplayUpdateBuffer.sample_mini_batch(128) of 500k (SAC's update path)",
        update_sample_s,
        refs("sample", numpy_sample_s),
    )
    del update_buffer

    # Truncate 500k -> 400k (each round on a freshly filled buffer).
    def truncate(target: ReplayBuffer) -> None:
        target.truncate(TRUNCATE_TO)

    truncate_s = timed_with_setup(lambda: sac_buffer(columns), truncate, repeat=5)
    numpy_truncate_s = timed_with_setup(
        lambda: flat, lambda arrays: [a[-TRUNCATE_TO:].copy() for a in arrays], repeat=5
    )
    truncated = sac_buffer(columns)
    truncated.truncate(TRUNCATE_TO)
    assert len(truncated) == TRUNCATE_TO
    np.testing.assert_array_equal(
        truncated.rows([0, TRUNCATE_TO - 1])["obs_0"], columns["obs"][[-TRUNCATE_TO, -1]]
    )
    report("truncate 500k -> 400k steps", truncate_s, refs("truncate", numpy_truncate_s))
    agent_truncate_s = timed_with_setup(
        lambda: sac_agent_buffer(columns), lambda b: b.truncate(TRUNCATE_TO), repeat=5
    )
    report(
        "  AgentBuffer.truncate 500k -> 400k", agent_truncate_s, refs("truncate", numpy_truncate_s)
    )
    del buffer, truncated

    # Save / load 100k.
    small_columns = make_columns(SAVE_LOAD_STEPS)
    small = sac_buffer(small_columns)
    size_mb = 0.0
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMPDIR")) as folder:
        path = os.path.join(folder, "replay.buf")
        npz_path = os.path.join(folder, "replay.npz")
        save_s = best_time(lambda: small.save(path), repeat=7)
        numpy_save_s = best_time(lambda: np.savez(npz_path, **small_columns), repeat=7)
        load_s = best_time(lambda: ReplayBuffer.load(path), repeat=7)

        def numpy_load():
            with np.load(npz_path) as data:
                return {name: data[name] for name in data.files}

        numpy_load_s = best_time(numpy_load, repeat=7)
        check_against_columns(ReplayBuffer.load(path), small_columns)
        size_mb = os.path.getsize(path) / 1e6

        small_agent = sac_agent_buffer(small_columns)
        agent_path = os.path.join(folder, "agent.buf")
        agent_save_s = best_time(lambda: small_agent.save_to_file(agent_path), repeat=7)

        def agent_load():
            loaded = AgentBuffer()
            loaded.load_from_file(agent_path)
            return loaded

        agent_load_s = best_time(agent_load, repeat=7)
        assert agent_load().num_experiences == SAVE_LOAD_STEPS
    report(
        "save 100k steps (fsync + rename)",
        save_s,
        refs("save", numpy_save_s),
        f"{size_mb / save_s / 1e3:.2f} GB/s",
    )
    report("  AgentBuffer.save_to_file 100k", agent_save_s, refs("save", numpy_save_s))
    report(
        "load 100k steps", load_s, refs("load", numpy_load_s), f"{size_mb / load_s / 1e3:.2f} GB/s"
    )
    report("  AgentBuffer.load_from_file 100k", agent_load_s, refs("load", numpy_load_s))


if __name__ == "__main__":
    main()
