"""ML-Agents 1.1.0 side of bench_advantages.py; runs in the anchor venv.

Times ML-Agents' own ``get_gae`` / ``discount_rewards`` (trainer_utils) and ``lambda_return``
(poca.trainer), called once per trajectory as its trainers do, on the shared workload.
Prints one JSON line {workload: seconds}.
"""

from __future__ import annotations

import json

from advantages_workload import GAMMA, LAMBD, POCA_LAMBD, make_workload
from common import best_time
from mlagents.trainers.poca.trainer import lambda_return
from mlagents.trainers.trainer.trainer_utils import discount_rewards, get_gae


def main() -> None:
    work = make_workload()
    rewards, values, value_next = work["rewards"], work["values"], work["value_next"]
    pairs = list(zip(rewards, values, value_next))

    def gae_per_trajectory():
        return [get_gae(r, v, vn, GAMMA, LAMBD) for r, v, vn in pairs]

    def discount_per_trajectory():
        return [discount_rewards(r, GAMMA, vn) for r, _, vn in pairs]

    def lambda_return_per_trajectory():
        return [lambda_return(r, v, GAMMA, POCA_LAMBD, vn) for r, v, vn in pairs]

    print(
        json.dumps(
            {
                "gae": best_time(gae_per_trajectory, repeat=7),
                "discount_rewards": best_time(discount_per_trajectory, repeat=7),
                "lambda_return": best_time(lambda_return_per_trajectory, repeat=7),
            }
        )
    )


if __name__ == "__main__":
    main()
