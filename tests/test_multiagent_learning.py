"""Learning tests for the multi-agent trainers on the multi-agent built-ins (``-m learning``).

POCA must beat independent PPO on builtin:DungeonEscape at the same step budget (only a group
can escape, and the agent that slays the dragon leaves before the reward comes); self-play
(PPO, and POCA for two-a-side teams as in SoccerTwos) must raise its ELO on builtin:Tennis and
beat a random opponent. The trained policies are judged from their exported ``.onnx`` files,
played in the built-in, so both trainers are measured the same way.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.envs.builtin import BuiltinEnv
from mlagents_fast.trainers.run import train
from mlagents_fast.trainers.settings import RunOptions
from policy_fixtures import single_thread_torch

pytestmark = pytest.mark.learning

single_thread_torch()


def behavior(trainer_type: str, max_steps: int, self_play: bool = False) -> dict:
    settings = {
        "trainer_type": trainer_type,
        "hyperparameters": {
            "batch_size": 256,
            "buffer_size": 1024,
            "learning_rate": 3.0e-3,
            "num_epoch": 3,
            "learning_rate_schedule": "constant",
        },
        "network_settings": {"hidden_units": 64, "num_layers": 2, "normalize": False},
        "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
        "max_steps": max_steps,
        "time_horizon": 64,
        "summary_freq": 2000,
    }
    # More exploration in the dungeon: the dragon must be found before anything pays.
    settings["hyperparameters"]["beta"] = 5.0e-3 if self_play else 1.0e-2
    if self_play:
        settings["self_play"] = {
            # Mostly past snapshots as opponents: beating them is what moves the ELO.
            "save_steps": 1000,
            "team_change": 4000,
            "swap_steps": 500,
            "window": 10,
            "play_against_latest_model_ratio": 0.2,
            "initial_elo": 1200.0,
        }
    return settings


def policy_actions(
    session: ort.InferenceSession, obs: np.ndarray, masks: np.ndarray, output: str
) -> np.ndarray:
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"obs_0": obs, "action_masks": masks})))
    return outputs[output].astype(np.int32)


def escape_rate(onnx_path: str, decisions: int = 1500) -> tuple[float, int]:
    """Share of DungeonEscape episodes (8 areas) the exported policy escapes, and how many
    episodes ended: an escape brings the group reward, a failure runs out of time."""
    session = ort.InferenceSession(onnx_path)
    env = BuiltinEnv("DungeonEscape", seed=0, num_areas=8)
    name = "DungeonEscape?team=0"
    env.reset()
    escapes = episodes = 0
    for _ in range(decisions):
        decisions_now, terminals = env.get_steps(name)
        ended = {}
        for group, group_reward, interrupted in zip(
            terminals.group_id, terminals.group_reward, terminals.interrupted
        ):
            # The slayer leaves alone (not interrupted, no reward): its group goes on.
            if group_reward > 0 or interrupted:
                ended[int(group)] = group_reward > 0
        escapes += sum(ended.values())
        episodes += len(ended)
        if len(decisions_now):
            allowed = 1.0 - decisions_now.action_mask[0].astype(np.float32)
            # Sampled: three agents following the argmax can block one another for good.
            actions = policy_actions(session, decisions_now.obs[0], allowed, "discrete_actions")
            env.set_actions(name, ActionTuple(discrete=actions))
        env.step()
    return escapes / episodes, episodes


def win_rate_against_random(onnx_path: str, agents_per_area: int | None = None) -> float:
    """Share of Tennis points won by the exported policy (team 0) against paddles moving at
    random (team 1), over 3000 decisions of 8 areas."""
    session = ort.InferenceSession(onnx_path)
    env = BuiltinEnv("Tennis", seed=0, num_areas=8, agents_per_area=agents_per_area)
    rng = np.random.default_rng(0)
    env.reset()
    won = lost = 0
    for _ in range(3000):
        for team in (0, 1):
            name = f"Tennis?team={team}"
            decisions, terminals = env.get_steps(name)
            if team == 0:
                won += int((terminals.reward > 0).sum())
                lost += int((terminals.reward < 0).sum())
            if not len(decisions):
                continue
            if team == 0:
                masks = np.ones((len(decisions), 3), np.float32)
                actions = policy_actions(
                    session, decisions.obs[0], masks, "deterministic_discrete_actions"
                )
            else:
                actions = rng.integers(0, 3, (len(decisions), 1), dtype=np.int32)
            env.set_actions(name, ActionTuple(discrete=actions))
        env.step()
    assert won + lost > 300  # enough points to judge
    return won / (won + lost)


def test_poca_beats_independent_ppo_on_dungeon_escape(tmp_path):
    rates = {}
    for trainer_type in ("poca", "ppo"):
        options = RunOptions.from_dict(
            {
                "behaviors": {"DungeonEscape": behavior(trainer_type, 20_000)},
                "env_settings": {"num_areas": 8},
            }
        )
        result = train(
            "builtin:DungeonEscape",
            options,
            run_id=trainer_type,
            results_dir=str(tmp_path),
            seed=1,
        )
        assert result.steps["DungeonEscape"] >= 20_000
        rates[trainer_type], _ = escape_rate(os.path.join(result.run_dir, "DungeonEscape.onnx"))
        if trainer_type == "poca":
            # POCA reports the group's reward; it rose with training.
            group = [reward for _, reward in result.group_reward_history["DungeonEscape"]]
            assert group[-1] > group[0], group
    # Seed 1: POCA escapes about 90 % of the time, PPO about 35 % (its slayer never sees
    # the group reward, so it learns to keep away from the dragon).
    assert rates["poca"] >= 0.75, rates
    assert rates["poca"] >= rates["ppo"] + 0.2, rates


def test_self_play_raises_elo_and_beats_a_random_player_at_tennis(tmp_path):
    options = RunOptions.from_dict({"behaviors": {"Tennis": behavior("ppo", 20_000, True)}})
    env = BuiltinEnv("Tennis", seed=1, num_areas=8)
    result = train(env, options, run_id="tennis", results_dir=str(tmp_path), seed=1)
    elo = [round(rating, 1) for _, rating in result.elo_history["Tennis"]]
    rate = win_rate_against_random(os.path.join(result.run_dir, "Tennis.onnx"))
    # Seed 1: the ELO climbs from 1202 to 1214 (ML-Agents' K of 16, mostly past snapshots as
    # opponents) and the policy wins about 74 % of the points against random paddles.
    assert elo[-1] >= 1208.0 and elo[-1] >= min(elo) + 8.0, f"ELO {elo}, won {rate}"
    assert rate >= 0.65, f"ELO {elo}, won {rate}"


def test_poca_self_play_two_a_side_learns_tennis(tmp_path):
    """SoccerTwos' set-up: POCA with self_play, teams of two paddles (each team one group)."""
    settings = behavior("poca", 40_000, self_play=True)
    settings["summary_freq"] = 4000
    options = RunOptions.from_dict({"behaviors": {"Tennis": settings}})
    env = BuiltinEnv("Tennis", seed=2, num_areas=8, agents_per_area=4)
    result = train(env, options, run_id="doubles", results_dir=str(tmp_path), seed=2)
    elo = [round(rating, 1) for _, rating in result.elo_history["Tennis"]]
    rate = win_rate_against_random(os.path.join(result.run_dir, "Tennis.onnx"), 4)
    # Seed 2: the ELO climbs from 1199 to 1229 and the pair wins about 70 % of the points
    # against random paddles (four paddles learn slower than two).
    assert elo[-1] >= 1215.0 and elo[-1] >= min(elo) + 15.0, f"ELO {elo}, won {rate}"
    assert rate >= 0.6, f"ELO {elo}, won {rate}"
