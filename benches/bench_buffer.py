"""AgentBuffer and trajectory workloads (issue 2, item 8), against a plain numpy reference
in the same process and ML-Agents 1.1.0 (benches/ref_mlagents_buffer.py) when its venv exists.

- ppo_update_data_path: a 13k-step 3DBall-like update buffer (obs 8 floats, 2 continuous
  actions, their log probs, advantages, returns, value estimates, masks, done), 3 epochs of
  shuffle + 203 minibatches of 64 via make_mini_batch.
- ppo_update_data_path_read_fields: the same, also turning every field of every minibatch
  into a numpy array (what the optimizer does before torch.from_numpy).
- ppo_update_typed_minibatches: what the PPO trainer runs: the same 3 epochs of shuffle, with
  the minibatches cut as typed batches (``trainers.batches.minibatches``) and every field the
  update reads taken as a numpy array; compared with numpy, with our make_mini_batch + read
  fields (the trainer's path before typed batches) and ML-Agents' make_mini_batch + read fields.
- trajectory_to_agentbuffer: 13 trajectories of 1000 steps (3DBall time_horizon) turned into
  AgentBuffers; ours from the columnar form, ML-Agents from its per-step Trajectory.
- trajectory_to_update_buffer: the same plus resequence_and_append into one update buffer
  (the PPO trainer's ingestion path, the update buffer emptied with reset_agent before each round).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, mlagents_python, report, run_reference
from mlagents_fast.trainers.batches import minibatches
from mlagents_fast.trainers.buffer import (
    AgentBuffer,
    BufferKey,
    ObservationKeyPrefix,
    RewardSignalUtil,
)
from mlagents_fast.trainers.trajectory import ColumnarTrajectory

# Same sizes as ref_mlagents_buffer.py.
UPDATE_STEPS = 13_000
EPOCHS = 3
MINIBATCH = 64
TRAJECTORIES = 13
TRAJECTORY_STEPS = 1000


def update_columns() -> dict:
    rng = np.random.default_rng(0)
    n = UPDATE_STEPS
    return {
        (ObservationKeyPrefix.OBSERVATION, 0): rng.standard_normal((n, 8), dtype=np.float32),
        BufferKey.CONTINUOUS_ACTION: rng.standard_normal((n, 2), dtype=np.float32),
        BufferKey.CONTINUOUS_LOG_PROBS: rng.standard_normal((n, 2), dtype=np.float32),
        BufferKey.ADVANTAGES: rng.standard_normal(n, dtype=np.float32),
        RewardSignalUtil.returns_key("extrinsic"): rng.standard_normal(n, dtype=np.float32),
        RewardSignalUtil.value_estimates_key("extrinsic"): rng.standard_normal(n, dtype=np.float32),
        BufferKey.MASKS: np.ones(n, dtype=np.float32),
        BufferKey.DONE: rng.random(n) < 0.001,
    }


def ppo_update(buffer: AgentBuffer, read_fields: bool) -> None:
    batches = UPDATE_STEPS // MINIBATCH
    for _ in range(EPOCHS):
        buffer.shuffle(sequence_length=1)
        for i in range(batches):
            batch = buffer.make_mini_batch(i * MINIBATCH, (i + 1) * MINIBATCH)
            if read_fields:
                for field in batch.values():
                    np.asanyarray(field)


def ppo_update_typed(buffer: AgentBuffer) -> None:
    """The PPO trainer's epochs: typed minibatches, each field the update reads as an array."""
    for _ in range(EPOCHS):
        buffer.shuffle(sequence_length=1)
        for batch in minibatches(buffer, MINIBATCH):
            for array in (
                batch.obs[0],
                batch.continuous_actions,
                batch.continuous_log_probs,
                batch.advantages,
                batch.returns["extrinsic"],
                batch.value_estimates["extrinsic"],
                batch.masks,
                batch.done,
            ):
                np.asanyarray(array)


def numpy_update(columns: dict, read_fields: bool) -> None:
    """Plain numpy: a dict of arrays, permuted with fancy indexing, sliced per minibatch."""
    batches = UPDATE_STEPS // MINIBATCH
    for _ in range(EPOCHS):
        order = np.random.permutation(UPDATE_STEPS)
        columns = {key: column[order] for key, column in columns.items()}
        for i in range(batches):
            batch = {
                key: column[i * MINIBATCH : (i + 1) * MINIBATCH] for key, column in columns.items()
            }
            if read_fields:
                for field in batch.values():
                    np.asanyarray(field)


def columnar_trajectories() -> list[ColumnarTrajectory]:
    rng = np.random.default_rng(1)
    steps = TRAJECTORY_STEPS
    return [
        ColumnarTrajectory(
            obs=[rng.standard_normal((steps, 8), dtype=np.float32)],
            next_obs=[rng.standard_normal(8, dtype=np.float32)],
            rewards=rng.random(steps, dtype=np.float32),
            dones=np.arange(steps) == steps - 1,
            continuous_actions=rng.standard_normal((steps, 2), dtype=np.float32),
            discrete_actions=np.zeros((steps, 0), dtype=np.int32),
            continuous_log_probs=rng.standard_normal((steps, 2), dtype=np.float32),
            discrete_log_probs=np.zeros((steps, 0), dtype=np.float32),
            agent_id=f"agent-{t}",
            behavior_id="3DBall?team=0",
        )
        for t in range(TRAJECTORIES)
    ]


def numpy_to_rows(trajectory: ColumnarTrajectory) -> dict:
    """Plain numpy: copy each column into a dict, build next_obs and next actions."""
    next_obs = np.concatenate([trajectory.obs[0][1:], trajectory.next_obs[0][None]])
    next_actions = np.concatenate(
        [trajectory.continuous_actions[1:], np.zeros((1, 2), dtype=np.float32)]
    )
    return {
        "obs_0": trajectory.obs[0].copy(),
        "next_obs_0": next_obs,
        "continuous_action": trajectory.continuous_actions.copy(),
        "next_continuous_action": next_actions,
        "continuous_log_probs": trajectory.continuous_log_probs.copy(),
        "environment_rewards": trajectory.rewards.copy(),
        "done": trajectory.dones.copy(),
        "masks": np.ones(len(trajectory.rewards), dtype=np.float32),
    }


def main() -> None:
    reference = run_reference(mlagents_python(), "ref_mlagents_buffer.py") or {}
    total_steps = TRAJECTORIES * TRAJECTORY_STEPS

    columns = update_columns()
    buffer = AgentBuffer()
    for key, column in columns.items():
        buffer[key].extend(column)
    ours_by_name = {}
    for read_fields, name in [
        (False, "ppo_update_data_path"),
        (True, "ppo_update_data_path_read_fields"),
    ]:
        ours = best_time(lambda read=read_fields: ppo_update(buffer, read), repeat=7)
        ours_by_name[name] = ours
        plain = best_time(lambda read=read_fields: numpy_update(columns, read), repeat=7)
        report(
            f"{name} (13k steps, 3x203 mb)",
            ours,
            {"numpy": plain, "ML-Agents 1.1.0": reference.get(name)},
            f"{EPOCHS * UPDATE_STEPS / ours / 1e6:.1f} M rows/s",
        )

    ours = best_time(lambda: ppo_update_typed(buffer), repeat=7)
    plain = best_time(lambda: numpy_update(columns, True), repeat=7)
    report(
        "ppo_update_typed_minibatches (13k steps, 3x203 mb)",
        ours,
        {
            "numpy": plain,
            "make_mini_batch (before)": ours_by_name["ppo_update_data_path_read_fields"],
            "ML-Agents 1.1.0": reference.get("ppo_update_data_path_read_fields"),
        },
        f"{EPOCHS * UPDATE_STEPS / ours / 1e6:.1f} M rows/s",
    )

    trajectories = columnar_trajectories()
    ours = best_time(lambda: [t.to_agentbuffer() for t in trajectories], repeat=7)
    plain = best_time(lambda: [numpy_to_rows(t) for t in trajectories], repeat=7)
    report(
        "trajectory_to_agentbuffer (13 x 1000 steps)",
        ours,
        {"numpy": plain, "ML-Agents 1.1.0": reference.get("trajectory_to_agentbuffer")},
        f"{total_steps / ours / 1e6:.1f} M steps/s",
    )

    update = AgentBuffer()

    def ingest() -> None:
        update.reset_agent()  # as the trainer empties its update buffer after each update
        for t in trajectories:
            t.to_agentbuffer().resequence_and_append(update, training_length=1)

    def numpy_ingest() -> None:
        parts = [numpy_to_rows(t) for t in trajectories]
        {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    ours = best_time(ingest, repeat=7)
    plain = best_time(numpy_ingest, repeat=7)
    report(
        "trajectory_to_update_buffer (13 x 1000 steps)",
        ours,
        {"numpy": plain, "ML-Agents 1.1.0": reference.get("trajectory_to_update_buffer")},
        f"{total_steps / ours / 1e6:.1f} M steps/s",
    )


if __name__ == "__main__":
    main()
