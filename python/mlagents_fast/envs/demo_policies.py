"""Policies that record demonstrations: experts, exported models, checkpoints, callables.

:func:`policy_from_argument` turns the ``--policy`` argument of
``mlagents-fast-env --record-demo`` into a policy (``decision_steps -> ActionTuple``):

- ``expert``: the scripted expert of a built-in environment
  (:mod:`mlagents_fast.envs.builtin.experts`);
- ``random``: uniform random actions (seeded);
- ``path/to/model.onnx``: a policy exported by a trainer (ML-Agents' or ours), run with
  onnxruntime following the inference contract Unity uses (``obs_i``, ``action_masks``,
  ``recurrent_in``); deterministic actions unless ``deterministic=False``;
- ``path/to/checkpoint.pt``: a checkpoint of ``mlagents-fast-learn``, rebuilt from the run's
  ``configuration.yaml`` by the ``checkpoint_policy`` the caller passes (the environment layer
  never imports the trainers; ``mlagents-fast-env`` passes
  :class:`mlagents_fast.trainers.policy.checkpoint_policy.CheckpointPolicy`);
- ``python:<module>:<callable>``: any callable ``decision_steps -> ActionTuple``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Protocol

import numpy as np

from mlagents_fast.envs.base_env import ActionTuple, BehaviorSpec, DecisionSteps
from mlagents_fast.envs.builtin.experts import expert_for
from mlagents_fast.exceptions import InvalidArgumentError

__all__ = ["CheckpointPolicyFactory", "OnnxPolicy", "RandomPolicy", "policy_from_argument"]


class CheckpointPolicyFactory(Protocol):
    """Builds a policy from a training checkpoint (``.pt``) for one behavior."""

    def __call__(
        self,
        checkpoint_path: str,
        behavior_name: str,
        behavior_spec: BehaviorSpec,
        *,
        deterministic: bool,
    ) -> Any: ...


class RandomPolicy:
    """Uniform random actions from a seeded generator (continuous in [-1, 1])."""

    def __init__(self, behavior_spec: BehaviorSpec, seed: int = 0) -> None:
        self._spec = behavior_spec.action_spec
        self._rng = np.random.default_rng(seed)

    def __call__(self, steps: DecisionSteps) -> ActionTuple:
        n = len(steps)
        continuous = self._rng.uniform(-1.0, 1.0, (n, self._spec.continuous_size))
        discrete = np.zeros((n, len(self._spec.discrete_branches)), np.int32)
        for branch, size in enumerate(self._spec.discrete_branches):
            discrete[:, branch] = self._rng.integers(0, size, n)
        return ActionTuple(continuous=continuous.astype(np.float32), discrete=discrete)


class OnnxPolicy:
    """An exported policy model (``.onnx``) run with onnxruntime, as Unity runs it.

    Inputs: ``obs_i`` (float32, batch first), ``action_masks`` (1 = allowed) when the model
    has discrete branches, ``recurrent_in`` (each agent's last ``recurrent_out``, zeros at
    an episode start) when it has memory. Outputs: ``deterministic_*`` actions, or the
    sampled ``continuous_actions``/``discrete_actions`` with ``deterministic=False``.
    """

    def __init__(self, path: str, behavior_spec: BehaviorSpec, deterministic: bool = True):
        try:
            import onnxruntime
        except ImportError as err:
            raise InvalidArgumentError(
                f"--policy {path}: running an .onnx policy needs onnxruntime "
                "(python -m pip install onnxruntime)"
            ) from err
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )
        self._path = path
        self._spec = behavior_spec
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        for i, obs_spec in enumerate(behavior_spec.observation_specs):
            declared = inputs.get(f"obs_{i}")
            if declared is None:
                raise InvalidArgumentError(f"--policy {path}: the model has no input obs_{i}")
            if [d for d in declared.shape[1:]] != list(obs_spec.shape):
                raise InvalidArgumentError(
                    f"--policy {path}: input obs_{i} has shape {declared.shape[1:]}, the "
                    f"environment's observation {i} is {tuple(obs_spec.shape)}"
                )
        self._has_masks = "action_masks" in inputs
        self._memory_size = 0
        if "recurrent_in" in inputs:
            self._memory_size = int(inputs["recurrent_in"].shape[-1])
        prefix = "deterministic_" if deterministic else ""
        action_spec = behavior_spec.action_spec
        self._continuous = f"{prefix}continuous_actions" if action_spec.continuous_size else None
        self._discrete = f"{prefix}discrete_actions" if action_spec.discrete_size else None
        for name in (self._continuous, self._discrete):
            if name is not None and name not in outputs:
                raise InvalidArgumentError(
                    f"--policy {path}: the model has no output {name}; it was exported for "
                    f"other actions than the environment's {action_spec}"
                )
        self._memories: dict[int, np.ndarray] = {}

    def __call__(self, steps: DecisionSteps) -> ActionTuple:
        n = len(steps)
        feed = {f"obs_{i}": np.asarray(obs, np.float32) for i, obs in enumerate(steps.obs)}
        if self._has_masks:
            width = sum(self._spec.action_spec.discrete_branches)
            masked = (
                np.concatenate(steps.action_mask, axis=1)
                if steps.action_mask is not None
                else np.zeros((n, width), bool)
            )
            feed["action_masks"] = (1.0 - masked).astype(np.float32)
        ids = steps.agent_id.tolist()
        if self._memory_size:
            zeros = np.zeros((1, self._memory_size), np.float32)
            feed["recurrent_in"] = np.stack([self._memories.get(a, zeros) for a in ids])
        names = [name for name in (self._continuous, self._discrete) if name]
        if self._memory_size:
            names.append("recurrent_out")
        results = dict(zip(names, self._session.run(names, feed), strict=True))
        if self._memory_size:
            for agent, memory in zip(ids, results["recurrent_out"], strict=True):
                self._memories[agent] = memory
        continuous = discrete = None
        if self._continuous:
            continuous = np.clip(results[self._continuous], -1.0, 1.0).astype(np.float32)
        if self._discrete:
            discrete = results[self._discrete].astype(np.int32)
        return ActionTuple(continuous=continuous, discrete=discrete)

    def episode_ended(self, agent_ids: list[int]) -> None:
        for agent in agent_ids:
            self._memories.pop(agent, None)


def policy_from_argument(
    argument: str,
    behavior_name: str,
    behavior_spec: BehaviorSpec,
    env: str = "",
    seed: int = 0,
    deterministic: bool = True,
    checkpoint_policy: CheckpointPolicyFactory | None = None,
) -> Any:
    """The policy ``argument`` names (see the module docstring) for this behavior; ``env``
    is the environment argument (``builtin:3DBall``) that ``expert`` looks up;
    ``checkpoint_policy`` builds the policy of a ``.pt`` checkpoint."""
    if argument == "expert":
        if not env.startswith("builtin:"):
            raise InvalidArgumentError(
                f"--policy expert: scripted experts exist for built-in environments only, "
                f"not {env!r}"
            )
        try:
            return expert_for(env)
        except KeyError as err:
            raise InvalidArgumentError(f"--policy expert: {err.args[0]}") from None
    if argument == "random":
        return RandomPolicy(behavior_spec, seed)
    if argument.startswith("python:"):
        module_name, _, attribute = argument[len("python:") :].partition(":")
        if not module_name or not attribute:
            raise InvalidArgumentError(
                f"--policy {argument!r}: expected python:<module>:<callable>"
            )
        policy = getattr(importlib.import_module(module_name), attribute)
        if not callable(policy):
            raise InvalidArgumentError(f"--policy {argument!r}: {attribute} is not callable")
        return policy
    if not os.path.isfile(argument):
        raise InvalidArgumentError(
            f"--policy {argument!r}: expected expert, random, python:<module>:<callable>, or "
            "an existing .onnx or .pt file"
        )
    if argument.endswith(".onnx"):
        return OnnxPolicy(argument, behavior_spec, deterministic)
    if argument.endswith(".pt"):
        if checkpoint_policy is None:
            raise InvalidArgumentError(
                f"--policy {argument!r}: playing a training checkpoint needs checkpoint_policy "
                "(mlagents_fast.trainers.policy.checkpoint_policy.CheckpointPolicy)"
            )
        return checkpoint_policy(
            argument, behavior_name, behavior_spec, deterministic=deterministic
        )
    raise InvalidArgumentError(f"--policy {argument!r}: expected a .onnx or .pt file")
