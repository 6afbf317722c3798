"""Environments in Ray actors (--env-workers ray): the subprocess workers' stepping, restarts
and side channels over a local Ray instance, and the command line's errors."""

import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from mlagents_fast.trainers.exception import EnvironmentRestartLimitError, TrainerConfigError
from mlagents_fast.trainers.subprocess_env_manager import EnvFactory
from test_trainer_env_managers import RandomPolicy

BEHAVIOR = "GoalSeeker1D?team=0"


def run_options(lifetime, rate_n=-1, period_s=3600):
    # Generous timeouts: a replacement actor on a loaded machine may take long to start.
    return SimpleNamespace(
        env_settings=SimpleNamespace(
            max_lifetime_restarts=lifetime,
            restarts_rate_limit_n=rate_n,
            restarts_rate_limit_period_s=period_s,
            timeout_wait=300,
            ray_address=None,
            ray_cpus_per_env=0.5,  # room for a replacement while the killed actor's CPU frees
        )
    )


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def make_manager(factory, lifetime, rate_n=-1, n_env=2):
    from mlagents_fast.trainers.ray_env_manager import RayEnvManager

    manager = RayEnvManager(factory, run_options(lifetime, rate_n), n_env=n_env)
    try:
        manager.reset()
        manager.set_policy(BEHAVIOR, RandomPolicy(manager.training_behaviors[BEHAVIOR]))
    except BaseException:
        manager.close()
        raise
    return manager


def goal_seeker_manager(lifetime, rate_n=-1):
    return make_manager(
        EnvFactory("builtin:GoalSeeker1D", seed=3, timeout_wait=300), lifetime, rate_n
    )


def steps_in_lockstep(manager):
    """``manager.get_steps()`` once every step in flight has answered.

    get_steps returns as soon as one actor answered and steps that one again: a fast actor
    can answer any number of rounds while a slow one (starting up on a loaded machine) answers
    none, so a loop bounded by a number of rounds was a race. Waiting here for every pending
    step first means that each call collects every actor that was busy at its start, so each
    actor answers in any two consecutive calls, whatever the speeds.
    """
    import ray

    pending = list(manager.step_queue.pending)
    # Bounded only so that a hung actor fails the test instead of hanging it.
    ready, _ = ray.wait(pending, num_returns=len(pending), timeout=manager.timeout_seconds)
    assert len(ready) == len(pending), "an environment actor did not answer its step"
    return manager.get_steps()


def step_workers(manager, n):
    """``n`` rounds of steps in lockstep (n >= 3: every actor answers at least once after
    the reset's first steps); the workers that answered."""
    seen = set()
    for _ in range(n):
        for step in steps_in_lockstep(manager):
            seen.add(step.worker_id)
            decision_steps, _ = step.current_all_step_result[BEHAVIOR]
            assert decision_steps.obs[0].dtype == np.float32
    return seen


def kill(ray, manager, worker_id):
    ray.kill(manager.workers[worker_id].actor)


def test_two_actors_step_and_a_killed_actor_is_restarted(ray_instance):
    manager = goal_seeker_manager(lifetime=2)
    try:
        assert step_workers(manager, 10) == {0, 1}
        first_actor = manager.workers[1].actor
        kill(ray_instance, manager, 1)
        assert step_workers(manager, 10) == {0, 1}
        assert manager.restart_counts == {1: 1}
        assert manager.workers[1].actor is not first_actor
        assert manager.reset() == 2  # one first step per actor
    finally:
        manager.close()


def test_restarts_beyond_the_limits_raise(ray_instance):
    manager = goal_seeker_manager(lifetime=0)
    try:
        step_workers(manager, 2)
        kill(ray_instance, manager, 0)
        with pytest.raises(EnvironmentRestartLimitError, match="worker 0 exceeded"):
            step_workers(manager, 10)
    finally:
        manager.close()

    manager = goal_seeker_manager(lifetime=-1, rate_n=1)
    try:
        kill(ray_instance, manager, 0)
        step_workers(manager, 5)  # the first restart is within the rate
        assert manager.restart_counts[0] == 1
        kill(ray_instance, manager, 0)
        with pytest.raises(EnvironmentRestartLimitError, match="worker 0 exceeded"):
            step_workers(manager, 10)  # a second one within the period is not
    finally:
        manager.close()


def test_side_channels_reach_the_environment_in_the_actor(ray_instance):
    from mlagents_fast.trainers.settings import ConstantSettings

    def create(worker_id, side_channels):
        # Defined here so that cloudpickle ships it by value to the actor.
        from mlagents_fast.envs.base_env import BaseEnv
        from mlagents_fast.envs.env_opener import make_env
        from mlagents_fast.envs.side_channel.incoming_message import IncomingMessage
        from mlagents_fast.envs.side_channel.outgoing_message import OutgoingMessage

        # ML-Agents' three channels first; worker 0 also gets the training analytics one.
        parameters, engine, stats = side_channels[:3]

        class Reporting(BaseEnv):
            """GoalSeeker1D that reports, as stats, what its side channels received."""

            def __init__(self):
                self.inner = make_env("builtin:GoalSeeker1D", seed=1, worker_id=worker_id)

            def _report(self, key, value):
                message = OutgoingMessage()
                message.write_string(key)
                message.write_float32(value)
                message.write_int32(0)  # StatsAggregationMethod.AVERAGE
                stats.on_message_received(IncomingMessage(bytes(message.buffer)))

            def step(self):
                self.inner.step()
                for raw in parameters.message_queue:
                    message = IncomingMessage(bytes(raw))
                    key = message.read_string()
                    message.read_int32()  # FLOAT
                    self._report(f"param/{key}", message.read_float32())
                parameters.message_queue.clear()
                self._report("engine_messages", float(len(engine.message_queue)))
                self._report("worker", float(worker_id))

            def reset(self):
                self.inner.reset()

            def close(self):
                self.inner.close()

            @property
            def behavior_specs(self):
                return self.inner.behavior_specs

            def set_actions(self, behavior_name, action):
                self.inner.set_actions(behavior_name, action)

            def set_action_for_agent(self, behavior_name, agent_id, action):
                self.inner.set_action_for_agent(behavior_name, agent_id, action)

            def get_steps(self, behavior_name):
                return self.inner.get_steps(behavior_name)

        return Reporting()

    manager = make_manager(create, lifetime=0)
    try:
        manager.set_env_parameters({"difficulty": ConstantSettings(value=2.5)})
        received = {}
        # The reset's first steps, then two rounds in lockstep: each actor stepped at least once.
        for _ in range(3):
            for step in steps_in_lockstep(manager):
                for key, values in step.environment_stats.items():
                    received.setdefault((step.worker_id, key), []).extend(v for v, _ in values)
        for worker_id in (0, 1):
            assert received[(worker_id, "worker")][0] == worker_id
            assert received[(worker_id, "param/difficulty")] == [2.5]
            # The engine configuration (time scale, resolution...) was queued for the env.
            assert received[(worker_id, "engine_messages")][0] >= 0
    finally:
        manager.close()


def test_engine_settings_are_queued_on_the_actor_environment(ray_instance):
    def create(worker_id, side_channels):
        from mlagents_fast.envs.env_opener import make_env

        engine = side_channels[1]
        if not engine.message_queue:
            raise AssertionError("no engine configuration reached the actor")
        return make_env("builtin:GoalSeeker1D", seed=1, worker_id=worker_id)

    factory_options = SimpleNamespace(
        env_settings=run_options(0).env_settings,
        engine_settings=SimpleNamespace(
            width=84,
            height=84,
            quality_level=5,
            time_scale=20.0,
            target_frame_rate=-1,
            capture_frame_rate=60,
        ),
    )
    from mlagents_fast.trainers.ray_env_manager import RayEnvManager

    manager = RayEnvManager(create, factory_options, n_env=1)
    try:
        assert manager.reset() == 1
    finally:
        manager.close()


def test_a_factory_failure_in_the_actor_is_raised_with_its_message(ray_instance):
    def broken(worker_id, side_channels):
        raise ValueError(f"no environment for worker {worker_id}")

    # Past the restart limit: one error naming the worker and its last failure (the cause).
    with pytest.raises(EnvironmentRestartLimitError, match="no environment for worker") as info:
        make_manager(broken, lifetime=0)
    assert isinstance(info.value.__cause__, ValueError)


def fake_capacity_check(cpus, n_env, cpus_per_env, started_here):
    from mlagents_fast.trainers.ray_env_manager import RayEnvManager

    shut_down = []
    manager = RayEnvManager.__new__(RayEnvManager)
    manager._ray = SimpleNamespace(
        cluster_resources=lambda: {"CPU": cpus}, shutdown=lambda: shut_down.append(True)
    )
    manager._owns_ray = started_here
    manager._check_capacity(n_env, cpus_per_env, started_here=started_here)
    return shut_down


def test_a_local_instance_too_small_is_a_configuration_error():
    with pytest.raises(TrainerConfigError) as error:
        fake_capacity_check(2.0, 8, 1.0, started_here=True)
    assert (
        "--num-envs 8 with --ray-cpus-per-env 1 needs 8 CPUs and the Ray cluster has 2; "
        "lower --ray-cpus-per-env (to 0.25 for example)" in str(error.value)
    )


def test_a_joined_cluster_too_small_warns_and_waits_for_nodes(caplog):
    with caplog.at_level(logging.WARNING):
        assert fake_capacity_check(2.0, 8, 1.0, started_here=False) == []
    assert any("some environments start only when nodes join" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        fake_capacity_check(2.0, 4, 0.5, started_here=True)  # fits: nothing said
    assert not caplog.records


@pytest.mark.smoke
def test_command_line_errors_of_env_workers_ray_are_one_line_and_exit_2(tmp_path):
    # Ray made unimportable: what a user without the extra installed sees.
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"
        "from mlagents_fast.trainers.learn import main\n"
        "for argv in (['--env', 'builtin:GoalSeeker1D', '--env-workers', 'ray'],\n"
        "             ['--env-workers', 'ray']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exit:\n"
        "        print('exit', exit.code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    exits = [line for line in result.stdout.splitlines() if line.startswith("exit")]
    assert exits == ["exit 2", "exit 2"], result.stdout
    missing_ray, no_env = result.stderr.strip().splitlines()
    assert missing_ray.endswith(
        "--env-workers ray needs the Ray package, which is not installed: "
        "pip install 'mlagents-fast[ray]'"
    )
    assert "--env-workers ray needs --env" in no_env
    assert not os.path.exists(tmp_path / "results")


def test_env_workers_must_be_a_known_kind():
    from mlagents_fast.trainers.settings import RunOptions

    with pytest.raises(TrainerConfigError, match="env_workers must be one of subprocess, ray"):
        RunOptions.from_dict({"env_settings": {"env_workers": "threads"}})
    with pytest.raises(TrainerConfigError, match="ray_cpus_per_env must be positive"):
        RunOptions.from_dict({"env_settings": {"ray_cpus_per_env": 0}})


@pytest.mark.learning
def test_training_through_ray_actors_reaches_the_reward_of_subprocess_workers(
    ray_instance, tmp_path
):
    from mlagents_fast.trainers.run import train
    from mlagents_fast.trainers.settings import RunOptions
    from test_learning_trainers import ppo_goal_seeker

    behavior = ppo_goal_seeker(30_000)
    final = {}
    for workers in ("subprocess", "ray"):
        options = RunOptions.from_dict(
            {
                "behaviors": {"GoalSeeker1D": behavior},
                "env_settings": {
                    "env_path": "builtin:GoalSeeker1D",
                    "num_envs": 2,
                    "env_workers": workers,
                    "ray_cpus_per_env": 0.5,
                    "timeout_wait": 300,
                },
            }
        )
        result = train(
            "builtin:GoalSeeker1D", options, run_id=workers, results_dir=str(tmp_path), seed=1
        )
        history = result.reward_history["GoalSeeker1D"]
        final[workers] = sum(reward for _, reward in history[-2:]) / 2
    # Same seed, same environments: both learn the task (the order in which the two workers'
    # steps arrive differs between runs, so the curves are close, not identical).
    assert final["subprocess"] >= 0.9 and final["ray"] >= 0.9, final
    assert abs(final["ray"] - final["subprocess"]) <= 0.05, final
