"""End-to-end training throughput: env steps per second over a training run.

Workloads (``--workload``): ``3dball`` (PPO, ``config/ppo/3DBall.yaml``), ``3dball-sac`` (SAC,
``config/sac/3DBall.yaml``: the replay ring and SAC's update path), and the multi-agent
ones: ``dungeon-poca`` (POCA, ``config/poca/DungeonEscape.yaml`` on builtin:DungeonEscape),
``tennis-self-play`` (PPO with self-play, ``config/ppo/Tennis.yaml`` on builtin:Tennis) and
``tennis-poca-self-play`` (POCA with self-play, ``config/poca/SoccerTwos.yaml`` renamed to
Tennis, on builtin:Tennis two a side). Same config (ML-Agents' as shipped, max_steps and
summary_freq overridable), same environment (the built-in served by ``mlagents-fast-env``
through a launcher file, so both trainers talk gRPC to the same Unity-side host), two trainers:

- ours: ``mlagents-fast-learn CONFIG --env <launcher>``
- ML-Agents 1.1.0: ``mlagents-learn CONFIG --env <launcher>`` in the anchor venv

plus ours on ``--env builtin:<Name>`` (in-process, no gRPC), the way built-ins normally run.
``--also LABEL=PYTHON`` adds the rows of ours for another installation (e.g. a build of the
commit before a change), run in the same command so that before and after see the same load.
Steps/s is measured from the trainers' own progress lines (same format in both):
(last step - first step) / (elapsed at last - elapsed at first), so start-up is excluded. The
reward column is the mean reward of the last summary and the best summary.

    python benches/bench_training.py [--workload NAME] [--max-steps N] [--summary-freq N]
        [--also LABEL=PYTHON ...]
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


CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

# Workload -> (built-in, ML-Agents config as shipped in config/, its behavior, launcher options).
WORKLOADS = {
    "3dball": ("3DBall", "ppo/3DBall.yaml", "3DBall", []),
    "3dball-sac": ("3DBall", "sac/3DBall.yaml", "3DBall", []),
    "dungeon-poca": ("DungeonEscape", "poca/DungeonEscape.yaml", "DungeonEscape", []),
    "tennis-self-play": ("Tennis", "ppo/Tennis.yaml", "Tennis", []),
    "tennis-poca-self-play": (
        "Tennis",
        "poca/SoccerTwos.yaml",
        "SoccerTwos",
        ["--agents-per-area", "4"],
    ),
}


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
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="3dball")
    parser.add_argument("--max-steps", type=int, default=500_000)
    parser.add_argument(
        "--summary-freq", type=int, default=None, help="default: the config's (as shipped)"
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=PYTHON",
        help="also run ours with this interpreter (another build), rows named LABEL",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv if argv is not None else [])
    env_name, config_file, config_behavior, launcher_options = WORKLOADS[args.workload]
    installations = [("ours", sys.executable)]
    for item in args.also:
        label, _, python = item.partition("=")
        if not label or not python:
            parser.error(f"--also: expected LABEL=PYTHON, got {item!r}")
        installations.append((label, python))

    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    try:
        config = yaml.safe_load((CONFIG_DIR / config_file).read_text())
        # A config written for another scene trains the built-in under the built-in's name.
        behavior = config["behaviors"].pop(config_behavior)
        config["behaviors"][env_name] = behavior
        behavior["max_steps"] = args.max_steps
        if args.summary_freq is not None:
            behavior["summary_freq"] = args.summary_freq
        config_path = work / f"{env_name}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        host = shutil.which("mlagents-fast-env") or "mlagents-fast-env"
        run(
            [
                host,
                "--write-launcher",
                f"builtin:{env_name}",
                "--launcher-dir",
                str(work),
                "--launcher-name",
                env_name,
                *launcher_options,
            ],
            work,
            120,
        )
        launcher = str(work / env_name)
        common = [str(config_path), "--no-graphics", "--seed", "1", "--force"]

        results = {}
        for index, (label, python) in enumerate(installations):
            ours_cli = [python, "-m", "mlagents_fast.trainers.learn"]
            run_id = f"ours-{index}"
            if not launcher_options:  # (--agents-per-area is a launcher option only)
                results[f"{label}, builtin (in-process)"] = parse_progress(
                    run(
                        [*ours_cli, *common, "--env", f"builtin:{env_name}", "--run-id", run_id],
                        work,
                        args.timeout,
                    )
                )
            results[f"{label}, launcher (gRPC)"] = parse_progress(
                run(
                    [
                        *ours_cli,
                        *common,
                        "--env",
                        launcher,
                        "--run-id",
                        f"{run_id}-grpc",
                        "--base-port",
                        str(5105 + 200 * index),
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
        print(
            f"{args.workload} on builtin:{env_name}, {args.max_steps} steps, config {config_file}"
        )
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
