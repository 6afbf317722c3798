"""The drop-ins against ML-Agents 1.1.0 itself, run in its anchor venv.

One subprocess computes ML-Agents' ``get_gae``, ``discount_rewards`` (trainer_utils) and
``lambda_return`` (poca.trainer) on the cases below; ours must give the same dtype and the
same values within float tolerance. Needs the anchor venv described in
docs/reference-venvs.md; without it there is nothing to compare against.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from mlagents_fast.trainers.trainer.trainer_utils import discount_rewards, get_gae, lambda_return

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

pytestmark = pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)

# Runs under the anchor venv: reads cases.json + inputs.npz, writes outputs.npz.
ANCHOR_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from mlagents.trainers.poca.trainer import lambda_return
    from mlagents.trainers.trainer.trainer_utils import discount_rewards, get_gae

    folder = sys.argv[1]
    cases = json.load(open(folder + "/cases.json"))
    arrays = np.load(folder + "/inputs.npz")

    def value_next(case):
        kind, value = case["value_next"]
        return {"float": float, "float32": np.float32, "array32": lambda v: np.array([v], np.float32)}[kind](value)

    outputs = {}
    for i, case in enumerate(cases):
        rewards = arrays[f"{i}_rewards"]
        if case["rewards_as_list"]:
            rewards = rewards.tolist()
        values = arrays[f"{i}_values"]
        if case["function"] == "get_gae":
            out = get_gae(rewards, values, value_next(case), case["gamma"], case["lambd"])
        elif case["function"] == "discount_rewards":
            out = discount_rewards(rewards, case["gamma"], value_next(case))
        else:
            out = lambda_return(rewards, values, case["gamma"], case["lambd"], value_next(case))
        outputs[str(i)] = out
    np.savez(folder + "/outputs.npz", **outputs)
    """
)


def make_cases():
    rng = np.random.default_rng(12)
    cases, arrays = [], {}

    def add(function, length, dtype, value_next, lambd=0.95, rewards_as_list=False, column=False):
        i = len(cases)
        arrays[f"{i}_rewards"] = rng.normal(size=length).astype(dtype)
        values = rng.normal(size=length).astype(dtype)
        arrays[f"{i}_values"] = values[:, None] if column else values
        cases.append(
            {
                "function": function,
                "gamma": 0.99,
                "lambd": lambd,
                "value_next": value_next,
                "rewards_as_list": rewards_as_list,
            }
        )

    for length in (1, 3, 1000):
        for dtype in (np.float32, np.float64):
            add("get_gae", length, dtype, ["float32", 0.7])
            add("discount_rewards", length, dtype, ["float32", -0.3])
            add("lambda_return", length, dtype, ["float32", 0.2], lambd=0.8)
    add("get_gae", 200, np.float32, ["float", 0.0])  # Python float: ML-Agents promotes
    add("get_gae", 200, np.float32, ["array32", 1.5])  # value from a [1] array
    add("get_gae", 200, np.float32, ["float32", 1.5], column=True)  # values shaped [T, 1]
    add("get_gae", 200, np.float64, ["float32", 1.5], rewards_as_list=True)
    add("discount_rewards", 200, np.float32, ["float", 2.0])
    add("lambda_return", 200, np.float32, ["float", 2.0], lambd=0.5)
    return cases, arrays


def ours(case, rewards, values):
    kind, value = case["value_next"]
    value_next = {
        "float": float,
        "float32": np.float32,
        "array32": lambda v: np.array([v], np.float32),
    }[kind](value)
    if case["rewards_as_list"]:
        rewards = rewards.tolist()
    if case["function"] == "get_gae":
        return get_gae(rewards, values, value_next, case["gamma"], case["lambd"])
    if case["function"] == "discount_rewards":
        return discount_rewards(rewards, case["gamma"], value_next)
    return lambda_return(rewards, values, case["gamma"], case["lambd"], value_next)


def test_drop_ins_match_ml_agents_1_1_0(tmp_path):
    cases, arrays = make_cases()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    np.savez(tmp_path / "inputs.npz", **arrays)
    proc = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", ANCHOR_SCRIPT, str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = np.load(tmp_path / "outputs.npz")
    for i, case in enumerate(cases):
        theirs = expected[str(i)]
        got = ours(case, arrays[f"{i}_rewards"], arrays[f"{i}_values"])
        label = f"case {i}: {case}"
        assert got.dtype == theirs.dtype, label
        assert got.shape == theirs.shape, label
        # ML-Agents under numpy 1.23 accumulates float32 inputs in float64 scalars;
        # we accumulate in the array's dtype (as numpy 2 does): float32 rounding apart.
        scale = max(1.0, float(np.max(np.abs(theirs), initial=0.0)))
        atol = (2e-5 if theirs.dtype == np.float32 else 1e-12) * scale
        np.testing.assert_allclose(got, theirs, rtol=0, atol=atol, err_msg=label)
