"""Stats: aggregation, ML-Agents' console line, TensorBoard files, gauges, the speed line."""

import io
import json
import logging
import os
import re

import numpy as np
import pytest
from mlagents_fast.trainers import stats
from mlagents_fast.trainers.progress import ProgressWriter, format_duration
from mlagents_fast.trainers.stats import (
    ConsoleWriter,
    GaugeWriter,
    StatsAggregationMethod,
    StatsPropertyType,
    StatsReporter,
    StatsSummary,
    TensorboardWriter,
)
from mlagents_fast.trainers.timers import get_timer_tree, reset_timers

# The progress-line parser of benches/bench_training.py (any tool reading mlagents-learn's log
# parses this way).
MLAGENTS_LINE = re.compile(
    r"Step: (\d+)\. Time Elapsed: ([\d.]+) s\. (?:Mean Reward: (-?[\d.]+)\.)?"
)


@pytest.fixture(autouse=True)
def _clean_reporter():
    StatsReporter.reset()
    yield
    StatsReporter.reset()


class RecordingWriter(stats.StatsWriter):
    def __init__(self):
        self.writes = []

    def write_stats(self, category, values, step):
        self.writes.append(
            (category, step, {k: (v.mean, v.std, v.num, v.sum) for k, v in values.items()})
        )


def test_reporter_averages_sums_and_clears_after_a_write():
    writer = RecordingWriter()
    StatsReporter.add_writer(writer)
    reporter = StatsReporter("Ball")
    for value in (1.0, 2.0, 6.0):
        reporter.add_stat("reward", value)
        reporter.add_stat("count", value, StatsAggregationMethod.SUM)
    assert reporter.get_stats_summaries("reward").mean == pytest.approx(3.0)
    assert reporter.get_stats_summaries("reward").std == pytest.approx(np.std([1, 2, 6]))
    assert reporter.get_stats_summaries("count").aggregated_value == pytest.approx(9.0)
    reporter.write_stats(100)
    category, step, values = writer.writes[0]
    assert (category, step) == ("Ball", 100)
    assert values["reward"][0] == pytest.approx(3.0) and values["reward"][2] == 3
    assert reporter.get_stats_summaries("reward").num == 0


@pytest.mark.parametrize("through", ["set_stat", "add_stat"])
def test_most_recent_stat_keeps_only_the_last_value(through):
    writer = RecordingWriter()
    StatsReporter.add_writer(writer)
    reporter = StatsReporter("Ball")
    for lesson in (1, 2, 4):
        if through == "set_stat":
            reporter.set_stat("lesson", lesson)
        else:
            reporter.add_stat("lesson", lesson, StatsAggregationMethod.MOST_RECENT)
    summary = reporter.get_stats_summaries("lesson")
    assert list(summary.full_dist) == [4.0]
    assert summary.aggregation_method == StatsAggregationMethod.MOST_RECENT
    reporter.write_stats(10)
    # mean, std, num, sum: the last value only (a sum of every value would be 7).
    assert writer.writes[0][2]["lesson"] == (4.0, 0.0, 1, 4.0)


def test_write_hands_only_stats_that_got_values():
    writer = RecordingWriter()
    StatsReporter.add_writer(writer)
    reporter = StatsReporter("Ball")
    reporter.get_stats_summaries("never added")  # a lookup must not invent an empty stat
    reporter.add_stat("reward", 1.0)
    reporter.write_stats(10)
    assert set(writer.writes[0][2]) == {"reward"}


def test_empty_summary_is_zero():
    summary = StatsSummary.empty()
    assert (summary.mean, summary.std, summary.num, summary.sum) == (0.0, 0.0, 0, 0.0)


def summary(*values, method=StatsAggregationMethod.AVERAGE):
    return StatsSummary(list(values), method)


def console_line(caplog, writer, category, values, step):
    with caplog.at_level(logging.INFO, logger="mlagents_fast.trainers"):
        writer.write_stats(category, values, step)
    return caplog.records[-1].getMessage()


def test_console_line_is_mlagents_sentence(caplog):
    writer = ConsoleWriter()
    writer.training_start_time -= 10.0  # pretend 10 s have passed
    line = console_line(
        caplog,
        writer,
        "3DBall",
        {"Environment/Cumulative Reward": summary(1.0, 3.0), "Is Training": summary(1.0)},
        2000,
    )
    assert re.fullmatch(
        r"3DBall\. Step: 2000\. Time Elapsed: 10\.\d{3} s\. Mean Reward: 2\.000\. "
        r"Std of Reward: 1\.000\. Training\.",
        line,
    ), line
    assert MLAGENTS_LINE.search(line).groups()[::2] == ("2000", "2.000")


def test_console_line_group_reward_elo_and_no_episode(caplog):
    writer = ConsoleWriter()
    values = {
        "Environment/Cumulative Reward": summary(1.0),
        "Environment/Group Cumulative Reward": summary(0.5, 1.5),
        "Self-play/ELO": summary(1210.0),
        "Is Training": summary(0.0),
    }
    writer.add_property("Soccer", StatsPropertyType.SELF_PLAY, True)
    line = console_line(caplog, writer, "Soccer", values, 50)
    assert line.endswith(
        "Mean Reward: 1.000. Mean Group Reward: 1.000. Not Training. ELO: 1210.000."
    )
    assert "Std of Reward" not in line
    line = console_line(caplog, writer, "Ball", {}, 10)
    assert line.endswith(". No episode was completed since last summary. Not Training.")


def test_console_prints_hyperparameters_indented_by_section(caplog):
    with caplog.at_level(logging.INFO, logger="mlagents_fast.trainers"):
        ConsoleWriter().add_property(
            "Ball",
            StatsPropertyType.HYPERPARAMETERS,
            {"trainer_type": "ppo", "hyperparameters": {"batch_size": 64, "beta": 0.005}},
        )
    assert caplog.records[-1].getMessage() == (
        "Hyperparameters for behavior name Ball: \n"
        "\ttrainer_type:\tppo\n"
        "\thyperparameters:\t\n"
        "\t  batch_size:\t64\n"
        "\t  beta:\t0.005"
    )


def test_speed_line_stands_apart_from_the_mlagents_line(caplog):
    writer = ProgressWriter(live=False)
    writer.add_property("3DBall", StatsPropertyType.HYPERPARAMETERS, {"max_steps": 10_000})
    writer.attach_step_source(lambda: {"3DBall": 0})
    writer.on_add_stat("3DBall", "Environment/Cumulative Reward", 1.0)
    # Pretend the behavior was first seen 10 s ago, at step 0.
    writer._last_seen["3DBall"] = (0, writer._last_seen["3DBall"][1] - 10.0)
    line = console_line(caplog, writer, "3DBall", {}, 2000)
    match = re.fullmatch(r"3DBall\. Steps/s: (\d+)\. Time Left: (\d+)s\.", line)
    assert match, line
    assert 180 <= int(match[1]) <= 200  # 2000 steps in ~10 s
    assert 39 <= int(match[2]) <= 42  # 8000 steps to go at ~200 steps/s
    assert MLAGENTS_LINE.search(line) is None and "Step: " not in line


def test_speed_of_a_resumed_run_counts_from_where_it_resumed(caplog):
    writer = ProgressWriter(live=False)
    writer.attach_step_source(lambda: {"Ball": 50_000})
    writer.on_add_stat("Ball", "Environment/Episode Length", 30.0)
    writer._last_seen["Ball"] = (50_000, writer._last_seen["Ball"][1] - 4.0)
    line = console_line(caplog, writer, "Ball", {}, 52_000)
    assert 480 <= int(line.split("Steps/s: ")[1].split(".")[0]) <= 500


def test_format_duration():
    assert [format_duration(s) for s in (0.4, 48, 365, 7380)] == ["0s", "48s", "6m05s", "2h03m00s"]


def test_live_bars_show_steps_speed_reward_and_time_left():
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    writer = ProgressWriter(live=True, console=console)
    writer.add_property("3DBall", StatsPropertyType.HYPERPARAMETERS, {"max_steps": 500_000})
    steps = {"3DBall": 11_990}
    writer._step_source = lambda: steps  # polled by hand below, no thread
    writer.poll_once()
    progress = writer._progress
    task = progress.tasks[0]
    assert (task.description, task.completed, task.total) == ("3DBall", 11_990, 500_000)
    writer.write_stats("3DBall", {"Environment/Cumulative Reward": summary(12.5)}, 12_000)
    assert task.fields["reward"] == 12.5
    assert task.completed == 11_990  # the bar shows the trainer's step, not the summary's
    steps["3DBall"] = 24_000
    writer.poll_once()
    writer.write_stats("3DBall", {}, 24_000)  # no episode: the last mean reward stays
    assert task.completed == 24_000 and task.fields["reward"] == 12.5
    screen = Console(file=io.StringIO(), width=160)  # not the live console: no refresh in between
    screen.print(progress.make_tasks_table(progress.tasks))
    text = screen.file.getvalue()
    assert "24.0k/500k steps" in text and "reward 12.500" in text
    assert "steps/s" in text and "ETA" in text
    writer.close()
    assert writer._progress is None


def test_tensorboard_files_hold_mlagents_tags(tmp_path):
    accumulator_module = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    writer = TensorboardWriter(str(tmp_path), hidden_keys=["Is Training"])
    writer.add_property(
        "3DBall", StatsPropertyType.HYPERPARAMETERS, {"batch_size": 64, "network": {"units": 128}}
    )
    for step, rewards in ((1200, [1.0, 2.0]), (2400, [4.0, 6.0])):
        writer.write_stats(
            "3DBall",
            {
                "Environment/Cumulative Reward": summary(
                    *rewards, method=StatsAggregationMethod.HISTOGRAM
                ),
                "Is Training": summary(1.0),
                "Steps": summary(3.0, 4.0, method=StatsAggregationMethod.SUM),
            },
            step,
        )
    writer.close()
    accumulator = accumulator_module.EventAccumulator(
        str(tmp_path / "3DBall"), size_guidance={"histograms": 0, "tensors": 0}
    )
    accumulator.Reload()
    tags = accumulator.Tags()
    assert sorted(tags["scalars"]) == ["Environment/Cumulative Reward", "Steps"]
    rewards = accumulator.Scalars("Environment/Cumulative Reward")
    assert [(s.step, s.value) for s in rewards] == [(1200, 1.5), (2400, 5.0)]
    assert [s.value for s in accumulator.Scalars("Steps")] == [7.0, 7.0]
    histograms = accumulator.Histograms("Environment/Cumulative Reward_hist")
    assert [(h.step, h.histogram_value.num) for h in histograms] == [(1200, 2), (2400, 2)]
    text = accumulator.Tensors("Hyperparameters/text_summary")[0]
    assert b"\tnetwork:\t\n\t  units:\t128" in text.tensor_proto.string_val[0]


def test_tensorboard_clears_old_event_files_unless_resuming(tmp_path):
    (tmp_path / "Ball").mkdir()
    old = tmp_path / "Ball" / "events.out.tfevents.1.old"
    old.write_bytes(b"")
    kept = TensorboardWriter(str(tmp_path), clear_past_data=False)
    kept.write_stats("Ball", {"x": summary(1.0)}, 1)
    kept.close()
    assert old.exists()
    cleared = TensorboardWriter(str(tmp_path), clear_past_data=True)
    cleared.write_stats("Ball", {"x": summary(1.0)}, 1)
    cleared.close()
    assert not old.exists()
    assert len(os.listdir(tmp_path / "Ball")) == 1  # the new writer's only


def test_gauges_use_mlagents_names():
    assert GaugeWriter.sanitize_string("3DBall.Policy/Learning Rate.mean") == (
        "3DBall.Policy.LearningRate.mean"
    )
    reset_timers()
    GaugeWriter().write_stats(
        "3DBall",
        {
            "Policy/Learning Rate": summary(0.0003),
            "Environment/Cumulative Reward": summary(1.0, 3.0),
        },
        100,
    )
    gauges = json.loads(json.dumps(get_timer_tree()))["gauges"]
    assert gauges["3DBall.Policy.LearningRate.mean"]["value"] == pytest.approx(0.0003)
    assert gauges["3DBall.Environment.CumulativeReward.sum"]["value"] == 4.0
    assert not [name for name in gauges if " " in name or "/" in name]
    reset_timers()


def test_environment_stats_most_recent_keeps_worker_zeros_last_value():
    from mlagents_fast.trainers.agent_processor import AgentProcessor

    processor = AgentProcessor(None, "Ball", StatsReporter("Ball"))
    recent, average = StatsAggregationMethod.MOST_RECENT, StatsAggregationMethod.AVERAGE
    processor.record_environment_stats(
        {"Custom/Level": [(1.0, recent), (3.0, recent)], "Custom/Score": [(2.0, average)]}, 0
    )
    processor.record_environment_stats(
        {"Custom/Level": [(9.0, recent)], "Custom/Score": [(4.0, average)]}, 1
    )
    reporter = StatsReporter("Ball")
    assert list(reporter.get_stats_summaries("Custom/Level").full_dist) == [3.0]
    assert reporter.get_stats_summaries("Custom/Score").mean == 3.0
