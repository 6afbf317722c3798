"""End-to-end training throughput: env steps per second over a PPO run on 3DBall.

Same config (``config/ppo/3DBall.yaml``, max_steps overridable), same
environment (built-in 3DBall served by ``mlagents-fast-env`` through a launcher file, so both
trainers talk gRPC to the same Unity-side host), two trainers:

- ours: ``mlagents-fast-learn CONFIG --env <launcher>``
- ML-Agents 1.1.0: ``mlagents-learn CONFIG --env <launcher>`` in the anchor venv

plus ours on ``--env builtin:3DBall`` (in-process, no gRPC), the way built-ins normally run.
Steps/s is measured from the trainers' own progress lines (same format in both):
(last step - first step) / (elapsed at last - elapsed at first), so start-up is excluded. The
reward column is the mean reward of the last summary and the best summary.

    python benches/bench_training.py [--max-steps N]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MLAGENTS_VENV, machine_line, mlagents_python

PROGRESS = re.compile(r"Step: (\d+)\. Time Elapsed: ([\d.]+) s\. (?:Mean Reward: (-?[\d.]+)\.)?")


def ball_config() -> Path:
    """ML-Agents' 3DBall config as shipped in this repository's config/."""
    return Path(__file__).resolve().parent.parent / "config" / "ppo" / "3DBall.yaml"


def parse_progress(output: str) -> dict:
    rows = [
        (int(m.group(1)), float(m.group(2)), float(m.group(3)) if m.group(3) else None)
        for m in PROGRESS.finditer(output)
    ]
    if len(rows) < 2:
        raise RuntimeError("fewer than two progress lines:\n" + output[-3000:])
    (step0, time0, _), (step1, time1, _) = rows[0], rows[-1]
    rewards = [reward for _, _, reward in rows if reward is not None]
    return {
        "steps_per_second": (step1 - step0) / (time1 - time0),
        "final_reward": rewards[-1] if rewards else float("nan"),
        "best_reward": max(rewards) if rewards else float("nan"),
        "steps": step1,
    }


def run(command: list[str], cwd: Path, timeout: float) -> str:
    completed = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({completed.returncode}):\n{output[-3000:]}")
    return output


def main(argv: list[str] | None = None) -> None:
    """``argv`` defaults to none (run_all.py calls ``main()`` with its own sys.argv)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=500_000)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv if argv is not None else [])

    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    try:
        config = yaml.safe_load(ball_config().read_text())
        config["behaviors"]["3DBall"]["max_steps"] = args.max_steps
        config_path = work / "3DBall.yaml"
        config_path.write_text(yaml.safe_dump(config))
        host = shutil.which("mlagents-fast-env") or "mlagents-fast-env"
        run(
            [
                host,
                "--write-launcher",
                "builtin:3DBall",
                "--launcher-dir",
                str(work),
                "--launcher-name",
                "3DBall",
            ],
            work,
            120,
        )
        launcher = str(work / "3DBall")
        common = [str(config_path), "--no-graphics", "--seed", "1", "--force"]
        ours_cli = [sys.executable, "-m", "mlagents_fast.trainers.learn"]

        results = {}
        results["ours, builtin (in-process)"] = parse_progress(
            run(
                [*ours_cli, *common, "--env", "builtin:3DBall", "--run-id", "ours-builtin"],
                work,
                args.timeout,
            )
        )
        results["ours, launcher (gRPC)"] = parse_progress(
            run(
                [
                    *ours_cli,
                    *common,
                    "--env",
                    launcher,
                    "--run-id",
                    "ours-grpc",
                    "--base-port",
                    "5105",
                ],
                work,
                args.timeout,
            )
        )
        anchor = mlagents_python()
        if anchor is not None:
            learn = str(MLAGENTS_VENV / "bin" / "mlagents-learn")
            results["ML-Agents 1.1.0, launcher (gRPC)"] = parse_progress(
                run(
                    [
                        learn,
                        *common,
                        "--env",
                        launcher,
                        "--run-id",
                        "mlagents",
                        "--base-port",
                        "5205",
                    ],
                    work,
                    args.timeout,
                )
            )
        print(machine_line())
        print(f"3DBall PPO, {args.max_steps} steps, config {ball_config().name}")
        reference = results.get("ML-Agents 1.1.0, launcher (gRPC)")
        print("| trainer | env steps/s | vs ML-Agents | final mean reward | best mean reward |")
        print("|---|---|---|---|---|")
        for name, result in results.items():
            ratio = (
                f"{result['steps_per_second'] / reference['steps_per_second']:.2f}x"
                if reference
                else "n/a"
            )
            print(
                f"| {name} | {result['steps_per_second']:.0f} | {ratio} | "
                f"{result['final_reward']:.2f} | {result['best_reward']:.2f} |",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
