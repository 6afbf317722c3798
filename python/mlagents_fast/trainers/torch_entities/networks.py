"""Actor and critic networks built from NetworkSettings.

Observations go through one encoder each (vector: identity or normaliser; visual: the chosen
CNN; variable-length: an entity embedding followed by residual self-attention over the
entities, see ``attention``), are concatenated, pass through ``num_layers`` Swish layers of ``hidden_units`` and, with
``memory`` set, an LSTM. Goal-signal observations are concatenated like any other input
and, with ``goal_conditioning_type: hyper`` (the default), also generate the weights of the
body's last layer through a hypernetwork (ConditionalEncoder).
"""

from __future__ import annotations

import abc
import logging
from typing import Any

import torch
from torch import nn

from mlagents_fast.envs.base_env import ObservationType
from mlagents_fast.trainers.exception import UnityTrainerException
from mlagents_fast.trainers.settings import ConditioningType
from mlagents_fast.trainers.torch_entities.action_model import ActionModel
from mlagents_fast.trainers.torch_entities.agent_action import AgentAction
from mlagents_fast.trainers.torch_entities.attention import (
    EntityEmbedding,
    ResidualSelfAttention,
    get_zero_entities_mask,
)
from mlagents_fast.trainers.torch_entities.conditioning import ConditionalEncoder
from mlagents_fast.trainers.torch_entities.decoders import ValueHeads
from mlagents_fast.trainers.torch_entities.encoders import VectorInput
from mlagents_fast.trainers.torch_entities.layers import LSTM, LinearEncoder
from mlagents_fast.trainers.torch_entities.utils import ModelUtils, module_device
from mlagents_fast.trainers.trajectory import ObsUtil

__all__ = [
    "Actor",
    "Critic",
    "GlobalSteps",
    "LearningRate",
    "MultiAgentNetworkBody",
    "NetworkBody",
    "ObservationEncoder",
    "SharedActorCritic",
    "SimpleActor",
    "ValueNetwork",
]

logger = logging.getLogger(__name__)

EPSILON = 1e-7


class ObservationEncoder(nn.Module):
    """Encodes every observation of an agent and concatenates the encodings.

    Variable-length observations (buffer sensors) are embedded entity by entity, together with
    the agent's own fixed-size encodings, and reduced by one residual self-attention block
    (``rsa``) whose ``ATTENTION_EMBEDDING_SIZE``-wide output is appended last.
    """

    ATTENTION_EMBEDDING_SIZE = 128

    def __init__(
        self,
        observation_specs: list[Any],
        h_size: int,
        vis_encode_type: Any,
        normalize: bool = False,
    ):
        super().__init__()
        if len(observation_specs) == 0:
            raise UnityTrainerException(
                "The behavior has no observations: attach at least one sensor to the agent."
            )
        self.processors, self.embedding_sizes = ModelUtils.create_input_processors(
            observation_specs, h_size, vis_encode_type, self.ATTENTION_EMBEDDING_SIZE, normalize
        )
        self.rsa, self.x_self_encoder = ModelUtils.create_residual_self_attention(
            self.processors, self.embedding_sizes, self.ATTENTION_EMBEDDING_SIZE
        )
        self.normalize = normalize
        self._total_enc_size = sum(self.embedding_sizes)
        if self.rsa is not None:
            self._total_enc_size += self.ATTENTION_EMBEDDING_SIZE
        self._vector_indices = [
            i for i, p in enumerate(self.processors) if isinstance(p, VectorInput)
        ]
        self._entity_indices = [
            i for i, p in enumerate(self.processors) if isinstance(p, EntityEmbedding)
        ]
        self._goal_processor_indices = [
            i
            for i, spec in enumerate(observation_specs)
            if getattr(spec, "observation_type", None) == ObservationType.GOAL_SIGNAL
        ]
        self._total_goal_enc_size = sum(
            self.embedding_sizes[i] for i in self._goal_processor_indices
        )

    @property
    def total_enc_size(self) -> int:
        return self._total_enc_size

    @property
    def total_goal_enc_size(self) -> int:
        """Width of the goal-signal observations' encodings (0 without goals)."""
        return self._total_goal_enc_size

    def get_goal_encoding(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """The goal-signal observations encoded and concatenated."""
        if any(i in self._entity_indices for i in self._goal_processor_indices):
            raise UnityTrainerException(
                "A goal-signal observation has a variable length; goals must be fixed-size."
            )
        encodes = [self.processors[i](inputs[i]) for i in self._goal_processor_indices]
        if not encodes:
            raise UnityTrainerException("The behavior has no goal-signal observation.")
        return encodes[0] if len(encodes) == 1 else torch.cat(encodes, dim=1)

    def update_normalization(self, buffer: Any) -> None:
        if not self.normalize:
            return
        obs = ObsUtil.from_buffer(buffer, len(self.processors))
        for index in self._vector_indices:
            processor = self.processors[index]
            assert isinstance(processor, VectorInput)  # what _vector_indices lists
            processor.update_normalization(
                ModelUtils.list_to_tensor(obs[index], device=module_device(processor))
            )

    def copy_normalization(self, other_encoder: ObservationEncoder) -> None:
        if self.normalize:
            for mine, theirs in zip(self.processors, other_encoder.processors):
                if isinstance(mine, VectorInput) and isinstance(theirs, VectorInput):
                    mine.copy_normalization(theirs)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != len(self.processors):
            raise UnityTrainerException(
                f"Expected {len(self.processors)} observations, got {len(inputs)}."
            )
        encodes = [
            processor(obs)
            for processor, obs in zip(self.processors, inputs)
            if not isinstance(processor, EntityEmbedding)
        ]
        encoded_self = None
        if encodes:
            encoded_self = encodes[0] if len(encodes) == 1 else torch.cat(encodes, dim=1)
        if self.rsa is None:
            if encoded_self is None:
                raise UnityTrainerException("No observation could be encoded.")
            return encoded_self
        entities = [inputs[i] for i in self._entity_indices]
        masks = get_zero_entities_mask(entities)
        x_self = None
        if encoded_self is not None and self.x_self_encoder is not None:
            x_self = self.x_self_encoder(encoded_self)
        embeddings = [
            self.processors[i](x_self, entity) for i, entity in zip(self._entity_indices, entities)
        ]
        attention = self.rsa(torch.cat(embeddings, dim=1), masks)
        if encoded_self is None:
            return attention
        return torch.cat([encoded_self, attention], dim=1)


class NetworkBody(nn.Module):
    def __init__(
        self,
        observation_specs: list[Any],
        network_settings: Any,
        encoded_act_size: int = 0,
    ):
        super().__init__()
        self.normalize = network_settings.normalize
        self.use_lstm = network_settings.memory is not None
        self.h_size = network_settings.hidden_units
        self.m_size = network_settings.memory.memory_size if self.use_lstm else 0
        self.observation_encoder = ObservationEncoder(
            observation_specs, self.h_size, network_settings.vis_encode_type, self.normalize
        )
        self.processors = self.observation_encoder.processors
        total_enc_size = self.observation_encoder.total_enc_size + encoded_act_size
        self._body_endoder: torch.nn.Module
        if (
            self.observation_encoder.total_goal_enc_size > 0
            and network_settings.goal_conditioning_type == ConditioningType.HYPER
        ):
            self._body_endoder = ConditionalEncoder(
                total_enc_size,
                self.observation_encoder.total_goal_enc_size,
                self.h_size,
                network_settings.num_layers,
                1,
            )
        else:
            self._body_endoder = LinearEncoder(
                total_enc_size, network_settings.num_layers, self.h_size
            )
        self.lstm: LSTM | None = LSTM(self.h_size, self.m_size) if self.use_lstm else None

    def update_normalization(self, buffer: Any) -> None:
        self.observation_encoder.update_normalization(buffer)

    def copy_normalization(self, other_network: NetworkBody) -> None:
        self.observation_encoder.copy_normalization(other_network.observation_encoder)

    @property
    def memory_size(self) -> int:
        return self.lstm.memory_size if self.lstm is not None else 0

    def forward(
        self,
        inputs: list[torch.Tensor],
        actions: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoding (batch, hidden or memory_size // 2) and the new memories (1, n_seq, M)."""
        encoded_self = self.observation_encoder(inputs)
        if actions is not None:
            encoded_self = torch.cat([encoded_self, actions], dim=1)
        if isinstance(self._body_endoder, ConditionalEncoder):
            goal = self.observation_encoder.get_goal_encoding(inputs)
            encoding = self._body_endoder(encoded_self, goal)
        else:
            encoding = self._body_endoder(encoded_self)
        if self.lstm is not None:
            if memories is None:
                n_sequences = encoding.shape[0] // sequence_length
                memories = torch.zeros(
                    (1, n_sequences, self.m_size), dtype=encoding.dtype, device=encoding.device
                )
            encoding = encoding.reshape([-1, sequence_length, self.h_size])
            encoding, memories = self.lstm(encoding, memories)
            encoding = encoding.reshape([-1, self.m_size // 2])
        return encoding, memories


class MultiAgentNetworkBody(nn.Module):
    """A body over a group of agents that share one observation and action space (the
    centralized critic of MA-POCA, Cohen et al. 2021, https://arxiv.org/abs/2111.05992).

    Each agent's observations go through one shared ObservationEncoder; agents seen with
    their action (``obs`` + ``actions``) are embedded by ``obs_action_encoder``, agents seen
    without (``obs_only``) by ``obs_encoder``; one residual self-attention block over all of
    them, with absent agents masked out, is followed by ``num_layers`` Swish layers (and an
    LSTM with memory). The encoding ends with the number of agents present, scaled to
    ``[-1, 1]`` by the most agents seen so far. An agent is absent in a row when its
    observations are NaN there (the group columns' padding). Module names, sizes and
    initialisations are ML-Agents 1.1.0's, so checkpoints load in both directions.
    """

    def __init__(self, observation_specs: list[Any], network_settings: Any, action_spec: Any):
        super().__init__()
        self.normalize = network_settings.normalize
        self.use_lstm = network_settings.memory is not None
        self.h_size = network_settings.hidden_units
        self.m_size = network_settings.memory.memory_size if self.use_lstm else 0
        self.action_spec = action_spec
        self.observation_encoder = ObservationEncoder(
            observation_specs, self.h_size, network_settings.vis_encode_type, self.normalize
        )
        self.processors = self.observation_encoder.processors
        obs_size = self.observation_encoder.total_enc_size
        action_size = int(sum(action_spec.discrete_branches)) + int(action_spec.continuous_size)
        self.obs_encoder = EntityEmbedding(obs_size, None, self.h_size)
        self.obs_action_encoder = EntityEmbedding(obs_size + action_size, None, self.h_size)
        self.self_attn = ResidualSelfAttention(self.h_size)
        self.linear_encoder = LinearEncoder(
            self.h_size,
            network_settings.num_layers,
            self.h_size,
            kernel_gain=(0.125 / self.h_size) ** 0.5,
        )
        self.lstm: LSTM | None = LSTM(self.h_size, self.m_size) if self.use_lstm else None
        # The most agents seen in one row so far (a buffer of the checkpoint, not trained).
        self._current_max_agents = nn.Parameter(torch.as_tensor(1.0), requires_grad=False)

    @property
    def memory_size(self) -> int:
        return self.lstm.memory_size if self.lstm is not None else 0

    def update_normalization(self, buffer: Any) -> None:
        self.observation_encoder.update_normalization(buffer)

    def copy_normalization(self, other_network: MultiAgentNetworkBody) -> None:
        self.observation_encoder.copy_normalization(other_network.observation_encoder)

    @staticmethod
    def _absent(agents: list[list[torch.Tensor]]) -> torch.Tensor:
        """(batch, n_agents) float: 1 where the agent's first observation starts with NaN."""
        first = [obs[0].flatten(start_dim=1)[:, 0] for obs in agents]
        return torch.stack(first, dim=1).isnan().float()

    @staticmethod
    def _without_nans(
        agents: list[list[torch.Tensor]], absent: torch.Tensor
    ) -> list[list[torch.Tensor]]:
        """The observations with the rows of absent agents set to 0."""
        cleaned = []
        for index, agent_obs in enumerate(agents):
            rows = absent[:, index].bool()
            cleaned.append(
                [
                    obs.masked_fill(rows.reshape(-1, *([1] * (obs.dim() - 1))), 0.0)
                    for obs in agent_obs
                ]
            )
        return cleaned

    def forward(
        self,
        obs_only: list[list[torch.Tensor]],
        obs: list[list[torch.Tensor]],
        actions: list[AgentAction],
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoding (batch, hidden + 1) of the group and the new memories.

        :param obs_only: per agent seen without its action, its observations.
        :param obs: per agent seen with its action, its observations.
        :param actions: those agents' actions, in the same order.
        """
        masks: list[torch.Tensor] = []
        embeddings: list[torch.Tensor] = []
        if obs:
            absent = self._absent(obs)
            encoded = [
                torch.cat(
                    [
                        self.observation_encoder(agent_obs),
                        action.to_flat(list(self.action_spec.discrete_branches)),
                    ],
                    dim=1,
                )
                for agent_obs, action in zip(self._without_nans(obs, absent), actions)
            ]
            masks.append(absent)
            embeddings.append(self.obs_action_encoder(None, torch.stack(encoded, dim=1)))
        if obs_only:
            absent = self._absent(obs_only)
            encoded = [
                self.observation_encoder(agent_obs)
                for agent_obs in self._without_nans(obs_only, absent)
            ]
            masks.append(absent)
            embeddings.append(self.obs_encoder(None, torch.stack(encoded, dim=1)))
        state = self.self_attn(torch.cat(embeddings, dim=1), masks)

        present = torch.sum(1 - torch.cat(masks, dim=1), dim=1, keepdim=True)
        most = float(torch.max(present).item())
        if most > float(self._current_max_agents.item()):
            with torch.no_grad():
                self._current_max_agents.fill_(most)
        # -1 for a lone agent, +1 at the most agents seen.
        scaled_count = present * 2.0 / self._current_max_agents - 1

        encoding = self.linear_encoder(state)
        if self.lstm is not None:
            encoding = encoding.reshape([-1, sequence_length, self.h_size])
            encoding, memories = self.lstm(encoding, memories)
            encoding = encoding.reshape([-1, self.m_size // 2])
        return torch.cat([encoding, scaled_count], dim=1), memories


class Critic(abc.ABC):
    @abc.abstractmethod
    def update_normalization(self, buffer: Any) -> None:
        """Fold the buffer's vector observations into the normalisers."""

    @abc.abstractmethod
    def critic_pass(
        self,
        inputs: list[torch.Tensor],
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Values per reward stream, (batch,) each, and the critic's new memories."""


class ValueNetwork(nn.Module, Critic):
    def __init__(
        self,
        stream_names: list[str],
        observation_specs: list[Any],
        network_settings: Any,
        encoded_act_size: int = 0,
        outputs_per_stream: int = 1,
    ):
        nn.Module.__init__(self)
        self.network_body = NetworkBody(
            observation_specs, network_settings, encoded_act_size=encoded_act_size
        )
        if network_settings.memory is not None:
            encoding_size = network_settings.memory.memory_size // 2
        else:
            encoding_size = network_settings.hidden_units
        self.value_heads = ValueHeads(stream_names, encoding_size, outputs_per_stream)

    def update_normalization(self, buffer: Any) -> None:
        self.network_body.update_normalization(buffer)

    @property
    def memory_size(self) -> int:
        return self.network_body.memory_size

    def critic_pass(
        self,
        inputs: list[torch.Tensor],
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        return self.forward(inputs, memories=memories, sequence_length=sequence_length)

    def forward(
        self,
        inputs: list[torch.Tensor],
        actions: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        encoding, memories = self.network_body(inputs, actions, memories, sequence_length)
        return self.value_heads(encoding), memories


class Actor(abc.ABC):
    @abc.abstractmethod
    def update_normalization(self, buffer: Any) -> None:
        """Fold the buffer's vector observations into the normalisers."""

    @abc.abstractmethod
    def get_action_and_stats(
        self,
        inputs: list[torch.Tensor],
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[AgentAction, dict[str, Any], torch.Tensor | None]:
        """Sampled actions, {"env_action", "log_probs", "entropy"} and the new memories."""

    @abc.abstractmethod
    def get_stats(
        self,
        inputs: list[torch.Tensor],
        actions: AgentAction,
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> dict[str, Any]:
        """{"log_probs", "entropy"} of the given actions."""

    @abc.abstractmethod
    def forward(
        self,
        inputs: list[torch.Tensor],
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
    ) -> tuple[int | torch.Tensor, ...]:
        """The ONNX export graph (docs/onnx.md §3): keep inputs and outputs as they are."""


class SimpleActor(nn.Module, Actor):
    MODEL_EXPORT_VERSION = 3  # ModelApiVersion.MLAgents2_0

    def __init__(
        self,
        observation_specs: list[Any],
        network_settings: Any,
        action_spec: Any,
        conditional_sigma: bool = False,
        tanh_squash: bool = False,
    ):
        super().__init__()
        self.action_spec = action_spec
        continuous_size = int(action_spec.continuous_size)
        discrete_branches = [int(b) for b in action_spec.discrete_branches]
        self._continuous_size = continuous_size
        self._discrete_size = len(discrete_branches)
        # Constant outputs of the exported model; parameters so that they are initialisers.
        self.version_number = nn.Parameter(
            torch.tensor([float(self.MODEL_EXPORT_VERSION)]), requires_grad=False
        )
        self.is_continuous_int_deprecated = nn.Parameter(
            torch.tensor([float(continuous_size > 0 and not discrete_branches)]),
            requires_grad=False,
        )
        self.continuous_act_size_vector = nn.Parameter(
            torch.tensor([float(continuous_size)]), requires_grad=False
        )
        # 2-D, (1, n_branches), as upstream writes it (docs/onnx.md §3).
        self.discrete_act_size_vector = nn.Parameter(
            torch.tensor([[float(b) for b in discrete_branches]]).reshape(1, -1),
            requires_grad=False,
        )
        self.act_size_vector_deprecated = nn.Parameter(
            torch.tensor([float(continuous_size + sum(discrete_branches))]), requires_grad=False
        )
        self.network_body = NetworkBody(observation_specs, network_settings)
        if network_settings.memory is not None:
            self.encoding_size = network_settings.memory.memory_size // 2
        else:
            self.encoding_size = network_settings.hidden_units
        self.memory_size_vector = nn.Parameter(
            torch.tensor([float(self.network_body.memory_size)]), requires_grad=False
        )
        self.action_model = ActionModel(
            self.encoding_size,
            action_spec,
            conditional_sigma=conditional_sigma,
            tanh_squash=tanh_squash,
            deterministic=network_settings.deterministic,
        )

    @property
    def memory_size(self) -> int:
        return self.network_body.memory_size

    def update_normalization(self, buffer: Any) -> None:
        self.network_body.update_normalization(buffer)

    def get_action_and_stats(
        self,
        inputs: list[torch.Tensor],
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[AgentAction, dict[str, Any], torch.Tensor | None]:
        encoding, memories = self.network_body(
            inputs, memories=memories, sequence_length=sequence_length
        )
        action, log_probs, entropies = self.action_model(encoding, masks)
        run_out: dict[str, Any] = {
            # What the environment receives (clipped for PPO); the buffer keeps the raw action.
            "env_action": action.to_action_tuple(clip=self.action_model.clip_action),
            "log_probs": log_probs,
            "entropy": entropies,
        }
        return action, run_out, memories

    def get_stats(
        self,
        inputs: list[torch.Tensor],
        actions: AgentAction,
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> dict[str, Any]:
        encoding, _ = self.network_body(inputs, memories=memories, sequence_length=sequence_length)
        log_probs, entropies = self.action_model.evaluate(encoding, masks, actions)
        return {"log_probs": log_probs, "entropy": entropies}

    def forward(
        self,
        inputs: list[torch.Tensor],
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
    ) -> tuple[int | torch.Tensor, ...]:
        encoding, memories_out = self.network_body(inputs, memories=memories, sequence_length=1)
        (
            cont_action_out,
            disc_action_out,
            _action_out_deprecated,
            deterministic_cont_action_out,
            deterministic_disc_action_out,
        ) = self.action_model.get_action_out(encoding, masks)
        export_out: list[Any] = [self.version_number, self.memory_size_vector]
        if self._continuous_size > 0:
            export_out += [
                cont_action_out,
                self.continuous_act_size_vector,
                deterministic_cont_action_out,
            ]
        if self._discrete_size > 0:
            export_out += [
                disc_action_out,
                self.discrete_act_size_vector,
                deterministic_disc_action_out,
            ]
        if self.network_body.memory_size > 0:
            export_out += [memories_out]
        return tuple(export_out)


class SharedActorCritic(SimpleActor, Critic):
    """An actor whose body also feeds the value heads (PPO ``shared_critic: true``)."""

    def __init__(
        self,
        observation_specs: list[Any],
        network_settings: Any,
        action_spec: Any,
        stream_names: list[str],
        conditional_sigma: bool = False,
        tanh_squash: bool = False,
    ):
        self.use_lstm = network_settings.memory is not None
        super().__init__(
            observation_specs, network_settings, action_spec, conditional_sigma, tanh_squash
        )
        self.stream_names = stream_names
        self.value_heads = ValueHeads(stream_names, self.encoding_size)

    def critic_pass(
        self,
        inputs: list[torch.Tensor],
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        encoding, memories_out = self.network_body(
            inputs, memories=memories, sequence_length=sequence_length
        )
        return self.value_heads(encoding), memories_out


class GlobalSteps(nn.Module):
    """The policy's step counter, kept as a module so that it is saved in checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.__global_step = nn.Parameter(torch.tensor([0], dtype=torch.int64), requires_grad=False)

    @property
    def current_step(self) -> int:
        return int(self.__global_step.item())

    @current_step.setter
    def current_step(self, value: int) -> None:
        self.__global_step[:] = int(value)

    def increment(self, value: int) -> None:
        self.__global_step.add_(int(value))


class LearningRate(nn.Module):
    def __init__(self, lr: float):
        super().__init__()
        self.learning_rate = torch.tensor([lr])
