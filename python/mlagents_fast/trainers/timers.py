"""The run's timers and gauges: :mod:`mlagents_fast.envs.timers`, under the trainers' path.

One implementation in the environment layer (where ML-Agents keeps it), so that the
environment code and the trainers share one timer tree.
"""

from mlagents_fast.envs.timers import (
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
