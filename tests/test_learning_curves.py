"""learning_curves.png: panels per behavior and statistic, smoothing, atomic rewrites."""

import os

import numpy as np
import pytest
from mlagents_fast.trainers.learning_curves import LearningCurveWriter, smooth
from mlagents_fast.trainers.stats import StatsAggregationMethod, StatsSummary


def summary(value, method=StatsAggregationMethod.AVERAGE):
    return StatsSummary([value], method)


def read_png(path):
    from matplotlib.image import imread

    return imread(str(path))


def test_smooth_is_a_debiased_moving_average():
    assert smooth(np.array([5.0, 5.0, 5.0, 5.0])) == pytest.approx([5.0] * 4)  # no start bias
    noisy = np.array([0.0, 10.0] * 20)
    smoothed = smooth(noisy)
    assert smoothed[-10:].std() < noisy[-10:].std() / 4
    assert smoothed[-1] == pytest.approx(5.0, abs=2.0)
    ramp = np.arange(30, dtype=float)
    assert np.all(np.diff(smooth(ramp)) > 0)  # follows a trend, lagging behind it
    assert list(smooth(np.array([1.0, 2.0]))) == [1.0, 2.0]


def feed(writer, steps, categories=("A",), lessons=False):
    for step in steps:
        for name in categories:
            values = {
                "Environment/Cumulative Reward": summary(step / 1000),
                "Environment/Episode Length": summary(50 + step / 100),
                "Policy/Entropy": summary(1.0),  # not plotted
            }
            if lessons:
                values["Environment/Lesson Number/difficulty"] = summary(
                    step // 3000, StatsAggregationMethod.MOST_RECENT
                )
            writer.write_stats(name, values, step)


def test_one_panel_per_statistic_and_behavior(tmp_path):
    writer = LearningCurveWriter(str(tmp_path))
    writer._next_draw_time = float("inf")  # only close() draws (drawing takes ~0.3 s)
    feed(writer, range(1000, 10_001, 1000), categories=("A", "B"), lessons=True)
    writer.close()
    path = tmp_path / "learning_curves.png"
    assert path.is_file()
    assert set(writer.points) == {"A", "B"}
    assert sorted(writer.points["A"]) == [
        "Environment/Cumulative Reward",
        "Environment/Episode Length",
        "Environment/Lesson Number/difficulty",
    ]
    assert writer.points["A"]["Environment/Lesson Number/difficulty"][-1] == (10_000, 3.0)
    two_rows = read_png(path)
    # A behavior without lessons has two panels: the picture is narrower.
    single = LearningCurveWriter(str(tmp_path / "single"))
    single._next_draw_time = float("inf")
    feed(single, range(1000, 5001, 1000))
    single.close()
    one_row = read_png(tmp_path / "single" / "learning_curves.png")
    assert two_rows.shape[0] > 1.8 * one_row.shape[0]
    assert two_rows.shape[1] > 1.4 * one_row.shape[1]
    # Drawn, not blank: many distinct colours (lines, text, grid).
    assert len(np.unique(two_rows.reshape(-1, two_rows.shape[2]), axis=0)) > 50
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp")]


def test_summaries_without_curves_draw_nothing(tmp_path):
    writer = LearningCurveWriter(str(tmp_path))
    writer.write_stats("A", {"Policy/Entropy": summary(1.0)}, 10)
    writer.close()
    assert not (tmp_path / "learning_curves.png").exists()


def test_redraws_wait_while_drawing_would_slow_training_and_close_draws(tmp_path, monkeypatch):
    writer = LearningCurveWriter(str(tmp_path))
    drawn = []
    monkeypatch.setattr(writer, "render", lambda: drawn.append(1) or b"png")
    feed(writer, [1000])
    assert len(drawn) == 1
    writer._next_draw_time = float("inf")  # the last drawing took long
    feed(writer, [2000, 3000])
    assert len(drawn) == 1 and writer._dirty
    writer.close()
    assert len(drawn) == 2 and not writer._dirty
    assert (tmp_path / "learning_curves.png").read_bytes() == b"png"
    writer.close()  # nothing new: not drawn again
    assert len(drawn) == 2


def test_an_unwritable_folder_warns_and_training_goes_on(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    writer = LearningCurveWriter(str(blocker / "run"))
    feed(writer, [1000])  # no exception
    assert "Could not write" in caplog.text
    assert writer._dirty
