"""Group mates in trajectories: our AgentProcessor against ML-Agents 1.1.0's own, side by side.

One scripted run (two groups and an agent outside any group; an agent that leaves its group
mid-episode, one that joins late, one that skips a decision, a group episode that ends for
everyone, an interrupted agent, trajectories cut at the time horizon) is fed to both
processors; every published trajectory must carry the same group statuses (observations,
actions, rewards, dones), next group observations and ``all_group_dones_reached``. Needs the
anchor venv (ML-Agents 1.1.0); skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mlagents_fast.envs.base_env import ActionTuple, DecisionSteps, TerminalSteps
from mlagents_fast.trainers.agent_processor import AgentManagerQueue, AgentProcessor
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.torch_entities.action_log_probs import LogProbsTuple

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

# The scripted run, shared by both sides (plain numpy). Each step lists the agents that ask
# for a decision and those whose episode ended: (agent id, group id, reward, group reward)
# plus, for terminal agents, interrupted.
SCRIPT = textwrap.dedent(
    """
    import numpy as np

    G1, G2 = 7, 9
    STEPS = [
        dict(decision=[(0, G1, 0, 0), (1, G1, 0, 0), (2, G1, 0, 0), (3, G2, 0, 0), (4, 0, 0, 0)]),
        dict(decision=[(0, G1, .1, 0), (1, G1, .2, 0), (2, G1, .3, 0), (3, G2, .4, 0),
                       (4, 0, .5, 0)]),
        # Agent 1 leaves group G1 (its episode ends, the others go on); 5 joins G2.
        dict(terminal=[(1, G1, -.5, 0, False)],
             decision=[(0, G1, .1, 0), (2, G1, .2, 0), (3, G2, .3, 0), (4, 0, .4, 0),
                       (5, G2, 0, 0)]),
        dict(decision=[(0, G1, .1, .05), (2, G1, .2, .05), (3, G2, .3, 0), (4, 0, .4, 0),
                       (5, G2, .6, 0)]),
        # Agent 3 skips a decision: its mates see its older status.
        dict(decision=[(0, G1, .1, .05), (2, G1, .2, .05), (4, 0, .4, 0), (5, G2, .6, 0)]),
        # G1's episode ends for everyone left; the same ids start the next episode.
        dict(terminal=[(0, G1, 1., 1., False), (2, G1, 1., 1., False)],
             decision=[(0, G1, 0, 0), (2, G1, 0, 0), (3, G2, .3, 0), (4, 0, .4, 0),
                       (5, G2, .6, 0)]),
        # Agent 4 (no group) is interrupted; agent 3 too, while 5 goes on.
        dict(terminal=[(4, 0, .1, 0, True), (3, G2, .2, 0, True)],
             decision=[(0, G1, .1, 0), (2, G1, .2, 0), (4, 0, 0, 0), (5, G2, .6, 0),
                       (3, G2, 0, 0)]),
        dict(decision=[(0, G1, .1, 0), (2, G1, .2, 0), (4, 0, .1, 0), (5, G2, .6, 0),
                       (3, G2, .1, 0)]),
        dict(terminal=[(0, G1, -1., -1., False), (2, G1, -1., -1., False),
                       (5, G2, 1., 0, False), (3, G2, 1., 0, False)],
             decision=[(4, 0, .1, 0)]),
    ]

    def obs(agent_id, step):
        return [np.array([agent_id, step, agent_id * 0.1 + step], dtype=np.float32),
                np.array([[step, -agent_id]], dtype=np.float32)]

    def actions(agent_ids, step):
        ids = np.asarray(agent_ids, dtype=np.float32)
        continuous = (ids + 0.01 * step)[:, None].astype(np.float32)
        discrete = ((np.asarray(agent_ids) + step) % 3)[:, None].astype(np.int32)
        return continuous, discrete

    def columns(entries, step, terminal):
        n = len(entries)
        ids = np.array([e[0] for e in entries], dtype=np.int32)
        per_agent = [obs(e[0], step) for e in entries]
        observations = [
            np.stack([o[k] for o in per_agent]) if n else np.zeros((0, *obs(0, 0)[k].shape),
                                                                    np.float32)
            for k in range(2)
        ]
        out = dict(
            obs=observations,
            reward=np.array([e[2] for e in entries], dtype=np.float32),
            agent_id=ids,
            group_id=np.array([e[1] for e in entries], dtype=np.int32),
            group_reward=np.array([e[3] for e in entries], dtype=np.float32),
        )
        if terminal:
            out["interrupted"] = np.array([e[4] for e in entries], dtype=bool)
        return out

    def group_arrays(statuses_per_step, next_group_obs):
        # Padded (T, W, ...) arrays of per-step group statuses (both sides compare these).
        counts = [len(s) for s in statuses_per_step]
        width = max(max(counts), len(next_group_obs))
        length = len(statuses_per_step)
        out = {
            "counts": np.array(counts),
            "obs0": np.full((length, width, 3), np.nan, np.float32),
            "obs1": np.full((length, width, 1, 2), np.nan, np.float32),
            "cont": np.zeros((length, width, 1), np.float32),
            "disc": np.zeros((length, width, 1), np.int32),
            "reward": np.zeros((length, width), np.float32),
            "done": np.zeros((length, width), bool),
            "next0": np.full((width, 3), np.nan, np.float32),
            "next1": np.full((width, 1, 2), np.nan, np.float32),
        }
        for t, statuses in enumerate(statuses_per_step):
            for j, status in enumerate(statuses):
                out["obs0"][t, j] = status.obs[0]
                out["obs1"][t, j] = status.obs[1]
                out["cont"][t, j] = status.action.continuous
                out["disc"][t, j] = status.action.discrete
                out["reward"][t, j] = status.reward
                out["done"][t, j] = status.done
        for j, mate_obs in enumerate(next_group_obs):
            out["next0"][j] = mate_obs[0]
            out["next1"][j] = mate_obs[1]
        return out
    """
)

TIME_HORIZON = 3
_LOCAL: dict = {}
exec(SCRIPT, _LOCAL)  # noqa: S102 - our own constant code, shared with the anchor side


ANCHOR_SCRIPT = SCRIPT + textwrap.dedent(
    """
    import sys
    from mlagents_envs.base_env import ActionTuple, DecisionSteps, TerminalSteps
    from mlagents.trainers.agent_processor import AgentProcessor, AgentManagerQueue
    from mlagents.trainers.action_info import ActionInfo
    from mlagents.trainers.stats import StatsReporter
    from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple

    class Policy:
        use_recurrent = False
        def retrieve_previous_action(self, ids):
            return np.zeros((len(ids), 1), np.int32)
        def save_previous_action(self, ids, action):
            pass
        def remove_previous_action(self, ids):
            pass
        def remove_memories(self, ids):
            pass

    processor = AgentProcessor(Policy(), "Team?team=0", StatsReporter("Team"), TIME_HORIZON)
    queue = AgentManagerQueue("Team?team=0")
    processor.publish_trajectory_queue(queue)
    info = ActionInfo.empty()
    for step, entry in enumerate(STEPS):
        d = columns(entry.get("decision", []), step, False)
        t = columns(entry.get("terminal", []), step, True)
        decision = DecisionSteps(d["obs"], d["reward"], d["agent_id"], None, d["group_id"],
                                 d["group_reward"])
        terminal = TerminalSteps(t["obs"], t["reward"], t["interrupted"], t["agent_id"],
                                 t["group_id"], t["group_reward"])
        processor.add_experiences(decision, terminal, 0, info)
        continuous, discrete = actions(d["agent_id"], step)
        action = ActionTuple(continuous=continuous, discrete=discrete)
        log_probs = LogProbsTuple(continuous=-continuous, discrete=-discrete.astype(np.float32))
        info = ActionInfo(action, action, {"action": action, "log_probs": log_probs},
                          list(d["agent_id"]))
    saved = {}
    index = 0
    while not queue.empty():
        trajectory = queue.get_nowait()
        arrays = group_arrays([s.group_status for s in trajectory.steps],
                              trajectory.next_group_obs)
        for name, value in arrays.items():
            saved[f"{index}/{name}"] = value
        saved[f"{index}/agent"] = np.array(trajectory.agent_id)
        saved[f"{index}/all_done"] = np.array(trajectory.all_group_dones_reached)
        saved[f"{index}/ended"] = np.array(trajectory.done_reached)
        index += 1
    np.savez(sys.argv[1], count=index, **saved)
    """
).replace("TIME_HORIZON", str(TIME_HORIZON))


def _our_trajectories():
    StatsReporter.reset()
    policy = SimpleNamespace(use_recurrent=False)
    processor = AgentProcessor(policy, "Team?team=0", StatsReporter("Team"), TIME_HORIZON)
    queue = AgentManagerQueue("Team?team=0")
    processor.publish_trajectory_queue(queue)
    info = SimpleNamespace(outputs={}, agent_ids=[])
    for step, entry in enumerate(_LOCAL["STEPS"]):
        d = _LOCAL["columns"](entry.get("decision", []), step, False)
        t = _LOCAL["columns"](entry.get("terminal", []), step, True)
        decision = DecisionSteps(
            d["obs"], d["reward"], d["agent_id"], None, d["group_id"], d["group_reward"]
        )
        terminal = TerminalSteps(
            t["obs"], t["reward"], t["interrupted"], t["agent_id"], t["group_id"], t["group_reward"]
        )
        processor.add_experiences(decision, terminal, 0, info)
        continuous, discrete = _LOCAL["actions"](d["agent_id"], step)
        action = ActionTuple(continuous=continuous, discrete=discrete)
        log_probs = LogProbsTuple(continuous=-continuous, discrete=-discrete.astype(np.float32))
        info = SimpleNamespace(
            outputs={"action": action, "log_probs": log_probs}, agent_ids=list(d["agent_id"])
        )
    trajectories = []
    while not queue.empty():
        trajectories.append(queue.get_nowait())
    StatsReporter.reset()
    return trajectories


def test_group_columns_hold_what_the_steps_view_shows():
    trajectories = _our_trajectories()
    assert trajectories and all(t.group_counts is not None for t in trajectories)
    for trajectory in trajectories:
        arrays = _LOCAL["group_arrays"](
            [step.group_status for step in trajectory.steps], trajectory.next_group_obs
        )
        width = trajectory.group_width
        np.testing.assert_array_equal(arrays["counts"], trajectory.group_counts)
        np.testing.assert_array_equal(arrays["obs0"], trajectory.group_obs[0][:, :width])
        np.testing.assert_array_equal(arrays["next1"], trajectory.group_next_obs[1])
    # The agent outside any group never has mates; the agent that left had two.
    by_agent = {}
    for trajectory in trajectories:
        by_agent.setdefault(trajectory.agent_id, []).append(trajectory)
    assert all(int(t.group_counts.max()) == 0 for t in by_agent["agent_0-4"])
    leaver = by_agent["agent_0-1"][-1]
    assert leaver.terminated and not leaver.all_group_dones_reached
    assert leaver.next_group_count == 2


@pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)
def test_group_statuses_match_ml_agents_agent_processor(tmp_path):
    out = tmp_path / "anchor.npz"
    completed = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", ANCHOR_SCRIPT, str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    expected = np.load(out)
    ours = _our_trajectories()
    assert int(expected["count"]) == len(ours)
    for index, trajectory in enumerate(ours):
        assert str(expected[f"{index}/agent"]) == trajectory.agent_id
        assert bool(expected[f"{index}/ended"]) == trajectory.done_reached
        assert bool(expected[f"{index}/all_done"]) == trajectory.all_group_dones_reached, index
        arrays = _LOCAL["group_arrays"](
            [step.group_status for step in trajectory.steps], trajectory.next_group_obs
        )
        for name, value in arrays.items():
            np.testing.assert_array_equal(
                value, expected[f"{index}/{name}"], err_msg=f"trajectory {index} {name}"
            )
