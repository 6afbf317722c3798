"""Hierarchical timers and gauges at ML-Agents' path (``mlagents_envs.timers``).

One implementation, :mod:`mlagents_fast.trainers.timers`: both paths share the same timer
stacks, so a ``@timed`` function of user code shows up in ``run_logs/timers.json``.
"""

from mlagents_fast.trainers.timers import (
    TIMER_FORMAT_VERSION,
    GaugeNode,
    TimerNode,
    TimerStack,
    add_metadata,
    current_timer_node,
    get_timer_root,
    get_timer_stack_for_thread,
    get_timer_tree,
    hierarchical_timer,
    merge_gauges,
    reset_timers,
    set_gauge,
    timed,
)

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
