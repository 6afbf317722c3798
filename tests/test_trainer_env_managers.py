"""Environment managers: N subprocess workers stepped together, crashed workers restarted
within the limits, failures beyond them raised."""

import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest
from mlagents_fast.trainers.exception import EnvironmentRestartLimitError
from mlagents_fast.trainers.subprocess_env_manager import EnvFactory, SubprocessEnvManager


class RandomPolicy:
    def __init__(self, spec):
        self.spec = spec

    def get_action(self, decision_steps, worker_id=0):
        action = self.spec.action_spec.random_action(len(decision_steps))
        return SimpleNamespace(
            action=action, env_action=action, outputs={}, agent_ids=list(decision_steps.agent_id)
        )


def restart_limits(lifetime, rate_n=-1, period_s=3600):
    return SimpleNamespace(
        env_settings=SimpleNamespace(
            max_lifetime_restarts=lifetime,
            restarts_rate_limit_n=rate_n,
            restarts_rate_limit_period_s=period_s,
        )
    )


def make_manager(lifetime, rate_n=-1):
    # Generous timeouts: a restarted worker on a loaded machine may take long to start, and a
    # time-out would count as a second failure.
    factory = EnvFactory(env_path="builtin:GoalSeeker1D", seed=3, timeout_wait=300)
    manager = SubprocessEnvManager(factory, restart_limits(lifetime, rate_n), n_env=2)
    manager.reset()
    spec = manager.training_behaviors["GoalSeeker1D?team=0"]
    manager.set_policy("GoalSeeker1D?team=0", RandomPolicy(spec))
    return manager


def kill(manager, worker_id):
    process = manager.workers[worker_id].process
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)  # the kill has landed before the manager steps again


def step_workers(manager, n):
    seen = set()
    for _ in range(n):
        for step in manager.get_steps():
            seen.add(step.worker_id)
            decision_steps, _ = step.current_all_step_result["GoalSeeker1D?team=0"]
            assert decision_steps.obs[0].dtype == np.float32
    return seen


def test_two_workers_step_and_a_killed_worker_is_restarted():
    manager = make_manager(lifetime=2)
    try:
        assert step_workers(manager, 10) == {0, 1}
        kill(manager, 1)
        seen = step_workers(manager, 10)
        assert manager.restart_counts[1] == 1 and manager.restart_counts[0] == 0
        assert seen == {0, 1}
        assert manager.workers[1].process.is_alive()
    finally:
        manager.close()
    assert not any(w.process.is_alive() for w in manager.workers)


def test_restarts_beyond_the_lifetime_limit_raise():
    manager = make_manager(lifetime=0)
    try:
        step_workers(manager, 2)
        kill(manager, 0)
        with pytest.raises(EnvironmentRestartLimitError, match="worker 0 exceeded"):
            step_workers(manager, 10)
    finally:
        manager.close()


def test_restart_rate_limit():
    manager = make_manager(lifetime=-1, rate_n=1)
    try:
        step_workers(manager, 2)
        kill(manager, 0)
        step_workers(manager, 5)  # first restart is within the rate
        assert manager.restart_counts[0] == 1
        kill(manager, 0)
        with pytest.raises(EnvironmentRestartLimitError, match="worker 0 exceeded"):
            step_workers(manager, 10)  # a second one within the period is not
    finally:
        manager.close()


def plain_callable_manager(env_factory, lifetime=2):
    # timeout_wait comes from run_options here, as in ML-Agents: the factory has no such field.
    run_options = restart_limits(lifetime)
    run_options.env_settings.timeout_wait = 300
    manager = SubprocessEnvManager(env_factory, run_options, n_env=2)
    manager.reset()
    behavior = "GoalSeeker1D?team=0"
    manager.set_policy(behavior, RandomPolicy(manager.training_behaviors[behavior]))
    return manager


def test_a_lambda_factory_runs_in_two_workers_and_is_restarted_after_a_kill():
    from mlagents_fast.envs.env_opener import make_env

    manager = plain_callable_manager(
        lambda worker_id, side_channels: make_env(
            "builtin:GoalSeeker1D", seed=5, worker_id=worker_id, side_channels=side_channels
        )
    )
    try:
        assert step_workers(manager, 6) == {0, 1}
        kill(manager, 0)
        assert step_workers(manager, 6) == {0, 1}
        assert manager.restart_counts[0] == 1
        assert manager.reset() == 2  # one first step per worker
    finally:
        manager.close()
    assert not any(w.process.is_alive() for w in manager.workers)


def test_a_local_closure_factory_gets_the_side_channels_and_its_captured_values():
    from mlagents_fast.envs.env_opener import make_env
    from mlagents_fast.envs.side_channel import (
        EngineConfigurationChannel,
        EnvironmentParametersChannel,
    )

    num_areas = 3
    single_area = make_env("builtin:GoalSeeker1D", seed=5)
    single_area.reset()
    agents_per_area = len(single_area.get_steps("GoalSeeker1D?team=0")[0])
    single_area.close()

    def create(worker_id, side_channels):
        # ML-Agents hands over the environment-parameters, engine and stats channels.
        assert isinstance(side_channels[0], EnvironmentParametersChannel)
        assert isinstance(side_channels[1], EngineConfigurationChannel)
        return make_env(
            "builtin:GoalSeeker1D",
            seed=5,
            worker_id=worker_id,
            side_channels=side_channels,
            num_areas=num_areas,
        )

    manager = plain_callable_manager(create)
    try:
        for _ in range(4):
            for step in manager.get_steps():
                decision_steps, _ = step.current_all_step_result["GoalSeeker1D?team=0"]
                # The captured value reached the worker.
                assert len(decision_steps) == num_areas * agents_per_area
    finally:
        manager.close()


def test_a_factory_failure_in_the_worker_is_raised_with_its_message():
    def broken(worker_id, side_channels):
        raise ValueError(f"no environment for worker {worker_id}")

    # Past the restart limit: one error naming the worker and its last failure (the cause).
    with pytest.raises(EnvironmentRestartLimitError, match="no environment for worker") as info:
        plain_callable_manager(broken, lifetime=0)
    assert isinstance(info.value.__cause__, ValueError)
