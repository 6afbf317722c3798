"""Environment workers: steps/s through Ray actors (``--env-workers ray``) against subprocess
workers (the default), on built-in 3DBall.

Two workloads, each with ``--num-envs`` environments (default 2, one per core of the 2-core
machine this was written on):

- stepping: the env manager alone (``get_steps`` with random actions, no trainer), in
  environment steps per second (each 3DBall environment step is 12 agent decisions);
- training: ``mlagents-fast-learn config/ppo/3DBall.yaml --env builtin:3DBall --num-envs N``
  with ``--env-workers subprocess`` and ``ray``, agent steps per second from the progress lines
  (start-up excluded), as ``bench_training.py`` measures them.

The reference is the subprocess workers in the same command. Without Ray installed the Ray
rows read n/a. ``python benches/bench_env_workers.py [--num-envs N] [--max-steps N]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import ball_config, parse_progress, run
from common import machine_line

BEHAVIOR = "3DBall?team=0"


class RandomPolicy:
    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def get_action(self, decision_steps: Any, worker_id: int = 0) -> Any:
        action = self.spec.action_spec.random_action(len(decision_steps))
        return SimpleNamespace(
            action=action,
            env_action=action,
            outputs={},
            agent_ids=list(decision_steps.agent_id),
        )


def stepping_rate(manager: Any, seconds: float) -> float:
    """Environment steps per second of ``manager`` over about ``seconds`` (after a warm-up)."""
    manager.reset()
    spec = manager.training_behaviors[BEHAVIOR]
    manager.set_policy(BEHAVIOR, RandomPolicy(spec))
    for _ in range(50):
        manager.get_steps()
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += len(manager.get_steps())
    return steps / (time.perf_counter() - start)


def stepping_rows(num_envs: int, seconds: float) -> dict[str, float | None]:
    from mlagents_fast.trainers.subprocess_env_manager import EnvFactory, SubprocessEnvManager

    factory = EnvFactory("builtin:3DBall", seed=1)
    rows: dict[str, float | None] = {}
    manager: Any = SubprocessEnvManager(factory, None, num_envs)
    try:
        rows["subprocess"] = stepping_rate(manager, seconds)
    finally:
        manager.close()
    try:
        import ray
    except ImportError:
        rows["ray"] = None
        return rows
    from mlagents_fast.trainers.ray_env_manager import RayEnvManager

    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        manager = RayEnvManager(factory, None, num_envs)
        try:
            rows["ray"] = stepping_rate(manager, seconds)
        finally:
            manager.close()
    finally:
        ray.shutdown()
    return rows


def training_rows(num_envs: int, max_steps: int, timeout: float) -> dict[str, dict | None]:
    rows: dict[str, dict | None] = {}
    with tempfile.TemporaryDirectory(prefix="bench-env-workers-") as work_dir:
        work = Path(work_dir)
        config = yaml.safe_load(ball_config().read_text())
        config["behaviors"]["3DBall"]["max_steps"] = max_steps
        config_path = work / "3DBall.yaml"
        config_path.write_text(yaml.safe_dump(config))
        for workers in ("subprocess", "ray"):
            if workers == "ray":
                try:
                    import ray  # noqa: F401
                except ImportError:
                    rows[workers] = None
                    continue
            command = [
                sys.executable,
                "-m",
                "mlagents_fast.trainers.learn",
                str(config_path),
                "--env",
                "builtin:3DBall",
                "--num-envs",
                str(num_envs),
                "--env-workers",
                workers,
                "--seed",
                "1",
                "--force",
                "--run-id",
                workers,
            ]
            rows[workers] = parse_progress(run(command, work, timeout))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-steps", type=int, default=36_000)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv if argv is not None else [])

    stepping = stepping_rows(args.num_envs, args.seconds)
    training = training_rows(args.num_envs, args.max_steps, args.timeout)
    print(machine_line())
    print(f"built-in 3DBall, --num-envs {args.num_envs}")
    print("| workload | subprocess workers | Ray actors | Ray vs subprocess |")
    print("|---|---|---|---|")

    def row(name: str, ours: float | None, reference: float | None, unit: str) -> None:
        ratio = f"{ours / reference:.2f}x" if ours and reference else "n/a"
        ours_text = f"{ours:.0f} {unit}" if ours else "n/a"
        print(f"| {name} | {reference:.0f} {unit} | {ours_text} | {ratio} |", flush=True)

    row("stepping, random actions", stepping["ray"], stepping["subprocess"], "env steps/s")
    ray_training = training["ray"]
    row(
        f"PPO training, {args.max_steps} steps",
        ray_training["steps_per_second"] if ray_training else None,
        training["subprocess"]["steps_per_second"],
        "agent steps/s",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
