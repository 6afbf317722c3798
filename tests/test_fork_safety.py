"""Rust kernels keep working in a child forked after they used the thread pool.

A forked child inherits memory but not threads: if the parent started rayon's pool, a
parallel call in the child would wait forever on workers that do not exist. Trainers fork
environment workers, so the package turns parallelism off in every child
(``os.register_at_fork``) and every parallel kernel must check that switch.
"""

import subprocess
import sys
import textwrap

import pytest

HARNESS = textwrap.dedent(
    """
    import os, signal, time, warnings
    import numpy as np
    warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, fork() may deadlock"
    {setup}
    before = work()  # large enough to start the pool in the parent
    pid = os.fork()
    if pid == 0:
        os._exit(0 if np.array_equal(work(), before) else 3)
    for _ in range(600):  # a hung child is killed after 60 s, never left behind
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exit", os.waitstatus_to_exitcode(status))
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("child hung")
    """
)

GAE_SETUP = """
from mlagents_fast.trainers.trainer.trainer_utils import compute_gae_ragged
offsets = np.arange(0, 300_001, 1000, dtype=np.int64)  # 300 x 1000 steps
rewards = np.ones(300_000, np.float32)
value_next = np.zeros(300, np.float32)
def work():
    return compute_gae_ragged(rewards, rewards, offsets, value_next).advantages
"""

ENV_SETUP = """
from mlagents_fast.envs.base_env import ActionTuple
from mlagents_fast.envs.env_opener import make_env
def work():
    # 300 areas x 12 agents: above the parallel threshold of the built-in environments.
    env = make_env("builtin:3DBall", seed=3, num_areas=300)
    env.reset()
    name = next(iter(env.behavior_specs))
    for _ in range(3):
        decision, _ = env.get_steps(name)
        env.set_actions(name, ActionTuple(continuous=np.full((len(decision), 2), 0.3, np.float32)))
        env.step()
    decision, _ = env.get_steps(name)
    env.close()
    return decision.obs[0]
"""


@pytest.mark.parametrize("setup", [GAE_SETUP, ENV_SETUP], ids=["gae", "builtin-env-step"])
def test_parallel_kernels_work_in_a_child_forked_after_parallel_use(setup):
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS.format(setup=textwrap.indent(setup, ""))],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "child exit 0"
