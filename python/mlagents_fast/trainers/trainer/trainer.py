"""The abstract trainer (the counterpart of ``mlagents.trainers.trainer.trainer``)."""

from __future__ import annotations

import abc
from collections import deque
from typing import TYPE_CHECKING, Any

from mlagents_fast.trainers.agent_processor import AgentManagerQueue
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.stats import StatsReporter

if TYPE_CHECKING:
    from mlagents_fast.envs.base_env import BehaviorSpec
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
    from mlagents_fast.trainers.settings import TrainerSettings

__all__ = ["Trainer"]


class Trainer(abc.ABC):
    """Base class of every trainer: owns the policies of one behavior name and trains them."""

    def __init__(
        self,
        brain_name: str,
        trainer_settings: Any,
        training: bool,
        load: bool,
        artifact_path: str,
        reward_buff_cap: int = 1,
    ) -> None:
        """
        :param brain_name: behavior name this trainer trains.
        :param trainer_settings: its TrainerSettings.
        :param training: False for --inference (act, do not learn).
        :param load: resume from the checkpoint in ``artifact_path``.
        :param artifact_path: results/<run-id>/<behavior name>.
        :param reward_buff_cap: how many recent episode rewards :attr:`reward_buffer` keeps.
        """
        self.brain_name = brain_name
        self.trainer_settings = trainer_settings
        self._threaded = bool(trainer_settings.threaded)
        self._stats_reporter = StatsReporter(brain_name)
        self.is_training = training
        self.load = load
        self._reward_buffer: deque[float] = deque(maxlen=reward_buff_cap)
        self.policy_queues: list[AgentManagerQueue[TorchPolicy]] = []
        self.trajectory_queues: list[AgentManagerQueue[Any]] = []
        self._step: int = 0
        self.artifact_path = artifact_path
        self.summary_freq = self.trainer_settings.summary_freq
        self.policies: dict[str, TorchPolicy] = {}

    @property
    def stats_reporter(self) -> StatsReporter:
        """The stats reporter of this trainer's behavior."""
        return self._stats_reporter

    @property
    def parameters(self) -> TrainerSettings:
        """The TrainerSettings of this trainer."""
        return self.trainer_settings

    @property
    def get_max_steps(self) -> int:
        """max_steps of the behavior: training stops there."""
        return int(self.trainer_settings.max_steps)

    @property
    def get_step(self) -> int:
        """Steps taken so far (agent steps of this behavior)."""
        return self._step

    @property
    def threaded(self) -> bool:
        """Whether the trainer updates in its own thread while the environment steps."""
        return self._threaded

    @property
    def should_still_train(self) -> bool:
        """Training and max_steps not reached yet."""
        return self.is_training and self.get_step <= self.get_max_steps

    @property
    def reward_buffer(self) -> deque[float]:
        """Cumulative rewards of the most recent episodes (newest first)."""
        return self._reward_buffer

    @abc.abstractmethod
    def save_model(self) -> None:
        """Save the final model files of this trainer's policy."""

    @abc.abstractmethod
    def end_episode(self) -> None:
        """The environment was reset: forget per-episode accumulators."""

    @abc.abstractmethod
    def create_policy(
        self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: BehaviorSpec
    ) -> TorchPolicy:
        """Create a policy for ``behavior_spec``."""

    @abc.abstractmethod
    def add_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: TorchPolicy) -> None:
        """Attach ``policy`` to this trainer."""

    def get_policy(self, name_behavior_id: str) -> TorchPolicy:
        """The policy of the fully qualified ``name_behavior_id``."""
        return self.policies[name_behavior_id]

    @abc.abstractmethod
    def advance(self) -> None:
        """Ingest queued trajectories, update the policy when ready, publish new policies."""

    def publish_policy_queue(self, policy_queue: AgentManagerQueue[TorchPolicy]) -> None:
        """Put each updated policy on ``policy_queue`` too."""
        self.policy_queues.append(policy_queue)

    def subscribe_trajectory_queue(self, trajectory_queue: AgentManagerQueue[Any]) -> None:
        """Read trajectories from ``trajectory_queue`` too."""
        self.trajectory_queues.append(trajectory_queue)
