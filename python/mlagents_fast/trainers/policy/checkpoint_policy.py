"""A policy rebuilt from a training checkpoint, to act outside training (recording demos).

``results/<run-id>/<Behavior>/checkpoint.pt`` (or ``<Behavior>-<step>.pt``) holds state
dicts only; the network's shape comes from the run's settings, read from
``results/<run-id>/configuration.yaml`` (or a config file given explicitly).
"""

from __future__ import annotations

import os
from typing import Any

import attr

from mlagents_fast.envs.base_env import ActionTuple, BehaviorSpec, DecisionSteps
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.model_saver.torch_model_saver import load_checkpoint_file
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.settings import RunOptions
from mlagents_fast.trainers.settings.config_file import load_config
from mlagents_fast.trainers.torch_entities.networks import SharedActorCritic, SimpleActor

__all__ = ["CheckpointPolicy"]


class CheckpointPolicy:
    """Acts with the actor of a checkpoint (deterministic actions by default)."""

    def __init__(
        self,
        checkpoint_path: str,
        behavior_name: str,
        behavior_spec: BehaviorSpec,
        config_path: str | None = None,
        deterministic: bool = True,
    ) -> None:
        if config_path is None:
            run_dir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint_path)))
            config_path = os.path.join(run_dir, "configuration.yaml")
        if not os.path.isfile(config_path):
            raise InvalidArgumentError(
                f"--policy {checkpoint_path}: no {config_path} to rebuild the network from "
                "(a checkpoint holds weights only; keep it in its results folder)"
            )
        options = RunOptions.from_dict(load_config(config_path))
        brain_name = BehaviorIdentifiers.from_name_behavior_id(behavior_name).brain_name
        settings = options.behaviors[brain_name]
        network_settings = attr.evolve(settings.network_settings, deterministic=deterministic)
        trainer_type = str(getattr(settings.trainer_type, "value", settings.trainer_type))
        actor_cls: Any = SimpleActor
        actor_kwargs: dict[str, Any] = {"conditional_sigma": False, "tanh_squash": False}
        if trainer_type == "sac":
            actor_kwargs = {"conditional_sigma": True, "tanh_squash": True}
        elif getattr(settings.hyperparameters, "shared_critic", False):
            actor_cls = SharedActorCritic
            actor_kwargs["stream_names"] = [key.value for key in settings.reward_signals]
        self._policy = TorchPolicy(0, behavior_spec, network_settings, actor_cls, actor_kwargs)
        state = load_checkpoint_file(checkpoint_path)
        self._policy.actor.load_state_dict(state["Policy"])
        self._policy.actor.eval()

    def __call__(self, steps: DecisionSteps) -> ActionTuple:
        return self._policy.get_action(steps).env_action

    def episode_ended(self, agent_ids: list[int]) -> None:
        self._policy.remove_memories([f"agent_0-{agent}" for agent in agent_ids])
