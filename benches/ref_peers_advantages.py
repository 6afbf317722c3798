"""Peer libraries' batched GAE on the shared workload; runs in the peers venv.

- rlox 1.2.0 ``compute_gae_batched_f32``: flat env-major arrays, float32 dones, one
  bootstrap value per environment.
- TorchRL 0.14 ``vec_generalized_advantage_estimate``: ``[N, T, 1]`` float32 CPU tensors.

Prints one JSON line {workload: seconds}; a library that fails to import is left out.
"""

from __future__ import annotations

import json

import numpy as np
from advantages_workload import GAMMA, LAMBD, STEPS, make_workload
from common import best_time


def main() -> None:
    work = make_workload()
    rewards, values, value_next = work["rewards"], work["values"], work["value_next"]
    results: dict[str, float] = {}
    try:
        import rlox
    except ImportError:
        rlox = None
    if rlox is not None:
        flat_rewards, flat_values = rewards.reshape(-1), values.reshape(-1)
        dones = np.zeros_like(flat_rewards)

        def rlox_gae():
            return rlox.compute_gae_batched_f32(
                flat_rewards, flat_values, dones, value_next, STEPS, GAMMA, LAMBD
            )

        results["rlox_batched"] = best_time(rlox_gae, repeat=30, number=5)
    try:
        import torch
        from torchrl.objectives.value.functional import vec_generalized_advantage_estimate
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        state_value = torch.from_numpy(values)[..., None]
        next_state_value = torch.cat(
            [state_value[:, 1:], torch.from_numpy(value_next)[:, None, None]], dim=1
        )
        reward = torch.from_numpy(rewards)[..., None]
        done = torch.zeros_like(reward, dtype=torch.bool)
        done[:, -1] = True  # the batch ends here: no recursion past the last step

        def torchrl_gae():
            return vec_generalized_advantage_estimate(
                GAMMA, LAMBD, state_value, next_state_value, reward, done, torch.zeros_like(done)
            )

        results["torchrl_vec"] = best_time(torchrl_gae, repeat=10, number=2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
