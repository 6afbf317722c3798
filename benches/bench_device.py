"""Training device: steps/s of PPO on cpu and, when present, cuda (``--torch-device``).

Two trainings with ML-Agents' own configs, run through ``mlagents-fast-learn`` (one process
per run; steps/s from the progress lines, start-up excluded, as ``bench_training.py``):

- 3DBall (``config/ppo/3DBall.yaml``, 12 agents, vector observations, 128x2 MLP);
- visual GridWorld (``config/ppo/GridWorld.yaml`` on ``builtin:VisualGridWorld``: 9 agents,
  3x20x20 camera, the ``simple`` CNN).

Each on ``--torch-device cpu`` and, when CUDA is available, ``cuda`` with the policy acting on
the GPU and ``cuda`` acting from a CPU copy of the actor (``TorchPolicy.acting_device``, set
explicitly in both, whatever the default), the choice the README discusses. A third table times
one ``get_action`` call (the acting step alone) for the same batches on each device. Without
CUDA only the cpu columns are printed. Rows are printed as they are measured; a run that fails
prints its error in its cell and the others go on.

    python benches/bench_device.py [--max-steps-3dball N] [--max-steps-gridworld N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import parse_progress, run
from common import best_time, fmt_seconds, machine_line

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config" / "ppo"

# mlagents-fast-learn whose policies act on the device named by its first argument.
ACTING_ON = """
import sys, torch
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
_acting_device = torch.device(sys.argv.pop(1))
_init = TorchPolicy.__init__
def _init_acting_on(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.acting_device = _acting_device
TorchPolicy.__init__ = _init_acting_on
from mlagents_fast.trainers.learn import main
main(sys.argv[1:])
"""

WORKLOADS = {
    "3DBall": ("3DBall.yaml", "builtin:3DBall", "3DBall"),
    "visual GridWorld": ("GridWorld.yaml", "builtin:VisualGridWorld", "GridWorld"),
}


def variants() -> dict[str, tuple[str, str]]:
    """Column name -> (--torch-device, acting device)."""
    columns = {"cpu": ("cpu", "cpu")}
    if torch.cuda.is_available():
        columns["cuda"] = ("cuda", "cuda")
        columns["cuda, acting on cpu"] = ("cuda", "cpu")
    return columns


def train_rate(workload: str, device: str, acting: str, max_steps: int, work: Path) -> dict:
    config_name, env, behavior = WORKLOADS[workload]
    config = yaml.safe_load((CONFIG_DIR / config_name).read_text())
    settings = config["behaviors"][behavior]
    settings["max_steps"] = max_steps
    settings["summary_freq"] = max(max_steps // 6, 1000)
    run_id = f"{behavior}-{device.replace(':', '')}-acting-{acting.replace(':', '')}"
    config_path = work / f"{run_id}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-c", ACTING_ON, acting, str(config_path), "--env", env]
    command += ["--torch-device", device]
    command += ["--seed", "1", "--force", "--run-id", run_id]
    return parse_progress(run(command, work, 3600))


def acting_latency(device: str) -> dict[str, float]:
    """Seconds per get_action of a fresh policy for each workload's batch of agents."""
    from mlagents_fast.envs.env_opener import make_env
    from mlagents_fast.torch_utils import set_torch_config
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
    from mlagents_fast.trainers.settings import RunOptions, TorchSettings
    from mlagents_fast.trainers.torch_entities.networks import SimpleActor

    set_torch_config(TorchSettings(device=device))
    torch.set_num_threads(1)  # as training runs (trainers.run._configure_torch)
    latencies = {}
    for workload, (config_name, env_path, behavior) in WORKLOADS.items():
        options = RunOptions.from_dict(yaml.safe_load((CONFIG_DIR / config_name).read_text()))
        env = make_env(env_path, seed=1)
        env.reset()
        name = next(iter(env.behavior_specs))
        decision_steps, _ = env.get_steps(name)
        network = options.behaviors[behavior].network_settings
        policy = TorchPolicy(1, env.behavior_specs[name], network, SimpleActor, {})
        policy.acting_device = policy.device  # the acting step alone, on this device

        def act(policy: TorchPolicy = policy, steps: object = decision_steps) -> None:
            policy.get_action(steps)
            if policy.device.type == "cuda":
                torch.cuda.synchronize()

        latencies[workload] = best_time(act, repeat=7, number=50, warmup=20)
        env.close()
    return latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps-3dball", type=int, default=30_000)
    parser.add_argument("--max-steps-gridworld", type=int, default=20_000)
    args = parser.parse_args(argv if argv is not None else [])
    max_steps = {"3DBall": args.max_steps_3dball, "visual GridWorld": args.max_steps_gridworld}

    print(machine_line())
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print(f"cuda: not available on this machine (torch {torch.__version__}): cpu only")
    columns = variants()
    print("| PPO training: agent steps/s (final mean reward) | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-device-") as work_dir:
        for workload in WORKLOADS:
            cells, cpu_rate = [], None
            for column, (device, acting) in columns.items():
                try:
                    rate = train_rate(workload, device, acting, max_steps[workload], Path(work_dir))
                except (RuntimeError, OSError, subprocess.SubprocessError) as err:
                    print(f"{workload}, {column} failed: {err}", file=sys.stderr, flush=True)
                    cells.append(f"failed: {str(err).strip().splitlines()[0][:120]}")
                    continue
                steps_per_second = rate["steps_per_second"]
                if column == "cpu":
                    cpu_rate = steps_per_second
                ratio = (
                    ""
                    if cpu_rate is None or column == "cpu"
                    else (f" {steps_per_second / cpu_rate:.2f}x")
                )
                cells.append(f"{steps_per_second:.0f}{ratio} ({rate['final_reward']:.2f})")
            row = f"| {workload}, {max_steps[workload]} steps | " + " | ".join(cells) + " |"
            print(row, flush=True)
    devices = list(dict.fromkeys(acting for _, acting in columns.values()))
    print()
    print("| get_action, one batch (1 torch thread) | " + " | ".join(devices) + " |")
    print("|---" * (len(devices) + 1) + "|")
    latency = {device: acting_latency(device) for device in devices}
    for workload in WORKLOADS:
        cells = [fmt_seconds(latency[device][workload]) for device in devices]
        print(f"| {workload} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
