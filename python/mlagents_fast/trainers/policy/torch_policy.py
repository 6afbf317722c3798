"""TorchPolicy: runs the actor on DecisionSteps and keeps per-agent LSTM memories.

The actor lives on the training device (``default_device()``, chosen by ``--torch-device``).
``TorchPolicy.acting_device`` says where ``get_action`` runs it: the CPU when training on CUDA,
else the training device. On another device than the training one, actions come from a copy
of the actor there, refreshed whenever the trained weights or normalizer changed. ML-Agents
acts on the training device; acting on the CPU was measured faster for the batches one
decision step brings (benches/README.md: get_action for 9 to 12 agents 1.9x to 2.8x faster
on the CPU than on an H200; 3DBall trained 4% and 22% faster on cuda acting on the CPU).
Set the attribute to the training device to act there (many agents per step).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from mlagents_fast.torch_utils import default_device
from mlagents_fast.trainers.action_info import ActionInfo
from mlagents_fast.trainers.policy.policy import Policy
from mlagents_fast.trainers.torch_entities.encoders import Normalizer
from mlagents_fast.trainers.torch_entities.networks import GlobalSteps, SimpleActor
from mlagents_fast.trainers.torch_entities.utils import ModelUtils, as_float32_tensor

__all__ = ["TorchPolicy"]

EPSILON = 1e-7


def _global_agent_id(worker_id: int, agent_id: int) -> str:
    # Same string as behavior_id_utils.get_global_agent_id (kept local: this runs every step).
    return f"agent_{worker_id}-{agent_id}"


class TorchPolicy(Policy):
    def __init__(
        self,
        seed: int,
        behavior_spec: Any,
        network_settings: Any,
        actor_cls: type,
        actor_kwargs: dict[str, Any],
    ):
        """
        :param seed: random seed (the trainer seeds torch; kept for the API).
        :param behavior_spec: the BehaviorSpec of the behavior this policy acts for.
        :param network_settings: NetworkSettings of the actor.
        :param actor_cls: SimpleActor or SharedActorCritic.
        :param actor_kwargs: extra keyword arguments of ``actor_cls`` (conditional_sigma,
            tanh_squash, stream_names).
        """
        super().__init__(seed, behavior_spec, network_settings)
        self.global_step = GlobalSteps()
        self.stats_name_to_update_name = {
            "Losses/Value Loss": "value_loss",
            "Losses/Policy Loss": "policy_loss",
        }
        self.actor = actor_cls(
            observation_specs=behavior_spec.observation_specs,
            network_settings=network_settings,
            action_spec=behavior_spec.action_spec,
            **actor_kwargs,
        )
        self.device: torch.device = default_device()
        """Where the actor lives and trains (``--torch-device``)."""
        self.actor.to(self.device)
        self.acting_device: torch.device = (
            torch.device("cpu") if self.device.type == "cuda" else self.device
        )
        """Where get_action runs the actor (see the module docstring)."""
        self._acting_copy: SimpleActor | None = None
        self._acting_copy_key: tuple[Any, ...] | None = None
        self._normalizers = [m for m in self.actor.modules() if isinstance(m, Normalizer)]
        self._export_m_size = self.m_size
        # The memory the trainer stores is the network's, not the settings' (they agree for LSTM).
        self.m_size = self.actor.memory_size
        self._discrete_branches = [int(b) for b in behavior_spec.action_spec.discrete_branches]
        self._num_discrete_flat = int(sum(self._discrete_branches))

    @property
    def export_memory_size(self) -> int:
        """Memory width of the exported ONNX actor (0 without LSTM)."""
        return self._export_m_size

    def _extract_masks(
        self, decision_requests: Any, device: torch.device | None = None
    ) -> torch.Tensor | None:
        """Allowed-action masks (1 = allowed) as float32 (n_agents, sum(branches)) on
        ``device`` (acting_device when None), or None."""
        if device is None:
            device = self.acting_device
        if self._num_discrete_flat == 0:
            return None
        action_mask = getattr(decision_requests, "action_mask", None)
        if action_mask is None:
            return torch.ones((len(decision_requests), self._num_discrete_flat), device=device)
        # DecisionSteps masks are True = masked, one bool array per branch.
        masked = np.concatenate(action_mask, axis=1) if len(action_mask) > 1 else action_mask[0]
        return as_float32_tensor(1.0 - masked.astype(np.float32), device)

    def _weights_key(self) -> tuple[Any, ...]:
        # Optimizer steps and load_state_dict write parameters and buffers in place, which
        # bumps their version counters; normalizer updates replace the statistics tensors and
        # count themselves.
        return (
            tuple(p._version for p in self.actor.parameters()),
            tuple(b._version for b in self.actor.buffers()),
            tuple(n.update_count for n in self._normalizers),
        )

    def _acting_actor(self) -> SimpleActor:
        """The actor on acting_device: the trained one, or a copy kept up to date."""
        if self.acting_device == self.device:
            return self.actor
        key = self._weights_key()
        if self._acting_copy is None:
            self._acting_copy = copy.deepcopy(self.actor).to(self.acting_device)
        elif key != self._acting_copy_key:
            self._acting_copy.load_state_dict(self.actor.state_dict())
        self._acting_copy_key = key
        return self._acting_copy

    def evaluate(self, decision_requests: Any, global_agent_ids: list[str]) -> dict[str, Any]:
        """Run the actor; returns {"action", "env_action", "log_probs", "entropy",
        and "memory_out" with LSTM} as numpy / ActionTuple values."""
        actor = self._acting_actor()
        device = self.acting_device
        masks = self._extract_masks(decision_requests, device)
        tensor_obs = [as_float32_tensor(obs, device) for obs in decision_requests.obs]
        memories = None
        if self.use_recurrent:
            memories = as_float32_tensor(
                self.retrieve_memories(global_agent_ids), device
            ).unsqueeze(0)
        with torch.no_grad():
            action, run_out, memories = actor.get_action_and_stats(
                tensor_obs, masks=masks, memories=memories
            )
        run_out["action"] = action.to_action_tuple()
        if "log_probs" in run_out:
            run_out["log_probs"] = run_out["log_probs"].to_log_probs_tuple()
        if "entropy" in run_out:
            run_out["entropy"] = ModelUtils.to_numpy(run_out["entropy"])
        if self.use_recurrent and memories is not None:
            run_out["memory_out"] = ModelUtils.to_numpy(memories).squeeze(0)
        return run_out

    def get_action(self, decision_requests: Any, worker_id: int = 0) -> ActionInfo:
        """Choose actions for every agent in ``decision_requests`` (a DecisionSteps)."""
        if len(decision_requests) == 0:
            return ActionInfo.empty()
        global_agent_ids = [
            _global_agent_id(worker_id, int(agent_id)) for agent_id in decision_requests.agent_id
        ]
        run_out = self.evaluate(decision_requests, global_agent_ids)
        self.save_memories(global_agent_ids, run_out.get("memory_out"))
        self.check_nan_action(run_out.get("action"))
        return ActionInfo(
            action=run_out.get("action"),
            env_action=run_out.get("env_action"),
            outputs=run_out,
            agent_ids=list(decision_requests.agent_id),
        )

    def update_normalization(self, buffer: Any) -> None:
        """Fold a trajectory's vector observations into the actor's normalisers."""
        if self.normalize:
            self.actor.update_normalization(buffer)

    def get_current_step(self) -> int:
        return self.global_step.current_step

    def set_step(self, step: int) -> int:
        self.global_step.current_step = step
        return step

    def increment_step(self, n_steps: int) -> int:
        self.global_step.increment(n_steps)
        return self.get_current_step()

    def load_weights(self, values: Any) -> None:
        self.actor.load_state_dict(values)

    def init_load_weights(self) -> None:
        pass

    def get_weights(self) -> Any:
        return copy.deepcopy(self.actor.state_dict())

    def get_modules(self) -> dict[str, Any]:
        return {"Policy": self.actor, "global_step": self.global_step}
