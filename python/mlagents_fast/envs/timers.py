"""Hierarchical wall-clock timers and gauges at ML-Agents' path (``mlagents_envs.timers``).

The trainers use these same timer stacks (:mod:`mlagents_fast.trainers.timers` re-exports
this module), so a ``@timed`` function of user code shows up in ``run_logs/timers.json``.

Usage mirrors ML-Agents::

    with hierarchical_timer("env_step"):
        ...

    @timed
    def update(): ...

``get_timer_tree()`` returns the nested dict written to ``run_logs/timers.json``. Each thread
has its own stack so trainer threads do not corrupt the main thread's nesting.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "TIMER_FORMAT_VERSION",
    "GaugeNode",
    "TimerNode",
    "TimerStack",
    "add_metadata",
    "current_timer_node",
    "get_timer_root",
    "get_timer_stack_for_thread",
    "get_timer_tree",
    "hierarchical_timer",
    "merge_gauges",
    "reset_timers",
    "set_gauge",
    "timed",
]

TIMER_FORMAT_VERSION = "0.1.0"


class TimerNode:
    """One named timer: total seconds, call count and child timers."""

    __slots__ = ["children", "count", "is_parallel", "total"]

    def __init__(self) -> None:
        self.children: dict[str, TimerNode] = {}
        self.total: float = 0.0
        self.count: int = 0
        # True when merged from another thread: its time overlaps the parent's.
        self.is_parallel = False

    def get_child(self, name: str) -> TimerNode:
        child = self.children.get(name)
        if child is None:
            child = TimerNode()
            self.children[name] = child
        return child

    def add_time(self, elapsed: float) -> None:
        self.total += elapsed
        self.count += 1

    def merge(
        self, other: TimerNode, root_name: str | None = None, is_parallel: bool = True
    ) -> None:
        """Add another node's totals (and children) into this one."""
        node = self.get_child(root_name) if root_name else self
        node.total += other.total
        node.count += other.count
        node.is_parallel |= is_parallel
        for name, other_child in other.children.items():
            node.get_child(name).merge(other_child, is_parallel=is_parallel)


class GaugeNode:
    """A gauge: last value plus min, max and count of every value set."""

    __slots__ = ["_timestamp", "count", "max_value", "min_value", "value"]

    def __init__(self, value: float) -> None:
        self.value = value
        self.min_value = value
        self.max_value = value
        self.count = 1
        self._timestamp = time.time()

    def update(self, new_value: float) -> None:
        self.min_value = min(self.min_value, new_value)
        self.max_value = max(self.max_value, new_value)
        self.value = new_value
        self.count += 1
        self._timestamp = time.time()

    def merge(self, other: GaugeNode) -> None:
        if self._timestamp < other._timestamp:
            self.value = other.value
            self._timestamp = other._timestamp
        self.min_value = min(self.min_value, other.min_value)
        self.max_value = max(self.max_value, other.max_value)
        self.count += other.count

    def as_dict(self) -> dict[str, float]:
        return {
            "value": self.value,
            "min": self.min_value,
            "max": self.max_value,
            "count": self.count,
        }


class TimerStack:
    """The root timer, the stack of open timers, gauges and metadata of one thread."""

    __slots__ = ["gauges", "metadata", "root", "stack", "start_time"]

    def __init__(self) -> None:
        self.root = TimerNode()
        self.stack: list[TimerNode] = [self.root]
        self.start_time = time.perf_counter()
        self.gauges: dict[str, GaugeNode] = {}
        self.metadata: dict[str, str] = {}
        self._add_default_metadata()

    def reset(self) -> None:
        self.root = TimerNode()
        self.stack = [self.root]
        self.start_time = time.perf_counter()
        self.gauges = {}
        self.metadata = {}
        self._add_default_metadata()

    def push(self, name: str) -> TimerNode:
        node = self.stack[-1].get_child(name)
        self.stack.append(node)
        return node

    def pop(self) -> None:
        self.stack.pop()

    def get_root(self) -> TimerNode:
        self.root.total = time.perf_counter() - self.start_time
        self.root.count = 1
        return self.root

    def get_timing_tree(self, node: TimerNode | None = None) -> dict[str, Any]:
        """The nested dict of ``timers.json``: total, count, self time and children."""
        if node is None:
            node = self.get_root()
            tree: dict[str, Any] = {"name": "root"}
            if self.gauges:
                tree["gauges"] = {name: gauge.as_dict() for name, gauge in self.gauges.items()}
            if self.metadata:
                self.metadata["end_time_seconds"] = str(int(time.time()))
                tree["metadata"] = dict(self.metadata)
        else:
            tree = {}
        tree["total"] = node.total
        tree["count"] = node.count
        if node.is_parallel:
            tree["is_parallel"] = True
        child_total = 0.0
        children: dict[str, Any] = {}
        for name, child in node.children.items():
            children[name] = self.get_timing_tree(child)
            if not child.is_parallel:
                child_total += child.total
        tree["self"] = max(0.0, node.total - child_total)
        if children:
            tree["children"] = children
        return tree

    def set_gauge(self, name: str, value: float) -> None:
        if math.isnan(value):
            return
        gauge = self.gauges.get(name)
        if gauge is None:
            self.gauges[name] = GaugeNode(value)
        else:
            gauge.update(value)

    def add_metadata(self, key: str, value: str) -> None:
        self.metadata[key] = value

    def _add_default_metadata(self) -> None:
        self.metadata["timer_format_version"] = TIMER_FORMAT_VERSION
        self.metadata["start_time_seconds"] = str(int(time.time()))
        self.metadata["python_version"] = sys.version
        self.metadata["command_line_arguments"] = " ".join(sys.argv)


_thread_timer_stacks: dict[int, TimerStack] = {}
_thread_lock = threading.Lock()


def get_timer_stack_for_thread(thread: threading.Thread) -> TimerStack | None:
    """The timer stack of another thread, if it used any timer."""
    ident = thread.ident
    if ident is None:
        return None
    return _thread_timer_stacks.get(ident)


def _get_thread_timer() -> TimerStack:
    ident = threading.get_ident()
    stack = _thread_timer_stacks.get(ident)
    if stack is None:
        with _thread_lock:
            stack = _thread_timer_stacks.setdefault(ident, TimerStack())
    return stack


@contextmanager
def hierarchical_timer(
    name: str, timer_stack: TimerStack | None = None
) -> Generator[None, None, None]:
    """Time the block under ``name``, nested inside the currently open timer."""
    stack = timer_stack or _get_thread_timer()
    node = stack.push(name)
    start = time.perf_counter()
    try:
        yield
    finally:
        node.add_time(time.perf_counter() - start)
        stack.pop()


FuncT = TypeVar("FuncT", bound=Callable[..., Any])


def timed(func: FuncT) -> FuncT:
    """Decorator: time every call of ``func`` under its qualified name."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with hierarchical_timer(func.__qualname__):
            return func(*args, **kwargs)

    wrapped.__name__ = func.__name__
    wrapped.__qualname__ = func.__qualname__
    wrapped.__doc__ = func.__doc__
    return wrapped  # type: ignore[return-value]


def set_gauge(name: str, value: float, timer_stack: TimerStack | None = None) -> None:
    (timer_stack or _get_thread_timer()).set_gauge(name, value)


def current_timer_node(timer_stack: TimerStack | None = None) -> TimerNode:
    """The innermost open timer of this thread."""
    return (timer_stack or _get_thread_timer()).stack[-1]


def merge_gauges(gauges: dict[str, GaugeNode], timer_stack: TimerStack | None = None) -> None:
    stack = timer_stack or _get_thread_timer()
    for name, gauge in gauges.items():
        if name in stack.gauges:
            stack.gauges[name].merge(gauge)
        else:
            stack.gauges[name] = gauge


def add_metadata(key: str, value: str, timer_stack: TimerStack | None = None) -> None:
    (timer_stack or _get_thread_timer()).add_metadata(key, value)


def get_timer_tree(timer_stack: TimerStack | None = None) -> dict[str, Any]:
    return (timer_stack or _get_thread_timer()).get_timing_tree()


def get_timer_root(timer_stack: TimerStack | None = None) -> TimerNode:
    return (timer_stack or _get_thread_timer()).get_root()


def reset_timers(timer_stack: TimerStack | None = None) -> None:
    (timer_stack or _get_thread_timer()).reset()
