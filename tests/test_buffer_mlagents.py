"""AgentBuffer and Trajectory against ML-Agents 1.1.0 itself, run in its anchor venv.

The same inputs go through ``mlagents.trainers`` (in a subprocess under the anchor venv) and
through ours: trajectories with and without group mates to AgentBuffers, get_batch over sizes,
training lengths and padding values, resequence_and_append of several trajectories, truncate.
Needs the anchor venv built as docs/reference-venvs.md describes; without it there is
nothing to compare against.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlagents_fast.exceptions import BufferException
from mlagents_fast.trainers.buffer import AgentBuffer, AgentBufferField, BufferKey
from mlagents_fast.trainers.trajectory import AgentExperience, AgentStatus, Trajectory

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

pytestmark = pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)

# Shared by both sides: builds trajectories from a seed with the given tuple classes, and
# dumps a buffer as {encoded key: nested lists}.
COMMON = r"""
import numpy as np

def make_trajectory(AgentExperience, AgentStatus, Trajectory, Action, LogProbs, steps, group, seed):
    rng = np.random.default_rng(seed)
    def obs():
        return [rng.random(3, dtype=np.float32), rng.random((2, 2), dtype=np.float32)]
    experiences = []
    for t in range(steps):
        mates = group if t != steps // 2 else max(group - 1, 0)
        status = [AgentStatus(obs=obs(), reward=float(t), done=t == steps - 1,
                              action=Action(continuous=rng.random(2, dtype=np.float32),
                                            discrete=np.array([t], np.int32)))
                  for _ in range(mates)]
        experiences.append(AgentExperience(
            obs=obs(), reward=float(rng.random()), done=t == steps - 1,
            action=Action(continuous=rng.random(2, dtype=np.float32),
                          discrete=np.array([t % 2, t % 3], np.int32)),
            action_probs=LogProbs(continuous=rng.random(2, dtype=np.float32),
                                  discrete=rng.random(2, dtype=np.float32)),
            action_mask=[np.array([False, t % 2 == 0]), np.array([True, False, False])],
            prev_action=np.array([t - 1, t], np.int32), interrupted=False,
            memory=rng.random(4, dtype=np.float32), group_status=status,
            group_reward=0.5 * t))
    return Trajectory(steps=experiences, next_obs=obs(),
                      next_group_obs=[obs() for _ in range(group)],
                      agent_id="a", behavior_id="b")

def plain(value):
    if isinstance(value, list):
        return [plain(v) for v in value]
    return np.asarray(value, dtype=np.float64).tolist()

def dump(buffer, encode):
    return {encode(key): [plain(row) for row in buffer[key]] for key in buffer.keys()}

def list_semantics(AgentBufferField):
    # A field used as the list it is in ML-Agents: what each step gives, JSON-ready.
    out = {}
    f = AgentBufferField()
    for i in range(6):
        f.append(np.float32(i), padding_value=1.0)
    out["slice_eq"] = f[1:3] == [1.0, 2.0]
    out["slice_eq_type"] = type(f[1:3] == [1.0, 2.0]).__name__
    out["slice_ne"] = f[1:3] == [1.0, 5.0]
    out["slice_len"] = len(f[2:])
    out["step_slice"] = [float(x) for x in f[::-2]]
    out["last"] = float(f[-1])
    out["add"] = [float(x) for x in f + [9.0]]
    out["radd"] = [float(x) for x in [9.0] + f]
    out["contains"] = [bool(2.0 in f), bool(7.0 in f)]
    out["batch"] = [float(x) for x in f.get_batch(training_length=4)]
    out["batch_eq"] = f.get_batch(batch_size=1, training_length=2) == [4.0, 5.0]
    out["overlapping"] = [float(x) for x in f.get_batch(2, 3, sequential=False)]
    f[1] = np.float32(7)
    f[2:4] = [np.float32(8)] * 3
    del f[0]
    f.insert(1, np.float32(-1))
    out["popped"] = float(f.pop())
    out["after_edits"] = [float(x) for x in f]
    out["to_ndarray"] = f.to_ndarray().tolist()
    out["padded"] = np.asarray(f.padded_to_batch()).tolist()
    f.set([np.float32(3), np.float32(4)])
    out["after_set"] = [float(x) for x in f]
    out["eq_after_set"] = f == [3.0, 4.0]
    f.extend([np.float32(5)])
    out["after_extend"] = [float(x) for x in f]
    f.reset_field()
    out["after_reset"] = len(f)
    g = AgentBufferField()
    g.append([np.array([1.0]), np.array([2.0])])
    g.append([])
    g.append([np.array([3.0])])
    out["group_contains_lists"] = g.contains_lists
    out["group_entry_eq"] = [g[1] == [], g[2] == [np.array([3.0])]]
    out["group_entry_len"] = len(g[0])
    out["group_slice_eq"] = g[1:] == [[], [np.array([3.0])]]
    out["group_padded"] = [np.asarray(a).tolist() for a in g.padded_to_batch(pad_value=-1)]
    out["group_batch"] = [
        [np.asarray(m).tolist() for m in entry] for entry in g.get_batch(training_length=2)
    ]
    out["group_overlapping"] = [len(e) for e in g.get_batch(2, 2, sequential=False)]
    out["empty_padded"] = AgentBufferField().padded_to_batch()
    h = AgentBufferField([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    out["matrix"] = h.to_ndarray().tolist()
    out["matrix_row"] = h[1].tolist()
    out["matrix_slice_len"] = len(h[:1])
    return out
"""

ANCHOR_SCRIPT = (
    COMMON
    + r"""
import json, sys
from mlagents.trainers.buffer import AgentBuffer, AgentBufferField, BufferException
from mlagents.trainers.trajectory import AgentExperience, AgentStatus, Trajectory
from mlagents_envs.base_env import ActionTuple
from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple

cases = json.load(open(sys.argv[1]))
out = {"trajectories": [], "get_batch": [], "resequence": None, "truncate": [],
       "list_semantics": list_semantics(AgentBufferField)}
for steps, group, seed in cases["trajectories"]:
    trajectory = make_trajectory(AgentExperience, AgentStatus, Trajectory, ActionTuple,
                                 LogProbsTuple, steps, group, seed)
    out["trajectories"].append(dump(trajectory.to_agentbuffer(), AgentBuffer._encode_key))
for length, padding, batch_size, training_length, sequential in cases["get_batch"]:
    field = AgentBufferField()
    for i in range(length):
        field.append(np.array([i + 1.0, -2.0 * i], dtype=np.float32), padding_value=padding)
    try:
        out["get_batch"].append(plain(list(field.get_batch(batch_size, training_length, sequential))))
    except BufferException:
        out["get_batch"].append("BufferException")
update = AgentBuffer()
for steps, seed in cases["resequence"]:
    make_trajectory(AgentExperience, AgentStatus, Trajectory, ActionTuple, LogProbsTuple,
                    steps, 0, seed).to_agentbuffer().resequence_and_append(update, training_length=4)
out["resequence"] = dump(update, AgentBuffer._encode_key)
for max_length, sequence_length in cases["truncate"]:
    buffer = AgentBuffer()
    for i in range(23):
        buffer["x"].append(np.array([float(i)]))
    buffer.truncate(max_length, sequence_length)
    out["truncate"].append(plain(list(buffer["x"])))
json.dump(out, open(sys.argv[2], "w"))
"""
)

namespace: dict = {}
# The builder must be the very same text on both sides, and the anchor side cannot import
# from this repository's test tree without our package on its path: run the text here too.
exec(COMMON, namespace)  # noqa: S102


class _Action:
    def __init__(self, continuous, discrete):
        self.continuous, self.discrete = continuous, discrete


CASES = {
    "trajectories": [[1, 0, 0], [7, 0, 1], [6, 2, 2]],
    "get_batch": [
        [length, padding, batch_size, training_length, sequential]
        for length in (0, 1, 5, 8)
        for padding in (0.0, 1.0)
        for batch_size in (None, 0, 2, 3)
        for training_length in (1, 3, 4)
        for sequential in (True, False)
        if not (length == 0 and sequential)  # ML-Agents pads an empty field with rows[-1]
    ],
    "resequence": [[5, 10], [8, 11], [3, 12]],
    "truncate": [[7, 1], [7, 3], [50, 4], [0, 1], [22, 5]],
}


@pytest.fixture(scope="module")
def anchor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anchor")
    (folder / "cases.json").write_text(json.dumps(CASES))
    (folder / "script.py").write_text(ANCHOR_SCRIPT)
    proc = subprocess.run(
        [str(ANCHOR_PYTHON), "script.py", "cases.json", "out.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / "out.json").read_text())


def ours(trajectory_args) -> dict:
    trajectory = namespace["make_trajectory"](
        AgentExperience, AgentStatus, Trajectory, _Action, _Action, *trajectory_args
    )
    return namespace["dump"](trajectory.to_agentbuffer(), AgentBuffer._encode_key)


def as_float32(value):
    """ML-Agents keeps Python floats (float64) where we store float32: compare at float32."""
    return np.asarray(value, dtype=np.float32)


@pytest.mark.parametrize("case", range(len(CASES["trajectories"])))
def test_to_agentbuffer_matches_ml_agents(anchor, case):
    theirs = anchor["trajectories"][case]
    mine = ours(CASES["trajectories"][case])
    has_group = CASES["trajectories"][case][1] > 0
    group_list_fields = {
        key
        for key in theirs
        if key.startswith(("group_obs", "next_group_obs"))
        or key
        in {
            "group_continuous_action",
            "group_discrete_aaction",
            "groupmate_reward",
            "group_next_cont_action",
            "group_next_disc_action",
            "group_dones",
        }
    }
    if has_group:
        assert set(mine) == set(theirs)
    else:  # documented: no group mates, no ragged group fields
        assert set(mine) == set(theirs) - group_list_fields
    for key, rows in mine.items():
        if key in group_list_fields:
            assert rows == theirs[key], key
        else:
            np.testing.assert_array_equal(as_float32(rows), as_float32(theirs[key]), err_msg=key)


def test_get_batch_matches_ml_agents(anchor):
    for case, expected in zip(CASES["get_batch"], anchor["get_batch"]):
        length, padding, batch_size, training_length, sequential = case
        field = AgentBufferField()
        for i in range(length):
            field.append(np.array([i + 1.0, -2.0 * i], dtype=np.float32), padding_value=padding)
        if expected == "BufferException":
            with pytest.raises(BufferException):
                field.get_batch(batch_size, training_length, sequential)
            continue
        got = field.get_batch(batch_size, training_length, sequential)
        assert np.asarray(got, dtype=np.float64).tolist() == expected, case


def test_resequence_and_append_matches_ml_agents(anchor):
    update = AgentBuffer()
    for steps, seed in CASES["resequence"]:
        ours_trajectory = namespace["make_trajectory"](
            AgentExperience, AgentStatus, Trajectory, _Action, _Action, steps, 0, seed
        )
        ours_trajectory.to_agentbuffer().resequence_and_append(update, training_length=4)
    mine = namespace["dump"](update, AgentBuffer._encode_key)
    theirs = anchor["resequence"]
    for key, rows in mine.items():
        np.testing.assert_array_equal(as_float32(rows), as_float32(theirs[key]), err_msg=key)
    assert len(mine[BufferKey.MASKS.value]) == 8 + 8 + 4


def test_truncate_matches_ml_agents(anchor):
    for (max_length, sequence_length), expected in zip(CASES["truncate"], anchor["truncate"]):
        buffer = AgentBuffer()
        buffer[BufferKey.MASKS].extend(np.arange(23, dtype=np.float64)[:, None])
        buffer.truncate(max_length, sequence_length)
        assert np.asarray(buffer[BufferKey.MASKS]).tolist() == expected


def test_fields_behave_as_ml_agents_lists(anchor):
    theirs = anchor["list_semantics"]
    mine = namespace["list_semantics"](AgentBufferField)
    assert mine.keys() == theirs.keys()
    for name, value in theirs.items():
        assert mine[name] == value, name
