"""Training statistics: aggregation per behavior and the writers that show or store them.

The counterpart of ``mlagents.trainers.stats``. A :class:`StatsReporter` per behavior collects
values; at every summary step each registered :class:`StatsWriter` gets the summaries:

* :class:`ConsoleWriter`: one progress line per behavior (step, elapsed time, mean and std
  reward, env steps per second, time left to max_steps).
* :class:`TensorboardWriter`: TensorBoard event files (TFRecord framing, ``Event`` protos
  written by hand, so no TensorFlow/TensorBoard dependency) under ``results/<run-id>/<Behavior>``.
* :class:`LearningCurveWriter`: ``results/<run-id>/learning_curves.png``, mean reward and
  episode length per behavior over steps, for judging a headless run at a glance.
"""

from __future__ import annotations

import abc
import logging
import math
import os
import socket
import struct
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from enum import Enum
from typing import Any, ClassVar

import attrs
import numpy as np

from mlagents_fast.envs.side_channel.stats_side_channel import StatsAggregationMethod

__all__ = [
    "ConsoleWriter",
    "GaugeWriter",
    "LearningCurveWriter",
    "StatsAggregationMethod",
    "StatsPropertyType",
    "StatsReporter",
    "StatsSummary",
    "StatsWriter",
    "TensorboardWriter",
]

logger = logging.getLogger("mlagents_fast.trainers")

REWARD_KEY = "Environment/Cumulative Reward"
EPISODE_LENGTH_KEY = "Environment/Episode Length"


class StatsPropertyType(Enum):
    """Properties (not time series) that a trainer hands to the writers once."""

    HYPERPARAMETERS = "hyperparameters"
    SELF_PLAY = "selfplay"


@attrs.frozen
class StatsSummary:
    """All values of one stat since the last write, and how to aggregate them."""

    full_dist: Sequence[float] = attrs.field()
    """Every value added since the last write."""
    aggregation_method: StatsAggregationMethod = attrs.field()
    """How the values combine into one number (average, most recent, sum)."""

    @staticmethod
    def empty() -> StatsSummary:
        return StatsSummary([], StatsAggregationMethod.AVERAGE)

    @property
    def aggregated_value(self) -> float:
        if self.aggregation_method == StatsAggregationMethod.SUM:
            return self.sum
        return self.mean

    @property
    def mean(self) -> float:
        if self.aggregation_method == StatsAggregationMethod.MOST_RECENT:
            return float(self.full_dist[-1]) if self.full_dist else 0.0
        return float(np.mean(self.full_dist)) if self.full_dist else 0.0

    @property
    def std(self) -> float:
        return float(np.std(self.full_dist)) if self.full_dist else 0.0

    @property
    def num(self) -> int:
        return len(self.full_dist)

    @property
    def sum(self) -> float:
        return float(np.sum(self.full_dist))


class StatsWriter(abc.ABC):
    """Receives the summaries of one category (behavior) at each summary step."""

    def on_add_stat(
        self,
        category: str,
        key: str,
        value: float,
        aggregation: StatsAggregationMethod = StatsAggregationMethod.AVERAGE,
    ) -> None:
        """Called for every value added (most writers ignore it)."""

    @abc.abstractmethod
    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        """Show or store the summaries of ``category`` at ``step``."""

    def add_property(self, category: str, property_type: StatsPropertyType, value: Any) -> None:
        """Receive a property (hyperparameters) of ``category``."""


class GaugeWriter(StatsWriter):
    """Mirrors every stat into the timer gauges (so timers.json shows them)."""

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        from mlagents_fast.trainers.timers import set_gauge

        for key, summary in values.items():
            set_gauge(f"{category}.{key}.mean", summary.mean)
            set_gauge(f"{category}.{key}.sum", summary.sum)


def _format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ConsoleWriter(StatsWriter):
    """Logs one progress line per behavior every summary_freq steps."""

    def __init__(self) -> None:
        self.training_start_time = time.time()
        self._last_write: dict[str, tuple[int, float]] = {}
        self._max_steps: dict[str, int] = {}
        self._first_step: dict[str, int] = {}

    def set_start_step(self, category: str, step: int) -> None:
        """The step a resumed run starts from (so steps/s counts only this session's steps)."""
        self._first_step[category] = step

    def add_property(self, category: str, property_type: StatsPropertyType, value: Any) -> None:
        if property_type == StatsPropertyType.HYPERPARAMETERS and isinstance(value, dict):
            max_steps = value.get("max_steps")
            if isinstance(max_steps, (int, float)):
                self._max_steps[category] = int(max_steps)
            logger.info(
                "Hyperparameters for behavior name %s: \n%s", category, _dict_to_text(value)
            )

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        now = time.time()
        elapsed = now - self.training_start_time
        is_training = (
            "Training."
            if values.get("Is Training", StatsSummary.empty()).aggregated_value
            else "Not Training."
        )
        parts = [f"{category}.", f"Step: {step}.", f"Time Elapsed: {elapsed:.3f} s."]
        reward = values.get(REWARD_KEY)
        if reward is not None and reward.num > 0:
            parts.append(f"Mean Reward: {reward.mean:.3f}.")
            parts.append(f"Std of Reward: {reward.std:.3f}.")
        else:
            parts.append("No episode was completed since last summary.")
        last_step, last_time = self._last_write.get(
            category, (self._first_step.get(category, 0), self.training_start_time)
        )
        steps_per_second = 0.0
        if now > last_time and step > last_step:
            steps_per_second = (step - last_step) / (now - last_time)
            parts.append(f"Steps/s: {steps_per_second:.0f}.")
        max_steps = self._max_steps.get(category)
        if max_steps is not None and steps_per_second > 0 and step < max_steps:
            parts.append(f"Time Left: {_format_duration((max_steps - step) / steps_per_second)}.")
        parts.append(is_training)
        self._last_write[category] = (step, now)
        logger.info(" ".join(parts))


def _dict_to_text(value: Any, indent: int = 0) -> str:
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(_dict_to_text(item, indent + 2))
        else:
            lines.append(" " * indent + f"{key}:\t{item}")
    return "\n".join(lines)


# --- TensorBoard event files -------------------------------------------------------------


def _make_crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord framing."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= 0xFFFFFFFFFFFFFFFF
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(field_number: int, payload: bytes) -> bytes:
    return _varint((field_number << 3) | 2) + _varint(len(payload)) + payload


def _scalar_value(tag: str, value: float) -> bytes:
    # Summary.Value: tag = 1 (string), simple_value = 2 (float).
    return _field_bytes(1, tag.encode()) + _varint((2 << 3) | 5) + struct.pack("<f", value)


def _text_value(tag: str, text: str) -> bytes:
    # Summary.Value with metadata.plugin_data.plugin_name = "text" and a scalar DT_STRING tensor.
    plugin_data = _field_bytes(1, b"text")
    metadata = _field_bytes(1, plugin_data)
    tensor = _varint((1 << 3) | 0) + _varint(7)  # dtype = DT_STRING
    tensor += _field_bytes(2, b"")  # tensor_shape: scalar
    tensor += _field_bytes(8, text.encode())  # string_val
    return _field_bytes(1, tag.encode()) + _field_bytes(9, metadata) + _field_bytes(8, tensor)


def encode_event(
    wall_time: float,
    step: int,
    summary_values: Sequence[bytes] = (),
    file_version: str | None = None,
) -> bytes:
    """A serialized ``tensorflow.Event`` with the given Summary.Value entries."""
    event = _varint((1 << 3) | 1) + struct.pack("<d", wall_time)
    event += _varint((2 << 3) | 0) + _varint(step)
    if file_version is not None:
        event += _field_bytes(3, file_version.encode())
    if summary_values:
        summary = b"".join(_field_bytes(1, value) for value in summary_values)
        event += _field_bytes(5, summary)
    return event


def tfrecord_frame(data: bytes) -> bytes:
    """TFRecord framing: length, masked CRC of the length, data, masked CRC of the data."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


class _EventFile:
    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(directory, name)
        # Kept open for the run: events are appended at every summary.
        self._file = open(self.path, "ab")  # noqa: SIM115
        self.write(encode_event(time.time(), 0, file_version="brain.Event:2"))

    def write(self, event: bytes) -> None:
        self._file.write(tfrecord_frame(event))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorboardWriter(StatsWriter):
    """Writes each behavior's stats as TensorBoard scalars under ``base_dir/<category>``."""

    def __init__(
        self, base_dir: str, clear_past_data: bool = False, hidden_keys: list[str] | None = None
    ) -> None:
        self.base_dir = base_dir
        self._clear_past_data = clear_past_data
        self.hidden_keys = hidden_keys or []
        self._files: dict[str, _EventFile] = {}
        self._lock = threading.Lock()

    def _file_for(self, category: str) -> _EventFile:
        event_file = self._files.get(category)
        if event_file is None:
            directory = os.path.join(self.base_dir, category)
            if self._clear_past_data and os.path.isdir(directory):
                for name in os.listdir(directory):
                    if name.startswith("events.out.tfevents"):
                        os.unlink(os.path.join(directory, name))
            event_file = _EventFile(directory)
            self._files[category] = event_file
        return event_file

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        scalars = [
            _scalar_value(key, summary.aggregated_value)
            for key, summary in values.items()
            if key not in self.hidden_keys and summary.num > 0
        ]
        if not scalars:
            return
        with self._lock:
            self._file_for(category).write(encode_event(time.time(), step, scalars))

    def add_property(self, category: str, property_type: StatsPropertyType, value: Any) -> None:
        if property_type == StatsPropertyType.HYPERPARAMETERS and isinstance(value, dict):
            text = _dict_to_markdown(value)
            with self._lock:
                self._file_for(category).write(
                    encode_event(time.time(), 0, [_text_value("Hyperparameters", text)])
                )

    def close(self) -> None:
        with self._lock:
            for event_file in self._files.values():
                event_file.close()
            self._files.clear()


def _dict_to_markdown(value: dict[str, Any], prefix: str = "") -> str:
    rows = ["| parameter | value |", "| --- | --- |"]

    def walk(d: dict[str, Any], path: str) -> None:
        for key, item in d.items():
            name = f"{path}{key}"
            if isinstance(item, dict):
                walk(item, name + ".")
            else:
                rows.append(f"| {name} | {item} |")

    walk(value, prefix)
    return "\n".join(rows)


# --- learning curve PNG -----------------------------------------------------------------


class LearningCurveWriter(StatsWriter):
    """Draws ``learning_curves.png`` in the run folder: per behavior, mean reward and mean
    episode length against steps. Rewritten (atomically) at every summary."""

    FILE_NAME = "learning_curves.png"

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, self.FILE_NAME)
        self.points: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
        self._lock = threading.Lock()

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        reward = values.get(REWARD_KEY)
        length = values.get(EPISODE_LENGTH_KEY)
        if reward is None or reward.num == 0:
            return
        with self._lock:
            self.points[category].append(
                (step, reward.mean, length.mean if length is not None and length.num else math.nan)
            )
            self._draw()

    def _draw(self) -> None:
        from PIL import Image, ImageDraw

        panel_w, panel_h, margin = 480, 240, 56
        categories = sorted(self.points)
        width = panel_w * 2
        height = panel_h * len(categories)
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        for row, category in enumerate(categories):
            points = self.points[category]
            steps = [p[0] for p in points]
            for col, (index, label, color) in enumerate(
                ((1, "mean reward", (31, 119, 180)), (2, "episode length", (214, 39, 40)))
            ):
                series = [(s, p[index]) for s, p in zip(steps, points) if not math.isnan(p[index])]
                x0, y0 = col * panel_w + margin, row * panel_h + 24
                x1, y1 = (col + 1) * panel_w - 16, (row + 1) * panel_h - 28
                draw.rectangle([x0, y0, x1, y1], outline=(120, 120, 120))
                draw.text((x0, row * panel_h + 6), f"{category}: {label}", fill="black")
                if not series:
                    continue
                xs = [s for s, _ in series]
                ys = [v for _, v in series]
                x_lo, x_hi = min(xs), max(xs)
                y_lo, y_hi = min(ys), max(ys)
                if x_hi == x_lo:
                    x_hi = x_lo + 1
                if y_hi == y_lo:
                    y_lo, y_hi = y_lo - 1, y_hi + 1
                draw.text((4, y0), f"{y_hi:.3g}", fill="black") if col == 0 else draw.text(
                    (x0 - margin + 4, y0), f"{y_hi:.3g}", fill="black"
                )
                draw.text((x0 - margin + 4, y1 - 10), f"{y_lo:.3g}", fill="black")
                draw.text((x0, y1 + 4), f"{x_lo}", fill="black")
                draw.text((x1 - 60, y1 + 4), f"{x_hi} steps", fill="black")
                pixels = [
                    (
                        x0 + (x - x_lo) / (x_hi - x_lo) * (x1 - x0),
                        y1 - (y - y_lo) / (y_hi - y_lo) * (y1 - y0),
                    )
                    for x, y in series
                ]
                if len(pixels) > 1:
                    draw.line(pixels, fill=color, width=2)
                for px, py in pixels:
                    draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                image.save(f, format="PNG")
            os.replace(temp_path, self.path)
        except BaseException:
            if os.path.exists(temp_path):
                os.unlink(temp_path)
            raise


# --- the reporter ---------------------------------------------------------------------


class StatsReporter:
    """Collects the stats of one category (behavior) and hands them to every writer."""

    writers: ClassVar[list[StatsWriter]] = []
    stats_dict: ClassVar[dict[str, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(list))
    lock = threading.RLock()
    stats_aggregation: ClassVar[dict[str, dict[str, StatsAggregationMethod]]] = defaultdict(
        lambda: defaultdict(lambda: StatsAggregationMethod.AVERAGE)
    )

    def __init__(self, category: str) -> None:
        self.category = category

    @staticmethod
    def add_writer(writer: StatsWriter) -> None:
        with StatsReporter.lock:
            StatsReporter.writers.append(writer)

    @staticmethod
    def reset() -> None:
        """Remove every writer and value (a new run in the same process starts clean)."""
        with StatsReporter.lock:
            for writer in StatsReporter.writers:
                close = getattr(writer, "close", None)
                if close is not None:
                    close()
            StatsReporter.writers.clear()
            StatsReporter.stats_dict.clear()
            StatsReporter.stats_aggregation.clear()

    def add_property(self, property_type: StatsPropertyType, value: Any) -> None:
        with StatsReporter.lock:
            for writer in StatsReporter.writers:
                writer.add_property(self.category, property_type, value)

    def add_stat(
        self,
        key: str,
        value: float,
        aggregation: StatsAggregationMethod = StatsAggregationMethod.AVERAGE,
    ) -> None:
        """Add a value; values since the last write are aggregated by ``aggregation``."""
        with StatsReporter.lock:
            StatsReporter.stats_dict[self.category][key].append(float(value))
            StatsReporter.stats_aggregation[self.category][key] = aggregation
            for writer in StatsReporter.writers:
                writer.on_add_stat(self.category, key, value, aggregation)

    def set_stat(self, key: str, value: float) -> None:
        """Replace the stat with a single most-recent value."""
        with StatsReporter.lock:
            StatsReporter.stats_dict[self.category][key] = [float(value)]
            StatsReporter.stats_aggregation[self.category][key] = StatsAggregationMethod.MOST_RECENT
            for writer in StatsReporter.writers:
                writer.on_add_stat(self.category, key, value, StatsAggregationMethod.MOST_RECENT)

    def write_stats(self, step: int) -> None:
        """Hand the summaries to every writer, then clear the values."""
        with StatsReporter.lock:
            values: dict[str, StatsSummary] = {}
            for key in StatsReporter.stats_dict[self.category]:
                values[key] = self.get_stats_summaries(key)
            for writer in StatsReporter.writers:
                writer.write_stats(self.category, values, step)
            del StatsReporter.stats_dict[self.category]

    def get_stats_summaries(self, key: str) -> StatsSummary:
        """The summary of ``key`` since the last write (empty when none)."""
        with StatsReporter.lock:
            stat_values = StatsReporter.stats_dict[self.category][key]
            if not stat_values:
                return StatsSummary.empty()
            return StatsSummary(
                list(stat_values), StatsReporter.stats_aggregation[self.category][key]
            )
