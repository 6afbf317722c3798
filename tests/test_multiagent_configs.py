"""ML-Agents' six multi-agent example configs (config/poca/DungeonEscape, PushBlockCollab,
SoccerTwos, StrikersVsGoalie; config/ppo/StrikersVsGoalie, Tennis) load as shipped, build
their trainers on pure-Python BaseEnvs with the example scenes' behavior names, groups,
observation and action specs, and run a few updates.

Specs (ML-Agents' Learning-Environment-Examples, release 21): SoccerTwos, 2 teams of 2 (one
group each), ray observations 264 + 72, 3 branches of 3; StrikersVsGoalie, 2 strikers (team
0, 231 + 63) against 1 goalie (team 1, 738), 3 branches of 3; Tennis, 2 single players
(teams 0 and 1, no group), 9 observations stacked 3 times, 3 continuous actions;
DungeonEscape, 3 agents in a group, a ray sensor (6 tags, 7 rays: 56) and "has key" (1), 1
branch of 7, one agent sacrificing itself mid-episode; PushBlockCollab, 3 agents in a group, a
grid sensor (6 tags on 20 x 20 cells), 1 branch of 7. (The ray and grid sizes depend on sensor
settings the docs do not give; these are the scenes' defaults as we read them.)

Only what a unit test cannot afford is changed: small buffers, one epoch, a short time
horizon, self-play teams that take turns every 40 steps (else the other side of an asymmetric
game would wait 200000 steps to learn), and ``threaded: false`` (the test steps the trainers
itself); networks are the configs' own.
"""

from __future__ import annotations

import os

import pytest
from mlagents_fast.envs.base_env import ActionSpec
from mlagents_fast.trainers.environment_parameter_manager import EnvironmentParameterManager
from mlagents_fast.trainers.ghost.trainer import GhostTrainer
from mlagents_fast.trainers.poca.trainer import POCATrainer
from mlagents_fast.trainers.ppo.trainer import PPOTrainer
from mlagents_fast.trainers.settings import RunOptions
from mlagents_fast.trainers.settings.config_file import load_config
from mlagents_fast.trainers.simple_env_manager import SimpleEnvManager
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.trainer.trainer_factory import TrainerFactory
from mlagents_fast.trainers.trainer_controller import TrainerController
from multiagent_fixtures import FakeBehavior, TeamGameEnv
from policy_fixtures import single_thread_torch
from repo_paths import CONFIG_DIR

single_thread_torch()

BRANCHES_3X3 = ActionSpec.create_discrete((3, 3, 3))


def soccer_twos() -> list[FakeBehavior]:
    return [
        FakeBehavior(f"SoccerTwos?team={team}", [(264,), (72,)], BRANCHES_3X3, 2) for team in (0, 1)
    ]


def strikers_vs_goalie() -> list[FakeBehavior]:
    return [
        FakeBehavior("Striker?team=0", [(231,), (63,)], BRANCHES_3X3, 2),
        FakeBehavior("Goalie?team=1", [(738,)], BRANCHES_3X3, 1),
    ]


def tennis() -> list[FakeBehavior]:
    return [
        FakeBehavior(f"Tennis?team={team}", [(27,)], ActionSpec.create_continuous(3), 1, False)
        for team in (0, 1)
    ]


def dungeon_escape() -> list[FakeBehavior]:
    return [
        FakeBehavior("DungeonEscape?team=0", [(56,), (1,)], ActionSpec.create_discrete((7,)), 3)
    ]


def push_block_collab() -> list[FakeBehavior]:
    return [
        FakeBehavior("PushBlockCollab?team=0", [(6, 20, 20)], ActionSpec.create_discrete((7,)), 3)
    ]


CASES = {
    "poca/DungeonEscape": (dungeon_escape, POCATrainer, False),
    "poca/PushBlockCollab": (push_block_collab, POCATrainer, False),
    "poca/SoccerTwos": (soccer_twos, POCATrainer, True),
    "poca/StrikersVsGoalie": (strikers_vs_goalie, POCATrainer, True),
    "ppo/StrikersVsGoalie": (strikers_vs_goalie, PPOTrainer, True),
    "ppo/Tennis": (tennis, PPOTrainer, True),
}


def _options(name: str) -> RunOptions:
    config = load_config(os.path.join(CONFIG_DIR, f"{name}.yaml"))
    options = RunOptions.from_dict(config)
    for settings in options.behaviors.values():
        settings.hyperparameters.buffer_size = 48
        settings.hyperparameters.batch_size = 24
        settings.hyperparameters.num_epoch = 1
        settings.time_horizon = 12
        settings.threaded = False
        if settings.self_play is not None:
            # Teams take turns quickly, so that both sides of an asymmetric game learn.
            settings.self_play.team_change = 40
            settings.self_play.save_steps = 20
            settings.self_play.swap_steps = 10
    return options


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_config_trains_on_a_matching_env(name, tmp_path):
    make_behaviors, trainer_cls, self_play = CASES[name]
    options = _options(name)
    StatsReporter.reset()
    env = TeamGameEnv(
        make_behaviors(),
        num_areas=1,
        episode_length=10,
        leave_at=4 if name == "poca/DungeonEscape" else None,
        seed=1,
    )
    param_manager = EnvironmentParameterManager({}, 1, restore=False)
    factory = TrainerFactory(options.behaviors, str(tmp_path), True, False, 1, param_manager)
    controller = TrainerController(factory, str(tmp_path), "cfg", param_manager, True, 1)
    env_manager = SimpleEnvManager(env, None)
    try:
        controller._reset_env(env_manager)
        assert set(controller.trainers) == set(options.behaviors)
        for _ in range(400):
            controller.advance(env_manager)
            if all(
                trainer.stats_reporter.get_stats_summaries("Losses/Policy Loss").num >= 2
                for trainer in controller.trainers.values()
            ):
                break
        for brain_name, trainer in controller.trainers.items():
            wrapped = trainer.trainer if self_play else trainer
            assert isinstance(trainer, GhostTrainer) == self_play
            assert type(wrapped) is trainer_cls
            assert trainer.stats_reporter.get_stats_summaries("Losses/Policy Loss").num >= 2, (
                brain_name
            )
            # Every team of the behavior got a policy for the spec the environment sent.
            teams = [b.name for b in env.behaviors if b.name.startswith(brain_name + "?")]
            for behavior_id in teams:
                policy = trainer.get_policy(behavior_id)
                assert policy.behavior_spec == env.behavior_specs[behavior_id]
            if trainer_cls is POCATrainer:
                critic = wrapped.optimizer.critic
                hidden = options.behaviors[brain_name].network_settings.hidden_units
                assert critic.network_body.h_size == hidden
    finally:
        env_manager.close()
        StatsReporter.reset()
