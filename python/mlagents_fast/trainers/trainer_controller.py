"""The training loop (the counterpart of ``mlagents.trainers.trainer_controller``).

Steps the environments, creates a trainer and agent manager for each new behavior, advances
non-threaded trainers after every environment step (threaded ones run in their own thread),
moves curriculum lessons forward, and saves every model when training ends, is interrupted
(Ctrl-C / SIGTERM) or fails.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import torch

from mlagents_fast.trainers.agent_processor import AgentManager
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.env_manager import EnvironmentStep, EnvManager
from mlagents_fast.trainers.timers import (
    current_timer_node,
    get_timer_stack_for_thread,
    hierarchical_timer,
    merge_gauges,
    timed,
)
from mlagents_fast.trainers.trainer.trainer import Trainer
from mlagents_fast.trainers.training_status import GlobalTrainingStatus

if TYPE_CHECKING:
    from mlagents_fast.trainers.environment_parameter_manager import EnvironmentParameterManager
    from mlagents_fast.trainers.trainer.trainer_factory import TrainerFactory

__all__ = ["TrainerController"]

logger = logging.getLogger("mlagents_fast.trainers")


class TrainerController:
    """Runs training until every trainer reached max_steps (or forever with --inference)."""

    def __init__(
        self,
        trainer_factory: TrainerFactory,
        output_path: str,
        run_id: str,
        param_manager: EnvironmentParameterManager,
        train: bool,
        training_seed: int,
    ) -> None:
        """
        :param trainer_factory: builds the trainer of each behavior.
        :param output_path: results/<run-id>.
        :param run_id: the run id.
        :param param_manager: the EnvironmentParameterManager (curriculum and randomization).
        :param train: False for --inference.
        :param training_seed: seeds numpy and torch.
        """
        self.trainers: dict[str, Trainer] = {}
        self.brain_name_to_identifier: dict[str, set[str]] = defaultdict(set)
        self.trainer_factory = trainer_factory
        self.output_path = output_path
        self.run_id = run_id
        self.train_model = train
        self.param_manager = param_manager
        self.registered_behavior_ids: set[str] = set()
        self.trainer_threads: list[threading.Thread] = []
        self.kill_trainers = False
        self._status_lock = threading.Lock()
        # Self-play: a change of learning team resets the environments.
        self.ghost_controller = getattr(trainer_factory, "ghost_controller", None)
        np.random.seed(training_seed)
        torch.manual_seed(training_seed)

    @property
    def training_status_path(self) -> str:
        return os.path.join(self.output_path, "run_logs", "training_status.json")

    def save_training_status(self) -> None:
        """Write run_logs/training_status.json (checkpoints, lesson numbers)."""
        with self._status_lock:
            GlobalTrainingStatus.save_state(self.training_status_path)

    @timed
    def _save_models(self) -> None:
        for trainer in self.trainers.values():
            trainer.save_model()
        self.save_training_status()
        logger.debug("Saved Model")

    @staticmethod
    def _create_output_path(output_path: str) -> None:
        os.makedirs(output_path, exist_ok=True)

    @timed
    def _reset_env(self, env_manager: EnvManager) -> None:
        """Reset every environment with the current lesson's parameters."""
        env_manager.reset(config=self.param_manager.get_current_samplers())
        self._register_new_behaviors(env_manager, env_manager.first_step_infos)

    def _not_done_training(self) -> bool:
        return (
            any(t.should_still_train for t in self.trainers.values())
            or not self.train_model
            or len(self.trainers) == 0
        )

    def _create_trainer_and_manager(self, env_manager: EnvManager, name_behavior_id: str) -> None:
        parsed_behavior_id = BehaviorIdentifiers.from_name_behavior_id(name_behavior_id)
        brain_name = parsed_behavior_id.brain_name
        trainer_thread = None
        if brain_name in self.trainers:
            trainer = self.trainers[brain_name]
        else:
            trainer = self.trainer_factory.generate(brain_name)
            self.trainers[brain_name] = trainer
            if hasattr(trainer, "checkpoint_callback"):
                trainer.checkpoint_callback = self.save_training_status
            if trainer.threaded:
                trainer_thread = threading.Thread(
                    target=self.trainer_update_func, args=(trainer,), daemon=True
                )
                self.trainer_threads.append(trainer_thread)
            env_manager.on_training_started(
                brain_name, self.trainer_factory.trainer_config[brain_name]
            )

        policy = trainer.create_policy(
            parsed_behavior_id, env_manager.training_behaviors[name_behavior_id]
        )
        trainer.add_policy(parsed_behavior_id, policy)
        agent_manager = AgentManager(
            policy,
            name_behavior_id,
            trainer.stats_reporter,
            trainer.parameters.time_horizon,
            threaded=trainer.threaded,
        )
        env_manager.set_agent_manager(name_behavior_id, agent_manager)
        env_manager.set_policy(name_behavior_id, policy)
        self.brain_name_to_identifier[brain_name].add(name_behavior_id)
        trainer.publish_policy_queue(agent_manager.policy_queue)
        trainer.subscribe_trajectory_queue(agent_manager.trajectory_queue)
        if trainer_thread is not None:
            trainer_thread.start()

    def _create_trainers_and_managers(
        self, env_manager: EnvManager, behavior_ids: list[str]
    ) -> None:
        for behavior_id in behavior_ids:
            self._create_trainer_and_manager(env_manager, behavior_id)

    @timed
    def start_learning(self, env_manager: EnvManager) -> None:
        """Train until done; save the models (when training) before returning, also after
        Ctrl-C / SIGTERM or an environment failure."""
        self._create_output_path(self.output_path)
        # Set-up errors stop the run before anything is trained or saved. (A curriculum
        # naming a behavior that is not training only warns: ML-Agents keeps that lesson.)
        try:
            self._reset_env(env_manager)
            self._validate_curriculum_behaviors()
        except BaseException:
            self.join_threads()
            raise
        try:
            log_lesson = getattr(self.param_manager, "log_current_lesson", None)
            if log_lesson is not None:
                log_lesson()
            self._report_lessons()
            while self._not_done_training():
                n_steps = self.advance(env_manager)
                for _ in range(n_steps):
                    self.reset_env_if_ready(env_manager)
            self.join_threads()
        except KeyboardInterrupt:
            self.join_threads()
            logger.info("Learning was interrupted. Please wait while the model is saved.")
        except BaseException:
            self.join_threads()
            raise
        finally:
            if self.train_model:
                self._save_models()

    def _validate_curriculum_behaviors(self) -> None:
        validate = getattr(self.param_manager, "validate_behaviors", None)
        if validate is not None:
            validate(set(self.trainers.keys()))

    def end_trainer_episodes(self) -> None:
        for trainer in self.trainers.values():
            trainer.end_episode()

    def reset_env_if_ready(self, env: EnvManager) -> None:
        """Advance curriculum lessons; reset or re-parameterize the environments on a change
        (reset too when the self-play learning team changed)."""
        trainer_steps = {name: t.get_step for name, t in self.trainers.items()}
        trainer_max_steps = {name: t.get_max_steps for name, t in self.trainers.items()}
        trainer_reward_buffer = {name: list(t.reward_buffer) for name, t in self.trainers.items()}
        updated, param_must_reset = self.param_manager.update_lessons(
            trainer_steps, trainer_max_steps, trainer_reward_buffer
        )
        if updated:
            for trainer in self.trainers.values():
                trainer.reward_buffer.clear()
            self.save_training_status()
        ghost_reset = self.ghost_controller is not None and self.ghost_controller.should_reset()
        if param_must_reset or ghost_reset:
            self._reset_env(env)
            self.end_trainer_episodes()
        elif updated:
            env.set_env_parameters(self.param_manager.get_current_samplers())
        self._report_lessons()

    def _report_lessons(self) -> None:
        lessons = self.param_manager.get_current_lesson_number()
        if not lessons:
            return
        samplers = self.param_manager.get_current_samplers()
        for trainer in self.trainers.values():
            for param_name, lesson_number in lessons.items():
                trainer.stats_reporter.set_stat(
                    f"Environment/Lesson Number/{param_name}", lesson_number
                )
            for param_name, sampler in samplers.items():
                value = getattr(sampler, "value", None)
                if isinstance(value, (int, float)):
                    trainer.stats_reporter.set_stat(
                        f"Environment/Parameter/{param_name}", float(value)
                    )

    def _register_new_behaviors(
        self, env_manager: EnvManager, step_infos: list[EnvironmentStep]
    ) -> None:
        """Create trainers for behaviors seen for the first time."""
        step_behavior_ids: set[str] = set()
        for step_info in step_infos:
            step_behavior_ids |= set(step_info.name_behavior_ids)
        # Sorted, not set order (which follows the per-process string hash seed): policies are
        # created, and draw from the seeded generators, in the same order in every run.
        new_behavior_ids = sorted(step_behavior_ids - self.registered_behavior_ids)
        self._create_trainers_and_managers(env_manager, new_behavior_ids)
        self.registered_behavior_ids |= step_behavior_ids

    @timed
    def advance(self, env_manager: EnvManager) -> int:
        """One environment step for every worker, then advance the non-threaded trainers."""
        with hierarchical_timer("env_step"):
            new_step_infos = env_manager.get_steps()
            self._register_new_behaviors(env_manager, new_step_infos)
            num_steps = env_manager.process_steps(new_step_infos)
        for trainer in self.trainers.values():
            if not trainer.threaded:
                with hierarchical_timer("trainer_advance"):
                    trainer.advance()
        return num_steps

    def join_threads(self, timeout_seconds: float = 1.0) -> None:
        """Stop the trainer threads and fold their timers into the main thread's."""
        self.kill_trainers = True
        for thread in self.trainer_threads:
            thread.join(timeout_seconds)
        with hierarchical_timer("trainer_threads"):
            for thread in self.trainer_threads:
                thread_stack = get_timer_stack_for_thread(thread)
                if thread_stack is not None:
                    current_timer_node().merge(thread_stack.root, is_parallel=True)
                    merge_gauges(thread_stack.gauges)

    def trainer_update_func(self, trainer: Trainer) -> None:
        while not self.kill_trainers:
            with hierarchical_timer("trainer_advance"):
                trainer.advance()
