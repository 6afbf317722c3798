"""Export a policy's actor to the ``.onnx`` file Unity's inference runs.

The names, dtypes, shapes and constant outputs follow ML-Agents 1.1.0 (model API version 3);
see docs/onnx.md. The export uses torch's TorchScript-based exporter
(``dynamo=False``) at opset 9, as upstream does: the dynamo exporter cannot emit opsets below 18.
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
import warnings
from typing import Any

import torch

from mlagents_fast.atomic_io import atomic_write_with

__all__ = ["ONNX_OPSET", "ModelSerializer", "TensorNames", "exporting_to_onnx"]

logger = logging.getLogger(__name__)

#: The opset upstream writes (``SerializationSettings.onnx_opset``); Sentis imports 7..15.
ONNX_OPSET = 9


class exporting_to_onnx:
    """Context manager: inside it, ``exporting_to_onnx.is_exporting()`` is true on this thread.

    Networks use it to switch to the export layout (the LSTM memory transposes). One export runs
    at a time across threads.
    """

    _local_data = threading.local()
    _lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()
        self._local_data.is_exporting = True

    def __exit__(self, *args: object) -> None:
        self._local_data.is_exporting = False
        self._lock.release()

    @staticmethod
    def is_exporting() -> bool:
        return getattr(exporting_to_onnx._local_data, "is_exporting", False)


class TensorNames:
    batch_size_placeholder = "batch_size"
    sequence_length_placeholder = "sequence_length"
    vector_observation_placeholder = "vector_observation"
    recurrent_in_placeholder = "recurrent_in"
    visual_observation_placeholder_prefix = "visual_observation_"
    observation_placeholder_prefix = "obs_"
    previous_action_placeholder = "prev_action"
    action_mask_placeholder = "action_masks"
    random_normal_epsilon_placeholder = "epsilon"

    value_estimate_output = "value_estimate"
    recurrent_output = "recurrent_out"
    memory_size = "memory_size"
    version_number = "version_number"

    continuous_action_output_shape = "continuous_action_output_shape"
    discrete_action_output_shape = "discrete_action_output_shape"
    continuous_action_output = "continuous_actions"
    discrete_action_output = "discrete_actions"
    deterministic_continuous_action_output = "deterministic_continuous_actions"
    deterministic_discrete_action_output = "deterministic_discrete_actions"

    # Legacy names, kept so code written against ML-Agents still finds them.
    is_continuous_control_deprecated = "is_continuous_control"
    action_output_deprecated = "action"
    action_output_shape_deprecated = "action_output_shape"

    @staticmethod
    def get_visual_observation_name(index: int) -> str:
        return TensorNames.visual_observation_placeholder_prefix + str(index)

    @staticmethod
    def get_observation_name(index: int) -> str:
        return TensorNames.observation_placeholder_prefix + str(index)


class ModelSerializer:
    """Exports ``policy.actor`` with ML-Agents' input/output names (docs/onnx.md §2, §3)."""

    def __init__(self, policy: Any):
        self.policy = policy
        behavior_spec = policy.behavior_spec
        observation_specs = behavior_spec.observation_specs
        action_spec = behavior_spec.action_spec
        batch_dim = [1]
        # Shapes are exported as given: a rank-3 spec is already (C, H, W).
        # On the CPU, where the actor is exported from (a copy of it when it trains elsewhere).
        cpu = torch.device("cpu")
        dummy_obs = [
            torch.zeros(batch_dim + list(spec.shape), device=cpu) for spec in observation_specs
        ]
        dummy_masks = torch.ones(batch_dim + [int(sum(action_spec.discrete_branches))], device=cpu)
        dummy_memories = torch.zeros(batch_dim + [1, int(policy.export_memory_size)], device=cpu)
        self.dummy_input: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor] = (
            dummy_obs,
            dummy_masks,
            dummy_memories,
        )

        self.input_names = [TensorNames.get_observation_name(i) for i in range(len(dummy_obs))]
        self.input_names += [
            TensorNames.action_mask_placeholder,
            TensorNames.recurrent_in_placeholder,
        ]
        self.dynamic_axes: dict[str, dict[int, str]] = {
            name: {0: "batch"} for name in self.input_names
        }

        self.output_names = [TensorNames.version_number, TensorNames.memory_size]
        if action_spec.continuous_size > 0:
            self.output_names += [
                TensorNames.continuous_action_output,
                TensorNames.continuous_action_output_shape,
                TensorNames.deterministic_continuous_action_output,
            ]
            self.dynamic_axes[TensorNames.continuous_action_output] = {0: "batch"}
        if len(action_spec.discrete_branches) > 0:
            self.output_names += [
                TensorNames.discrete_action_output,
                TensorNames.discrete_action_output_shape,
                TensorNames.deterministic_discrete_action_output,
            ]
            self.dynamic_axes[TensorNames.discrete_action_output] = {0: "batch"}
        if policy.export_memory_size > 0:
            self.output_names += [TensorNames.recurrent_output]

    def export_policy_model(self, output_filepath: str) -> None:
        """Write ``<output_filepath>.onnx`` atomically (:mod:`mlagents_fast.atomic_io`)."""
        onnx_output_path = f"{output_filepath}.onnx"
        actor = self.policy.actor
        if any(
            t.device.type != "cpu" for t in itertools.chain(actor.parameters(), actor.buffers())
        ):
            # Exported from a CPU copy: the graph and its initialisers are the same whatever
            # device trained the actor, and the dummy inputs are CPU tensors.
            actor = copy.deepcopy(actor).cpu()
        was_training = actor.training
        actor.eval()

        def export(tmp_path: str) -> None:
            with exporting_to_onnx(), warnings.catch_warnings():
                # The TorchScript exporter is deprecated in favour of dynamo, which cannot write
                # opset 9; its deprecation and tracer warnings are expected here.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    actor,
                    self.dummy_input,
                    tmp_path,
                    opset_version=ONNX_OPSET,
                    input_names=self.input_names,
                    output_names=self.output_names,
                    dynamic_axes=self.dynamic_axes,
                    dynamo=False,
                )

        try:
            atomic_write_with(onnx_output_path, export)
        finally:
            actor.train(was_training)
        logger.info("Exported %s", onnx_output_path)
