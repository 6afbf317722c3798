"""``UnityEnvironment``: a Unity build or the Editor as a BaseEnv (docs/protocol.md).

Same constructor, methods and behavior as ``mlagents_envs.environment.UnityEnvironment``
1.1.0. What differs is inside: messages travel as raw bytes, are decoded in Rust straight into
numpy batches and replies are encoded in Rust (no protobuf objects, no pickling between
threads); the server listens on 127.0.0.1 unless ``bind_address`` says otherwise; and both
handshake messages are waited for at most ``timeout_wait`` seconds.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from mlagents_fast import _native
from mlagents_fast.envs import env_utils
from mlagents_fast.envs.base_env import (
    ActionTuple,
    AgentId,
    BaseEnv,
    BehaviorMapping,
    BehaviorName,
    BehaviorSpec,
    DecisionSteps,
    TerminalSteps,
)
from mlagents_fast.envs.communicator import Communicator, ProtobufLink
from mlagents_fast.envs.exception import (
    UnityActionException,
    UnityCommunicatorStoppedException,
    UnityEnvironmentException,
)
from mlagents_fast.envs.rpc_communicator import RpcCommunicator
from mlagents_fast.envs.rpc_utils import DecodedOutput, apply_decoded_output, decode_output
from mlagents_fast.envs.side_channel import (
    DefaultTrainingAnalyticsSideChannel,
    SideChannel,
    SideChannelManager,
)
from mlagents_fast.envs.side_channel.default_training_analytics_side_channel import (
    MLAGENTS_ENVS_VERSION,
)

__all__ = ["UnityEnvironment", "UnityRLCapabilities"]

logger = logging.getLogger(__name__)

COMMAND_STEP = 0
COMMAND_RESET = 1


class UnityRLCapabilities(NamedTuple):
    """What the environment said it supports; field names are those of the protobuf message."""

    # Field names are the protobuf ones: trainers read them as-is.
    baseRLCapabilities: bool
    concatenatedPngObservations: bool
    compressedChannelMapping: bool
    hybridActions: bool
    trainingAnalytics: bool
    variableLengthObservation: bool
    multiAgentGroups: bool


class UnityEnvironment(BaseEnv):
    """A Unity executable (launched here) or the Unity Editor (``file_name=None``) as a BaseEnv.

    - file_name: executable to launch, or None to wait for the Editor's Play button.
    - worker_id: offsets the port (several environments at once); must be 0 for the Editor.
    - base_port: first port; default 5005 for executables, 5004 for the Editor.
    - seed: random seed sent to Unity.
    - no_graphics: run the executable with ``-nographics -batchmode``.
    - no_graphics_monitor: like no_graphics for every worker except worker 0.
    - timeout_wait: seconds to wait for each message from Unity (handshake included).
    - additional_args: extra command-line arguments for the executable.
    - side_channels: SideChannel objects; the default analytics channel is added.
    - log_folder: folder for the player log (``Player-<worker_id>.log``).
    - num_areas: training areas the environment should create.
    - bind_address: interface the server listens on (127.0.0.1 by default; ML-Agents
      listens on all interfaces, which ``"[::]"`` or ``"0.0.0.0"`` restores).
    """

    # Communication protocol version (docs/protocol.md section 1).
    API_VERSION = "1.5.0"
    DEFAULT_EDITOR_PORT = 5004
    BASE_ENVIRONMENT_PORT = 5005
    _PORT_COMMAND_LINE_ARG = "--mlagents-port"

    def __init__(
        self,
        file_name: str | None = None,
        worker_id: int = 0,
        base_port: int | None = None,
        seed: int = 0,
        no_graphics: bool = False,
        no_graphics_monitor: bool = False,
        timeout_wait: int = 60,
        additional_args: Sequence[str] | None = None,
        side_channels: Sequence[SideChannel] | None = None,
        log_folder: str | None = None,
        num_areas: int = 1,
        bind_address: str = "127.0.0.1",
    ) -> None:
        # Set first so that close() and atexit work whatever fails below.
        self._loaded = False
        self._process: subprocess.Popen | None = None
        self._communicator: RpcCommunicator | ProtobufLink | None = None
        self._timeout_wait = timeout_wait
        atexit.register(self._close_at_exit)
        self._additional_args = list(additional_args or [])
        self._no_graphics = no_graphics or (no_graphics_monitor and worker_id != 0)
        if base_port is None:
            base_port = self.BASE_ENVIRONMENT_PORT if file_name else self.DEFAULT_EDITOR_PORT
        self._port = base_port + worker_id
        self._worker_id = worker_id
        self._log_folder = log_folder
        if file_name is None and worker_id != 0:
            raise UnityEnvironmentException(
                "If the environment name is None, "
                "the worker-id must be 0 in order to connect with the Editor."
            )
        side_channels = list(side_channels or [])
        # Without an analytics channel of the caller's (the trainer's worker 0 brings one
        # and fills it itself), the default one says which mlagents-envs this is.
        default_analytics: DefaultTrainingAnalyticsSideChannel | None = None
        if all(
            channel.channel_id != DefaultTrainingAnalyticsSideChannel.CHANNEL_ID
            for channel in side_channels
        ):
            default_analytics = DefaultTrainingAnalyticsSideChannel()
            side_channels.append(default_analytics)
        self._side_channel_manager = SideChannelManager(side_channels)
        self.academy_capabilities: UnityRLCapabilities | None = None
        self._env_state: dict[str, tuple[DecisionSteps, TerminalSteps]] = {}
        self._env_specs: dict[str, BehaviorSpec] = {}
        self._env_actions: dict[str, ActionTuple] = {}
        self._is_first_message = True

        self._bind_address = bind_address
        communicator = self._get_communicator(worker_id, base_port, timeout_wait)
        if isinstance(communicator, Communicator):  # protobuf messages, e.g. a mock
            communicator = ProtobufLink(communicator)
        self._communicator = communicator
        if file_name is not None:
            try:
                self._process = env_utils.launch_executable(file_name, self._executable_args())
            except UnityEnvironmentException:
                self._close(0)
                raise
        else:
            logger.info(
                "Listening on port %s. Start training by pressing the Play button in the "
                "Unity Editor.",
                self._port,
            )
        self._loaded = True
        init_message = _native.encode_init_input(
            seed, self.API_VERSION, MLAGENTS_ENVS_VERSION, [True] * 7, num_areas
        )
        try:
            first_message = self._communicator.initialize(init_message, self._poll_process)
            decoded = decode_output(first_message, {})
        except BaseException:
            # Timeout, crashed process, bad bytes: never leave the server or process behind.
            self._close(0)
            raise
        init_output = decoded.init_output
        # A first message without an initialization output: an unknown, capability-less Unity.
        unity_version = "" if init_output is None else init_output.communication_version
        package_version = "" if init_output is None else init_output.package_version
        capabilities = (False,) * 7 if init_output is None else init_output.capabilities
        if not self._check_communication_compatibility(
            unity_version, self.API_VERSION, package_version
        ):
            self._close(0)
            self._raise_version_exception(unity_version)
        self.academy_capabilities = UnityRLCapabilities(*capabilities)
        if not self.academy_capabilities.baseRLCapabilities:
            logger.warning(
                "Your communication protocol is older than the trainer's, or the environment "
                "did not declare its capabilities (package version %s). Some features may "
                "not work.",
                package_version,
            )
        self._apply_decoded(decoded)
        if default_analytics is not None:
            default_analytics.environment_initialized()

    def _get_communicator(self, worker_id: int, base_port: int, timeout_wait: int) -> Any:
        """The link to Unity; a subclass may return a protobuf-level
        :class:`~mlagents_fast.envs.communicator.Communicator` (as ML-Agents' tests do)."""
        return RpcCommunicator(worker_id, base_port, timeout_wait, self._bind_address)

    # ------------------------------------------------------------------ version checks

    @staticmethod
    def _parse_version(version: str) -> tuple[int, ...] | None:
        try:
            parts = tuple(int(part) for part in version.strip().split("."))
        except ValueError:
            return None
        return parts if len(parts) in (2, 3) else None

    @staticmethod
    def _check_communication_compatibility(
        unity_com_ver: str, python_api_version: str, unity_package_version: str
    ) -> bool:
        """Major versions must match; for major 0, minor versions must match too."""
        unity_version = UnityEnvironment._parse_version(unity_com_ver)
        api_version = UnityEnvironment._parse_version(python_api_version)
        if unity_version is None or api_version is None:
            return False
        if unity_version[0] == 0:
            if unity_version[:2] != api_version[:2]:
                return False
        elif unity_version[0] != api_version[0]:
            return False
        else:
            logger.info(
                "Connected to Unity environment with package version %s and communication "
                "version %s",
                unity_package_version,
                unity_com_ver,
            )
        return True

    @staticmethod
    def _raise_version_exception(unity_com_ver: str) -> None:
        raise UnityEnvironmentException(
            "The communication API version is not compatible between Unity and python. "
            f"Python API: {UnityEnvironment.API_VERSION}, Unity API: {unity_com_ver}.\n "
            "Please find the versions that work best together from our release page.\n"
            "https://github.com/Unity-Technologies/ml-agents/releases"
        )

    # ------------------------------------------------------------------ process

    def _executable_args(self) -> list[str]:
        args: list[str] = []
        if self._no_graphics:
            args += ["-nographics", "-batchmode"]
        args += [self._PORT_COMMAND_LINE_ARG, str(self._port)]
        logfile_set = "-logfile" in (arg.lower() for arg in self._additional_args)
        if self._log_folder and not logfile_set:
            args += ["-logFile", os.path.join(self._log_folder, f"Player-{self._worker_id}.log")]
        args += self._additional_args
        return args

    @staticmethod
    def _returncode_to_signal_name(returncode: int) -> str | None:
        try:
            # A negative value -N means the process was killed by signal N (POSIX).
            return signal.Signals(-returncode).name
        except (ValueError, TypeError):
            return None

    @staticmethod
    def _returncode_to_env_message(returncode: int) -> str:
        signal_name = UnityEnvironment._returncode_to_signal_name(returncode)
        signal_name = f" ({signal_name})" if signal_name else ""
        return f"Environment shut down with return code {returncode}{signal_name}."

    def _poll_process(self) -> None:
        """Raise UnityEnvironmentException if the launched environment has exited."""
        if self._process is None:
            return
        if self._process.poll() is not None:
            raise UnityEnvironmentException(
                self._returncode_to_env_message(self._process.returncode)
            )

    # ------------------------------------------------------------------ messages

    def _apply_decoded(self, decoded: DecodedOutput) -> None:
        """Store new behavior specs, dispatch side channels, store every behavior's steps."""
        self._env_state = apply_decoded_output(decoded, self._env_specs, self._side_channel_manager)

    def _exchange(self, message: bytes) -> None:
        if self._communicator is None:
            raise UnityEnvironmentException("No Unity environment is loaded.")
        reply = self._communicator.exchange(message, self._poll_process)
        decoded = decode_output(reply, self._env_specs)
        if decoded.status != 200:
            raise UnityCommunicatorStoppedException("Communicator has exited.")
        self._apply_decoded(decoded)

    def _side_channel_bytes(self) -> bytes:
        return bytes(self._side_channel_manager.generate_side_channel_messages())

    # ------------------------------------------------------------------ BaseEnv

    def reset(self) -> None:
        if not self._loaded:
            raise UnityEnvironmentException("No Unity environment is loaded.")
        self._exchange(_native.encode_rl_input(COMMAND_RESET, self._side_channel_bytes(), []))
        self._is_first_message = False
        self._env_actions.clear()

    def step(self) -> None:
        if self._is_first_message:
            return self.reset()
        if not self._loaded:
            raise UnityEnvironmentException("No Unity environment is loaded.")
        actions = []
        for name, spec in self._env_specs.items():
            n_agents = len(self._env_state[name][0]) if name in self._env_state else 0
            if n_agents == 0:
                continue
            action = self._env_actions.get(name)
            if action is None:
                action = spec.action_spec.empty_action(n_agents)
            actions.append(
                (
                    name,
                    np.ascontiguousarray(action.continuous, dtype=np.float32),
                    np.ascontiguousarray(action.discrete, dtype=np.int32),
                )
            )
        self._exchange(_native.encode_rl_input(COMMAND_STEP, self._side_channel_bytes(), actions))
        self._env_actions.clear()
        return None

    @property
    def behavior_specs(self) -> BehaviorMapping:
        return BehaviorMapping(self._env_specs)

    def _assert_behavior_exists(self, behavior_name: str) -> None:
        if behavior_name not in self._env_specs:
            raise UnityActionException(
                f"The group {behavior_name} does not correspond to an existing "
                "agent group in the environment"
            )

    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        self._assert_behavior_exists(behavior_name)
        if behavior_name not in self._env_state:
            return
        action_spec = self._env_specs[behavior_name].action_spec
        num_agents = len(self._env_state[behavior_name][0])
        self._env_actions[behavior_name] = action_spec._validate_action(
            action, num_agents, behavior_name
        )

    def set_action_for_agent(
        self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple
    ) -> None:
        self._assert_behavior_exists(behavior_name)
        if behavior_name not in self._env_state:
            return
        action_spec = self._env_specs[behavior_name].action_spec
        action = action_spec._validate_action(action, 1, behavior_name)
        if behavior_name not in self._env_actions:
            num_agents = len(self._env_state[behavior_name][0])
            self._env_actions[behavior_name] = action_spec.empty_action(num_agents)
        matches = np.flatnonzero(self._env_state[behavior_name][0].agent_id == agent_id)
        if matches.size == 0:
            raise IndexError(
                f"agent_id {agent_id} is did not request a decision at the previous step"
            )
        index = matches[0]
        if action_spec.continuous_size > 0:
            self._env_actions[behavior_name].continuous[index] = action.continuous[0, :]
        if action_spec.discrete_size > 0:
            self._env_actions[behavior_name].discrete[index] = action.discrete[0, :]

    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]:
        self._assert_behavior_exists(behavior_name)
        return self._env_state[behavior_name]

    def close(self) -> None:
        """Tell the environment to quit (status 400), stop the server, wait for the process."""
        if self._loaded:
            self._close()
        else:
            raise UnityEnvironmentException("No Unity environment is loaded.")

    def _close_at_exit(self) -> None:
        if self._loaded or self._communicator is not None or self._process is not None:
            self._close()

    def _close(self, timeout: int | None = None) -> None:
        if timeout is None:
            timeout = self._timeout_wait
        self._loaded = False
        if self._communicator is not None:
            self._communicator.close()
            self._communicator = None
        if self._process is not None:
            # Give the environment time to quit, then kill it.
            try:
                self._process.wait(timeout=timeout)
                logger.debug(self._returncode_to_env_message(self._process.returncode))
            except subprocess.TimeoutExpired:
                logger.warning("Environment timed out shutting down. Killing...")
                self._process.kill()
                self._process.wait()
            self._process = None
        atexit.unregister(self._close_at_exit)
