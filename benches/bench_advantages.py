"""Advantage kernels on issue 2's workload: GAE over 64 trajectories x 1000 steps, float32.

Rows (ours first, then each reference with its time and our speed-up):
- batched GAE, ragged layout (``compute_gae_ragged``: trajectories back to back, as the
  trainers lay them out);
- the ML-Agents drop-ins (``get_gae``, ``discount_rewards``, ``lambda_return``) called once
  per trajectory, as ML-Agents' trainers call them.
References: a plain numpy implementation in this process (vectorized over the 64
trajectories, one Python step per time step), ML-Agents 1.1.0 in its anchor venv
(``ref_mlagents_advantages.py``), and rlox 1.2.0 / TorchRL 0.14 in the peers venv
(``ref_peers_advantages.py``) when those venvs exist.
"""

from __future__ import annotations

import numpy as np
from advantages_workload import GAMMA, LAMBD, POCA_LAMBD, STEPS, TRAJECTORIES, make_workload
from common import best_time, mlagents_python, peers_python, report, run_reference
from mlagents_fast.trainers.trainer.trainer_utils import (
    compute_gae_ragged,
    discount_rewards,
    get_gae,
    lambda_return,
)

TARGET_BATCHED_S = 100e-6  # issue 2: GAE 64x1000 <= 0.1 ms


def numpy_gae(rewards, values, value_next):
    """Time-major numpy GAE: one vectorized step over all trajectories per time step."""
    advantages = np.empty_like(rewards)
    running = np.zeros(rewards.shape[1], dtype=rewards.dtype)
    next_values = value_next
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + np.float32(GAMMA) * next_values - values[t]
        running = delta + np.float32(GAMMA * LAMBD) * running
        advantages[t] = running
        next_values = values[t]
    return advantages


def numpy_discount(rewards, value_next):
    out = np.empty_like(rewards)
    running = value_next
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + np.float32(GAMMA) * running
        out[t] = running
    return out


def numpy_lambda_return(rewards, values, value_next):
    out = np.empty_like(rewards)
    running = rewards[-1] + np.float32(GAMMA) * value_next
    out[-1] = running
    mix, rest = np.float32(GAMMA * POCA_LAMBD), np.float32((1 - POCA_LAMBD) * GAMMA)
    for t in range(rewards.shape[0] - 2, -1, -1):
        running = mix * running + rewards[t] + rest * values[t + 1]
        out[t] = running
    return out


def main() -> None:
    work = make_workload()
    rewards, values, value_next = work["rewards"], work["values"], work["value_next"]
    steps_total = TRAJECTORIES * STEPS

    # Ragged layout: trajectories back to back.
    flat_rewards, flat_values = rewards.reshape(-1), values.reshape(-1)
    offsets = np.arange(0, steps_total + 1, STEPS, dtype=np.int64)
    # [T, N] copies for the numpy reference, which is vectorized over the trajectories.
    tm_rewards = np.ascontiguousarray(rewards.T)
    tm_values = np.ascontiguousarray(values.T)
    pairs = list(zip(rewards, values, value_next))

    # Everything timed must first agree with the numpy reference.
    reference = numpy_gae(tm_rewards, tm_values, value_next)
    ragged = compute_gae_ragged(flat_rewards, flat_values, offsets, value_next, GAMMA, LAMBD)
    per_trajectory = np.stack([get_gae(r, v, vn, GAMMA, LAMBD) for r, v, vn in pairs])
    for result in (
        ragged.advantages.reshape(TRAJECTORIES, STEPS).T,
        per_trajectory.T,
    ):
        np.testing.assert_allclose(result, reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        np.stack([discount_rewards(r, GAMMA, vn) for r, _, vn in pairs]).T,
        numpy_discount(tm_rewards, value_next),
        rtol=1e-4,
        atol=1e-3,
    )
    np.testing.assert_allclose(
        np.stack([lambda_return(r, v, GAMMA, POCA_LAMBD, vn) for r, v, vn in pairs]).T,
        numpy_lambda_return(tm_rewards, tm_values, value_next),
        rtol=1e-4,
        atol=1e-3,
    )

    mlagents = run_reference(mlagents_python(), "ref_mlagents_advantages.py") or {}
    peers = run_reference(peers_python(), "ref_peers_advantages.py") or {}

    numpy_gae_s = best_time(lambda: numpy_gae(tm_rewards, tm_values, value_next), repeat=5)
    batched_refs = {
        "numpy": numpy_gae_s,
        "ML-Agents 1.1.0 get_gae x64": mlagents.get("gae"),
        "rlox 1.2.0 batched f32": peers.get("rlox_batched"),
        "TorchRL 0.14 vec GAE": peers.get("torchrl_vec"),
    }

    def throughput(seconds: float) -> str:
        return f"{steps_total / seconds / 1e6:.0f} M steps/s"

    ragged_s = best_time(
        lambda: compute_gae_ragged(flat_rewards, flat_values, offsets, value_next, GAMMA, LAMBD),
        repeat=50,
        number=10,
    )
    report("GAE 64x1000 f32 batched, ragged", ragged_s, batched_refs, throughput(ragged_s))
    # The same call writing into arrays reused across calls (out=): no allocation, so
    # none of the page faults a fresh output may take, depending on the allocator's state.
    ragged_out = (np.empty_like(flat_rewards), np.empty_like(flat_rewards))
    ragged_out_s = best_time(
        lambda: compute_gae_ragged(
            flat_rewards, flat_values, offsets, value_next, GAMMA, LAMBD, out=ragged_out
        ),
        repeat=50,
        number=10,
    )
    report(
        "GAE 64x1000 f32 batched, ragged, out=",
        ragged_out_s,
        batched_refs,
        throughput(ragged_out_s),
    )
    drop_in_s = best_time(
        lambda: [get_gae(r, v, vn, GAMMA, LAMBD) for r, v, vn in pairs], repeat=20, number=2
    )
    report(
        "GAE 64x1000 f32 drop-in get_gae x64",
        drop_in_s,
        {"numpy": numpy_gae_s, "ML-Agents 1.1.0 get_gae x64": mlagents.get("gae")},
        throughput(drop_in_s),
    )
    discount_s = best_time(
        lambda: [discount_rewards(r, GAMMA, vn) for r, _, vn in pairs], repeat=20, number=2
    )
    numpy_discount_s = best_time(lambda: numpy_discount(tm_rewards, value_next), repeat=5)
    report(
        "discount_rewards 64x1000 f32 drop-in x64",
        discount_s,
        {
            "numpy": numpy_discount_s,
            "ML-Agents 1.1.0 discount_rewards x64": mlagents.get("discount_rewards"),
        },
        throughput(discount_s),
    )
    lambda_s = best_time(
        lambda: [lambda_return(r, v, GAMMA, POCA_LAMBD, vn) for r, v, vn in pairs],
        repeat=20,
        number=2,
    )
    numpy_lambda_s = best_time(
        lambda: numpy_lambda_return(tm_rewards, tm_values, value_next), repeat=5
    )
    report(
        "lambda_return 64x1000 f32 drop-in x64",
        lambda_s,
        {
            "numpy": numpy_lambda_s,
            "ML-Agents 1.1.0 lambda_return x64": mlagents.get("lambda_return"),
        },
        throughput(lambda_s),
    )

    verdict = "met" if ragged_s <= TARGET_BATCHED_S else "MISSED"
    print(
        f"  target batched GAE 64x1000 <= 100 us: {verdict} "
        f"(ragged {ragged_s * 1e6:.1f} us; with out=: {ragged_out_s * 1e6:.1f} us)"
    )


if __name__ == "__main__":
    main()
