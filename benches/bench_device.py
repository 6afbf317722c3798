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

``--workload visual-resnet`` times the PPO *update alone* (no environment, no acting) where a
GPU should pay off: 84x84x3 camera observations through ML-Agents' ``resnet`` and
``nature_cnn`` encoders, batch_size 512, buffer_size 5120, num_epoch 3 (no built-in env has an
84x84 camera). The update buffer holds random observations and targets, built once; the real
``TorchPPOOptimizer.update`` walks it as ``OnPolicyTrainer._update_policy`` does (shuffle,
minibatches, num_epoch passes). Timed: the ``update`` calls (host-to-device copies included,
shuffles not), after warm-up minibatches, until all of one PPO update is done or
``--cpu-seconds`` have passed; printed as minibatch rows/s and the seconds one whole PPO update
(buffer_size x num_epoch rows) takes at that rate, on cpu with 1 torch thread (what training
uses), cpu with every core, and cuda when present.

    python benches/bench_device.py --workload visual-resnet [--side 84] [--batch-size 512]
        [--buffer-size 5120] [--num-epoch 3] [--encoders resnet nature_cnn] [--cpu-seconds S]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
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


def visual_update_buffer(side: int, rows: int, seed: int = 0):
    """A PPO update buffer of ``rows`` random 3 x side x side camera observations with
    discrete actions (one branch of 5, as GridWorld) and the targets the update reads."""
    import numpy as np
    from mlagents_fast.envs.base_env import (
        ActionSpec,
        BehaviorSpec,
        DimensionProperty,
        ObservationSpec,
        ObservationType,
    )
    from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, RewardSignalUtil
    from mlagents_fast.trainers.trajectory import ObsUtil

    camera = ObservationSpec(
        shape=(3, side, side),
        dimension_property=(
            DimensionProperty.NONE,
            DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
            DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        ),
        observation_type=ObservationType.DEFAULT,
        name="camera",
    )
    spec = BehaviorSpec([camera], ActionSpec(0, (5,)))
    rng = np.random.default_rng(seed)
    columns = {
        ObsUtil.get_name_at(0): rng.random((rows, 3, side, side), dtype=np.float32),
        BufferKey.CONTINUOUS_ACTION: np.zeros((rows, 0), np.float32),
        BufferKey.DISCRETE_ACTION: rng.integers(0, 5, (rows, 1)).astype(np.int32),
        BufferKey.CONTINUOUS_LOG_PROBS: np.zeros((rows, 0), np.float32),
        BufferKey.DISCRETE_LOG_PROBS: np.full((rows, 1), np.log(0.2), np.float32),
        BufferKey.ACTION_MASK: np.ones((rows, 5), np.float32),
        BufferKey.ADVANTAGES: rng.standard_normal(rows).astype(np.float32),
        BufferKey.MASKS: np.ones(rows, np.float32),
        RewardSignalUtil.returns_key("extrinsic"): rng.standard_normal(rows).astype(np.float32),
        RewardSignalUtil.value_estimates_key("extrinsic"): rng.standard_normal(rows).astype(
            np.float32
        ),
    }
    buffer = AgentBuffer()
    for key, column in columns.items():
        buffer[key].set(column)
    return spec, buffer


def update_rate(
    spec: object,
    buffer: object,
    device: str,
    threads: int,
    encoder: str,
    hyperparameters: dict,
    max_seconds: float,
) -> tuple[float, int]:
    """(minibatch rows per second of ``TorchPPOOptimizer.update``, minibatches timed)."""
    from mlagents_fast.torch_utils import set_torch_config
    from mlagents_fast.trainers.batches import minibatches
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
    from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
    from mlagents_fast.trainers.settings import (
        EncoderType,
        NetworkSettings,
        PPOSettings,
        TorchSettings,
        TrainerSettings,
    )
    from mlagents_fast.trainers.torch_entities.networks import SimpleActor

    set_torch_config(TorchSettings(device=device))
    torch.set_num_threads(threads)
    settings = TrainerSettings(
        trainer_type="ppo",
        hyperparameters=PPOSettings(**hyperparameters),
        network_settings=NetworkSettings(
            hidden_units=256, num_layers=2, vis_encode_type=EncoderType(encoder)
        ),
    )
    policy = TorchPolicy(
        1,
        spec,
        settings.network_settings,
        SimpleActor,
        {"conditional_sigma": False, "tanh_squash": False},
    )
    optimizer = TorchPPOOptimizer(policy, settings)
    batch_size = hyperparameters["batch_size"]
    on_cuda = policy.device.type == "cuda"
    warmup = 2 if on_cuda else 1  # cuda: context, cuDNN and allocator set-up
    timed, seconds, done = 0, 0.0, 0
    total = hyperparameters["num_epoch"] * (buffer.num_experiences // batch_size)
    # Warm-up minibatches first, then one whole PPO update's worth or max_seconds.
    while done < warmup + total and not (timed >= 1 and seconds > max_seconds):
        buffer.shuffle(sequence_length=1)
        for minibatch in minibatches(buffer, batch_size):
            start = time.perf_counter()
            optimizer.update(minibatch, batch_size)
            if on_cuda:
                torch.cuda.synchronize()
            if done >= warmup:
                seconds += time.perf_counter() - start
                timed += 1
            done += 1
            if done >= warmup + total or (timed >= 1 and seconds > max_seconds):
                break
    return timed * batch_size / seconds, timed


def main_visual_update(args: argparse.Namespace) -> None:
    hyperparameters = {
        "batch_size": args.batch_size,
        "buffer_size": args.buffer_size,
        "num_epoch": args.num_epoch,
    }
    print(machine_line())
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print(f"cuda: not available on this machine (torch {torch.__version__}): cpu only")
    cores = os.cpu_count() or 1
    columns = {"cpu, 1 thread": ("cpu", 1), f"cpu, {cores} threads": ("cpu", cores)}
    if torch.cuda.is_available():
        columns["cuda"] = ("cuda", 1)
    side = args.side
    print(
        f"PPO update only (no env, no acting): 3x{side}x{side} camera, batch_size "
        f"{args.batch_size}, buffer_size {args.buffer_size}, num_epoch {args.num_epoch}, "
        "256x2 hidden; cells: minibatch rows/s (seconds per whole PPO update) [minibatches timed]"
    )
    ratio_columns = [f"cuda / {name}" for name in columns if name != "cuda"]
    header = ["encoder", *columns, *(ratio_columns if "cuda" in columns else [])]
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|", flush=True)
    spec, buffer = visual_update_buffer(side, args.buffer_size)
    rows_per_update = args.buffer_size * args.num_epoch
    for encoder in args.encoders:
        cells, rates = [], {}
        for column, (device, threads) in columns.items():
            try:
                rate, timed = update_rate(
                    spec, buffer, device, threads, encoder, hyperparameters, args.cpu_seconds
                )
            except (RuntimeError, ValueError) as err:
                print(f"{encoder}, {column} failed: {err}", file=sys.stderr, flush=True)
                cells.append(f"failed: {str(err).strip().splitlines()[0][:120]}")
                continue
            rates[column] = rate
            cells.append(f"{rate:.0f} ({rows_per_update / rate:.1f} s) [{timed}]")
        if "cuda" in columns:
            for column in columns:
                if column != "cuda":
                    both = column in rates and "cuda" in rates
                    cells.append(f"{rates['cuda'] / rates[column]:.1f}x" if both else "-")
        print(f"| {encoder} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["training", "visual-resnet"], default="training")
    parser.add_argument("--max-steps-3dball", type=int, default=30_000)
    parser.add_argument("--max-steps-gridworld", type=int, default=20_000)
    parser.add_argument("--side", type=int, default=84, help="visual-resnet: camera side")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--buffer-size", type=int, default=5120)
    parser.add_argument("--num-epoch", type=int, default=3)
    parser.add_argument("--encoders", nargs="+", default=["resnet", "nature_cnn"])
    parser.add_argument(
        "--cpu-seconds",
        type=float,
        default=20.0,
        help="visual-resnet: stop timing a column after this long (at least 1 minibatch)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    if args.workload == "visual-resnet":
        main_visual_update(args)
        return
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
