"""UnityEnvironment over real gRPC on loopback, against mlagents-fast-env and fake Unity clients."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from host_envs import BEHAVIOR, EPISODE_LENGTH
from mlagents_fast import _native
from mlagents_fast.envs import env_utils
from mlagents_fast.envs.base_env import ActionSpec, ActionTuple
from mlagents_fast.envs.cli import write_launcher
from mlagents_fast.envs.environment import UnityEnvironment
from mlagents_fast.envs.exception import (
    UnityActionException,
    UnityEnvironmentException,
    UnityNonFiniteValueException,
    UnityTimeOutException,
    UnityWorkerInUseException,
)
from mlagents_fast.envs.rpc_communicator import EXCHANGE_METHOD
from mlagents_fast.envs.side_channel import (
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
)

TESTS_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def launcher_dir(tmp_path, monkeypatch):
    """A folder for launchers; the launched host can import tests/host_envs.py."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])
    )
    return tmp_path


def test_handshake_and_100_steps_through_the_host_process(launcher_dir):
    launcher = write_launcher("python:host_envs:make_counter_env", str(launcher_dir), "Counter")
    assert launcher.endswith("Counter.x86_64") and os.access(launcher, os.X_OK)
    parameters = EnvironmentParametersChannel()
    engine = EngineConfigurationChannel()
    parameters.set_float_parameter("reward_scale", 2.0)
    engine.set_configuration_parameters(time_scale=20.0)
    env = UnityEnvironment(
        str(launcher_dir / "Counter"),
        base_port=free_port(),
        seed=3,
        num_areas=2,
        timeout_wait=30,
        no_graphics=True,
        side_channels=[parameters, engine],
        additional_args=["-screen-width", "84"],  # unknown player args are ignored
    )
    try:
        assert env.behavior_specs == {}  # brains only arrive with agent data
        assert env.academy_capabilities.baseRLCapabilities
        env.reset()
        spec = env.behavior_specs[BEHAVIOR]
        assert spec.action_spec == ActionSpec(1, (2,))
        assert [o.shape for o in spec.observation_specs] == [(6,)]
        decision, terminal = env.get_steps(BEHAVIOR)
        assert len(decision) == 4 and len(terminal) == 0  # 2 agents x num_areas 2
        np.testing.assert_array_equal(decision.agent_id, [3000, 3001, 3002, 3003])  # seed 3
        np.testing.assert_array_equal(decision.obs[0][:, 4], 2.0)  # env parameter arrived
        np.testing.assert_array_equal(decision.obs[0][:, 5], 20.0)  # engine config arrived
        np.testing.assert_array_equal(decision.action_mask[0][:, 1], [False, True, False, True])
        episodes_ended = 0
        for step in range(100):
            n = len(decision)
            continuous = np.linspace(-1, 1, n, dtype=np.float32).reshape(n, 1) * (step % 3)
            discrete = np.full((n, 1), step % 2, np.int32)
            env.set_actions(BEHAVIOR, ActionTuple(continuous, discrete))
            env.step()
            decision, terminal = env.get_steps(BEHAVIOR)
            if len(terminal):
                episodes_ended += 1
                assert terminal.interrupted.all()
                np.testing.assert_array_equal(terminal.obs[0][:, 2], continuous[:, 0])
                np.testing.assert_allclose(terminal.reward, 2.0 * continuous[:, 0])
                assert not set(terminal.agent_id) & set(decision.agent_id)
            else:
                np.testing.assert_array_equal(decision.obs[0][:, 2], continuous[:, 0])
                np.testing.assert_array_equal(decision.obs[0][:, 3], discrete[:, 0])
                np.testing.assert_allclose(decision.reward, 2.0 * continuous[:, 0])
        assert episodes_ended == 100 // EPISODE_LENGTH
        process = env._process
    finally:
        env.close()
    assert process.returncode == 0  # the host quit cleanly on status 400


def test_builtin_env_through_the_link_matches_direct_stepping(launcher_dir):
    from mlagents_fast.envs import env_opener

    name = "GoalSeeker1DHybrid"
    write_launcher(f"builtin:{name}", str(launcher_dir))
    env = UnityEnvironment(
        str(launcher_dir / name), base_port=free_port(), seed=11, timeout_wait=30
    )
    direct = env_opener.make_env(f"builtin:{name}", seed=11)
    try:
        env.reset()
        direct.reset()
        (behavior,) = env.behavior_specs
        assert env.behavior_specs[behavior] == direct.behavior_specs[behavior]
        rng = np.random.default_rng(0)
        for _ in range(30):
            linked_decision, linked_terminal = env.get_steps(behavior)
            direct_decision, direct_terminal = direct.get_steps(behavior)
            for linked, reference in (
                (linked_decision, direct_decision),
                (linked_terminal, direct_terminal),
            ):
                np.testing.assert_array_equal(linked.agent_id, reference.agent_id)
                np.testing.assert_array_equal(linked.reward, reference.reward)
                for a, b in zip(linked.obs, reference.obs, strict=True):
                    np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(linked_terminal.interrupted, direct_terminal.interrupted)
            n = len(linked_decision)
            action = ActionTuple(
                rng.uniform(-1, 1, (n, 1)).astype(np.float32), rng.integers(0, 3, (n, 1))
            )
            env.set_actions(behavior, action)
            direct.set_actions(behavior, action)
            env.step()
            direct.step()
    finally:
        env.close()
        direct.close()


def test_nan_observation_from_the_environment_is_a_clear_error(launcher_dir):
    write_launcher("python:host_envs:make_nan_env", str(launcher_dir), "Nan")
    env = UnityEnvironment(str(launcher_dir / "Nan"), base_port=free_port(), timeout_wait=30)
    try:
        env.reset()
        with pytest.raises(UnityNonFiniteValueException, match="observations provided had NaN"):
            for _ in range(5):
                env.step()
    finally:
        env.close()


def test_crashed_environment_process_reports_its_exit_code(launcher_dir):
    write_launcher("python:host_envs:make_crashing_env", str(launcher_dir), "Crash")
    env = UnityEnvironment(str(launcher_dir / "Crash"), base_port=free_port(), timeout_wait=30)
    try:
        env.reset()
        with pytest.raises(UnityEnvironmentException, match=r"shut down with return code 7\."):
            for _ in range(6):
                env.step()
    finally:
        env.close()


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("exit 3", r"Environment shut down with return code 3\."),
        ("kill -TERM $$", r"Environment shut down with return code -15 \(SIGTERM\)\."),
    ],
)
def test_process_dying_during_handshake(tmp_path, script, message):
    launcher = tmp_path / "Dies.x86_64"
    launcher.write_text(f"#!/bin/sh\n{script}\n")
    launcher.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(UnityEnvironmentException, match=message):
        UnityEnvironment(str(tmp_path / "Dies"), base_port=free_port(), timeout_wait=30)
    assert time.monotonic() - started < 10


def test_timeout_when_nothing_connects_and_port_is_released():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(UnityTimeOutException, match="took too long to respond"):
        UnityEnvironment(None, base_port=port, timeout_wait=1)
    assert time.monotonic() - started < 5
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


class FakeUnity:
    """A hand-written Unity-side client: sends the given messages, records the replies."""

    def __init__(self, port: int, messages: list[bytes]):
        self.replies: list[bytes] = []
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(port, messages), daemon=True)
        self._thread.start()

    def _run(self, port, messages):
        # Connect only once the trainer listens: a refused first attempt would put the gRPC
        # channel into reconnect backoff (1 s and more), longer than short timeouts.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.01)
        try:
            with grpc.insecure_channel(f"localhost:{port}") as channel:
                exchange = channel.unary_unary(EXCHANGE_METHOD)
                for message in messages:
                    self.replies.append(exchange(message, wait_for_ready=True, timeout=20))
        except grpc.RpcError as error:  # recorded for the test to inspect
            self.error = error

    def join(self):
        self._thread.join(timeout=20)
        assert not self._thread.is_alive()


def academy(version: str, capabilities=(True,) * 7) -> bytes:
    init = {
        "name": "AcademySingleton",
        "communication_version": version,
        "package_version": "3.0.0",
        "capabilities": capabilities,
        "brain_parameters": [],
    }
    return _native.encode_unity_output(200, True, init, [], b"")


EMPTY_OUTPUT = _native.encode_unity_output(200, False, None, [], b"")


@pytest.mark.parametrize("unity_version", ["2.0.0", "0.16.0", "garbage"])
def test_version_mismatch_closes_and_raises(unity_version):
    port = free_port()
    unity = FakeUnity(port, [academy(unity_version), EMPTY_OUTPUT])
    with pytest.raises(
        UnityEnvironmentException, match="communication API version is not compatible"
    ):
        UnityEnvironment(None, base_port=port, timeout_wait=10)
    unity.join()
    assert unity.error is None
    # The first reply is the init input; the pending second call was answered with status 400.
    first = _native.decode_unity_input(unity.replies[0])
    assert first["init_input"]["communication_version"] == "1.5.0"
    assert first["init_input"]["package_version"] == "1.1.0"
    assert unity.replies[1] == _native.encode_close()


def test_compatibility_rule_table():
    check = UnityEnvironment._check_communication_compatibility
    assert check("1.1.0", "1.0.0", "")
    assert not check("2.0.0", "1.0.0", "")
    assert check("0.16.0", "0.16.0", "")
    assert not check("0.17.0", "0.16.0", "")
    assert not check("1.16.0", "0.16.0", "")
    assert check("1.5.0", UnityEnvironment.API_VERSION, "")


def test_handshake_bytes_and_close_answers_the_pending_call():
    port = free_port()
    unity = FakeUnity(port, [academy("1.5.0"), EMPTY_OUTPUT])
    env = UnityEnvironment(None, base_port=port, seed=42, timeout_wait=10)
    assert env.behavior_specs == {}
    assert tuple(env.academy_capabilities) == (True,) * 7
    env.close()
    unity.join()
    expected_init = bytes.fromhex(
        "0a0308c801"
        "1a24"
        "1222"
        "082a"
        "1205" + b"1.5.0".hex() + "1a05" + b"1.1.0".hex() + "220e"
        "0801100118012001280130013801"
        "2801"
    )
    assert unity.replies == [expected_init, _native.encode_close()]
    with pytest.raises(UnityEnvironmentException, match="No Unity environment is loaded"):
        env.close()


def test_first_reset_carries_queued_side_channels():
    port = free_port()
    parameters = EnvironmentParametersChannel()
    parameters.set_float_parameter("gravity", 9.81)
    unity = FakeUnity(port, [academy("1.5.0"), EMPTY_OUTPUT, EMPTY_OUTPUT])
    env = UnityEnvironment(None, base_port=port, timeout_wait=10, side_channels=[parameters])
    env.reset()
    env.close()
    unity.join()
    reset = _native.decode_unity_input(unity.replies[1])["rl_input"]
    assert reset["command"] == 1
    data = reset["side_channel"]
    # Environment parameters first (registration order), then the analytics channel.
    assert data[:16] == EnvironmentParametersChannel.CHANNEL_ID.bytes_le
    assert data[20:39] == bytes.fromhex("070000006772617669747900000000c3f51c41")
    assert data[39:55] == bytes.fromhex("a9a464b66fd85f5a95cbe8353a7e8356")
    assert unity.replies[2] == _native.encode_close()


def test_an_analytics_channel_of_the_callers_is_left_to_the_caller():
    # The trainer's worker 0 brings its own analytics channel and fills it with the run: the
    # environment then sends no message of its own on it (ML-Agents' default channel only
    # speaks when the environment created it).
    from mlagents_fast.trainers.training_analytics_side_channel import (
        TrainingAnalyticsSideChannel,
    )

    port = free_port()
    unity = FakeUnity(port, [academy("1.5.0"), EMPTY_OUTPUT, EMPTY_OUTPUT])
    analytics = TrainingAnalyticsSideChannel()
    env = UnityEnvironment(None, base_port=port, timeout_wait=10, side_channels=[analytics])
    assert analytics.message_queue == []
    env.reset()
    env.close()
    unity.join()
    reset = _native.decode_unity_input(unity.replies[1])["rl_input"]
    assert reset["side_channel"] == b""


def test_worker_in_use_and_editor_worker_id():
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(UnityWorkerInUseException, match="worker number 0 is still in use"):
            UnityEnvironment(None, base_port=port, timeout_wait=1)
    with pytest.raises(UnityEnvironmentException, match="worker-id must be 0"):
        UnityEnvironment(None, worker_id=1, base_port=free_port(), timeout_wait=1)


def test_set_actions_checks_behavior_and_shape():
    port = free_port()
    unity = FakeUnity(port, [academy("1.5.0"), EMPTY_OUTPUT])
    env = UnityEnvironment(None, base_port=port, timeout_wait=10)
    try:
        with pytest.raises(UnityActionException, match="does not correspond to an existing"):
            env.set_actions("missing", ActionTuple(np.zeros((1, 1), np.float32)))
        with pytest.raises(UnityActionException):
            env.get_steps("missing")
    finally:
        env.close()
        unity.join()


def test_executable_arguments(tmp_path):
    env = UnityEnvironment.__new__(UnityEnvironment)
    env._no_graphics, env._port, env._worker_id = True, 5007, 2
    env._log_folder, env._additional_args = str(tmp_path), ["--extra", "1"]
    assert env._executable_args() == [
        "-nographics",
        "-batchmode",
        "--mlagents-port",
        "5007",
        "-logFile",
        os.path.join(str(tmp_path), "Player-2.log"),
        "--extra",
        "1",
    ]
    env._no_graphics, env._additional_args = False, ["-LOGFILE", "mine.log"]
    assert env._executable_args() == ["--mlagents-port", "5007", "-LOGFILE", "mine.log"]


def test_validate_environment_path(tmp_path, monkeypatch):
    monkeypatch.setattr(env_utils, "get_platform", lambda: "linux")
    (tmp_path / "Game.x86_64").write_text("")
    (tmp_path / "plain").write_text("")
    assert env_utils.validate_environment_path(str(tmp_path / "Game")) == str(
        tmp_path / "Game.x86_64"
    )
    assert env_utils.validate_environment_path(str(tmp_path / "Game.x86_64")) == str(
        tmp_path / "Game.x86_64"
    )
    assert env_utils.validate_environment_path(str(tmp_path / "plain")) == str(tmp_path / "plain")
    assert env_utils.validate_environment_path(str(tmp_path / "missing")) is None
    monkeypatch.chdir(tmp_path)
    assert env_utils.validate_environment_path("Game") == str(tmp_path / "Game.x86_64")
    with pytest.raises(UnityEnvironmentException, match="does not match any environments"):
        env_utils.launch_executable(str(tmp_path / "missing"), [])
    (tmp_path / "NoExec.x86_64").write_text("#!/bin/sh\n")
    with pytest.raises(UnityEnvironmentException, match="chmod -R 755"):
        env_utils.launch_executable(str(tmp_path / "NoExec"), [])


def test_environment_module_needs_no_protobuf_runtime():
    code = (
        "import sys; import mlagents_fast.envs.environment, mlagents_fast.envs.cli; "
        "assert not any(m.startswith('google.protobuf') for m in sys.modules), sorted(sys.modules)"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_timeout_also_applies_to_the_second_handshake_message():
    """ML-Agents waits forever for Unity's second message; we wait timeout_wait (docs/protocol.md §3)."""
    port = free_port()
    unity = FakeUnity(port, [academy("1.5.0")])  # never sends message 2
    started = time.monotonic()
    with pytest.raises(UnityTimeOutException):
        UnityEnvironment(None, base_port=port, timeout_wait=2)
    assert time.monotonic() - started < 8
    unity.join()
    # Message 1 was answered with the init input; the wait for message 2 timed out.
    assert unity.error is None and len(unity.replies) == 1
    assert _native.decode_unity_input(unity.replies[0])["init_input"]["seed"] == 0


def _listening_addresses(table: Path, port: int) -> list[str]:
    """Local addresses (hex, as the kernel writes them) of sockets listening on ``port``."""
    addresses = []
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].rsplit(":", 1)
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
            addresses.append(address)
    return addresses


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket tables")
def test_the_trainer_listens_on_loopback_only():
    """The trainer's gRPC server (what Unity connects to) is reachable from this machine only."""
    from mlagents_fast.envs.rpc_communicator import RpcCommunicator

    # 127.0.0.1 as the kernel writes it: IPv4, IPv4-mapped IPv6 (gRPC's socket), and ::1.
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    communicator = RpcCommunicator(base_port=free_port())
    try:
        addresses = [
            address
            for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
            if table.exists()
            for address in _listening_addresses(table, communicator.port)
        ]
        assert addresses and set(addresses) <= loopback, addresses
    finally:
        communicator.close()
