"""Stats writers against ML-Agents 1.1.0 itself: the same script runs on ``mlagents.trainers.stats``
(in the anchor venv) and on ``mlagents_fast.trainers.stats``; the console lines, hyperparameter
text, gauge names and TensorBoard tags and values must be the same.

Needs the anchor venv (``ANCHOR_VENV``, default ~/.cache/mlagents-anchor-venv); without it these
tests are skipped.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

SCRIPT = r"""
import importlib, json, logging, sys, time
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

stats = importlib.import_module(sys.argv[1])
out_path, tb_dir = sys.argv[2], sys.argv[3]
Summary, Method = stats.StatsSummary, stats.StatsAggregationMethod
messages = []


class Keep(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())


stats.logger.addHandler(Keep())
stats.logger.setLevel(logging.INFO)


def avg(*values):
    return Summary(full_dist=list(values), aggregation_method=Method.AVERAGE)


console = stats.ConsoleWriter()
console.training_start_time = time.time() - 12.5
cases = [
    {"Environment/Cumulative Reward": avg(1.0, 2.5, -0.25), "Is Training": avg(1.0)},
    {"Environment/Cumulative Reward": avg(100.0), "Is Training": avg(0.0)},
    {"Is Training": avg(1.0)},
    {},
    {
        "Environment/Cumulative Reward": avg(0.5, 1.0),
        "Environment/Group Cumulative Reward": avg(2.0, 4.0),
        "Self-play/ELO": avg(1234.5),
        "Is Training": avg(1.0),
    },
]
for step, values in enumerate(cases):
    console.write_stats("Ball", values, 1000 * (step + 1))
console.add_property("Ball", stats.StatsPropertyType.SELF_PLAY, True)
console.write_stats("Ball", cases[-1], 9000)
hyper = {
    "trainer_type": "ppo",
    "hyperparameters": {"batch_size": 64, "learning_rate": 0.0003},
    "network_settings": {"hidden_units": 128, "memory": None},
    "reward_signals": {"extrinsic": {"gamma": 0.99, "network_settings": {"normalize": False}}},
    "max_steps": 500000,
}
console.add_property("Ball", stats.StatsPropertyType.HYPERPARAMETERS, hyper)

names = ["3DBall.Policy/Learning Rate.mean", "Team Ball?team=0.Environment/Episode Length.sum"]
gauges = [stats.GaugeWriter.sanitize_string(name) for name in names]

writer = stats.TensorboardWriter(tb_dir, hidden_keys=["Is Training"])
writer.add_property("Ball", stats.StatsPropertyType.HYPERPARAMETERS, hyper)
for step in (100, 200):
    writer.write_stats(
        "Ball",
        {
            "Environment/Cumulative Reward": Summary([1.0, step / 50], Method.HISTOGRAM),
            "Policy/Learning Rate": Summary([0.0003], Method.MOST_RECENT),
            "Environment/Stat Sum": Summary([1.0, 2.0], Method.SUM),
            "Losses/Value Loss": avg(0.5, 0.25),
            "Is Training": avg(1.0),
        },
        step,
    )
for summary_writer in writer.summary_writers.values():
    summary_writer.close()
accumulator = EventAccumulator(tb_dir + "/Ball", size_guidance={"histograms": 0, "tensors": 0})
accumulator.Reload()
tags = accumulator.Tags()
tensorboard = {
    "scalars": {
        tag: [[e.step, e.value] for e in accumulator.Scalars(tag)] for tag in tags["scalars"]
    },
    "histograms": {
        tag: [[e.step, e.histogram_value.num, e.histogram_value.sum] for e in
              accumulator.Histograms(tag)]
        for tag in tags["histograms"]
    },
    "tensors": {
        tag: [e.tensor_proto.string_val[0].decode() for e in accumulator.Tensors(tag)]
        for tag in tags["tensors"]
    },
}
with open(out_path, "w") as f:
    json.dump({"messages": messages, "gauges": gauges, "tensorboard": tensorboard}, f)
"""


def run(python, module, folder):
    folder.mkdir()
    (folder / "script.py").write_text(SCRIPT)
    proc = subprocess.run(
        [str(python), "script.py", module, "out.json", str(folder / "tb")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((folder / "out.json").read_text())
    result["messages"] = [
        re.sub(r"Time Elapsed: \d+\.\d{3} s", "Time Elapsed: T s", m) for m in result["messages"]
    ]
    return result


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    if not ANCHOR_PYTHON.exists():
        pytest.skip("ML-Agents 1.1.0 anchor venv not built")
    folder = tmp_path_factory.mktemp("stats")
    theirs = run(ANCHOR_PYTHON, "mlagents.trainers.stats", folder / "theirs")
    ours = run(sys.executable, "mlagents_fast.trainers.stats", folder / "ours")
    return theirs, ours


def test_console_lines_and_hyperparameters_match_mlagents(both):
    theirs, ours = both
    assert len(theirs["messages"]) == 7
    assert ours["messages"] == theirs["messages"]


def test_gauge_names_match_mlagents(both):
    theirs, ours = both
    assert (
        ours["gauges"]
        == theirs["gauges"]
        == [
            "3DBall.Policy.LearningRate.mean",
            "TeamBall?team=0.Environment.EpisodeLength.sum",
        ]
    )


def test_tensorboard_tags_and_values_match_mlagents(both):
    theirs, ours = both
    assert ours["tensorboard"]["scalars"] == theirs["tensorboard"]["scalars"]
    assert ours["tensorboard"]["histograms"] == theirs["tensorboard"]["histograms"]
    assert ours["tensorboard"]["tensors"] == theirs["tensorboard"]["tensors"]
    assert "Environment/Cumulative Reward_hist" in theirs["tensorboard"]["histograms"]
    assert "Is Training" not in theirs["tensorboard"]["scalars"]
