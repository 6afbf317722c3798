"""ModelUtils: encoder selection, tensor conversion, schedules and the PPO trust-region losses."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import DTypeLike
from torch import nn

from mlagents_fast.envs.base_env import DimensionProperty
from mlagents_fast.torch_utils import default_device
from mlagents_fast.trainers.exception import InvalidScheduleError, UnityTrainerException
from mlagents_fast.trainers.settings import EncoderType, ScheduleType
from mlagents_fast.trainers.torch_entities.attention import EntityEmbedding, ResidualSelfAttention
from mlagents_fast.trainers.torch_entities.encoders import (
    FullyConnectedVisualEncoder,
    NatureVisualEncoder,
    ResNetVisualEncoder,
    SimpleVisualEncoder,
    SmallVisualEncoder,
    VectorInput,
)
from mlagents_fast.trainers.torch_entities.layers import Initialization, LinearEncoder

__all__ = ["ModelUtils", "as_float32_tensor", "module_device", "to_device"]


def _as_ndarray(data: Any, dtype: DTypeLike | None = None) -> np.ndarray:
    """A buffer field (anything with ``to_ndarray``), a list of arrays or an array, as one array."""
    to_ndarray = getattr(data, "to_ndarray", None)
    array = to_ndarray() if callable(to_ndarray) else np.asanyarray(data)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        # Read-only views (Rust-owned buffers, decoded observations): torch cannot share
        # them without warning, so this one case copies.
        array = array.copy()
    return array


def to_device(tensor: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """``tensor`` on ``device`` (the training device, ``default_device()``, when None).

    Every tensor the trainer builds from numpy reaches its device here. A host tensor bound for
    CUDA is copied through pinned memory without blocking: the copy overlaps the Python that
    follows, and CUDA orders it before any kernel that reads it. Already there: no copy.
    """
    if device is None:
        device = default_device()
    if tensor.device == device or (device.type == "cpu" and tensor.device.type == "cpu"):
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (cpu for a module with neither)."""
    for tensor in module.parameters():
        return tensor.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


def as_float32_tensor(data: Any, device: torch.device | None = None) -> torch.Tensor:
    """A float32 tensor of ``data`` on ``device`` (the training device when None); on the CPU
    it shares memory with ``data`` when that is a writable float32 array."""
    return to_device(torch.from_numpy(_as_ndarray(data, np.float32)), device)


class ModelUtils:
    # Smallest image side each encoder accepts (its convolutions need at least this much).
    MIN_RESOLUTION_FOR_ENCODER: ClassVar[dict[EncoderType, int]] = {
        EncoderType.FULLY_CONNECTED: 1,
        EncoderType.MATCH3: 5,
        EncoderType.SIMPLE: 20,
        EncoderType.NATURE_CNN: 36,
        EncoderType.RESNET: 15,
    }

    VALID_VISUAL_PROP = frozenset(
        [
            (
                DimensionProperty.NONE,
                DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
                DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
            ),
            (DimensionProperty.UNSPECIFIED,) * 3,
        ]
    )
    VALID_VECTOR_PROP = frozenset([(DimensionProperty.NONE,), (DimensionProperty.UNSPECIFIED,)])
    VALID_VAR_LEN_PROP = frozenset([(DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE)])

    @staticmethod
    def create_adam(params: Any, lr: float) -> torch.optim.Adam:
        """Adam, fused into one kernel when torch supports it for these parameters.

        The fused CPU kernel is about 3x faster per step than the per-tensor loop on the small
        networks RL uses, with the same update rule; older torch or other devices fall back.
        """
        params = list(params)
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adam(params, lr=lr)

    @staticmethod
    def update_learning_rate(optim: torch.optim.Optimizer, lr: float) -> None:
        for param_group in optim.param_groups:
            param_group["lr"] = lr

    class DecayedValue:
        """A hyperparameter that follows ``schedule`` from ``initial_value`` at step 0 to
        ``min_value`` at ``max_step`` (linear), or stays at ``initial_value`` (constant)."""

        def __init__(
            self, schedule: ScheduleType, initial_value: float, min_value: float, max_step: int
        ):
            self.schedule = schedule
            self.initial_value = initial_value
            self.min_value = min_value
            self.max_step = max_step

        def get_value(self, global_step: int) -> float:
            """The value at ``global_step``; an unknown schedule raises InvalidScheduleError
            (an UnityTrainerException, as in ML-Agents) here, where ML-Agents raises it."""
            if self.schedule == ScheduleType.CONSTANT:
                return self.initial_value
            if self.schedule == ScheduleType.LINEAR:
                return ModelUtils.polynomial_decay(
                    self.initial_value, self.min_value, self.max_step, global_step
                )
            raise InvalidScheduleError(f"The schedule {self.schedule} is invalid.")

    @staticmethod
    def polynomial_decay(
        initial_value: float,
        min_value: float,
        max_step: int,
        global_step: int,
        power: float = 1.0,
    ) -> float:
        """``(initial - min) * (1 - step / max_step) ** power + min``, with step capped at max_step."""
        if max_step <= 0:
            return min_value
        global_step = min(global_step, max_step)
        return (initial_value - min_value) * (
            1 - float(global_step) / max_step
        ) ** power + min_value

    @staticmethod
    def get_encoder_for_type(encoder_type: EncoderType) -> type:
        return {
            EncoderType.SIMPLE: SimpleVisualEncoder,
            EncoderType.NATURE_CNN: NatureVisualEncoder,
            EncoderType.RESNET: ResNetVisualEncoder,
            EncoderType.MATCH3: SmallVisualEncoder,
            EncoderType.FULLY_CONNECTED: FullyConnectedVisualEncoder,
        }[encoder_type]

    @staticmethod
    def _check_resolution_for_encoder(
        height: int, width: int, vis_encoder_type: EncoderType
    ) -> None:
        min_res = ModelUtils.MIN_RESOLUTION_FOR_ENCODER[vis_encoder_type]
        if height < min_res or width < min_res:
            raise UnityTrainerException(
                f"Visual observation resolution ({width}x{height}) is too small for "
                f"the provided EncoderType ({vis_encoder_type.value}). The min dimension is {min_res}"
            )

    @staticmethod
    def get_encoder_for_obs(
        obs_spec: Any,
        normalize: bool,
        h_size: int,
        attention_embedding_size: int,
        vis_encode_type: EncoderType,
    ) -> tuple[nn.Module, int]:
        """The encoder for one observation and the width of its output (0 for a
        variable-length observation, whose EntityEmbedding feeds the attention block instead)."""
        shape = tuple(obs_spec.shape)
        dim_prop = tuple(obs_spec.dimension_property)
        if len(shape) == 3 and dim_prop in ModelUtils.VALID_VISUAL_PROP:
            encoder_class = ModelUtils.get_encoder_for_type(vis_encode_type)
            ModelUtils._check_resolution_for_encoder(shape[1], shape[2], vis_encode_type)
            return encoder_class(shape[1], shape[2], shape[0], h_size), h_size
        if len(shape) == 1 and dim_prop in ModelUtils.VALID_VECTOR_PROP:
            return VectorInput(shape[0], normalize), shape[0]
        if len(shape) == 2 and dim_prop in ModelUtils.VALID_VAR_LEN_PROP:
            return (
                EntityEmbedding(
                    entity_size=shape[1],
                    entity_num_max_elements=shape[0],
                    embedding_size=attention_embedding_size,
                ),
                0,
            )
        raise UnityTrainerException(f"Unsupported Sensor with specs {obs_spec}")

    @staticmethod
    def create_input_processors(
        observation_specs: list[Any],
        h_size: int,
        vis_encode_type: EncoderType,
        attention_embedding_size: int,
        normalize: bool = False,
    ) -> tuple[nn.ModuleList, list[int]]:
        """One encoder per observation and the width of each encoding (0 for the entity
        embeddings of variable-length observations). When the agent also has fixed-size
        observations, every entity embedding gets a self embedding of width
        ``attention_embedding_size`` (the agent's own encoded observations, see
        :meth:`create_residual_self_attention`)."""
        encoders: list[nn.Module] = []
        embedding_sizes: list[int] = []
        for obs_spec in observation_specs:
            encoder, embedding_size = ModelUtils.get_encoder_for_obs(
                obs_spec, normalize, h_size, attention_embedding_size, vis_encode_type
            )
            encoders.append(encoder)
            embedding_sizes.append(embedding_size)
        if sum(embedding_sizes) > 0:
            for encoder in encoders:
                if isinstance(encoder, EntityEmbedding):
                    encoder.add_self_embedding(attention_embedding_size)
        return nn.ModuleList(encoders), embedding_sizes

    @staticmethod
    def create_residual_self_attention(
        input_processors: nn.ModuleList, embedding_sizes: list[int], hidden_size: int
    ) -> tuple[ResidualSelfAttention | None, LinearEncoder | None]:
        """The attention block over every variable-length observation, and the encoder of the
        agent's fixed-size observations into its self embedding; (None, None) without
        variable-length observations, and no self encoder without fixed-size ones."""
        entity_processors = [p for p in input_processors if isinstance(p, EntityEmbedding)]
        if not entity_processors:
            return None, None
        x_self_encoder = None
        if sum(embedding_sizes) > 0:
            x_self_encoder = LinearEncoder(
                sum(embedding_sizes),
                1,
                hidden_size,
                kernel_init=Initialization.Normal,
                kernel_gain=(0.125 / hidden_size) ** 0.5,
            )
        max_entities = sum(
            p.entity_num_max_elements for p in entity_processors if p.entity_num_max_elements > 0
        )
        return ResidualSelfAttention(hidden_size, max_entities), x_self_encoder

    @staticmethod
    def list_to_tensor(
        ndarray_list: Any,
        dtype: torch.dtype | None = torch.float32,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """One tensor from a buffer field, a list of arrays or an array, on ``device`` (the
        training device when None; on the CPU no copy when it can)."""
        host = torch.as_tensor(_as_ndarray(ndarray_list), dtype=dtype, device="cpu")
        return to_device(host, device)

    @staticmethod
    def list_to_tensor_list(
        ndarray_list: list[Any],
        dtype: torch.dtype | None = torch.float32,
        device: torch.device | None = None,
    ) -> list[torch.Tensor]:
        return [ModelUtils.list_to_tensor(arr, dtype, device) for arr in ndarray_list]

    @staticmethod
    def to_numpy(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    @staticmethod
    def break_into_branches(
        concatenated_logits: torch.Tensor, action_size: list[int]
    ) -> list[torch.Tensor]:
        """Split (batch, sum(action_size)) into one (batch, size) tensor per branch."""
        offsets = [0] + list(np.cumsum(action_size))
        return [
            concatenated_logits[:, int(offsets[i]) : int(offsets[i + 1])]
            for i in range(len(action_size))
        ]

    @staticmethod
    def actions_to_onehot(
        discrete_actions: torch.Tensor, action_size: list[int]
    ) -> list[torch.Tensor]:
        """(batch, n_branches) indices to one (batch, size) one-hot float tensor per branch."""
        actions = discrete_actions.long().reshape(-1, len(action_size))
        return [
            torch.nn.functional.one_hot(actions[:, i], int(action_size[i])).float()
            for i in range(len(action_size))
        ]

    @staticmethod
    def dynamic_partition(
        data: torch.Tensor, partitions: torch.Tensor, num_partitions: int
    ) -> list[torch.Tensor]:
        return [data[partitions == i] for i in range(num_partitions)]

    @staticmethod
    def masked_mean(tensor: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Mean over the rows whose mask (batch,) is true; every element of a kept row counts."""
        masks = masks.to(tensor.dtype)
        if tensor.ndim == 0:
            return (tensor * masks).sum() / torch.clamp(masks.sum(), min=1.0)
        row_mask = masks.reshape((-1,) + (1,) * (tensor.ndim - 1))
        per_row = tensor[0].numel() if tensor.shape[0] > 0 else 1
        return (tensor * row_mask).sum() / torch.clamp(masks.sum() * per_row, min=1.0)

    @staticmethod
    def soft_update(source: nn.Module, target: nn.Module, tau: float) -> None:
        """Polyak update in place: target = tau * source + (1 - tau) * target."""
        with torch.no_grad():
            for source_param, target_param in zip(source.parameters(), target.parameters()):
                target_param.mul_(1.0 - tau).add_(source_param, alpha=tau)

    @staticmethod
    def trust_region_value_loss(
        values: dict[str, torch.Tensor],
        old_values: dict[str, torch.Tensor],
        returns: dict[str, torch.Tensor],
        epsilon: float,
        loss_masks: torch.Tensor,
    ) -> torch.Tensor:
        """PPO's clipped value loss, averaged over reward streams."""
        value_losses = []
        for name, head in values.items():
            old_val_tensor = old_values[name]
            returns_tensor = returns[name]
            clipped_value_estimate = old_val_tensor + torch.clamp(
                head - old_val_tensor, -1 * epsilon, epsilon
            )
            v_opt_a = (returns_tensor - head) ** 2
            v_opt_b = (returns_tensor - clipped_value_estimate) ** 2
            value_losses.append(ModelUtils.masked_mean(torch.max(v_opt_a, v_opt_b), loss_masks))
        return torch.mean(torch.stack(value_losses))

    @staticmethod
    def trust_region_policy_loss(
        advantages: torch.Tensor,
        log_probs: torch.Tensor,
        old_log_probs: torch.Tensor,
        loss_masks: torch.Tensor,
        epsilon: float,
    ) -> torch.Tensor:
        """PPO's clipped surrogate (negated, to be minimised), per action column."""
        advantage = advantages.unsqueeze(-1)
        r_theta = torch.exp(log_probs - old_log_probs)
        p_opt_a = r_theta * advantage
        p_opt_b = torch.clamp(r_theta, 1.0 - epsilon, 1.0 + epsilon) * advantage
        return -1 * ModelUtils.masked_mean(torch.min(p_opt_a, p_opt_b), loss_masks)
