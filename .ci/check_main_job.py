"""Checks what the README's main job left in ``results/<run-id>`` (run by .ci/newcomer).

    check_main_job.py results RUN_DIR CONFIG   # with the fresh venv's Python
    check_main_job.py onnx RUN_DIR CONFIG      # with a Python that has onnxruntime (dev extra)

``results``: every behavior of CONFIG has ``<Behavior>.onnx``, its TensorBoard event files load
with TensorBoard's EventAccumulator and hold the run's reward scalars, ``tensorboard`` is
installed, and ``learning_curves.png`` is a picture. ``onnx``: each ``<Behavior>.onnx`` loads in
onnxruntime and answers a batch of zero observations. Exit 1 with the reasons on failure.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import yaml


def behaviors(config: str) -> list[str]:
    with open(config) as f:
        return sorted(yaml.safe_load(f)["behaviors"])


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
    mode, run_dir, config = argv
    names = behaviors(config)
    problems = check_results(run_dir, names) if mode == "results" else check_onnx(run_dir, names)
    for problem in problems:
        print(f"check_main_job: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
