"""Self-play: the GhostController and GhostTrainer against ML-Agents 1.1.0's, side by side,
and through the trainer factory and controller on a pure-Python two-team env (team changes
reset the environments, ELO in TensorBoard stats and training_status.json, snapshots in
checkpoints and back on --resume)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from mlagents_fast.trainers.agent_processor import AgentManagerQueue
from mlagents_fast.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_fast.trainers.ghost.controller import GhostController
from mlagents_fast.trainers.ghost.trainer import GhostTrainer
from mlagents_fast.trainers.model_saver.torch_model_saver import load_checkpoint_file
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions, SelfPlaySettings, TrainerSettings
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.training_status import GlobalTrainingStatus
from multiagent_fixtures import two_team_env

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

# A scripted self-play session, run by both sides with their own classes: a stand-in wrapped
# trainer (counts its steps, publishes a new policy version every 40 steps) and two teams
# whose queues get trajectories that end in wins, losses, draws, interruptions or not at all.
SCRIPT = textwrap.dedent(
    """
    from collections import deque
    from types import SimpleNamespace as SN

    import numpy as np

    def run_session(GhostTrainer, GhostController, AgentManagerQueue, BehaviorIdentifiers,
                    TrainerSettings, SelfPlaySettings, StatsReporter):
        class Policy:
            def __init__(self):
                self.w = -1.0
            def get_weights(self):
                return {"w": self.w}
            def load_weights(self, weights):
                self.w = weights["w"]

        class Wrapped:
            threaded = False
            _next_summary_step = 0  # ML-Agents' ghost reads it
            def __init__(self):
                self.stats_reporter = StatsReporter("Duel")
                self.reward_buffer = deque()
                self.steps = 0
                self.version = 0
                self.policy = None
                self.trajectory_queues = []
                self.policy_queues = []
            @property
            def get_step(self):
                return self.steps
            def create_policy(self, parsed, spec):
                return Policy()
            def add_policy(self, parsed, policy):
                self.policy = policy
                policy.w = 0.0
            def get_policy(self, name):
                return self.policy
            def subscribe_trajectory_queue(self, queue):
                self.trajectory_queues.append(queue)
            def publish_policy_queue(self, queue):
                self.policy_queues.append(queue)
            def advance(self):
                for queue in self.trajectory_queues:
                    while not queue.empty():
                        self.steps += len(queue.get_nowait().steps)
                if self.steps >= (self.version + 1) * 40:
                    self.version += 1
                    self.policy.w = float(self.version)
                    for queue in self.policy_queues:
                        queue.put(self.policy)
            def save_model(self):
                pass
            def end_episode(self):
                pass

        controller = GhostController()
        settings = TrainerSettings(
            max_steps=100000,
            self_play=SelfPlaySettings(save_steps=30, team_change=120, swap_steps=25, window=3,
                                       play_against_latest_model_ratio=0.4, initial_elo=1000.0),
        )
        ghost = GhostTrainer(Wrapped(), "Duel", controller, 10, settings, True, "unused")
        policy_queues, trajectory_queues = [], []
        for team in (0, 1):
            parsed = BehaviorIdentifiers.from_name_behavior_id(f"Duel?team={team}")
            ghost.add_policy(parsed, ghost.create_policy(parsed, None))
            policy_queues.append(AgentManagerQueue(parsed.behavior_id))
            trajectory_queues.append(AgentManagerQueue(parsed.behavior_id))
            ghost.publish_policy_queue(policy_queues[-1])
            ghost.subscribe_trajectory_queue(trajectory_queues[-1])
        np.random.seed(3)
        trace = []
        for i in range(80):
            for team in (0, 1):
                for k in range(1 + (i + team) % 2):
                    length = 5 + (i * 7 + team * 3 + k) % 5
                    outcome = (i + k + team) % 4
                    last = {0: 1.0, 1: -1.0, 2: 0.0, 3: 0.0}[outcome]
                    steps = [SN(reward=0.0, group_reward=0.0)] * (length - 1)
                    steps.append(SN(reward=last * 0.5, group_reward=last * 0.5))
                    trajectory_queues[team].put(SN(
                        steps=steps, done_reached=outcome != 3, all_group_dones_reached=True,
                        interrupted=i % 7 == 0,
                    ))
            ghost.advance()
            reset = controller.should_reset()
            got = []
            for queue in policy_queues:
                newest = None
                while not queue.empty():
                    newest = queue.get_nowait()
                got.append(-9.0 if newest is None else newest.w)
            trace.append([i, controller.get_learning_team, ghost.get_step, ghost.ghost_step,
                          ghost.snapshot_counter, ghost.current_opponent, float(reset),
                          *ghost.policy_elos, *got])
        return np.array(trace, dtype=np.float64)
    """
)

ANCHOR_SCRIPT = SCRIPT + textwrap.dedent(
    """
    import sys
    import mlagents.trainers.trainer  # noqa: F401 - first, or ML-Agents' ghost imports cycle
    from mlagents.trainers.agent_processor import AgentManagerQueue
    from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
    from mlagents.trainers.ghost.controller import GhostController
    from mlagents.trainers.ghost.trainer import GhostTrainer
    from mlagents.trainers.settings import SelfPlaySettings, TrainerSettings
    from mlagents.trainers.stats import StatsReporter
    from mlagents.plugins.trainer_type import register_trainer_plugins

    register_trainer_plugins()  # makes trainer_type "ppo" known to TrainerSettings
    np.save(sys.argv[1], run_session(GhostTrainer, GhostController, AgentManagerQueue,
                                     BehaviorIdentifiers, TrainerSettings, SelfPlaySettings,
                                     StatsReporter))
    """
)


@pytest.fixture(autouse=True)
def _clean_state():
    StatsReporter.reset()
    GlobalTrainingStatus.reset()
    yield
    StatsReporter.reset()
    GlobalTrainingStatus.reset()


def _our_trace() -> np.ndarray:
    namespace: dict = {}
    exec(SCRIPT, namespace)  # noqa: S102 - our own constant code, shared with the anchor side
    return namespace["run_session"](
        GhostTrainer,
        GhostController,
        AgentManagerQueue,
        BehaviorIdentifiers,
        TrainerSettings,
        SelfPlaySettings,
        StatsReporter,
    )


def test_elo_follows_ml_agents_formula():
    controller = GhostController()

    class Opponent:
        elo = 1400.0

        def get_opponent_elo(self):
            return self.elo

        def change_opponent_elo(self, change):
            self.elo -= change

    opponent = Opponent()
    controller.subscribe_team_id(0, object())  # learns
    controller.subscribe_team_id(1, opponent)
    expected = 1.0 - 1.0 / (1.0 + 10 ** ((1400.0 - 1200.0) / 400))
    assert controller.compute_elo_rating_changes(1200.0, 1.0) == pytest.approx(expected)
    assert opponent.elo == pytest.approx(1400.0 - expected)
    assert controller.get_learning_team == 0 and not controller.should_reset()
    controller.change_training_team(10)
    assert controller.get_learning_team == 1
    assert controller.should_reset() and not controller.should_reset()
    controller.change_training_team(20)
    assert controller.get_learning_team == 0


def test_session_trace_covers_swaps_saves_team_changes_and_elo():
    trace = _our_trace()
    learning_team = trace[:, 1]
    assert set(learning_team) == {0.0, 1.0}  # the learning team changed (and back)
    assert trace[:, 6].sum() >= 2  # each change asked for a reset
    assert trace[-1, 3] > 0  # ghost steps were counted
    assert len(set(trace[:, 5])) > 1  # opponents swapped between snapshots and the latest
    elos = trace[:, 7:11]
    assert not np.allclose(elos, 1000.0)  # games moved the ratings


@pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)
def test_ghost_trainer_matches_ml_agents_step_by_step(tmp_path):
    out = tmp_path / "trace.npy"
    completed = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", ANCHOR_SCRIPT, str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    expected = np.load(out)
    ours = _our_trace()
    columns = "step learning_team step ghost_step counter opponent reset elo0 elo1 elo2 elo3 "
    columns += "policy_team0 policy_team1"
    for row_ours, row_theirs in zip(ours, expected, strict=True):
        np.testing.assert_allclose(
            row_ours, row_theirs, rtol=1e-9, err_msg=f"advance {int(row_theirs[0])}: {columns}"
        )


def duel_options(trainer_type: str = "ppo", max_steps: int = 500) -> RunOptions:
    hyperparameters = {"batch_size": 32, "buffer_size": 96, "learning_rate": 3e-3}
    if trainer_type == "sac":
        hyperparameters = {"batch_size": 32, "buffer_size": 500, "buffer_init_steps": 50}
    return RunOptions.from_dict(
        {
            "behaviors": {
                "Duel": {
                    "trainer_type": trainer_type,
                    "hyperparameters": hyperparameters,
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "max_steps": max_steps,
                    "time_horizon": 8,
                    "summary_freq": 100,
                    "checkpoint_interval": 200,
                    "self_play": {
                        "save_steps": 60,
                        "team_change": 150,
                        "swap_steps": 40,
                        "window": 4,
                        "initial_elo": 1300.0,
                    },
                }
            }
        }
    )


@pytest.mark.parametrize("trainer_type", ["ppo", "sac", "poca"])
def test_self_play_trains_each_trainer_type_and_records_elo(tmp_path, trainer_type, monkeypatch):
    resets = []
    from mlagents_fast.trainers.trainer_controller import TrainerController

    original = TrainerController._reset_env

    def counting_reset(self, env_manager):
        resets.append(self.ghost_controller.get_learning_team)
        original(self, env_manager)

    monkeypatch.setattr(TrainerController, "_reset_env", counting_reset)
    result = train(
        two_team_env(seed=2),
        duel_options(trainer_type, max_steps=400),
        run_id="duel",
        results_dir=tmp_path,
        seed=4,
    )
    assert result.steps["Duel"] >= 400
    # The first reset starts the run (no team yet); team changes every 150 steps reset again.
    assert resets[0] == -1 and set(resets[1:]) == {0, 1}
    status = json.loads((tmp_path / "duel" / "run_logs" / "training_status.json").read_text())
    assert status["Duel"]["elo"] != pytest.approx(1300.0)
    checkpoint = load_checkpoint_file(str(tmp_path / "duel" / "Duel" / "checkpoint.pt"))
    state = checkpoint["SelfPlay"]
    assert 1 <= len(state["snapshots"]) <= 4 and len(state["policy_elos"]) == 5
    assert state["policy_elos"][-1] == pytest.approx(status["Duel"]["elo"])
    assert set(state["snapshots"][0]) == {"Duel"}


def test_resume_restores_snapshots_and_elo(tmp_path, monkeypatch):
    train(two_team_env(seed=2), duel_options(), run_id="duel", results_dir=tmp_path, seed=4)
    saved = load_checkpoint_file(str(tmp_path / "duel" / "Duel" / "checkpoint.pt"))["SelfPlay"]
    status = json.loads((tmp_path / "duel" / "run_logs" / "training_status.json").read_text())

    seen = {}
    original = GhostTrainer.create_policy

    def recording_create_policy(self, parsed, spec):
        if not seen:
            seen["elo"] = self.current_elo
        policy = original(self, parsed, spec)
        if "snapshots" not in seen:
            # Right after the wrapped trainer loaded the checkpoint (and saved the resumed
            # policy into the next slot, as at every start).
            seen["snapshots"] = [dict(s) for s in self.policy_snapshots]
            seen["elos"] = list(self.policy_elos)
            seen["counter"] = self.snapshot_counter
        return policy

    monkeypatch.setattr(GhostTrainer, "create_policy", recording_create_policy)
    train(
        two_team_env(seed=3),
        duel_options(max_steps=700),
        run_id="duel",
        results_dir=tmp_path,
        seed=5,
        resume=True,
    )
    assert seen["elo"] == pytest.approx(status["Duel"]["elo"])  # from training_status.json
    assert seen["counter"] == (saved["snapshot_counter"] + 1) % 4
    slot = saved["snapshot_counter"]
    for index, snapshot in enumerate(saved["snapshots"]):
        if index == slot:
            continue  # overwritten by the resumed policy, as at every start
        restored = seen["snapshots"][index]["Duel"]
        for name, tensor in snapshot["Duel"].items():
            np.testing.assert_array_equal(restored[name].numpy(), tensor.numpy())
    for index, elo in enumerate(saved["policy_elos"][:-1]):
        if index != slot:
            assert seen["elos"][index] == pytest.approx(elo)


def test_policies_are_created_in_name_order_whatever_the_hash_seed(monkeypatch):
    """Team policies draw from the seeded generators as they are created: the order must not
    follow set order (the per-process string hash seed), or seeded self-play runs differ."""
    from mlagents_fast.trainers.env_manager import EnvironmentStep
    from mlagents_fast.trainers.trainer_controller import TrainerController

    controller = TrainerController.__new__(TrainerController)
    controller.registered_behavior_ids = {"Duel?team=2"}
    created = []
    monkeypatch.setattr(
        TrainerController,
        "_create_trainer_and_manager",
        lambda self, env_manager, behavior_id: created.append(behavior_id),
    )
    names = ["Duel?team=3", "Duel?team=1", "Duel?team=2", "Duel?team=0"]
    steps = [EnvironmentStep(dict.fromkeys(names[:2]), 0, {}, {})]
    steps.append(EnvironmentStep(dict.fromkeys(names[2:]), 1, {}, {}))
    controller._register_new_behaviors(None, steps)
    assert created == ["Duel?team=0", "Duel?team=1", "Duel?team=3"]
    assert controller.registered_behavior_ids == set(names)
