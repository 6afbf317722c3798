"""Advantage kernels against plain numpy references, hand-computed cases and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlagents_fast.exceptions import InvalidArgumentError
from mlagents_fast.trainers.trainer.trainer_utils import (
    AdvantagesAndReturns,
    compute_gae_ragged,
    compute_lambda_returns_ragged,
    discount_rewards,
    get_gae,
    lambda_return,
)

# ---------------------------------------------------------------------------
# Plain numpy references, written from the formulas (one loop, no tricks).


def reference_discount(rewards, gamma, value_next):
    out = np.zeros(len(rewards), dtype=np.float64)
    running = float(value_next)
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


def reference_gae(rewards, values, value_next, gamma, lambd):
    """delta[t] = r[t] + gamma V[t+1] - V[t]; A[t] = delta[t] + gamma lambd A[t+1]."""
    values_ext = np.concatenate([np.ravel(values), np.ravel(value_next)]).astype(np.float64)
    deltas = np.asarray(rewards, dtype=np.float64) + gamma * values_ext[1:] - values_ext[:-1]
    return reference_discount(deltas, gamma * lambd, 0.0)


def reference_lambda_return(rewards, values, gamma, lambd, value_next):
    size = len(rewards)
    out = np.zeros(size, dtype=np.float64)
    for t in range(size - 1, -1, -1):
        if t == size - 1:
            out[t] = rewards[t] + gamma * value_next
        else:
            out[t] = rewards[t] + gamma * (lambd * out[t + 1] + (1 - lambd) * values[t + 1])
    return out


def assert_close(actual, expected, dtype):
    """float32 kernels accumulate in float32: allow error relative to the largest magnitude."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    atol = (2e-5 if dtype == np.float32 else 1e-11) * scale
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=0, atol=atol)


# ---------------------------------------------------------------------------
# Property tests against the references.

factors = st.floats(0.0, 1.0)
lengths = st.sampled_from([1, 3, 1000])
dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(gamma=factors, lambd=factors, length=lengths, dtype=dtypes, seed=seeds)
def test_single_trajectory_kernels_match_reference(gamma, lambd, length, dtype, seed):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=length).astype(dtype)
    values = rng.normal(size=length).astype(dtype)
    value_next = dtype(rng.normal())

    discounted = discount_rewards(rewards, gamma, value_next)
    assert discounted.dtype == dtype
    assert_close(discounted, reference_discount(rewards, gamma, value_next), dtype)

    advantages = get_gae(rewards, values, value_next, gamma, lambd)
    assert advantages.dtype == dtype
    assert_close(advantages, reference_gae(rewards, values, value_next, gamma, lambd), dtype)

    targets = lambda_return(rewards, values, gamma, lambd, value_next)
    assert targets.dtype == dtype
    expected = reference_lambda_return(rewards, values, gamma, lambd, value_next)
    assert_close(targets, expected, dtype)


@settings(max_examples=40, deadline=None)
@given(
    gamma=factors,
    lambd=factors,
    dtype=dtypes,
    seed=seeds,
    lengths=st.lists(st.sampled_from([0, 1, 3, 1000]), min_size=1, max_size=12),
)
def test_ragged_matches_reference(gamma, lambd, dtype, seed, lengths):
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rewards = rng.normal(size=offsets[-1]).astype(dtype)
    values = rng.normal(size=offsets[-1]).astype(dtype)
    # Terminated trajectories are passed value_next 0, as the docstring asks.
    value_next = np.where(rng.random(len(lengths)) < 0.3, 0.0, rng.normal(size=len(lengths)))
    value_next = value_next.astype(dtype)

    result = compute_gae_ragged(rewards, values, offsets, value_next, gamma, lambd)
    assert isinstance(result, AdvantagesAndReturns)
    assert result.advantages.dtype == dtype and result.returns.dtype == dtype
    assert result.advantages.shape == rewards.shape
    for i, (start, end) in enumerate(itertools.pairwise(offsets)):
        expected = reference_gae(rewards[start:end], values[start:end], value_next[i], gamma, lambd)
        assert_close(result.advantages[start:end], expected, dtype)
        # The batched call gives each trajectory exactly what the drop-in gives it.
        alone = get_gae(rewards[start:end], values[start:end], value_next[i], gamma, lambd)
        np.testing.assert_array_equal(result.advantages[start:end], alone)
    np.testing.assert_array_equal(result.returns, result.advantages + values)


@settings(max_examples=40, deadline=None)
@given(
    gamma=factors,
    lambd=factors,
    dtype=dtypes,
    seed=seeds,
    lengths=st.lists(st.sampled_from([0, 1, 3, 1000]), min_size=1, max_size=12),
)
def test_ragged_lambda_returns_match_reference(gamma, lambd, dtype, seed, lengths):
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rewards = rng.normal(size=offsets[-1]).astype(dtype)
    values = rng.normal(size=offsets[-1]).astype(dtype)
    value_next = rng.normal(size=len(lengths)).astype(dtype)

    returns = compute_lambda_returns_ragged(rewards, values, offsets, value_next, gamma, lambd)
    assert returns.dtype == dtype and returns.shape == rewards.shape
    for i, (start, end) in enumerate(itertools.pairwise(offsets)):
        expected = reference_lambda_return(
            rewards[start:end], values[start:end], gamma, lambd, value_next[i]
        )
        assert_close(returns[start:end], expected, dtype)
        alone = lambda_return(rewards[start:end], values[start:end], gamma, lambd, value_next[i])
        np.testing.assert_array_equal(returns[start:end], alone)


def test_ragged_lambda_returns_refuse_bad_input():
    rewards = np.zeros(4, np.float32)
    with pytest.raises(InvalidArgumentError, match="offsets"):
        compute_lambda_returns_ragged(rewards, rewards, np.array([0, 3]), np.zeros(1, np.float32))
    with pytest.raises(InvalidArgumentError, match="values"):
        compute_lambda_returns_ragged(
            rewards, rewards[:2], np.array([0, 4]), np.zeros(1, np.float32)
        )
    with pytest.raises(InvalidArgumentError, match="value_next"):
        compute_lambda_returns_ragged(rewards, rewards, np.array([0, 4]), np.zeros(1))


# ---------------------------------------------------------------------------
# Hand-computed cases.


def test_constant_value_one_terminal_reward():
    # Values are 0.5 everywhere; the only reward, 1, comes on the terminal last step.
    # With lambda = 1, returns are Monte Carlo: gamma^(T-1-t); advantages subtract 0.5.
    gamma = 0.9
    rewards = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
    values = np.full(4, 0.5, dtype=np.float32)
    expected_returns = np.array([0.729, 0.81, 0.9, 1.0])
    advantages = get_gae(rewards, values, np.float32(0.0), gamma, 1.0)
    np.testing.assert_allclose(advantages, expected_returns - 0.5, rtol=1e-6)

    # The same episode, twice side by side, in one ragged batch.
    ragged = compute_gae_ragged(
        np.tile(rewards, 2),
        np.tile(values, 2),
        np.array([0, 4, 8]),
        np.zeros(2, np.float32),
        gamma,
        1.0,
    )
    np.testing.assert_allclose(ragged.returns, np.tile(expected_returns, 2), rtol=1e-6)

    # lambda = 0.5: delta = [-0.05, -0.05, -0.05, 0.5]; A[t] = delta[t] + 0.45 A[t+1].
    a3 = 0.5
    a2 = -0.05 + 0.45 * a3
    a1 = -0.05 + 0.45 * a2
    a0 = -0.05 + 0.45 * a1
    np.testing.assert_allclose(
        get_gae(rewards, values, np.float32(0.0), gamma, 0.5), [a0, a1, a2, a3], rtol=1e-5
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinite_horizon_value_holds_only_if_truncation_bootstraps(dtype):
    # Reward 1 on every step forever: the true value is 1 / (1 - gamma) = 10 everywhere.
    # A time limit cuts episodes every 7 steps; bootstrapping each truncated trajectory with
    # the value of its next observation keeps every return at the true value.
    gamma, cuts, length = 0.9, 4, 7
    true_value = 1.0 / (1.0 - gamma)
    rewards = np.ones(cuts * length, dtype=dtype)
    values = np.full(cuts * length, true_value, dtype=dtype)
    offsets = np.arange(cuts + 1, dtype=np.int64) * length
    bootstrap = np.full(cuts, true_value, dtype=dtype)
    result = compute_gae_ragged(rewards, values, offsets, bootstrap, gamma, 0.95)
    np.testing.assert_allclose(result.returns, true_value, rtol=1e-5)
    np.testing.assert_allclose(result.advantages, 0.0, atol=1e-5)

    # Treating the time limit as termination (bootstrap 0) drops the future: the return at
    # each cut is 1.
    wrong = compute_gae_ragged(rewards, values, offsets, np.zeros(cuts, dtype), gamma, 0.95)
    np.testing.assert_allclose(wrong.returns[length - 1 :: length], 1.0, rtol=1e-5)

    # The drop-in gets the same with value_next = true value on a cut trajectory.
    alone = get_gae(rewards[:length], values[:length], dtype(true_value), gamma, 0.95)
    np.testing.assert_allclose(alone, 0.0, atol=1e-5)


def test_lambda_return_by_hand():
    # gamma 0.5, lambda 0.5, value_next 4: G2 = 1 + 2 = 3;
    # G1 = 0.25 * 3 + 0 + 0.25 * V2(2) = 1.25; G0 = 0.25 * 1.25 + 2 + 0.25 * V1(8) = 4.3125
    got = lambda_return(np.array([2.0, 0.0, 1.0]), np.array([0.0, 8.0, 2.0]), 0.5, 0.5, 4.0)
    np.testing.assert_array_equal(got, [4.3125, 1.25, 3.0])
    np.testing.assert_array_equal(discount_rewards(np.array([1.0, 0.0, 2.0]), 0.5, 4.0), [2, 2, 4])


# ---------------------------------------------------------------------------
# Drop-in behavior: what ML-Agents' numpy code accepts, and the dtype it gives.


def numpy_dtype_of_ml_agents_gae(rewards, value_estimates, value_next):
    """The dtype ML-Agents' get_gae returns, computed by numpy itself."""
    values_ext = np.append(value_estimates, value_next)
    return (rewards + 0.99 * values_ext[1:] - values_ext[:-1]).dtype


@pytest.mark.parametrize(
    "rewards, values, value_next",
    [
        (np.ones(5, np.float32), np.ones(5, np.float32), np.float32(0.5)),
        (np.ones(5, np.float32), np.ones(5, np.float32), np.array([0.5], np.float32)),
        (np.ones(5, np.float32), np.ones(5, np.float32), 0.5),  # python float promotes
        (np.ones(5, np.float32), np.ones(5, np.float64), np.float32(0.5)),
        (np.ones(5, np.float64), np.ones(5, np.float32), np.float32(0.5)),
        ([1.0, 1.0, 1.0, 1.0, 1.0], np.ones(5, np.float32), np.float32(0.5)),
        (np.ones(5, np.int64), np.ones(5, np.float32), np.float32(0.5)),
        (np.ones(5, np.float16), np.ones(5, np.float16), np.float16(0.5)),
    ],
)
def test_get_gae_gives_ml_agents_dtype(rewards, values, value_next):
    got = get_gae(rewards, values, value_next, 0.99, 0.95)
    assert got.dtype == numpy_dtype_of_ml_agents_gae(np.asarray(rewards), values, value_next)
    expected = reference_gae(rewards, values, value_next, 0.99, 0.95)
    np.testing.assert_allclose(
        got.astype(np.float64), expected, rtol=2e-3 if got.dtype == np.float16 else 1e-5
    )


def test_drop_ins_accept_non_contiguous_and_column_values():
    rng = np.random.default_rng(2)
    wide = rng.normal(size=(20, 2)).astype(np.float32)
    rewards, values = wide[:, 0], wide[:, 1]  # strided views
    expected = reference_gae(rewards, values, 0.0, 0.99, 0.95)
    assert_close(get_gae(rewards, values[:, None], np.float32(0.0)), expected, np.float32)
    assert_close(discount_rewards(rewards), reference_discount(rewards, 0.99, 0.0), np.float32)
    assert_close(
        lambda_return(rewards, values),
        reference_lambda_return(rewards, values, 0.99, 0.8, 0.0),
        np.float32,
    )
    assert discount_rewards(np.arange(3)).dtype == np.float64  # integers: exact float64


def test_outputs_are_fresh_writable_contiguous_arrays():
    rewards = np.ones(8, np.float32)
    offsets = np.array([0, 3, 8], np.int64)
    result = compute_gae_ragged(rewards, rewards, offsets, rewards[:2])
    for array in (*result, get_gae(rewards, rewards, np.float32(0))):
        assert array.flags.c_contiguous and array.flags.writeable
        assert not np.shares_memory(array, rewards)


# ---------------------------------------------------------------------------
# Bad input: InvalidArgumentError (a ValueError) naming the argument, before any work.


def ragged_inputs(dtype=np.float32):
    return {
        "rewards": np.ones(6, dtype),
        "values": np.ones(6, dtype),
        "offsets": np.array([0, 2, 6], np.int64),
        "value_next": np.zeros(2, dtype),
    }


@pytest.mark.parametrize(
    "change, argument, message",
    [
        ({"rewards": np.ones(6, np.int32)}, "rewards", "float32 or float64"),
        ({"rewards": [1.0] * 6}, "rewards", "float32 or float64"),
        ({"values": np.ones(6, np.float64)}, "values", "the dtype of rewards"),
        ({"value_next": np.zeros(2, np.float64)}, "value_next", "the dtype of rewards"),
        ({"values": np.ones(5, np.float32)}, "values", r"expected shape \(6\)"),
        ({"values": np.ones(12, np.float32)[::2]}, "values", "C-contiguous"),
        ({"rewards": np.ones((6, 1), np.float32)}, "rewards", r"expected shape \(\*\)"),
        ({"offsets": np.array([0, 2, 6], np.int32)}, "offsets", "int64"),
        ({"offsets": np.array([0, 7, 6])}, "offsets", "non-decreasing"),
        ({"offsets": np.array([0, 2, 9])}, "offsets", "must end at the number of steps 6"),
        ({"offsets": np.array([1, 2, 6])}, "offsets", "must start at 0"),
        ({"offsets": np.array([0, -1, 6])}, "offsets", "negative"),
        ({"offsets": np.array([0, 6])}, "offsets", "one more than value_next"),
        ({"gamma": float("nan")}, "gamma", "finite"),
        ({"lambd": float("inf")}, "lambd", "finite"),
    ],
)
def test_ragged_rejects_bad_input(change, argument, message):
    arguments = {**ragged_inputs(), **change}
    with pytest.raises(InvalidArgumentError, match=rf"^{argument}: .*{message}"):
        compute_gae_ragged(**arguments)


def test_drop_ins_reject_bad_input():
    ones = np.ones(4, np.float32)
    with pytest.raises(InvalidArgumentError, match="^value_estimates: expected 4 values"):
        get_gae(ones, np.ones(3, np.float32))
    with pytest.raises(InvalidArgumentError, match="^value_next: expected a single value"):
        get_gae(ones, ones, np.zeros(2))
    with pytest.raises(InvalidArgumentError, match="^r: expected a one-dimensional array"):
        discount_rewards(np.ones((2, 2)))
    with pytest.raises(InvalidArgumentError, match="^r: expected real numbers"):
        discount_rewards(np.array(["a", "b"]))
    with pytest.raises(InvalidArgumentError, match="^value_estimates: expected 4 values"):
        lambda_return(ones, ones[:2])
    with pytest.raises(InvalidArgumentError, match="^gamma: must be a finite number"):
        get_gae(ones, ones, 0.0, float("nan"))
    assert issubclass(InvalidArgumentError, ValueError)


def test_empty_inputs_give_empty_outputs():
    empty = np.zeros(0, np.float32)
    assert discount_rewards(empty).shape == (0,)
    assert get_gae(empty, empty, np.float32(0)).shape == (0,)
    ragged = compute_gae_ragged(empty, empty, np.array([0]), empty)
    assert ragged.advantages.shape == (0,)


# ---------------------------------------------------------------------------
# The parallel path, and processes forked after it ran.


def test_large_ragged_batch_equals_per_trajectory_drop_in():
    # About 300k steps: above the size where the kernel goes multi-threaded.
    rng = np.random.default_rng(4)
    lengths = rng.integers(0, 2000, size=300)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rewards = rng.normal(size=offsets[-1]).astype(np.float32)
    values = rng.normal(size=offsets[-1]).astype(np.float32)
    value_next = rng.normal(size=300).astype(np.float32)
    result = compute_gae_ragged(rewards, values, offsets, value_next)
    for i in range(300):
        span = slice(offsets[i], offsets[i + 1])
        np.testing.assert_array_equal(
            result.advantages[span], get_gae(rewards[span], values[span], value_next[i])
        )


# ---------------------------------------------------------------------------
# Writing into caller-provided arrays (out=).


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_arrays_receive_the_same_results(dtype):
    rng = np.random.default_rng(6)
    inputs = ragged_inputs(dtype)
    inputs["rewards"] = rng.normal(size=6).astype(dtype)
    fresh = compute_gae_ragged(**inputs)
    out = (np.full(6, np.nan, dtype), np.full(6, np.nan, dtype))
    result = compute_gae_ragged(**inputs, out=out)
    assert result.advantages is out[0] and result.returns is out[1]
    np.testing.assert_array_equal(out[0], fresh.advantages)
    np.testing.assert_array_equal(out[1], fresh.returns)


def test_bad_out_arrays_are_rejected_before_any_write():
    inputs = ragged_inputs()
    good = np.zeros(6, np.float32)
    read_only = np.zeros(6, np.float32)
    read_only.flags.writeable = False
    cases = [
        ((good,), "^out: expected a pair"),
        ((np.zeros(6, np.float64), good.copy()), r"^out\[0\]: .*float32"),
        ((good, np.zeros(5, np.float32)), r"^out\[1\]: expected shape \(6\)"),
        ((good, np.zeros(12, np.float32)[::2]), r"^out\[1\]: .*C-contiguous"),
        ((good, read_only), r"^out\[1\]: cannot write"),
        ((good, good), r"^out\[1\]: cannot write"),  # the same array twice
        ((inputs["rewards"], good), r"^out\[0\]: cannot write"),  # overwriting an input
    ]
    for out, message in cases:
        before = good.copy()
        with pytest.raises(InvalidArgumentError, match=message):
            compute_gae_ragged(**inputs, out=out)
        np.testing.assert_array_equal(good, before)
