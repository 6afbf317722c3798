"""ML-Agents 1.1.0 side of benches/bench_buffer.py; runs under the anchor venv
(docs/reference-venvs.md) and prints one JSON line {workload: seconds}.

Sizes and workload names must match bench_buffer.py (this script cannot import it: the
anchor venv has no mlagents_fast).
"""

from __future__ import annotations

import json
import time

import numpy as np
from mlagents.trainers.buffer import (
    AgentBuffer,
    BufferKey,
    ObservationKeyPrefix,
    RewardSignalKeyPrefix,
    RewardSignalUtil,
)
from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents.trainers.trajectory import AgentExperience, Trajectory
from mlagents_envs.base_env import ActionTuple

UPDATE_STEPS = 13_000  # 3DBall-like update buffer (buffer_size 12000 + one time horizon)
EPOCHS = 3
MINIBATCH = 64
TRAJECTORIES = 13
TRAJECTORY_STEPS = 1000  # 3DBall time_horizon


def best_time(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def update_buffer() -> AgentBuffer:
    rng = np.random.default_rng(0)
    n = UPDATE_STEPS
    columns = {
        (ObservationKeyPrefix.OBSERVATION, 0): rng.standard_normal((n, 8), dtype=np.float32),
        BufferKey.CONTINUOUS_ACTION: rng.standard_normal((n, 2), dtype=np.float32),
        BufferKey.CONTINUOUS_LOG_PROBS: rng.standard_normal((n, 2), dtype=np.float32),
        BufferKey.ADVANTAGES: rng.standard_normal(n, dtype=np.float32),
        RewardSignalUtil.returns_key("extrinsic"): rng.standard_normal(n, dtype=np.float32),
        # In 1.1.0 value_estimates_key gives the returns key; use the prefix directly so the
        # buffer has the same 8 fields as ours.
        (RewardSignalKeyPrefix.VALUE_ESTIMATES, "extrinsic"): rng.standard_normal(
            n, dtype=np.float32
        ),
        BufferKey.MASKS: np.ones(n, dtype=np.float32),
        BufferKey.DONE: rng.random(n) < 0.001,
    }
    buffer = AgentBuffer()
    for key, column in columns.items():
        buffer[key].extend(list(column))  # ML-Agents fields are lists of per-step rows
    return buffer


def ppo_update(buffer: AgentBuffer, read_fields: bool) -> None:
    batches = UPDATE_STEPS // MINIBATCH
    for _ in range(EPOCHS):
        buffer.shuffle(sequence_length=1)
        for i in range(batches):
            batch = buffer.make_mini_batch(i * MINIBATCH, (i + 1) * MINIBATCH)
            if read_fields:
                for field in batch.values():
                    np.asanyarray(field)  # what ModelUtils.list_to_tensor does


def trajectories() -> list[Trajectory]:
    rng = np.random.default_rng(1)
    out = []
    for t in range(TRAJECTORIES):
        steps = []
        for s in range(TRAJECTORY_STEPS):
            steps.append(
                AgentExperience(
                    obs=[rng.standard_normal(8, dtype=np.float32)],
                    reward=float(rng.random()),
                    done=s == TRAJECTORY_STEPS - 1,
                    action=ActionTuple(
                        continuous=rng.standard_normal(2, dtype=np.float32),
                        discrete=np.zeros(0, dtype=np.int32),
                    ),
                    action_probs=LogProbsTuple(
                        continuous=rng.standard_normal(2, dtype=np.float32),
                        discrete=np.zeros(0, dtype=np.float32),
                    ),
                    action_mask=None,
                    prev_action=np.zeros(0, dtype=np.int32),
                    interrupted=False,
                    memory=None,
                    group_status=[],
                    group_reward=0.0,
                )
            )
        out.append(
            Trajectory(
                steps=steps,
                next_obs=[rng.standard_normal(8, dtype=np.float32)],
                next_group_obs=[],
                agent_id=f"agent-{t}",
                behavior_id="3DBall?team=0",
            )
        )
    return out


def main() -> None:
    results = {}
    buffer = update_buffer()
    results["ppo_update_data_path"] = best_time(lambda: ppo_update(buffer, False), 3)
    results["ppo_update_data_path_read_fields"] = best_time(lambda: ppo_update(buffer, True), 3)
    trajs = trajectories()
    results["trajectory_to_agentbuffer"] = best_time(lambda: [t.to_agentbuffer() for t in trajs], 3)

    update = AgentBuffer()

    def ingest() -> None:
        update.reset_agent()  # as the trainer empties its update buffer after each update
        for t in trajs:
            t.to_agentbuffer().resequence_and_append(update, training_length=1)

    results["trajectory_to_update_buffer"] = best_time(ingest, 3)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
