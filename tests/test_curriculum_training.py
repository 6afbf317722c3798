"""Curriculum driving training: lessons advance, are saved and resumed, show in stats, and bad
curricula stop the run before training starts (a criteria on a behavior that is not training
only warns, as ML-Agents keeps that lesson)."""

import json
import logging
import os
import subprocess
import sys

import pytest
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from trainer_fixtures import SignEnv


def sign_options(max_steps, curriculum):
    return RunOptions.from_dict(
        {
            "behaviors": {
                "Sign": {
                    "trainer_type": "ppo",
                    "hyperparameters": {"batch_size": 32, "buffer_size": 128, "num_epoch": 1},
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "max_steps": max_steps,
                    "time_horizon": 8,
                    "summary_freq": 100,
                }
            },
            "environment_parameters": {"difficulty": {"curriculum": curriculum}},
        }
    )


PROGRESS_CURRICULUM = [
    {
        "name": "easy",
        "value": 1.0,
        "completion_criteria": {"measure": "progress", "behavior": "Sign", "threshold": 0.3},
    },
    {
        "name": "medium",
        "value": 2.0,
        # min_lesson_length: 100 episodes (500 steps of SignEnv) must pass in this lesson.
        "completion_criteria": {
            "measure": "progress",
            "behavior": "Sign",
            "threshold": 0.95,
            "min_lesson_length": 100,
        },
    },
    {"name": "hard", "value": 3.0},
]


def test_progress_lessons_advance_are_saved_and_resume_in_the_same_lesson(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        result = train(
            SignEnv(),
            sign_options(400, PROGRESS_CURRICULUM),
            run_id="c",
            results_dir=str(tmp_path),
            seed=1,
        )
    lessons = result.lesson_history["difficulty"]
    # Lesson 0 until 30% of 400 steps, then lesson 1 (whose 100 episodes take longer than the
    # rest of the run).
    assert lessons[0] == (100, 0)
    assert lessons[-1][1] == 1
    assert all(lesson == 1 for step, lesson in lessons if step >= 200)
    assert "Parameter 'difficulty' is in lesson 'medium'" in caplog.text  # the announcement
    status = json.loads((tmp_path / "c" / "run_logs" / "training_status.json").read_text())
    assert status["difficulty"]["lesson_num"] == 1

    # Resume with a longer run: it continues in lesson 1 (not back at 0) and reaches lesson 2
    # at 95% of the new max_steps.
    resumed = train(
        SignEnv(),
        sign_options(1200, PROGRESS_CURRICULUM),
        run_id="c",
        results_dir=str(tmp_path),
        seed=1,
        resume=True,
    )
    lessons = resumed.lesson_history["difficulty"]
    assert lessons[0][1] == 1
    assert all(lesson == 1 for _, lesson in lessons[:-1])
    status = json.loads((tmp_path / "c" / "run_logs" / "training_status.json").read_text())
    assert status["difficulty"]["lesson_num"] == 2


def test_curriculum_naming_a_behavior_that_never_trains_keeps_its_lesson(tmp_path, caplog):
    # ML-Agents 1.1.0 trains such a run and never leaves the lesson; we do the same and say why.
    curriculum = [
        {
            "name": "easy",
            "value": 1.0,
            "completion_criteria": {"measure": "progress", "behavior": "Nobody", "threshold": 0.1},
        },
        {"name": "hard", "value": 3.0},
    ]
    with caplog.at_level(logging.WARNING):
        result = train(
            SignEnv(),
            sign_options(200, curriculum),
            run_id="absent",
            results_dir=str(tmp_path),
            seed=1,
        )
    assert "behavior 'Nobody', which is not training" in caplog.text
    assert [lesson for _, lesson in result.lesson_history["difficulty"]] == [0, 0]
    assert (tmp_path / "absent" / "Sign" / "checkpoint.pt").exists()


BAD_CURRICULUM_YAML = """\
behaviors:
  GoalSeeker1D:
    trainer_type: ppo
    max_steps: 1000
environment_parameters:
  goal_distance:
    curriculum:
      - name: near
        value: 0.5
      - name: far
        value: 2.0
"""


def test_cli_refuses_a_lesson_without_criteria_before_the_last(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(BAD_CURRICULUM_YAML)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlagents_fast.trainers.learn",
            str(config),
            "--env",
            "builtin:GoalSeeker1D",
            "--run-id",
            "bad",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "completion_criteria" in lines[0]
    assert not os.path.exists(tmp_path / "results" / "bad" / "GoalSeeker1D")


@pytest.mark.learning
def test_lesson_advances_because_the_agent_learned(tmp_path):
    options = RunOptions.from_dict(
        {
            "behaviors": {
                "GoalSeeker1D": {
                    "trainer_type": "ppo",
                    "hyperparameters": {
                        "batch_size": 128,
                        "buffer_size": 1024,
                        "learning_rate": 3.0e-3,
                        "num_epoch": 3,
                        "learning_rate_schedule": "constant",
                    },
                    "network_settings": {"hidden_units": 32, "num_layers": 2},
                    "reward_signals": {"extrinsic": {"gamma": 0.95, "strength": 1.0}},
                    "max_steps": 30000,
                    "time_horizon": 64,
                    "summary_freq": 2000,
                }
            },
            "environment_parameters": {
                "goal_distance": {
                    "curriculum": [
                        {
                            "name": "near",
                            "value": 0.5,
                            "completion_criteria": {
                                "measure": "reward",
                                "behavior": "GoalSeeker1D",
                                "threshold": 0.9,
                                "min_lesson_length": 100,
                                "signal_smoothing": False,
                            },
                        },
                        {"name": "far", "value": 2.0},
                    ]
                }
            },
        }
    )
    result = train(
        "builtin:GoalSeeker1D", options, run_id="learned", results_dir=str(tmp_path), seed=1
    )
    lessons = result.lesson_history["goal_distance"]
    assert lessons[0][1] == 0 and lessons[-1][1] == 1, lessons
    advanced_at = next(step for step, lesson in lessons if lesson == 1)
    rewards_before = [
        reward for step, reward in result.reward_history["GoalSeeker1D"] if step < advanced_at
    ]
    # The lesson changed only once the agent had learned lesson 0 (random play scores < 0.5).
    assert rewards_before and max(rewards_before) >= 0.8, result.reward_history
    # In the far lesson (distance 2, best return 1 - 9 * 0.01) the agent still reaches the goal.
    assert result.reward_history["GoalSeeker1D"][-1][1] >= 0.8, result.reward_history
