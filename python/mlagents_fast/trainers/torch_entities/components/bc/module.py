"""BCModule: behavioral cloning (the ``behavioral_cloning`` trainer setting), as ML-Agents
1.1.0 runs it next to PPO or SAC.

After each policy update the trainer calls :meth:`BCModule.update`: ``num_epoch`` passes over
the shuffled demonstration buffer (or ``samples_per_update`` samples of it), each minibatch
of ``batch_size`` demonstration steps one Adam step on the actor that pulls it towards the
expert's actions: the squared error between the actor's (reparameterized, sampled)
continuous actions and the expert's, plus the cross-entropy of the expert's discrete actions
under the actor's branch distributions. The learning rate is the policy's times
``strength``, decayed linearly to ~0 over ``steps`` steps when ``steps`` > 0. Recurrent
policies train on the demonstration cut into ``sequence_length`` sequences, each started
from a zero memory.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from mlagents_fast.trainers.batches import ExperienceBatch, minibatches
from mlagents_fast.trainers.demo_loader import demo_buffer_for_training
from mlagents_fast.trainers.settings import ScheduleType
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.utils import ModelUtils

__all__ = ["BCModule"]

#: Below this learning rate BC stops updating (a linear decay never reaches 0 exactly).
MIN_LEARNING_RATE = 1e-10


class BCModule:
    def __init__(
        self,
        policy: Any,
        settings: Any,
        policy_learning_rate: float,
        default_batch_size: int,
        default_num_epoch: int,
    ) -> None:
        """
        :param policy: the TorchPolicy whose actor BC trains.
        :param settings: BehavioralCloningSettings (demo_path, strength, steps, batch_size,
            num_epoch, samples_per_update).
        :param policy_learning_rate: the trainer's learning rate; BC's is this times strength.
        :param default_batch_size: batch size when settings.batch_size is unset.
        :param default_num_epoch: epochs when settings.num_epoch is unset.
        """
        self.policy = policy
        self._anneal_steps = settings.steps
        self.current_lr = policy_learning_rate * settings.strength
        schedule = ScheduleType.LINEAR if self._anneal_steps > 0 else ScheduleType.CONSTANT
        self.decay_learning_rate = ModelUtils.DecayedValue(
            schedule, self.current_lr, MIN_LEARNING_RATE, self._anneal_steps
        )
        self.optimizer = torch.optim.Adam(self.policy.actor.parameters(), lr=self.current_lr)
        self.demonstration_buffer = demo_buffer_for_training(
            settings.demo_path,
            policy.sequence_length,
            policy.behavior_spec,
            ["behavioral_cloning", "demo_path"],
        )
        self.batch_size = settings.batch_size if settings.batch_size else default_batch_size
        self.num_epoch = settings.num_epoch if settings.num_epoch else default_num_epoch
        self.n_sequences = max(
            min(self.batch_size, self.demonstration_buffer.num_experiences)
            // policy.sequence_length,
            1,
        )
        self.has_updated = False
        self.use_recurrent = self.policy.use_recurrent
        self.samples_per_update = settings.samples_per_update

    def update(self) -> dict[str, float]:
        """One BC update (see the module docstring). Returns ``Losses/Pretraining Loss``."""
        decay_lr = self.decay_learning_rate.get_value(self.policy.get_current_step())
        if self.current_lr <= MIN_LEARNING_RATE:
            return {"Losses/Pretraining Loss": 0.0}
        sequence_length = self.policy.sequence_length
        batch_losses = []
        possible_batches = self.demonstration_buffer.num_experiences // self.n_sequences
        max_batches = self.samples_per_update // self.n_sequences
        num_batches = possible_batches if max_batches == 0 else min(possible_batches, max_batches)
        rows = self.n_sequences * sequence_length
        for _ in range(self.num_epoch):
            self.demonstration_buffer.shuffle(sequence_length=sequence_length)
            epoch = minibatches(self.demonstration_buffer, rows)
            for mini_batch in itertools.islice(epoch, num_batches // sequence_length):
                batch_losses.append(self._update_batch(mini_batch))
        ModelUtils.update_learning_rate(self.optimizer, decay_lr)
        self.current_lr = decay_lr
        self.has_updated = True
        if not batch_losses:
            return {}
        return {"Losses/Pretraining Loss": float(np.mean(batch_losses))}

    def _behavioral_cloning_loss(
        self, selected_actions: AgentAction, log_probs: Any, expert_actions: AgentAction
    ) -> torch.Tensor:
        action_spec = self.policy.behavior_spec.action_spec
        bc_loss: Any = 0
        if action_spec.continuous_size > 0:
            assert selected_actions.continuous_tensor is not None
            assert expert_actions.continuous_tensor is not None
            bc_loss = bc_loss + torch.nn.functional.mse_loss(
                selected_actions.continuous_tensor, expert_actions.continuous_tensor
            )
        if action_spec.discrete_size > 0:
            branches = list(action_spec.discrete_branches)
            one_hot_expert = ModelUtils.actions_to_onehot(expert_actions.discrete_tensor, branches)
            log_prob_branches = ModelUtils.break_into_branches(
                log_probs.all_discrete_tensor, branches
            )
            bc_loss = bc_loss + torch.mean(
                torch.stack(
                    [
                        torch.sum(
                            -torch.nn.functional.log_softmax(log_prob_branch, dim=1)
                            * expert_branch,
                            dim=1,
                        )
                        for log_prob_branch, expert_branch in zip(
                            log_prob_branches, one_hot_expert, strict=True
                        )
                    ]
                )
            )
        return bc_loss

    def _update_batch(self, mini_batch: ExperienceBatch) -> float:
        """One Adam step of the actor towards the expert's actions on ``mini_batch``."""
        spec = self.policy.behavior_spec
        n_obs = len(spec.observation_specs)
        device = self.policy.device
        tensor_obs = ModelUtils.list_to_tensor_list(mini_batch.observations(n_obs), device=device)
        expert_actions = AgentAction.from_arrays(
            mini_batch.continuous_actions, mini_batch.discrete_actions, device
        )
        rows = self.n_sequences * self.policy.sequence_length
        masks = None
        if spec.action_spec.discrete_size > 0:
            # Demonstrations carry no masks to train with: every action allowed, as ML-Agents.
            masks = torch.ones((rows, sum(spec.action_spec.discrete_branches)), device=device)
        memories = None
        if self.policy.use_recurrent:
            memories = torch.zeros(1, self.n_sequences, self.policy.m_size, device=device)
        selected_actions, run_out, _ = self.policy.actor.get_action_and_stats(
            tensor_obs,
            masks=masks,
            memories=memories,
            sequence_length=self.policy.sequence_length,
        )
        bc_loss = self._behavioral_cloning_loss(
            selected_actions, run_out["log_probs"], expert_actions
        )
        self.optimizer.zero_grad()
        bc_loss.backward()
        self.optimizer.step()
        return float(bc_loss.item())
