"""Demonstrations against ML-Agents 1.1.0 itself, run in its anchor venv.

The same files go through ``mlagents.trainers.demo_loader`` (in a subprocess under the
anchor venv) and through ours; every field of every buffer must agree (shape, values as
float64, first and last rows), at sequence lengths 1 and 8. The large expert files are
covered by the recorded facts (tests/test_demo_loader.py); here the small ones, and the
demonstrations we write, which ML-Agents must read exactly as we do. Needs the anchor venv
built as docs/reference-venvs.md describes; without it there is nothing to compare
against.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from demo_facts import summarize_buffer, summarize_spec
from mlagents_fast.trainers.demo_loader import demo_to_buffer, load_demonstration
from repo_paths import FIXTURES, TESTS_DIR

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

pytestmark = pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)

DEMOS = os.path.join(FIXTURES, "demos")
SEQUENCE_LENGTHS = (1, 8)

ANCHOR_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from demo_facts import summarize_buffer, summarize_spec
from mlagents.trainers.demo_loader import demo_to_buffer, load_demonstration

report = {}
for path in json.loads(sys.argv[2]):
    spec, pairs, total = load_demonstration(path)
    entry = {"spec": summarize_spec(spec), "records": len(pairs), "total_expected": total}
    for sequence_length in json.loads(sys.argv[3]):
        try:
            entry[str(sequence_length)] = summarize_buffer(demo_to_buffer(path, sequence_length)[1])
        except Exception as error:
            entry[str(sequence_length)] = {"error": type(error).__name__, "message": str(error)}
    report[path] = entry
print(json.dumps(report))
"""


def mlagents_report(paths: list[str]) -> dict:
    result = subprocess.run(
        [
            str(ANCHOR_PYTHON),
            "-c",
            ANCHOR_SCRIPT,
            TESTS_DIR,
            json.dumps(paths),
            json.dumps(SEQUENCE_LENGTHS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the return code is asserted with stderr below
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def our_report(path: str) -> dict:
    spec, records, total = load_demonstration(path)
    entry = {"spec": summarize_spec(spec), "records": len(records), "total_expected": total}
    for sequence_length in SEQUENCE_LENGTHS:
        try:
            entry[str(sequence_length)] = summarize_buffer(demo_to_buffer(path, sequence_length)[1])
        except RuntimeError as error:
            entry[str(sequence_length)] = {"error": type(error).__name__, "message": str(error)}
    return entry


def assert_same_as_mlagents(paths: list[str]) -> None:
    reference = mlagents_report(paths)
    for path in paths:
        theirs, ours = reference[path], our_report(path)
        assert ours["spec"] == theirs["spec"], path
        assert ours["records"] == theirs["records"], path
        assert ours["total_expected"] == theirs["total_expected"], path
        for sequence_length in SEQUENCE_LENGTHS:
            key = str(sequence_length)
            if "error" in theirs[key]:
                assert "error" in ours[key], (path, key)
                assert theirs[key]["message"] in ours[key]["message"], (path, key)
            else:
                assert ours[key] == theirs[key], (path, key)


def test_small_unity_demonstrations_load_as_in_mlagents():
    names = [
        "Expert3DBall.demo",
        "ExpertBasic.demo",
        "testhybridvis.demo",
        "testdcvis.demo",
        "test_demo_dir",
    ]
    assert_same_as_mlagents([os.path.join(DEMOS, name) for name in names])


def test_demonstrations_we_record_load_in_mlagents_as_in_ours(tmp_path):
    from mlagents_fast.envs.builtin.experts import expert_for
    from mlagents_fast.envs.demo_writer import record_demonstration
    from mlagents_fast.envs.env_opener import make_env

    paths = []
    for env_name, steps in [
        ("3DBall", 150),
        ("GridWorld", 200),
        ("VisualGridWorld", 60),
        ("GoalSeeker1DHybrid", 200),
    ]:
        env = make_env(f"builtin:{env_name}", seed=4)
        try:
            summary = record_demonstration(
                env, expert_for(env_name), str(tmp_path / f"{env_name}.demo"), steps
            )
        finally:
            env.close()
        paths.append(summary.path)
    assert_same_as_mlagents(paths)
