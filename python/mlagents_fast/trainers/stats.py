"""Training statistics: aggregation per behavior and the writers that show or store them.

The counterpart of ``mlagents.trainers.stats``. A :class:`StatsReporter` per behavior collects
values; at every summary step each registered :class:`StatsWriter` gets the summaries:

* :class:`ConsoleWriter`: ML-Agents' progress line per behavior, word for word (step, elapsed
  time, mean and std reward, training or not), so tools that parse mlagents-learn's output work.
* :class:`TensorboardWriter`: TensorBoard event files, written by TensorBoard's own writer
  (``torch.utils.tensorboard``), under ``results/<run-id>/<Behavior>``, with ML-Agents' tags.
* :class:`GaugeWriter`: each stat's mean and sum as a gauge in ``run_logs/timers.json``.

The learning-curve PNG and the terminal progress display are in
:mod:`mlagents_fast.trainers.learning_curves` and :mod:`mlagents_fast.trainers.progress`.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from enum import Enum
from typing import Any, ClassVar

import attrs
import numpy as np

from mlagents_fast.envs.side_channel.stats_side_channel import StatsAggregationMethod
from mlagents_fast.trainers.timers import set_gauge

__all__ = [
    "ConsoleWriter",
    "GaugeWriter",
    "StatsAggregationMethod",
    "StatsPropertyType",
    "StatsReporter",
    "StatsSummary",
    "StatsWriter",
    "TensorboardWriter",
]

logger = logging.getLogger("mlagents_fast.trainers")

REWARD_KEY = "Environment/Cumulative Reward"
GROUP_REWARD_KEY = "Environment/Group Cumulative Reward"
EPISODE_LENGTH_KEY = "Environment/Episode Length"
LESSON_KEY_PREFIX = "Environment/Lesson Number/"
ELO_KEY = "Self-play/ELO"


class StatsPropertyType(Enum):
    """Properties (not time series) that a trainer hands to the writers once."""

    HYPERPARAMETERS = "hyperparameters"
    SELF_PLAY = "selfplay"


@attrs.frozen
class StatsSummary:
    """All values of one stat since the last write, and how to aggregate them."""

    full_dist: Sequence[float] = attrs.field()
    """Every value added since the last write (only the last one for MOST_RECENT stats)."""
    aggregation_method: StatsAggregationMethod = attrs.field()
    """How the values combine into one number (average, most recent, sum, histogram)."""

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
        """Receive a property (hyperparameters, self-play) of ``category``."""


class GaugeWriter(StatsWriter):
    """Mirrors every stat into the timer gauges, so ``timers.json`` keeps them after the run."""

    @staticmethod
    def sanitize_string(s: str) -> str:
        """The gauge name of a stat: ``/`` becomes ``.`` and spaces go, as in ML-Agents'
        ``timers.json`` (``3DBall.Policy.LearningRate.mean``)."""
        return s.replace("/", ".").replace(" ", "")

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        for key, summary in values.items():
            set_gauge(GaugeWriter.sanitize_string(f"{category}.{key}.mean"), summary.mean)
            set_gauge(GaugeWriter.sanitize_string(f"{category}.{key}.sum"), summary.sum)


def hyperparameters_text(value: Any, depth: int = 0) -> str:
    """Settings as indented ``key:<TAB>value`` lines, nested sections under their key: the text
    mlagents-learn prints and stores in TensorBoard as "Hyperparameters"."""
    if not isinstance(value, dict):
        return str(value)
    lines = [
        "\t" + "  " * depth + f"{key}:\t{hyperparameters_text(item, depth + 1)}"
        for key, item in value.items()
    ]
    # A nested section starts on the line after its key.
    return ("\n" if depth else "") + "\n".join(lines)


class ConsoleWriter(StatsWriter):
    """Logs mlagents-learn's progress line per behavior at every summary, word for word:

    ``3DBall. Step: 12000. Time Elapsed: 9.871 s. Mean Reward: 1.234. Std of Reward: 0.567.
    Training.`` (one line). Speed and time left are :class:`~mlagents_fast.trainers.progress.
    ProgressWriter`'s, on a line of their own, so parsers of this line keep working.
    """

    def __init__(self) -> None:
        self.training_start_time = time.time()
        # With self-play, the line shows the ELO rating too.
        self.self_play = False
        self.self_play_team = -1

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        is_training = "Not Training"
        training = values.get("Is Training")
        if training is not None and training.aggregated_value > 0.0:
            is_training = "Training"
        elapsed = time.time() - self.training_start_time
        parts = [category, f"Step: {step}", f"Time Elapsed: {elapsed:0.3f} s"]
        reward = values.get(REWARD_KEY)
        if reward is not None:
            parts.append(f"Mean Reward: {reward.mean:0.3f}")
            group_reward = values.get(GROUP_REWARD_KEY)
            if group_reward is not None:
                parts.append(f"Mean Group Reward: {group_reward.mean:0.3f}")
            else:
                parts.append(f"Std of Reward: {reward.std:0.3f}")
            parts.append(is_training)
            elo = values.get(ELO_KEY)
            if self.self_play and elo is not None:
                parts.append(f"ELO: {elo.mean:0.3f}")
        else:
            parts.append("No episode was completed since last summary")
            parts.append(is_training)
        logger.info(". ".join(parts) + ".")

    def add_property(self, category: str, property_type: StatsPropertyType, value: Any) -> None:
        if property_type == StatsPropertyType.HYPERPARAMETERS:
            logger.info(
                "Hyperparameters for behavior name %s: \n%s", category, hyperparameters_text(value)
            )
        elif property_type == StatsPropertyType.SELF_PLAY:
            self.self_play = bool(value)


class TensorboardWriter(StatsWriter):
    """Each behavior's stats as TensorBoard scalars under ``base_dir/<category>``, through
    TensorBoard's writer; the tags are the stat keys (``Environment/Cumulative Reward``, ...),
    HISTOGRAM stats also as a ``<key>_hist`` histogram, and the hyperparameters as the text
    ``Hyperparameters``, as ML-Agents writes them."""

    def __init__(
        self, base_dir: str, clear_past_data: bool = False, hidden_keys: list[str] | None = None
    ) -> None:
        self.base_dir = base_dir
        self._clear_past_data = clear_past_data
        self.hidden_keys: list[str] = hidden_keys if hidden_keys is not None else []
        self.summary_writers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _writer_for(self, category: str) -> Any:
        writer = self.summary_writers.get(category)
        if writer is None:
            # Imported here: TensorBoard takes a few seconds to import, and only runs need it.
            from torch.utils.tensorboard import SummaryWriter

            directory = os.path.join(self.base_dir, category)
            os.makedirs(directory, exist_ok=True)
            if self._clear_past_data:
                self._delete_event_files(directory)
            writer = SummaryWriter(directory)
            self.summary_writers[category] = writer
        return writer

    @staticmethod
    def _delete_event_files(directory: str) -> None:
        for name in os.listdir(directory):
            if not name.startswith("events.out"):
                continue
            logger.warning("Deleting TensorBoard data %s left over from a previous run.", name)
            try:
                os.remove(os.path.join(directory, name))
            except OSError as err:
                logger.error("Could not delete %s: %s", os.path.join(directory, name), err)

    def write_stats(self, category: str, values: dict[str, StatsSummary], step: int) -> None:
        with self._lock:
            writer = self._writer_for(category)
            for key, summary in values.items():
                if key in self.hidden_keys or summary.num == 0:
                    continue
                writer.add_scalar(key, summary.aggregated_value, step)
                if summary.aggregation_method == StatsAggregationMethod.HISTOGRAM:
                    writer.add_histogram(f"{key}_hist", np.asarray(summary.full_dist), step)
            writer.flush()

    def add_property(self, category: str, property_type: StatsPropertyType, value: Any) -> None:
        if property_type == StatsPropertyType.HYPERPARAMETERS and isinstance(value, dict):
            with self._lock:
                writer = self._writer_for(category)
                writer.add_text("Hyperparameters", hyperparameters_text(value))
                writer.flush()

    def close(self) -> None:
        with self._lock:
            for writer in self.summary_writers.values():
                writer.close()
            self.summary_writers.clear()


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
        """Add a value; values since the last write are aggregated by ``aggregation``.

        A MOST_RECENT stat keeps only this value (what :meth:`set_stat` does), so its mean and
        sum are the last value, not the values since the last write.
        """
        with StatsReporter.lock:
            if aggregation == StatsAggregationMethod.MOST_RECENT:
                StatsReporter.stats_dict[self.category][key] = [float(value)]
            else:
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
        """Hand the summaries of the stats that got values to every writer, then clear them."""
        with StatsReporter.lock:
            values: dict[str, StatsSummary] = {}
            for key, stat_values in StatsReporter.stats_dict[self.category].items():
                if stat_values:
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
