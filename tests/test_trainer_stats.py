"""Stats: aggregation, the console progress line, TensorBoard event files, the learning-curve PNG."""

import logging
import os
import struct

import numpy as np
import pytest
from mlagents_fast.trainers import stats
from mlagents_fast.trainers.stats import (
    ConsoleWriter,
    LearningCurveWriter,
    StatsAggregationMethod,
    StatsPropertyType,
    StatsReporter,
    StatsSummary,
    TensorboardWriter,
)


@pytest.fixture(autouse=True)
def _clean_reporter():
    StatsReporter.reset()
    yield
    StatsReporter.reset()


class RecordingWriter(stats.StatsWriter):
    def __init__(self):
        self.writes = []
        self.properties = []

    def write_stats(self, category, values, step):
        self.writes.append(
            (category, step, {k: (v.mean, v.std, v.num, v.sum) for k, v in values.items()})
        )

    def add_property(self, category, property_type, value):
        self.properties.append((category, property_type, value))


def test_reporter_aggregates_average_most_recent_and_sum_then_clears():
    writer = RecordingWriter()
    StatsReporter.add_writer(writer)
    reporter = StatsReporter("Ball")
    for value in (1.0, 2.0, 6.0):
        reporter.add_stat("reward", value)
        reporter.add_stat("count", value, StatsAggregationMethod.SUM)
    reporter.set_stat("lesson", 3)
    reporter.set_stat("lesson", 4)
    assert reporter.get_stats_summaries("reward").mean == pytest.approx(3.0)
    assert reporter.get_stats_summaries("reward").std == pytest.approx(np.std([1, 2, 6]))
    assert reporter.get_stats_summaries("count").aggregated_value == pytest.approx(9.0)
    assert reporter.get_stats_summaries("lesson").mean == 4.0
    reporter.write_stats(100)
    category, step, values = writer.writes[0]
    assert (category, step) == ("Ball", 100)
    assert values["reward"][0] == pytest.approx(3.0) and values["reward"][2] == 3
    assert values["lesson"][0] == 4.0
    # Values are cleared after a write.
    assert reporter.get_stats_summaries("reward").num == 0


def test_empty_summary_is_zero():
    summary = StatsSummary.empty()
    assert (summary.mean, summary.std, summary.num, summary.sum) == (0.0, 0.0, 0, 0.0)


def test_console_writer_shows_progress_line(caplog):
    writer = ConsoleWriter()
    writer.add_property(
        "3DBall", StatsPropertyType.HYPERPARAMETERS, {"max_steps": 10000, "time_horizon": 64}
    )
    writer.training_start_time -= 10.0  # pretend 10 s have passed
    values = {
        "Environment/Cumulative Reward": StatsSummary([1.0, 3.0], StatsAggregationMethod.AVERAGE),
        "Is Training": StatsSummary([1.0], StatsAggregationMethod.AVERAGE),
    }
    with caplog.at_level(logging.INFO, logger="mlagents_fast.trainers"):
        writer.write_stats("3DBall", values, 2000)
    line = caplog.records[-1].getMessage()
    assert line.startswith("3DBall. Step: 2000. Time Elapsed: 1")
    assert "Mean Reward: 2.000." in line and "Std of Reward: 1.000." in line
    steps_per_second = float(line.split("Steps/s: ")[1].split(".")[0])
    assert 150 <= steps_per_second <= 200  # 2000 steps in ~10 s
    # (10000 - 2000) steps at ~200 steps/s: about 40 s left.
    assert "Time Left: 4" in line and line.endswith("Training.")


def test_console_writer_without_episodes(caplog):
    writer = ConsoleWriter()
    with caplog.at_level(logging.INFO, logger="mlagents_fast.trainers"):
        writer.write_stats("Ball", {}, 10)
    assert "No episode was completed since last summary." in caplog.records[-1].getMessage()


def test_crc32c_known_vectors():
    # RFC 3720 B.4 test vectors for CRC-32C.
    assert stats.crc32c(b"") == 0
    assert stats.crc32c(bytes(32)) == 0x8A9136AA
    assert stats.crc32c(b"123456789") == 0xE3069283


def read_tfrecords(path):
    """A plain TFRecord reader that checks both CRCs."""
    records = []
    with open(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        assert length_crc == stats.masked_crc32c(header)
        payload = data[offset + 12 : offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
        assert payload_crc == stats.masked_crc32c(payload)
        records.append(payload)
        offset += 16 + length
    return records


def test_tensorboard_writer_writes_readable_event_file(tmp_path):
    writer = TensorboardWriter(str(tmp_path), hidden_keys=["Is Training"])
    writer.add_property(
        "3DBall", StatsPropertyType.HYPERPARAMETERS, {"batch_size": 64, "net": {"units": 128}}
    )
    writer.write_stats(
        "3DBall",
        {
            "Environment/Cumulative Reward": StatsSummary(
                [1.0, 2.0], StatsAggregationMethod.AVERAGE
            ),
            "Is Training": StatsSummary([1.0], StatsAggregationMethod.AVERAGE),
            "Steps": StatsSummary([3.0, 4.0], StatsAggregationMethod.SUM),
        },
        1200,
    )
    writer.close()
    files = os.listdir(tmp_path / "3DBall")
    assert len(files) == 1 and files[0].startswith("events.out.tfevents.")
    records = read_tfrecords(tmp_path / "3DBall" / files[0])
    assert len(records) == 3  # file version, hyperparameters text, one scalar event

    # Decode with TensorBoard's own protos (it ships the Event proto without TensorFlow).
    event_pb2 = pytest.importorskip("tensorboard.compat.proto.event_pb2")
    events = [event_pb2.Event.FromString(r) for r in records]
    assert events[0].file_version == "brain.Event:2"
    text_value = events[1].summary.value[0]
    assert text_value.tag == "Hyperparameters"
    assert text_value.metadata.plugin_data.plugin_name == "text"
    assert b"| net.units | 128 |" in text_value.tensor.string_val[0]
    scalars = {v.tag: v.simple_value for v in events[2].summary.value}
    assert events[2].step == 1200
    assert scalars == {"Environment/Cumulative Reward": 1.5, "Steps": 7.0}


def test_tensorboard_event_file_loads_in_tensorboard(tmp_path):
    loader_module = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    writer = TensorboardWriter(str(tmp_path))
    for step in (100, 200):
        writer.write_stats(
            "Ball",
            {"Losses/Value Loss": StatsSummary([step / 100], StatsAggregationMethod.AVERAGE)},
            step,
        )
    writer.close()
    accumulator = loader_module.EventAccumulator(str(tmp_path / "Ball"))
    accumulator.Reload()
    scalars = accumulator.Scalars("Losses/Value Loss")
    assert [(s.step, s.value) for s in scalars] == [(100, 1.0), (200, 2.0)]


def test_learning_curve_png_has_a_panel_per_behavior(tmp_path):
    from PIL import Image

    writer = LearningCurveWriter(str(tmp_path))
    for step, reward in ((1000, 1.0), (2000, 5.0), (3000, 9.0)):
        for name in ("A", "B"):
            writer.write_stats(
                name,
                {
                    "Environment/Cumulative Reward": StatsSummary(
                        [reward], StatsAggregationMethod.AVERAGE
                    ),
                    "Environment/Episode Length": StatsSummary(
                        [reward * 10], StatsAggregationMethod.AVERAGE
                    ),
                },
                step,
            )
    path = tmp_path / "learning_curves.png"
    image = Image.open(path)
    assert image.size == (960, 480)  # two behaviors x (reward, episode length)
    pixels = np.asarray(image.convert("RGB"))
    # The reward line (blue) and the episode length line (red) are drawn.
    assert ((pixels == (31, 119, 180)).all(axis=2)).sum() > 50
    assert ((pixels == (214, 39, 40)).all(axis=2)).sum() > 50
    assert writer.points["A"] == [(1000, 1.0, 10.0), (2000, 5.0, 50.0), (3000, 9.0, 90.0)]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_learning_curve_skips_summaries_without_episodes(tmp_path):
    writer = LearningCurveWriter(str(tmp_path))
    writer.write_stats(
        "A", {"Policy/Entropy": StatsSummary([1.0], StatsAggregationMethod.AVERAGE)}, 10
    )
    assert not (tmp_path / "learning_curves.png").exists()
