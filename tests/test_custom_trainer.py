"""A trainer written against ML-Agents' documented Trainer / RLTrainer API (custom_trainer.py)
trains through our TrainerController, registered through the ``mlagents_fast.trainer_type``
entry-point group, with ML-Agents' step counting, summary, checkpoint and max_steps rules."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from custom_trainer import TRAINER_NAME, ReinforceTrainer
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions, trainer_types
from mlagents_fast.trainers.trainer import trainer_factory

BEHAVIOR = "GoalSeeker1D"
AGENTS = 16  # GoalSeeker1D's agents per area
TIME_HORIZON = 16


@pytest.fixture
def reinforce_plugin(tmp_path, monkeypatch):
    """Install the trainer as a package would: a distribution whose entry point in the
    ``mlagents_fast.trainer_type`` group returns ``get_type_and_setting()``."""
    site = tmp_path / "site"
    dist_info = site / "reinforce_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: reinforce-plugin\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{trainer_factory.TRAINER_TYPE_ENTRY_POINT_GROUP}]\n"
        f"{TRAINER_NAME} = custom_trainer:get_type_and_setting\n"
    )
    monkeypatch.syspath_prepend(str(site))
    # Load plugins afresh, and forget this one afterwards.
    monkeypatch.setattr(trainer_factory, "_plugins_loaded", False)
    monkeypatch.setattr(trainer_types, "_types", dict(trainer_types._types))
    seen = SimpleNamespace(trainers=[], summaries=[])
    init, write_summary = ReinforceTrainer.__init__, ReinforceTrainer._write_summary

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.trainers.append(self)

    def recording_write_summary(self, step):
        seen.summaries.append(step)
        write_summary(self, step)

    monkeypatch.setattr(ReinforceTrainer, "__init__", recording_init)
    monkeypatch.setattr(ReinforceTrainer, "_write_summary", recording_write_summary)
    trainer_factory.register_trainer_plugins()
    assert trainer_types.trainer_classes()[TRAINER_NAME] is ReinforceTrainer
    return seen


def options(max_steps, summary_freq, checkpoint_interval):
    return RunOptions.from_dict(
        {
            "behaviors": {
                BEHAVIOR: {
                    "trainer_type": TRAINER_NAME,
                    "hyperparameters": {"batch_size": 64, "buffer_size": 256},
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "max_steps": max_steps,
                    "time_horizon": TIME_HORIZON,
                    "summary_freq": summary_freq,
                    "checkpoint_interval": checkpoint_interval,
                    "keep_checkpoints": 10,
                }
            }
        }
    )


def test_custom_trainer_trains_through_the_controller_with_ml_agents_step_rules(
    tmp_path, reinforce_plugin
):
    max_steps, summary_freq, checkpoint_interval = 1000, 250, 500
    result = train(
        f"builtin:{BEHAVIOR}",
        options(max_steps, summary_freq, checkpoint_interval),
        run_id="custom",
        results_dir=str(tmp_path),
        seed=2,
    )
    (trainer,) = reinforce_plugin.trainers
    assert trainer.trajectory_kinds == {"ColumnarTrajectory"}
    # Every step the trainer read from trajectory.steps was counted once (ML-Agents counts
    # len(trajectory.steps), not len(trajectory)).
    assert trainer.get_step == trainer.steps_read == result.steps[BEHAVIOR]
    assert trainer.policy.get_current_step() == trainer.get_step
    # Training stops at the first trajectory past max_steps (should_still_train is
    # get_step <= max_steps); every agent is at most one time horizon behind.
    assert max_steps < trainer.get_step <= max_steps + AGENTS * TIME_HORIZON
    assert trainer.updates >= max_steps // 256 - 1 and trainer.saved_models == 1
    # Both kinds of episode end reached the trainer as ML-Agents reports them: a goal
    # reached is done and not interrupted; 40 decisions without it is done and interrupted.
    assert set(trainer.ends) == {(True, False), (True, True)}

    # A summary at each multiple of summary_freq crossed, labelled with that step (the
    # reward history skips summaries in which no episode ended).
    assert reinforce_plugin.summaries == [250, 500, 750, 1000]
    assert {step for step, _ in result.reward_history[BEHAVIOR]} <= {250, 500, 750, 1000}
    status = json.loads((tmp_path / "custom" / "run_logs" / "training_status.json").read_text())
    checkpoints = [c["steps"] for c in status[BEHAVIOR]["checkpoints"]]
    # A checkpoint is written at the step count before the trajectory that crosses the
    # interval (ML-Agents' rule), then the final model at the last step.
    assert len(checkpoints) == 3
    assert 500 - TIME_HORIZON <= checkpoints[0] < 500
    assert 1000 - TIME_HORIZON <= checkpoints[1] < 1000
    assert checkpoints[2] == trainer.get_step == status[BEHAVIOR]["final_checkpoint"]["steps"]
    assert (tmp_path / "custom" / f"{BEHAVIOR}.onnx").is_file()


@pytest.mark.learning
def test_custom_trainer_learns_goal_seeker(tmp_path, reinforce_plugin):
    result = train(
        f"builtin:{BEHAVIOR}",
        options(30_000, 3000, 30_000),
        run_id="custom",
        results_dir=str(tmp_path),
        seed=1,
    )
    rewards = [reward for _, reward in result.reward_history[BEHAVIOR]]
    assert np.mean(rewards[-2:]) >= 0.8, rewards
