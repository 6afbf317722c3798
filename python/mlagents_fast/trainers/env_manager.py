"""The environment side of training (the counterpart of ``mlagents.trainers.env_manager``).

An :class:`EnvManager` owns one or more environments, asks each behavior's policy for actions,
steps the environments and hands every new step to the behavior's :class:`AgentManager`.
Subclasses: :class:`~mlagents_fast.trainers.simple_env_manager.SimpleEnvManager` (one
environment in this process) and
:class:`~mlagents_fast.trainers.subprocess_env_manager.SubprocessEnvManager` (N workers).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import KeysView
from typing import TYPE_CHECKING, Any, NamedTuple

from mlagents_fast.envs.base_env import BehaviorSpec, DecisionSteps, TerminalSteps
from mlagents_fast.envs.side_channel.stats_side_channel import EnvironmentStats
from mlagents_fast.trainers.action_info import ActionInfo
from mlagents_fast.trainers.agent_processor import AgentManager, AgentManagerQueue

if TYPE_CHECKING:
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy

__all__ = ["AllGroupSpec", "AllStepResult", "EnvManager", "EnvironmentStep"]

logger = logging.getLogger(__name__)

AllStepResult = dict[str, tuple[DecisionSteps, TerminalSteps]]
AllGroupSpec = dict[str, BehaviorSpec]


class EnvironmentStep(NamedTuple):
    """What one environment worker returned for one step."""

    current_all_step_result: AllStepResult
    """Behavior name -> (DecisionSteps, TerminalSteps)."""
    worker_id: int
    """Index of the environment worker."""
    brain_name_to_action_info: dict[str, ActionInfo]
    """Behavior name -> the ActionInfo the agents acted on before this step."""
    environment_stats: EnvironmentStats
    """Stats the environment sent through the stats side channel."""

    @property
    def name_behavior_ids(self) -> KeysView[str]:
        return self.current_all_step_result.keys()

    @staticmethod
    def empty(worker_id: int) -> EnvironmentStep:
        return EnvironmentStep({}, worker_id, {}, {})


class EnvManager(ABC):
    """Steps environments with the current policies and feeds the agent managers."""

    def __init__(self) -> None:
        self.policies: dict[str, TorchPolicy] = {}
        self.agent_managers: dict[str, AgentManager] = {}
        self.first_step_infos: list[EnvironmentStep] = []

    def set_policy(self, brain_name: str, policy: TorchPolicy) -> None:
        self.policies[brain_name] = policy
        if brain_name in self.agent_managers:
            self.agent_managers[brain_name].policy = policy

    def set_agent_manager(self, brain_name: str, manager: AgentManager) -> None:
        self.agent_managers[brain_name] = manager

    @abstractmethod
    def _step(self) -> list[EnvironmentStep]:
        """Send actions, step the environment(s), return the new steps."""

    @abstractmethod
    def _reset_env(self, config: dict[str, Any] | None = None) -> list[EnvironmentStep]:
        """Reset the environment(s) with the environment-parameter ``config``."""

    def reset(self, config: dict[str, Any] | None = None) -> int:
        """Reset everything; the first steps are processed on the next :meth:`get_steps`."""
        for manager in self.agent_managers.values():
            manager.end_episode()
        self.first_step_infos = self._reset_env(config)
        return len(self.first_step_infos)

    @abstractmethod
    def set_env_parameters(self, config: dict[str, Any] | None = None) -> None:
        """Send new environment-parameter values or samplers (applied at the next episode)."""

    def on_training_started(self, behavior_name: str, trainer_settings: Any) -> None:
        """Called once per behavior when its trainer is created."""

    @property
    @abstractmethod
    def training_behaviors(self) -> dict[str, BehaviorSpec]:
        """Behavior name -> BehaviorSpec of every behavior seen so far."""

    @abstractmethod
    def close(self) -> None:
        """Close every environment."""

    def get_steps(self) -> list[EnvironmentStep]:
        """Pick up the newest policies, step the environments and return what came back."""
        if self.first_step_infos:
            output = self.first_step_infos
            self.first_step_infos = []
            return output
        for brain_name, manager in self.agent_managers.items():
            newest_policy = None
            try:
                while True:
                    newest_policy = manager.policy_queue.get_nowait()
            except AgentManagerQueue.Empty:
                if newest_policy is not None:
                    self.set_policy(brain_name, newest_policy)
        return self._step()

    def process_steps(self, new_step_infos: list[EnvironmentStep]) -> int:
        """Hand each step to its behavior's agent manager; return how many steps there were."""
        for step_info in new_step_infos:
            for name_behavior_id in step_info.name_behavior_ids:
                manager = self.agent_managers.get(name_behavior_id)
                if manager is None:
                    logger.warning(
                        "Agent manager was not created for behavior id %s.", name_behavior_id
                    )
                    continue
                decision_steps, terminal_steps = step_info.current_all_step_result[name_behavior_id]
                manager.add_experiences(
                    decision_steps,
                    terminal_steps,
                    step_info.worker_id,
                    step_info.brain_name_to_action_info.get(name_behavior_id, ActionInfo.empty()),
                )
                manager.record_environment_stats(step_info.environment_stats, step_info.worker_id)
        return len(new_step_infos)

    def _take_step(self, last_step: EnvironmentStep) -> dict[str, ActionInfo]:
        """Ask each behavior's policy for the actions of the agents awaiting a decision."""
        all_action_info: dict[str, ActionInfo] = {}
        for brain_name, (decision_steps, _) in last_step.current_all_step_result.items():
            policy = self.policies.get(brain_name)
            if policy is not None:
                all_action_info[brain_name] = policy.get_action(decision_steps, last_step.worker_id)
        return all_action_info
