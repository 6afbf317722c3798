"""Advantage and return estimators, computed in Rust.

Drop-ins for ML-Agents 1.1.0 (same names, arguments, defaults and results):

- :func:`discount_rewards` and :func:`get_gae` from ``mlagents.trainers.trainer.trainer_utils``;
- :func:`lambda_return` from ``mlagents.trainers.poca.trainer``.

They accept what ML-Agents accepts (numpy arrays of any layout, Python lists) and give the
dtype numpy would give ML-Agents' code: float32 in, float32 out; float64 as soon as a float64
takes part (``get_gae`` with a Python-float ``value_next`` promotes, as ``np.append`` does).
Integer rewards give exact float64 values (ML-Agents would truncate every stored step).

The batched forms, one call for a whole batch of trajectories concatenated along one axis
(split by ``offsets``, each with its own bootstrap value), are :func:`compute_gae_ragged`,
returning :class:`AdvantagesAndReturns` (what the PPO trainer calls), and
:func:`compute_lambda_returns_ragged` (POCA's value targets). Trajectories are per-agent
segments of different lengths and start times, laid out one after another.

The batched form does no hidden conversion: it takes C-contiguous float32 or float64 arrays,
all of one dtype, and raises :class:`~mlagents_fast.exceptions.InvalidArgumentError` (a
``ValueError``) naming the argument before any work. All kernels release the interpreter.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from mlagents_fast import _native
from mlagents_fast.exceptions import InvalidArgumentError

__all__ = [
    "AdvantagesAndReturns",
    "compute_gae_ragged",
    "compute_lambda_returns_ragged",
    "discount_rewards",
    "get_gae",
    "lambda_return",
]

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


class AdvantagesAndReturns(NamedTuple):
    """Result of a batched GAE call; both arrays have the shape and dtype of ``rewards``."""

    advantages: np.ndarray
    """GAE advantage of every step."""
    returns: np.ndarray
    """Value targets: ``advantages + values``."""


def _real_array(value: Any, argument: str) -> np.ndarray:
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InvalidArgumentError(
            f"{argument}: expected real numbers, got an array of dtype {array.dtype}"
        )
    return array


def _as_float(dtype: np.dtype) -> np.dtype:
    """The dtype numpy gives ``python_float * array_of(dtype)``."""
    return dtype if dtype.kind == "f" else _FLOAT64


def _single_value(value_next: Any) -> tuple[float, np.dtype]:
    """``value_next`` as a float, and the dtype ``np.append`` would give it."""
    # Fast paths for what trainers pass: a Python float or a numpy scalar.
    if type(value_next) is float:
        return value_next, _FLOAT64
    if isinstance(value_next, np.floating):
        return float(value_next), value_next.dtype
    array = _real_array(value_next, "value_next")
    if array.size != 1:
        raise InvalidArgumentError(
            f"value_next: expected a single value, got an array of shape {array.shape}"
        )
    return float(array.reshape(-1)[0]), array.dtype


@functools.cache
def _gae_result_dtype(
    rewards_dtype: np.dtype, values_dtype: np.dtype, bootstrap_dtype: np.dtype
) -> np.dtype:
    """ML-Agents' get_gae: ``np.append(values, value_next)``, then ``rewards + gamma * V ...``."""
    appended = _as_float(np.result_type(values_dtype, bootstrap_dtype))
    return np.result_type(rewards_dtype, appended)


def _kernel_input(array: np.ndarray, result_dtype: np.dtype) -> np.ndarray:
    """``array`` as the contiguous float32/float64 vector the kernel for ``result_dtype`` takes."""
    kernel_dtype = _FLOAT32 if result_dtype == _FLOAT32 else _FLOAT64
    if array.dtype == kernel_dtype and array.ndim == 1 and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(array.reshape(-1), dtype=kernel_dtype)


def _kernel_output(result: np.ndarray, result_dtype: np.dtype) -> np.ndarray:
    """Back to float16 / longdouble where numpy would have computed in those."""
    if result_dtype.kind == "f" and result.dtype != result_dtype:
        return result.astype(result_dtype)
    return result


def _check_vector(array: np.ndarray, argument: str) -> None:
    if array.ndim != 1:
        raise InvalidArgumentError(
            f"{argument}: expected a one-dimensional array, got shape {array.shape}"
        )


def discount_rewards(r: Any, gamma: float = 0.99, value_next: float = 0.0) -> np.ndarray:
    """Discounted sum of future rewards, for value targets.

    :param r: rewards of one trajectory, shape ``[T]``.
    :param gamma: discount factor.
    :param value_next: value estimate of the state after the last step (0 if terminal).
    :return: ``R[t] = r[t] + gamma * R[t+1]`` with ``R[T] = value_next``, shape ``[T]``,
        the dtype of ``r`` (float64 for integer rewards).
    """
    rewards = _real_array(r, "r")
    _check_vector(rewards, "r")
    result_dtype = rewards.dtype
    bootstrap, _ = _single_value(value_next)
    result = _native.discount_rewards(_kernel_input(rewards, result_dtype), float(gamma), bootstrap)
    return _kernel_output(result, result_dtype)


def get_gae(
    rewards: Any,
    value_estimates: Any,
    value_next: float = 0.0,
    gamma: float = 0.99,
    lambd: float = 0.95,
) -> np.ndarray:
    """Generalized advantage estimate of one trajectory (Schulman et al. 2016, arXiv:1506.02438).

    :param rewards: rewards for steps ``0..T-1``, shape ``[T]``.
    :param value_estimates: value estimates for steps ``0..T-1`` (flattened, like ``np.append``).
    :param value_next: value estimate of the state after step ``T-1`` (0 if terminal).
    :param gamma: discount factor.
    :param lambd: GAE weighing factor.
    :return: advantages ``A[t] = delta[t] + gamma * lambd * A[t+1]`` with
        ``delta[t] = rewards[t] + gamma * V[t+1] - V[t]``, shape ``[T]``. The dtype is
        numpy's promotion of ``rewards``, ``value_estimates`` and ``value_next``, as in ML-Agents.
    """
    rewards_array = _real_array(rewards, "rewards")
    _check_vector(rewards_array, "rewards")
    values_array = _real_array(value_estimates, "value_estimates")
    if values_array.ndim != 1:
        values_array = values_array.reshape(-1)  # np.append flattens
    bootstrap, bootstrap_dtype = _single_value(value_next)
    result_dtype = _gae_result_dtype(rewards_array.dtype, values_array.dtype, bootstrap_dtype)
    if values_array.shape != rewards_array.shape:
        raise InvalidArgumentError(
            f"value_estimates: expected {rewards_array.size} values (one per reward), "
            f"got {values_array.size}"
        )
    result = _native.get_gae(
        _kernel_input(rewards_array, result_dtype),
        _kernel_input(values_array, result_dtype),
        bootstrap,
        float(gamma),
        float(lambd),
    )
    return _kernel_output(result, result_dtype)


def lambda_return(
    r: Any,
    value_estimates: Any,
    gamma: float = 0.99,
    lambd: float = 0.8,
    value_next: float = 0.0,
) -> np.ndarray:
    """TD(lambda) returns of one trajectory, as ML-Agents' POCA trainer computes them.

    :param r: rewards for steps ``0..T-1``, shape ``[T]``.
    :param value_estimates: value estimates for steps ``0..T-1``, shape ``[T]``.
    :param gamma: discount factor.
    :param lambd: mixing factor between Monte Carlo (1) and one-step (0) targets.
    :param value_next: value estimate of the state after step ``T-1`` (0 if terminal).
    :return: ``G[T-1] = r[T-1] + gamma * value_next`` and
        ``G[t] = gamma * lambd * G[t+1] + r[t] + (1 - lambd) * gamma * V[t+1]``, shape ``[T]``,
        the dtype of ``r`` (float64 for integer rewards).
    """
    rewards = _real_array(r, "r")
    _check_vector(rewards, "r")
    values_array = _real_array(value_estimates, "value_estimates")
    if values_array.ndim != 1:
        values_array = values_array.reshape(-1)
    if values_array.shape != rewards.shape:
        raise InvalidArgumentError(
            f"value_estimates: expected {rewards.size} values (one per reward), "
            f"got {values_array.size}"
        )
    bootstrap, _ = _single_value(value_next)
    result_dtype = rewards.dtype
    result = _native.lambda_return(
        _kernel_input(rewards, result_dtype),
        _kernel_input(values_array, result_dtype),
        float(gamma),
        float(lambd),
        bootstrap,
    )
    return _kernel_output(result, result_dtype)


def _out_arrays(out: Any) -> tuple[Any, Any]:
    """``out=(advantages, returns)`` as two arrays for the kernel, or ``(None, None)``."""
    if out is None:
        return None, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise InvalidArgumentError(
            f"out: expected a pair (advantages, returns) of arrays, got {type(out).__name__}"
        )
    return out[0], out[1]


def compute_gae_ragged(
    rewards: np.ndarray,
    values: np.ndarray,
    offsets: np.ndarray,
    value_next: np.ndarray,
    gamma: float = 0.99,
    lambd: float = 0.95,
    *,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> AdvantagesAndReturns:
    """GAE for many trajectories concatenated along one axis, in one call.

    Trajectory ``i`` is ``rewards[offsets[i]:offsets[i+1]]`` (likewise ``values``); it is
    bootstrapped with ``value_next[i]`` (pass 0 for a trajectory that ended in a terminal
    state) and gets exactly what :func:`get_gae` gives it alone.

    :param rewards: ``[L]`` float32 or float64, C-contiguous.
    :param values: ``[L]`` value estimates, same dtype.
    :param offsets: ``[N + 1]`` int64: starts at 0, non-decreasing, ends at ``L``
        (e.g. ``np.concatenate([[0], np.cumsum(lengths)])``); empty trajectories are fine.
    :param value_next: ``[N]`` bootstrap values, same dtype as ``rewards``.
    :param gamma: discount factor.
    :param lambd: GAE weighing factor.
    :param out: optional ``(advantages, returns)`` arrays to write into (``[L]``, the dtype of
        ``rewards``, C-contiguous, writeable, sharing no memory with the inputs); reusing them
        across calls saves allocating (and page-faulting) fresh arrays each time.
    :return: advantages and returns (``advantages + values``), each ``[L]`` of ``rewards``' dtype
        (the ``out`` arrays when given).
    """
    advantages, returns = _native.gae_ragged(
        rewards, values, offsets, value_next, float(gamma), float(lambd), *_out_arrays(out)
    )
    return AdvantagesAndReturns(advantages, returns)


def compute_lambda_returns_ragged(
    rewards: np.ndarray,
    values: np.ndarray,
    offsets: np.ndarray,
    value_next: np.ndarray,
    gamma: float = 0.99,
    lambd: float = 0.8,
) -> np.ndarray:
    """:func:`lambda_return` of many trajectories concatenated along one axis, in one call.

    Trajectory ``i`` is ``rewards[offsets[i]:offsets[i+1]]`` (likewise ``values``),
    bootstrapped with ``value_next[i]`` (0 for a trajectory that ended in a terminal state);
    it gets exactly what :func:`lambda_return` gives it alone.

    :param rewards: ``[L]`` float32 or float64, C-contiguous.
    :param values: ``[L]`` value estimates, same dtype.
    :param offsets: ``[N + 1]`` int64: starts at 0, non-decreasing, ends at ``L``.
    :param value_next: ``[N]`` bootstrap values, same dtype as ``rewards``.
    :param gamma: discount factor.
    :param lambd: mixing factor between Monte Carlo (1) and one-step (0) targets.
    :return: ``[L]`` returns, the dtype of ``rewards``.
    """
    return _native.lambda_return_ragged(
        rewards, values, offsets, value_next, float(gamma), float(lambd)
    )
