"""How far each behavior's training is, how fast it goes and when it will be done.

:class:`ProgressWriter` shows it in one of two ways:

* on a terminal (stdout is a TTY): a live progress bar per behavior (rich), with step / max_steps,
  env steps per second, the mean reward of the last summary, elapsed time and time left. The
  log lines (ML-Agents' summary lines among them) scroll above the bars.
* elsewhere (logs, CI, pipes): after ML-Agents' summary line of a behavior, a line of its own,
  ``3DBall. Steps/s: 9876. Time Left: 48s.``, so that ML-Agents' line stays word for word.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mlagents_fast.trainers.stats import (
    REWARD_KEY,
    StatsPropertyType,
    StatsSummary,
    StatsWriter,
)

__all__ = ["ProgressWriter", "format_duration"]

logger = logging.getLogger("mlagents_fast.trainers")

StepSource = Callable[[], Mapping[str, int]]
"""Returns behavior name -> current step (polled from the display's thread)."""


def format_duration(seconds: float) -> str:
    """``48s``, ``6m05s``, ``2h03m00s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressWriter(StatsWriter):
    """Speed, time left and (on a terminal) a live bar per behavior.

    ``live``: draw bars (default: when stdout is a TTY). ``step_source`` (see
    :meth:`attach_step_source`) gives the trainers' current steps between summaries; without it
    the bars move at each summary and the speed of a resumed run's first summary is not shown.
    """

    POLL_SECONDS = 0.25

    def __init__(self, live: bool | None = None, console: Any = None) -> None:
        self.live = sys.stdout.isatty() if live is None else live
        self._console = console
        self._max_steps: dict[str, int] = {}
        # Behavior -> (step, time) of its previous summary, or of the first time it was seen.
        self._last_seen: dict[str, tuple[int, float]] = {}
        self._step_source: StepSource | None = None
        self._lock = threading.RLock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._start_time = time.time()

    def attach_step_source(self, step_source: StepSource) -> None:
        """Poll ``step_source`` for the trainers' steps (the bars move between summaries)."""
        self._step_source = step_source
        if self.live and self._poller is None:
            self._poller = threading.Thread(
                target=self._poll, name="mlagents-fast-progress", daemon=True
            )
            self._poller.start()

    def add_property(self, category: str, property_type: StatsPropertyType, value: Any) -> None:
        if property_type == StatsPropertyType.HYPERPARAMETERS and isinstance(value, dict):
            max_steps = value.get("max_steps")
            if isinstance(max_steps, (int, float)) and max_steps > 0:
                with self._lock:
                    self._max_steps[category] = int(max_steps)
                    if category in self._tasks:
                        self._progress.update(self._tasks[category], total=int(max_steps))

    def on_add_stat(self, category: str, key: str, value: float, aggregation: Any = None) -> None:
        # The first stats of a behavior come once its trainer exists and has loaded its step
        # (a resumed run starts there): speeds count from that step, not from 0.
        if category not in self._last_seen:
            step = self._current_step(category)
            if step is not None:
                with self._lock:
                    self._last_seen.setdefault(category, (step, time.time()))

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        now = time.time()
        reward = values.get(REWARD_KEY)
        with self._lock:
            last_step, last_time = self._last_seen.get(category, (0, self._start_time))
            self._last_seen[category] = (step, now)
            if self.live:
                task = self._task_for(category, step)
                fields = {} if reward is None else {"reward": reward.mean}
                if self._step_source is None:  # else the poller moves the bar, to the real step
                    fields["completed"] = step
                self._progress.update(task, **fields)
                return
        if step <= last_step or now <= last_time:
            return
        steps_per_second = (step - last_step) / (now - last_time)
        parts = [category, f"Steps/s: {steps_per_second:.0f}"]
        max_steps = self._max_steps.get(category)
        if max_steps is not None and step < max_steps:
            parts.append(f"Time Left: {format_duration((max_steps - step) / steps_per_second)}")
        logger.info(". ".join(parts) + ".")

    def close(self) -> None:
        """Stop the bars (the run ends); they stay on screen as last drawn."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=2)
            self._poller = None
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
                self._tasks.clear()

    # --- live bars ---------------------------------------------------------------------

    def _current_step(self, category: str) -> int | None:
        if self._step_source is None:
            return None
        try:
            return self._step_source().get(category)
        except RuntimeError:  # the trainers dict changed while it was read: next time
            return None

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL_SECONDS):
            self.poll_once()

    def poll_once(self) -> None:
        """Move each behavior's bar to its trainer's current step."""
        try:
            steps = dict(self._step_source()) if self._step_source is not None else {}
        except RuntimeError:  # the trainers dict changed while it was read: next time
            return
        with self._lock:
            if self._stop.is_set():
                return
            for category, step in steps.items():
                task = self._task_for(category, step)
                self._progress.update(task, completed=step)

    def _task_for(self, category: str, step: int) -> Any:
        if self._progress is None:
            self._progress = _make_progress(self._console)
            self._progress.start()
        task = self._tasks.get(category)
        if task is None:
            # Created at the current step: a resumed run's bar starts where it left off, and
            # its speed counts only this session's steps.
            task = self._progress.add_task(
                category, total=self._max_steps.get(category), completed=step, reward=None
            )
            self._tasks[category] = task
        return task


def compact_count(value: float) -> str:
    """``950``, ``9,999``, ``12.3k``, ``500k``, ``1.50M``: three significant figures past 9,999."""
    value = float(value)
    if abs(value) < 10_000:
        return f"{value:,.0f}"
    scaled, unit = value / 1e3, "k"
    if abs(scaled) >= 999.5:
        scaled, unit = value / 1e6, "M"
    digits = 0 if abs(scaled) >= 99.95 else 1 if abs(scaled) >= 9.995 else 2
    return f"{scaled:.{digits}f}{unit}"


NAME_WIDTH = 20
"""Behavior names longer than this are cut (with an ellipsis) in the bars."""
BAR_WIDTH = 30
"""The widest bar; it narrows to leave the figures room on a narrow terminal."""


def _make_progress(console: Any) -> Any:
    """One line per behavior, never wrapped: the name, the bar, then the figures; on a narrow
    terminal (80 columns) the bar gives up width first, then the line is cut."""
    from rich.progress import Progress, ProgressBar, ProgressColumn
    from rich.table import Table
    from rich.text import Text

    class BehaviorLine(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self.progress: Any = None  # set once the Progress exists

        def render(self, task: Any) -> Any:
            percent = "" if task.total is None else f"{task.percentage:3.0f}% "
            total = "?" if task.total is None else compact_count(task.total)
            speed = "-" if task.speed is None else compact_count(task.speed)
            reward = task.fields.get("reward")
            left = task.time_remaining
            figures = Text.assemble(
                percent,
                (f"{compact_count(task.completed)}/{total} steps", "progress.download"),
                "  ",
                (f"{speed} steps/s", "progress.data.speed"),
                "  ",
                ("reward -" if reward is None else f"reward {reward:.3f}", "bold"),
                "  ",
                ("ETA " + ("-" if left is None else format_duration(left)), "progress.remaining"),
                no_wrap=True,
                overflow="ellipsis",
            )
            names = [t.description for t in self.progress.tasks] if self.progress else []
            name_width = min(NAME_WIDTH, max([len(n) for n in names] + [len(task.description)]))
            name = Text(task.description, style="bold blue", no_wrap=True, overflow="ellipsis")
            name.truncate(name_width, overflow="ellipsis", pad=True)
            width = self.progress.console.width if self.progress else 80
            bar_width = max(0, min(BAR_WIDTH, width - name_width - figures.cell_len - 2))
            line = Table.grid(padding=(0, 1) if bar_width else 0)
            if bar_width:
                bar = ProgressBar(total=task.total, completed=task.completed, width=bar_width)
                line.add_row(name, bar, figures)
            else:
                line.add_row(Text.assemble(name, " ", figures, no_wrap=True, overflow="ellipsis"))
            return line

    column = BehaviorLine()
    progress = Progress(column, console=console, refresh_per_second=4)
    column.progress = progress
    return progress
