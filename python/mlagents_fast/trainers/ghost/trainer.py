"""The GhostTrainer (the counterpart of ``mlagents.trainers.ghost.trainer``): self-play for
adversarial games, with ML-Agents 1.1.0's semantics.

A GhostTrainer wraps the trainer of a behavior (PPO, SAC or POCA) whose settings have
``self_play``. The behavior's teams (``Behavior?team=N``) take turns: at any time one team
learns (its trajectories go to the wrapped trainer, its agents run the policy being trained)
and the other teams are "ghosts" running fixed snapshots of past policies, whose trajectories
are only counted. Every ``save_steps`` trainer steps the current policy is saved into a ring of
``window`` snapshots; every ``swap_steps`` ghost steps (and at each change of learning team)
each ghost team gets a new opponent: the latest policy with probability
``play_against_latest_model_ratio``, else a snapshot drawn uniformly; every ``team_change``
trainer steps the learning team changes (:class:`~mlagents_fast.trainers.ghost.controller.
GhostController`). Each finished game of the learning team (its last reward plus group reward:
> 0 win, 0 draw, < 0 loss) moves the ELO of the learning policy and of the opponent snapshot;
``Self-play/ELO`` goes to TensorBoard and the console line.

Unlike ML-Agents, the snapshots (with their ELOs) are saved in every checkpoint (module
``SelfPlay``) and restored on ``--resume``, so a resumed run plays the same past opponents;
the learning policy's ELO is also kept in ``training_status.json`` as ML-Agents keeps it.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mlagents_fast.trainers.agent_processor import AgentManagerQueue
from mlagents_fast.trainers.behavior_id_utils import (
    BehaviorIdentifiers,
    create_name_behavior_id,
)
from mlagents_fast.trainers.stats import StatsPropertyType
from mlagents_fast.trainers.trainer.trainer import Trainer
from mlagents_fast.trainers.training_status import GlobalTrainingStatus, StatusType

if TYPE_CHECKING:
    from mlagents_fast.envs.base_env import BehaviorSpec
    from mlagents_fast.trainers.ghost.controller import GhostController
    from mlagents_fast.trainers.policy.torch_policy import TorchPolicy

__all__ = ["GhostTrainer"]

logger = logging.getLogger(__name__)

#: Module name of the self-play snapshots in checkpoints.
SNAPSHOTS_MODULE = "SelfPlay"


class _SnapshotsState:
    """The snapshots and ELOs of a GhostTrainer as a checkpoint module (state_dict /
    load_state_dict of tensors, numbers and plain containers: loadable without pickle)."""

    def __init__(self, ghost: GhostTrainer) -> None:
        self._ghost = ghost

    def get_modules(self) -> dict[str, Any]:
        return {SNAPSHOTS_MODULE: self}

    def state_dict(self) -> dict[str, Any]:
        ghost = self._ghost
        return {
            "snapshots": [
                {name: dict(weights) for name, weights in snapshot.items()}
                for snapshot in ghost.policy_snapshots
            ],
            "policy_elos": [float(elo) for elo in ghost.policy_elos],
            "snapshot_counter": int(ghost.snapshot_counter),
        }

    def load_state_dict(self, state: Any) -> None:
        ghost = self._ghost
        try:
            snapshots = state["snapshots"]
            elos = [float(elo) for elo in state["policy_elos"]]
            counter = int(state["snapshot_counter"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"self-play snapshots: unreadable state ({err})") from None
        valid = (
            isinstance(snapshots, list)
            and all(
                isinstance(s, dict) and all(isinstance(w, dict) for w in s.values())
                for s in snapshots
            )
            and len(snapshots) <= ghost.window
            and len(elos) == ghost.window + 1
            and 0 <= counter < max(ghost.window, 1)
        )
        if not valid:
            raise ValueError(
                f"self-play snapshots: the checkpoint holds {len(snapshots)} snapshots and "
                f"{len(elos)} ratings, this run's window is {ghost.window}"
            )
        ghost.policy_snapshots = [
            {name: {key: torch.as_tensor(v) for key, v in w.items()} for name, w in s.items()}
            for s in snapshots
        ]
        ghost.policy_elos = elos
        ghost.snapshot_counter = counter


class GhostTrainer(Trainer):
    """Self-play around ``trainer``: one learning team, the others play past snapshots."""

    def __init__(
        self,
        trainer: Any,
        brain_name: str,
        controller: GhostController,
        reward_buff_cap: int,
        trainer_settings: Any,
        training: bool,
        artifact_path: str,
    ) -> None:
        """
        :param trainer: the trainer (PPO, SAC, POCA) of the policy trained with self-play.
        :param brain_name: the behavior name.
        :param controller: the run's GhostController (learning team, ELO).
        :param reward_buff_cap: how many recent episode rewards the reward buffer keeps.
        :param trainer_settings: the behavior's TrainerSettings (with ``self_play``).
        :param training: False for --inference.
        :param artifact_path: results/<run-id>/<behavior name>.
        """
        super().__init__(
            brain_name, trainer_settings, training, False, artifact_path, reward_buff_cap
        )
        self.trainer = trainer
        self.controller = controller
        self._internal_trajectory_queues: dict[str, AgentManagerQueue[Any]] = {}
        self._internal_policy_queues: dict[str, AgentManagerQueue[Any]] = {}
        self._team_to_name_to_policy_queue: defaultdict[int, dict[str, AgentManagerQueue[Any]]] = (
            defaultdict(dict)
        )
        self._name_to_parsed_behavior_id: dict[str, BehaviorIdentifiers] = {}

        # The wrapped trainer's stats are this trainer's; the console line shows the ELO.
        self._stats_reporter = self.trainer.stats_reporter
        self._stats_reporter.add_property(StatsPropertyType.SELF_PLAY, True)

        self_play = trainer_settings.self_play
        self.window = int(self_play.window)
        self.play_against_latest_model_ratio = float(self_play.play_against_latest_model_ratio)
        if not 0.0 <= self.play_against_latest_model_ratio <= 1.0:
            logger.warning("The play_against_latest_model_ratio is not between 0 and 1.")
        self.steps_between_save = int(self_play.save_steps)
        self.steps_between_swap = int(self_play.swap_steps)
        self.steps_to_train_team = int(self_play.team_change)
        if self.steps_to_train_team > self.get_max_steps:
            logger.warning(
                "The max steps of the GhostTrainer for behavior name %s is less than team "
                "change. This team will not face opposition that has been trained if the "
                "opposition is managed by a different GhostTrainer as in an asymmetric game.",
                self.brain_name,
            )
        # Steps of the ghost (non-learning) teams: swapping opponents counts these, while
        # saving snapshots and changing teams count the wrapped trainer's steps, so every
        # team trains for the same number of its own steps.
        self.ghost_step = 0
        # Ring of ``window`` snapshots: behavior name -> the policy's weights.
        self.policy_snapshots: list[dict[str, dict[str, Any]]] = []
        # Behavior name -> the weights of the policy being trained now.
        self.current_policy_snapshot: dict[str, dict[str, Any]] = {}
        self.snapshot_counter = 0
        # The team learning now, and the team whose policies the wrapped trainer holds (they
        # differ while the learning team is managed by another GhostTrainer).
        self._learning_team: int | None = None
        self.wrapped_trainer_team: int | None = None
        self.last_save = 0
        self.last_swap = 0
        self.last_team_change = 0

        initial_elo = GlobalTrainingStatus.get_parameter_state(self.brain_name, StatusType.ELO)
        self.initial_elo = float(initial_elo if initial_elo is not None else self_play.initial_elo)
        # One rating per snapshot slot, then the learning policy's (last).
        self.policy_elos: list[float] = [self.initial_elo] * (self.window + 1)
        self.current_opponent = 0

        # Snapshots travel in the wrapped trainer's checkpoints.
        model_saver = getattr(self.trainer, "model_saver", None)
        if model_saver is not None:
            model_saver.register(_SnapshotsState(self))

    # -- what the trainer controller reads -----------------------------------------------

    @property
    def get_step(self) -> int:
        """Steps of the wrapped trainer (the learning team's)."""
        return self.trainer.get_step

    @property
    def reward_buffer(self) -> deque[float]:
        return self.trainer.reward_buffer

    @property
    def checkpoint_callback(self) -> Callable[[], None] | None:
        return getattr(self.trainer, "checkpoint_callback", None)

    @checkpoint_callback.setter
    def checkpoint_callback(self, callback: Callable[[], None] | None) -> None:
        """Called after each checkpoint of the wrapped trainer: the ELO goes into the
        training status first, so that it matches the checkpoint's snapshots."""
        if callback is None:
            self.trainer.checkpoint_callback = None
            return

        def with_elo() -> None:
            GlobalTrainingStatus.set_parameter_state(
                self.brain_name, StatusType.ELO, self.current_elo
            )
            callback()

        self.trainer.checkpoint_callback = with_elo

    # -- ELO -------------------------------------------------------------------------------

    @property
    def current_elo(self) -> float:
        """ELO of the policy being trained (the last entry)."""
        return self.policy_elos[-1]

    def change_current_elo(self, change: float) -> None:
        self.policy_elos[-1] += change

    def get_opponent_elo(self) -> float:
        """ELO of the snapshot this trainer's ghost teams play now."""
        return self.policy_elos[self.current_opponent]

    def change_opponent_elo(self, change: float) -> None:
        """The learning team gained ``change``: the opponent loses as much."""
        self.policy_elos[self.current_opponent] -= change

    def _process_trajectory(self, trajectory: Any) -> None:
        """ELO after each game the learning team finished (not interrupted): its last step's
        reward plus group reward decides (> 0 win, 0 draw, < 0 loss)."""
        if (
            trajectory.done_reached
            and trajectory.all_group_dones_reached
            and not trajectory.interrupted
        ):
            last = trajectory.steps[-1]
            final_reward = last.reward + last.group_reward
            result = 0.5
            if final_reward > 0:
                result = 1.0
            elif final_reward < 0:
                result = 0.0
            change = self.controller.compute_elo_rating_changes(self.current_elo, result)
            self.change_current_elo(change)
            self._stats_reporter.add_stat("Self-play/ELO", self.current_elo)

    # -- the loop --------------------------------------------------------------------------

    def advance(self) -> None:
        """Route trajectories (the learning team's to the wrapped trainer, the others' only
        counted), advance the wrapped trainer, and save / swap snapshots and change the
        learning team when due."""
        for trajectory_queue in self.trajectory_queues:
            parsed = self._name_to_parsed_behavior_id[trajectory_queue.behavior_id]
            learning = parsed.team_id == self._learning_team
            # At most the queue's current length, so the trajectories stay near on-policy.
            for _ in range(trajectory_queue.qsize()):
                try:
                    trajectory = trajectory_queue.get_nowait()
                except AgentManagerQueue.Empty:
                    break
                if learning:
                    self._internal_trajectory_queues[parsed.brain_name].put(trajectory)
                    self._process_trajectory(trajectory)
                else:
                    self.ghost_step += len(trajectory.steps)

        self.trainer.advance()
        if self.get_step - self.last_team_change > self.steps_to_train_team:
            self.controller.change_training_team(self.get_step)
            self.last_team_change = self.get_step

        next_learning_team = self.controller.get_learning_team

        # A new policy from the wrapped trainer: it becomes the current snapshot, and the
        # learning team plays it (when this trainer manages that team).
        for brain_name, internal_policy_queue in self._internal_policy_queues.items():
            try:
                policy = internal_policy_queue.get_nowait()
            except AgentManagerQueue.Empty:
                continue
            self.current_policy_snapshot[brain_name] = policy.get_weights()
            if (
                self._learning_team == next_learning_team
                and next_learning_team in self._team_to_name_to_policy_queue
            ):
                name_to_policy_queue = self._team_to_name_to_policy_queue[next_learning_team]
                if brain_name in name_to_policy_queue:
                    self._push_weights(
                        brain_name,
                        next_learning_team,
                        self.current_policy_snapshot[brain_name],
                        name_to_policy_queue,
                    )

        # The learning team changed to one this trainer manages: it plays the current policy.
        if (
            self._learning_team != next_learning_team
            and next_learning_team in self._team_to_name_to_policy_queue
        ):
            name_to_policy_queue = self._team_to_name_to_policy_queue[next_learning_team]
            for brain_name in name_to_policy_queue:
                self._push_weights(
                    brain_name,
                    next_learning_team,
                    self.current_policy_snapshot[brain_name],
                    name_to_policy_queue,
                )

        # Saving counts the trainer's steps (nothing new to save while not learning),
        # swapping counts the ghost steps.
        if self.get_step - self.last_save > self.steps_between_save:
            self._save_snapshot()
            self.last_save = self.get_step
        if (
            self._learning_team != next_learning_team
            or self.ghost_step - self.last_swap > self.steps_between_swap
        ):
            self._learning_team = next_learning_team
            self._swap_snapshots()
            self.last_swap = self.ghost_step

    def _push_weights(
        self,
        brain_name: str,
        team_id: int,
        weights: dict[str, Any],
        name_to_policy_queue: dict[str, AgentManagerQueue[Any]],
    ) -> None:
        """Load ``weights`` into the policy the team's agents run and hand it to them."""
        policy = self.get_policy(create_name_behavior_id(brain_name, team_id))
        policy.load_weights(weights)
        name_to_policy_queue[brain_name].put(policy)

    def _save_snapshot(self) -> None:
        """Put the current policy into the next slot of the ring of ``window`` snapshots
        (with the learning policy's ELO)."""
        for brain_name, weights in self.current_policy_snapshot.items():
            if self.snapshot_counter < len(self.policy_snapshots):
                self.policy_snapshots[self.snapshot_counter][brain_name] = weights
            else:
                self.policy_snapshots.append({brain_name: weights})
        self.policy_elos[self.snapshot_counter] = self.current_elo
        self.snapshot_counter = (self.snapshot_counter + 1) % self.window

    def _swap_snapshots(self) -> None:
        """Give every team but the learning one its next opponent: the current policy with
        probability ``play_against_latest_model_ratio``, else a uniformly drawn snapshot."""
        for team_id, name_to_policy_queue in self._team_to_name_to_policy_queue.items():
            if team_id == self._learning_team:
                continue
            if np.random.uniform() < (1 - self.play_against_latest_model_ratio):
                chosen = np.random.randint(len(self.policy_snapshots))
                snapshot = self.policy_snapshots[chosen]
                self.current_opponent = chosen
            else:
                snapshot = self.current_policy_snapshot
                self.current_opponent = -1
            for brain_name in name_to_policy_queue:
                self._push_weights(brain_name, team_id, snapshot[brain_name], name_to_policy_queue)
                logger.debug(
                    "Step %d: swapping snapshot %s to team %d (team %s learning)",
                    self.ghost_step,
                    "current" if self.current_opponent < 0 else self.current_opponent,
                    team_id,
                    self._learning_team,
                )

    # -- forwarding ------------------------------------------------------------------------

    def end_episode(self) -> None:
        self.trainer.end_episode()

    def save_model(self) -> None:
        """The ELO into the training status, then the wrapped trainer's models."""
        GlobalTrainingStatus.set_parameter_state(self.brain_name, StatusType.ELO, self.current_elo)
        self.trainer.save_model()

    def create_policy(
        self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: BehaviorSpec
    ) -> TorchPolicy:
        """A policy for ``parsed_behavior_id``'s team, made by the wrapped trainer. The first
        team seen (and any later behavior of that same team) is also the wrapped trainer's
        own, trained one; other teams start from its weights."""
        policy = self.trainer.create_policy(parsed_behavior_id, behavior_spec)
        team_id = parsed_behavior_id.team_id
        self.controller.subscribe_team_id(team_id, self)
        if self.wrapped_trainer_team is None or team_id == self.wrapped_trainer_team:
            internal_policy = self.trainer.create_policy(parsed_behavior_id, behavior_spec)
            self.trainer.add_policy(parsed_behavior_id, internal_policy)
            weights = internal_policy.get_weights()
            self.current_policy_snapshot[parsed_behavior_id.brain_name] = weights
            policy.load_weights(weights)
            self._save_snapshot()  # after the wrapped trainer initialized (or loaded) it
            self._learning_team = self.controller.get_learning_team
            self.wrapped_trainer_team = team_id
        else:
            policy.load_weights(
                self.trainer.get_policy(parsed_behavior_id.behavior_id).get_weights()
            )
        return policy

    def create_optimizer(self) -> Any:
        """The wrapped trainer owns the optimizer."""
        return None

    def add_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: TorchPolicy) -> None:
        """Remember ``policy`` as the one ``parsed_behavior_id``'s agents run."""
        self._name_to_parsed_behavior_id[parsed_behavior_id.behavior_id] = parsed_behavior_id
        self.policies[parsed_behavior_id.behavior_id] = policy

    def publish_policy_queue(self, policy_queue: AgentManagerQueue[Any]) -> None:
        """The team's agents get their policies through ``policy_queue``; for the wrapped
        trainer's team, an internal queue receives the wrapped trainer's updates first."""
        super().publish_policy_queue(policy_queue)
        parsed = self._name_to_parsed_behavior_id[policy_queue.behavior_id]
        self._team_to_name_to_policy_queue[parsed.team_id][parsed.brain_name] = policy_queue
        if parsed.team_id == self.wrapped_trainer_team:
            internal_policy_queue: AgentManagerQueue[Any] = AgentManagerQueue(parsed.brain_name)
            self._internal_policy_queues[parsed.brain_name] = internal_policy_queue
            self.trainer.publish_policy_queue(internal_policy_queue)

    def subscribe_trajectory_queue(self, trajectory_queue: AgentManagerQueue[Any]) -> None:
        """Read the team's trajectories; for the wrapped trainer's team, an internal queue
        passes the learning team's on to the wrapped trainer."""
        super().subscribe_trajectory_queue(trajectory_queue)
        parsed = self._name_to_parsed_behavior_id[trajectory_queue.behavior_id]
        if parsed.team_id == self.wrapped_trainer_team:
            internal_trajectory_queue: AgentManagerQueue[Any] = AgentManagerQueue(parsed.brain_name)
            self._internal_trajectory_queues[parsed.brain_name] = internal_trajectory_queue
            self.trainer.subscribe_trajectory_queue(internal_trajectory_queue)
