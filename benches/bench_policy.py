"""The PyTorch side per call: acting, the PPO and SAC minibatch updates and trajectory value
estimates (``policy_workload.py``), ours against ML-Agents 1.1.0 running the same code through
its own module paths in the anchor venv (``ref_mlagents_policy.py``). One torch thread on both
sides (what the trainer sets)."""

from __future__ import annotations

from common import best_time, mlagents_python, report, run_reference
from policy_workload import workloads


def main() -> None:
    reference = run_reference(mlagents_python(), "ref_mlagents_policy.py") or {}
    for name, fn in workloads("fast").items():
        ours = best_time(fn, repeat=5, number=50, warmup=10)
        report(name, ours, {"ML-Agents 1.1.0": reference.get(name)}, f"{1 / ours:,.0f} calls/s")


if __name__ == "__main__":
    main()
