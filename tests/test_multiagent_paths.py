"""Multi-agent built-ins through every path: the gRPC link (mlagents-fast-env host and our
UnityEnvironment, and ML-Agents 1.1.0's own client and trainers), subprocess workers, and the
agent processor's trajectories. Variable-length observations, group ids, group rewards, agents
that leave mid-episode and team behavior names must arrive as the built-in produces them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from mlagents_fast.envs.base_env import ActionTuple, BaseEnv
from mlagents_fast.envs.builtin import BuiltinEnv
from mlagents_fast.envs.cli import UnityHost, env_factory_for, write_launcher
from mlagents_fast.envs.environment import UnityEnvironment
from mlagents_fast.trainers.agent_processor import AgentManagerQueue, AgentProcessor
from mlagents_fast.trainers.buffer import BufferKey
from mlagents_fast.trainers.model_saver.torch_model_saver import load_checkpoint_file
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.stats import StatsReporter
from mlagents_fast.trainers.subprocess_env_manager import EnvFactory, SubprocessEnvManager
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import network_settings, single_thread_torch
from test_env_host import ANCHOR_PYTHON, free_port
from test_trainer_env_managers import RandomPolicy

single_thread_torch()

MULTI_AGENT_BUILTINS = ["Sorter", "DungeonEscape", "Tennis"]


def random_actions(env: BaseEnv, rng: np.random.Generator) -> dict[str, ActionTuple]:
    """Allowed random actions for every behavior's deciding agents (first branch masks)."""
    actions = {}
    for name, spec in env.behavior_specs.items():
        decisions, _ = env.get_steps(name)
        n = len(decisions)
        if decisions.action_mask is not None:
            allowed = ~decisions.action_mask[0]
            choice = np.argmax(rng.random(allowed.shape) * allowed, axis=1)[:, None]
            actions[name] = ActionTuple(discrete=choice.astype(np.int32))
        else:
            actions[name] = ActionTuple(
                continuous=rng.uniform(-1, 1, (n, spec.action_spec.continuous_size))
            )
    return actions


def assert_same_steps(ours: BaseEnv, theirs: BaseEnv) -> None:
    assert list(ours.behavior_specs) == list(theirs.behavior_specs)
    for name in ours.behavior_specs:
        for mine, other in zip(ours.get_steps(name), theirs.get_steps(name)):
            for field in ("agent_id", "reward", "group_id", "group_reward"):
                np.testing.assert_array_equal(getattr(mine, field), getattr(other, field))
            for mine_obs, other_obs in zip(mine.obs, other.obs):
                np.testing.assert_array_equal(mine_obs, other_obs)
            if hasattr(mine, "interrupted"):
                np.testing.assert_array_equal(mine.interrupted, other.interrupted)
            elif mine.action_mask is not None:
                for mine_mask, other_mask in zip(mine.action_mask, other.action_mask):
                    np.testing.assert_array_equal(mine_mask, other_mask)


@pytest.mark.parametrize("name", MULTI_AGENT_BUILTINS)
def test_the_link_delivers_what_the_builtin_produces(name):
    port = free_port()
    host = UnityHost(env_factory_for(f"builtin:{name}"), f"localhost:{port}")
    exit_codes: list[int] = []
    thread = threading.Thread(target=lambda: exit_codes.append(host.run()), daemon=True)
    thread.start()
    linked = UnityEnvironment(None, base_port=port, seed=7, num_areas=3, timeout_wait=30)
    local = BuiltinEnv(name, seed=7, num_areas=3)
    rng = np.random.default_rng(0)
    left = group_rewarded = False
    try:
        linked.reset()
        local.reset()
        assert linked.behavior_specs == local.behavior_specs
        for _ in range(60):
            assert_same_steps(linked, local)
            for behavior, action in random_actions(local, rng).items():
                local.set_actions(behavior, action)
                linked.set_actions(behavior, action)
            local.step()
            linked.step()
            for behavior in local.behavior_specs:
                _, terminals = local.get_steps(behavior)
                ended_by_rules = ~terminals.interrupted
                left |= bool(np.any(ended_by_rules & (terminals.group_reward == 0)))
                group_rewarded |= bool(np.any(terminals.group_reward != 0))
        assert_same_steps(linked, local)
    finally:
        linked.close()
        thread.join(timeout=10)
    assert exit_codes == [0]
    if name == "DungeonEscape":
        assert left and group_rewarded  # a slayer left its group; a group escaped


def test_subprocess_workers_carry_teams_groups_and_group_rewards():
    limits = SimpleNamespace(
        env_settings=SimpleNamespace(
            max_lifetime_restarts=0, restarts_rate_limit_n=-1, restarts_rate_limit_period_s=1
        )
    )
    for name, expected in (
        ("Tennis", {"Tennis?team=0", "Tennis?team=1"}),
        ("DungeonEscape", {"DungeonEscape?team=0"}),
    ):
        factory = EnvFactory(env_path=f"builtin:{name}", seed=2, num_areas=8, timeout_wait=300)
        manager = SubprocessEnvManager(factory, limits, n_env=2)
        try:
            manager.reset()
            assert set(manager.training_behaviors) == expected
            for behavior, spec in manager.training_behaviors.items():
                manager.set_policy(behavior, RandomPolicy(spec))
            group_rewards = 0.0
            workers = set()
            for _ in range(120):
                for step in manager.get_steps():
                    workers.add(step.worker_id)
                    assert set(step.current_all_step_result) == expected
                    for behavior, (decisions, terminals) in step.current_all_step_result.items():
                        assert np.all(decisions.group_id > 0)
                        group_rewards += float(np.sum(terminals.group_reward))
                        if name == "Tennis":
                            team = int(behavior[-1])
                            # Team 0 has the odd group ids, team 1 the even ones.
                            assert np.all(decisions.group_id % 2 == 1 - team)
            assert workers == {0, 1}
            if name == "DungeonEscape":
                assert group_rewards > 0
        finally:
            manager.close()


def test_trajectories_carry_the_group_rewards_of_the_episodes():
    env = BuiltinEnv("DungeonEscape", seed=1, num_areas=6)
    behavior = "DungeonEscape?team=0"
    spec = env.behavior_specs[behavior]
    policy = TorchPolicy(0, spec, network_settings(), SimpleActor, {})
    processor = AgentProcessor(policy, behavior, StatsReporter(behavior), max_trajectory_length=200)
    queue = AgentManagerQueue(behavior)
    processor.publish_trajectory_queue(queue)
    env.reset()
    decisions, terminals = env.get_steps(behavior)
    processor.add_experiences(decisions, terminals, 0, SimpleNamespace(outputs={}, agent_ids=[]))
    sent_group_rewards = 0.0
    leavers = 0
    for _ in range(300):
        info = policy.get_action(decisions)
        env.set_actions(behavior, info.env_action)
        env.step()
        decisions, terminals = env.get_steps(behavior)
        sent_group_rewards += float(terminals.group_reward.sum() + decisions.group_reward.sum())
        leavers += int(np.sum(~terminals.interrupted & (terminals.group_reward == 0)))
        processor.add_experiences(decisions, terminals, 0, info)
    trajectories = []
    while not queue.empty():
        trajectories.append(queue.get_nowait())
    assert sent_group_rewards > 0 and leavers > 0
    received = 0.0
    ended_by_leaving = 0
    for trajectory in trajectories:
        buffer = trajectory.to_agentbuffer()
        group = np.asarray(buffer[BufferKey.GROUP_REWARD].get_batch())
        received += float(group.sum())
        # Only the last step of an episode carries the escape's group reward.
        assert np.all(group[:-1] == 0.0)
        if trajectory.done_reached and not trajectory.interrupted and group[-1] == 0.0:
            ended_by_leaving += 1
    # Every group reward the environment sent reached a trajectory (episodes still running at
    # the end have none pending: the reward comes with the episode's last step).
    assert received == pytest.approx(sent_group_rewards)
    assert ended_by_leaving == leavers


def short_run(name: str, trainer_type: str, normalize: bool, extra: str = "") -> str:
    """A 600-step mlagents-learn config for ``name``."""
    return f"""\
behaviors:
  {name}:
    trainer_type: {trainer_type}
    hyperparameters: {{batch_size: 64, buffer_size: 256, learning_rate: 0.0003, num_epoch: 2}}
    network_settings: {{normalize: {str(normalize).lower()}, hidden_units: 32, num_layers: 1}}
    reward_signals: {{extrinsic: {{gamma: 0.99, strength: 1.0}}}}
    max_steps: 600
    time_horizon: 64
    summary_freq: 300
{extra}"""


SELF_PLAY = """\
    self_play:
      save_steps: 100
      team_change: 200
      swap_steps: 50
      window: 5
      play_against_latest_model_ratio: 0.5
      initial_elo: 1200.0
"""

SHORT_RUN = {
    "DungeonEscape": short_run("DungeonEscape", "poca", normalize=False),
    "Tennis": short_run("Tennis", "ppo", normalize=True, extra=SELF_PLAY),
    "Sorter": short_run("Sorter", "ppo", normalize=False),
}


def learn_through_launcher(
    learn: list[str], config: str, name: str, tmp_path, launcher_options: list[str] = ()
) -> str:
    """Runs ``learn`` (a trainer's command line) with ``config`` on a launcher of
    ``builtin:<name>``, run id ``link``; returns its output once it succeeded."""
    config_path = tmp_path / f"{name}.yaml"
    config_path.write_text(config)
    write_launcher(f"builtin:{name}", str(tmp_path / "envs"), extra_args=launcher_options)
    run = subprocess.run(
        [
            *learn,
            str(config_path),
            f"--env={tmp_path / 'envs' / name}",
            "--run-id=link",
            "--no-graphics",
            f"--base-port={free_port()}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    return log


@pytest.mark.smoke
@pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)
@pytest.mark.parametrize(
    "name,trainer",
    [("DungeonEscape", "poca"), ("Tennis", "ghost"), ("Sorter", "attention")],
)
def test_official_mlagents_learn_trains_multiagent_builtins(tmp_path, name, trainer):
    """ML-Agents 1.1.0's mlagents-learn trains the new built-ins through our launcher: POCA on
    the cooperative one, PPO with its ghost (self-play) trainer on the two teams, and its
    attention body on Sorter's buffer sensor."""
    log = learn_through_launcher(
        [str(ANCHOR_PYTHON.parent / "mlagents-learn")], SHORT_RUN[name], name, tmp_path
    )
    assert f"{name}. Step: 600." in log, log[-3000:]
    assert (tmp_path / "results" / "link" / f"{name}.onnx").exists()
    if trainer == "ghost":
        assert "ELO" in log  # the ghost trainer reports its rating


# Runs under the anchor venv: ML-Agents' own client steps our launcher with seeded random
# actions and writes what it decoded; argv: launcher, port, output file.
MLAGENTS_CLIENT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from mlagents_envs.environment import UnityEnvironment
    from mlagents_envs.base_env import ActionTuple

    def ints(values):
        return [int(v) for v in values]  # group_id is a list in mlagents_envs

    def floats(values):
        return [float(v) for v in values]

    env = UnityEnvironment(sys.argv[1], base_port=int(sys.argv[2]), seed=7, num_areas=2,
                           no_graphics=True, timeout_wait=120)
    try:
        env.reset()
        rng = np.random.default_rng(0)
        record = {"specs": {}, "steps": []}
        for name, spec in env.behavior_specs.items():
            record["specs"][name] = {
                "shapes": [list(o.shape) for o in spec.observation_specs],
                "properties": [ints(o.dimension_property) for o in spec.observation_specs],
                "names": [o.name for o in spec.observation_specs],
            }
        for _ in range(40):
            step = {}
            for name in sorted(env.behavior_specs):
                decisions, terminals = env.get_steps(name)
                step[name] = {
                    "decision": [ints(decisions.agent_id), ints(decisions.group_id),
                                 floats(decisions.group_reward), floats(decisions.reward),
                                 float(np.sum(decisions.obs[-1]))],
                    "terminal": [ints(terminals.agent_id), ints(terminals.group_id),
                                 floats(terminals.group_reward), floats(terminals.reward),
                                 [bool(i) for i in terminals.interrupted]],
                }
                allowed = ~decisions.action_mask[0]
                choice = np.argmax(rng.random(allowed.shape) * allowed, axis=1)[:, None]
                env.set_actions(name, ActionTuple(discrete=choice.astype(np.int32)))
            record["steps"].append(step)
            env.step()
    finally:
        env.close()
    print(json.dumps(record))
    """
)


@pytest.mark.smoke
@pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)
def test_mlagents_envs_decodes_groups_teams_and_buffer_sensors_from_our_host(tmp_path):
    """mlagents_envs 1.1.0 reads the same specs, group ids, group rewards and team behaviors
    from our host as the built-in produces in-process."""
    for name in ("DungeonEscape", "Tennis", "Sorter"):
        write_launcher(f"builtin:{name}", str(tmp_path))
        run = subprocess.run(
            [
                str(ANCHOR_PYTHON),
                "-c",
                MLAGENTS_CLIENT,
                str(tmp_path / name),
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        record = json.loads(run.stdout.strip().splitlines()[-1])
        local = BuiltinEnv(name, seed=7, num_areas=2)
        local.reset()
        for behavior, spec in local.behavior_specs.items():
            assert record["specs"][behavior] == {
                "shapes": [list(o.shape) for o in spec.observation_specs],
                "properties": [
                    [int(p) for p in o.dimension_property] for o in spec.observation_specs
                ],
                "names": [o.name for o in spec.observation_specs],
            }
        rng = np.random.default_rng(0)
        for step in record["steps"]:
            for behavior in sorted(local.behavior_specs):
                decisions, terminals = local.get_steps(behavior)
                assert step[behavior]["decision"] == [
                    decisions.agent_id.tolist(),
                    decisions.group_id.tolist(),
                    decisions.group_reward.tolist(),
                    decisions.reward.tolist(),
                    pytest.approx(float(np.sum(decisions.obs[-1])), rel=1e-5),
                ]
                assert step[behavior]["terminal"] == [
                    terminals.agent_id.tolist(),
                    terminals.group_id.tolist(),
                    terminals.group_reward.tolist(),
                    terminals.reward.tolist(),
                    terminals.interrupted.tolist(),
                ]
                allowed = ~decisions.action_mask[0]
                choice = np.argmax(rng.random(allowed.shape) * allowed, axis=1)[:, None]
                local.set_actions(behavior, ActionTuple(discrete=choice.astype(np.int32)))
            local.step()


@pytest.mark.smoke
def test_our_poca_self_play_trains_doubles_through_launchers_in_two_workers(tmp_path):
    """mlagents-fast-learn with POCA and self_play (SoccerTwos' set-up) on Tennis two a side,
    over the gRPC link of two launched hosts (--num-envs=2): both teams' behaviors arrive by
    their ``?team=N`` names, the groups of two reach the centralized critic, ELO is reported."""
    log = learn_through_launcher(
        [sys.executable, "-m", "mlagents_fast.trainers.learn", "--num-envs=2"],
        short_run("Tennis", "poca", normalize=False, extra=SELF_PLAY),
        "Tennis",
        tmp_path,
        ["--agents-per-area=4"],
    )
    assert "Tennis. Step: 600." in log and "ELO" in log, log[-3000:]
    run_dir = tmp_path / "results" / "link"
    checkpoint = load_checkpoint_file(str(run_dir / "Tennis" / "checkpoint.pt"))
    assert float(checkpoint["Optimizer:critic"]["network_body._current_max_agents"]) == 2.0
    assert checkpoint["SelfPlay"]["snapshots"]
    assert (run_dir / "Tennis.onnx").exists()
