"""ActionInfo: what a policy returns for one batch of decision requests."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ActionInfo", "ActionInfoOutputs"]

ActionInfoOutputs = dict[str, Any]


class ActionInfo(NamedTuple):
    """``action``: the raw ActionTuple (stored in the buffer); ``env_action``: the ActionTuple
    sent to the environment (clipped for PPO); ``outputs``: everything else from the forward
    pass (``log_probs``, ``entropy``, ``memory_out``); ``agent_ids``: the DecisionSteps' ids."""

    action: Any
    env_action: Any
    outputs: ActionInfoOutputs
    agent_ids: list[int]

    @staticmethod
    def empty() -> ActionInfo:
        return ActionInfo([], [], {}, [])
