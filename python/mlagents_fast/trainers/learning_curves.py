"""``results/<run-id>/learning_curves.png``: the run's curves, to judge a headless run at a glance.

One row per behavior, one panel per statistic: mean cumulative reward, mean episode length (and
the group reward, when the environment gives one) and the lesson number of each curriculum
parameter, against the step. Each panel shows the summary points and a smoothed line. Drawn with
matplotlib's Agg canvas (no display, no pyplot state), rewritten atomically while the run goes.
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
import time
from typing import Any

import numpy as np

from mlagents_fast.atomic_io import write_bytes_atomically
from mlagents_fast.trainers.stats import (
    EPISODE_LENGTH_KEY,
    GROUP_REWARD_KEY,
    LESSON_KEY_PREFIX,
    REWARD_KEY,
    StatsSummary,
    StatsWriter,
)

__all__ = ["LearningCurveWriter", "smooth"]

logger = logging.getLogger("mlagents_fast.trainers")

# Panel order within a behavior's row; lesson numbers follow, one panel per parameter.
_CURVE_KEYS = (REWARD_KEY, GROUP_REWARD_KEY, EPISODE_LENGTH_KEY)
_COLORS = {REWARD_KEY: "#1f77b4", GROUP_REWARD_KEY: "#9467bd", EPISODE_LENGTH_KEY: "#d62728"}
_LESSON_COLOR = "#2ca02c"


def smooth(values: np.ndarray, window: float | None = None) -> np.ndarray:
    """Exponential moving average, debiased at the start (as TensorBoard's smoothing), over
    about ``window`` points (default: a tenth of the series, at least 5)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 3:
        return values.copy()
    if window is None:
        window = max(5.0, len(values) / 10)
    weight = 1.0 - 2.0 / (window + 1.0)
    out = np.empty_like(values)
    average = 0.0
    for i, value in enumerate(values):
        average = weight * average + (1.0 - weight) * value
        out[i] = average / (1.0 - weight ** (i + 1))
    return out


def _panel_title(category: str, key: str) -> str:
    if key.startswith(LESSON_KEY_PREFIX):
        return f"{category}: lesson of {key[len(LESSON_KEY_PREFIX) :]}"
    return f"{category}: {key.split('/')[-1].lower()}"


class LearningCurveWriter(StatsWriter):
    """Draws ``learning_curves.png`` in the run folder from the summaries.

    The picture is redrawn after a summary brings new points, unless drawing would take more
    than about 5% of the run's time (a drawing costs ~0.1-0.3 s and summaries of fast runs
    come every second): then it waits, and :meth:`close` draws the final state.
    """

    FILE_NAME = "learning_curves.png"
    DRAW_TIME_SHARE = 0.05
    """At most this share of the wall time goes into drawing during the run."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, self.FILE_NAME)
        # Behavior -> stat key -> (step, mean) at each summary that had values.
        self.points: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._next_draw_time = 0.0

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        with self._lock:
            for key, summary in values.items():
                if summary.num == 0:
                    continue
                if key in _CURVE_KEYS or key.startswith(LESSON_KEY_PREFIX):
                    series = self.points.setdefault(category, {}).setdefault(key, [])
                    series.append((int(step), float(summary.mean)))
                    self._dirty = True
            if self._dirty and time.monotonic() >= self._next_draw_time:
                self._draw()

    def close(self) -> None:
        """Draw what the last summaries brought (the run ends)."""
        with self._lock:
            if self._dirty:
                self._draw()

    def _panels(self) -> list[tuple[str, list[str]]]:
        rows = []
        for category in sorted(self.points):
            series = self.points[category]
            keys = [key for key in _CURVE_KEYS if key in series]
            keys += sorted(key for key in series if key.startswith(LESSON_KEY_PREFIX))
            rows.append((category, keys))
        return rows

    def _draw(self) -> None:
        started = time.monotonic()
        try:
            png = self.render()
            write_bytes_atomically(self.path, png)
        except OSError as err:
            # A full disk or a removed folder must not stop training; the next summary retries.
            logger.warning("Could not write %s: %s", self.path, err)
            return
        self._dirty = False
        took = time.monotonic() - started
        self._next_draw_time = time.monotonic() + took / self.DRAW_TIME_SHARE

    def render(self) -> bytes:
        """The PNG bytes of the current curves."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import EngFormatter, MaxNLocator

        rows = self._panels()
        n_cols = max((len(keys) for _, keys in rows), default=1) or 1
        n_rows = max(len(rows), 1)
        figure = Figure(figsize=(5.2 * n_cols, 3.3 * n_rows), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(n_rows, n_cols, squeeze=False)
        for row, (category, keys) in enumerate(rows):
            for col in range(n_cols):
                ax = axes[row][col]
                if col >= len(keys):
                    ax.set_axis_off()
                    continue
                key = keys[col]
                series = self.points[category][key]
                steps = np.array([point[0] for point in series], dtype=np.float64)
                means = np.array([point[1] for point in series], dtype=np.float64)
                _draw_panel(ax, category, key, steps, means)
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
                ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()


def _draw_panel(ax: Any, category: str, key: str, steps: np.ndarray, means: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(_panel_title(category, key), fontsize=11, loc="left")
    ax.set_xlabel("step")
    ax.grid(True, color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    if key.startswith(LESSON_KEY_PREFIX):
        ax.step(steps, means, where="post", color=_LESSON_COLOR, linewidth=2)
        ax.plot(steps, means, "o", color=_LESSON_COLOR, markersize=3)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("lesson")
        return
    color = _COLORS[key]
    ax.set_ylabel("mean per episode" if key != EPISODE_LENGTH_KEY else "steps per episode")
    ax.plot(steps, means, "o", color=color, alpha=0.35, markersize=3.5, label="per summary")
    if len(steps) >= 3:
        ax.plot(steps, smooth(means), color=color, linewidth=2, label="smoothed")
    elif len(steps) == 2:
        ax.plot(steps, means, color=color, linewidth=1.5)
    if math.isfinite(means[-1]):
        ax.set_title(f"last {means[-1]:.4g}", fontsize=9, loc="right", color=color)
    if len(steps) >= 3:
        ax.legend(loc="best", fontsize=8, frameon=False)
