"""Checks what the README's main job left in ``results/<run-id>`` (run by .ci/newcomer).

    check_main_job.py results RUN_DIR CONFIG LOG   # with the fresh venv's Python
    check_main_job.py onnx RUN_DIR CONFIG          # with a Python that has onnxruntime (dev extra)

``results``: every behavior of CONFIG has ``<Behavior>.onnx``, its TensorBoard event files load
with TensorBoard's EventAccumulator and hold the run's reward scalars, ``tensorboard`` is
installed, ``learning_curves.png`` is a picture, every file of the run has the mode the umask
gives (0644 under umask 022), and the job's output LOG (not a terminal) has mlagents-learn's
summary line for each behavior, word for word. ``onnx``: each ``<Behavior>.onnx`` loads in
onnxruntime and answers a batch of zero observations. Exit 1 with the reasons on failure.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

import numpy as np
import yaml


def behaviors(config: str) -> list[str]:
    with open(config) as f:
        return sorted(yaml.safe_load(f)["behaviors"])


# mlagents-learn 1.1.0's summary line (its ConsoleWriter's sentence, logged as "[INFO] ...").
SUMMARY_LINE = (
    r"\[INFO\] {name}\. Step: \d+\. Time Elapsed: \d+\.\d{{3}} s\. "
    r"(Mean Reward: -?\d+\.\d{{3}}\. (Std of Reward|Mean Group Reward): -?\d+\.\d{{3}}\.|"
    r"No episode was completed since last summary\.) (Not )?Training\.( ELO: -?\d+\.\d{{3}}\.)?"
)


def check_log(log: str, names: list[str]) -> list[str]:
    with open(log, errors="replace") as f:
        lines = f.read().splitlines()
    problems = []
    for name in names:
        pattern = re.compile(SUMMARY_LINE.format(name=re.escape(name)))
        summaries = [line for line in lines if line.startswith(f"[INFO] {name}. Step: ")]
        wrong = [line for line in summaries if not pattern.fullmatch(line)]
        if not summaries or wrong:
            problems.append(
                f"{name}: {len(summaries)} summary lines, not ML-Agents' line: {wrong[:2]}"
            )
        else:
            print(f"{name}: {len(summaries)} summary lines in mlagents-learn's format")
    return problems


def check_modes(run_dir: str) -> list[str]:
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    wrong = []
    for folder, _, files in os.walk(run_dir):
        for file in files:
            path = os.path.join(folder, file)
            if os.stat(path).st_mode & 0o777 != expected:
                wrong.append(f"{path} {os.stat(path).st_mode & 0o777:o}")
    if wrong:
        return [f"files not {expected:o} under umask {umask:03o}: {wrong[:5]}"]
    print(f"every file of the run is {expected:o} (umask {umask:03o})")
    return []


def check_results(run_dir: str, names: list[str]) -> list[str]:
    from matplotlib.image import imread
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    problems = []
    if shutil.which("tensorboard") is None:
        problems.append("the tensorboard command is not installed")
    for name in names:
        onnx_path = os.path.join(run_dir, f"{name}.onnx")
        if not os.path.isfile(onnx_path):
            problems.append(f"missing {onnx_path}")
        accumulator = EventAccumulator(os.path.join(run_dir, name))
        accumulator.Reload()
        rewards = (
            accumulator.Scalars("Environment/Cumulative Reward")
            if ("Environment/Cumulative Reward" in accumulator.Tags()["scalars"])
            else []
        )
        if len(rewards) < 2:
            problems.append(f"{name}: TensorBoard files hold {len(rewards)} reward scalars")
        else:
            print(
                f"{name}: {len(rewards)} reward scalars in TensorBoard, last "
                f"{rewards[-1].value:.3f} at step {rewards[-1].step}"
            )
    png = os.path.join(run_dir, "learning_curves.png")
    if not os.path.isfile(png):
        problems.append(f"missing {png}")
    else:
        image = imread(png)
        if image.ndim != 3 or image.shape[0] < 200 or image.shape[1] < 300:
            problems.append(f"{png}: unexpected picture of shape {image.shape}")
        else:
            print(f"learning_curves.png: {image.shape[1]}x{image.shape[0]} pixels")
    return problems


def check_onnx(run_dir: str, names: list[str]) -> list[str]:
    import onnxruntime

    problems = []
    for name in names:
        path = os.path.join(run_dir, f"{name}.onnx")
        try:
            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            feeds = {}
            for tensor in session.get_inputs():
                shape = [2 if not isinstance(d, int) else d for d in tensor.shape]
                dtype = np.int32 if "int" in tensor.type else np.float32
                feeds[tensor.name] = np.zeros(shape, dtype=dtype)
            outputs = session.run(None, feeds)
            print(f"{path}: runs in onnxruntime, outputs {[o.name for o in session.get_outputs()]}")
            if not outputs:
                problems.append(f"{path}: no outputs")
        except Exception as err:  # noqa: BLE001 (one line per failing model)
            problems.append(f"{path}: {err!r}")
    return problems


def main(argv: list[str]) -> int:
    mode, run_dir, config, *log = argv
    names = behaviors(config)
    if mode == "results":
        problems = check_results(run_dir, names) + check_modes(run_dir) + check_log(log[0], names)
    else:
        problems = check_onnx(run_dir, names)
    for problem in problems:
        print(f"check_main_job: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
