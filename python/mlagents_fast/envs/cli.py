"""``mlagents-fast-env``: run a BaseEnv as the Unity side of the link (docs/protocol.md, sections 2-8).

It behaves like a Unity player built with ML-Agents: a gRPC client that connects to
``localhost:<--mlagents-port>``, performs the handshake, answers every reset and step with
the environment's agents, applies the EnvironmentParameters and EngineConfiguration side
channels, and quits when the trainer sends status 400. Player arguments it does not need
(``-batchmode``, ``-nographics``, ``-screen-width 84``...) are accepted and ignored;
``-logFile <path>`` receives its log.

    mlagents-fast-env --env builtin:3DBall --mlagents-port 5005
    mlagents-fast-env --write-launcher builtin:3DBall --launcher-dir envs/
    mlagents-learn config.yaml --env envs/3DBall      # trains through the real gRPC link
    mlagents-fast-env --record-demo 3DBall.demo --policy expert builtin:3DBall --steps 5000

``--env`` takes ``builtin:<Name>``, ``gym:<id>`` (see ``mlagents_fast.envs.env_opener``) or
``python:<module>:<callable>``, a callable taking ``seed``, ``num_areas`` and
``side_channels`` keywords and returning a BaseEnv.

``--record-demo PATH`` runs the environment in this process with ``--policy`` (``expert``,
``random``, an ``.onnx`` or ``.pt`` file, ``python:<module>:<callable>``; see
``mlagents_fast.envs.demo_policies``) for ``--steps`` agent steps and writes a ``.demo`` file
that ML-Agents and Unity read (``mlagents_fast.envs.demo_writer``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import numpy as np

from mlagents_fast import __version__, _native
from mlagents_fast.atomic_io import write_text_atomically
from mlagents_fast.envs.base_env import ActionTuple, BaseEnv, BehaviorSpec
from mlagents_fast.envs.demo_policies import policy_from_argument
from mlagents_fast.envs.demo_writer import record_demonstration
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.envs.environment import UnityEnvironment
from mlagents_fast.envs.exception import (
    UnityActionException,
    UnityEnvironmentException,
    UnityProtocolException,
    UnitySideChannelMessageException,
)
from mlagents_fast.envs.rpc_communicator import EXCHANGE_METHOD, MAX_MESSAGE_BYTES
from mlagents_fast.envs.rpc_utils import get_decode_limits
from mlagents_fast.envs.side_channel import (
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    IncomingMessage,
    SideChannel,
)
from mlagents_fast.envs.side_channel.default_training_analytics_side_channel import (
    DefaultTrainingAnalyticsSideChannel,
)
from mlagents_fast.exceptions import MlagentsFastError

__all__ = ["UnityHost", "main", "write_launcher"]

logger = logging.getLogger("mlagents_fast.envs.cli")

COMMAND_STEP, COMMAND_RESET, COMMAND_QUIT = 0, 1, 2
ACADEMY_NAME = "AcademySingleton"
PACKAGE_VERSION = f"mlagents-fast-{__version__}"
# How long the first call waits for the trainer's server to accept connections.
CONNECT_TIMEOUT_S = 60.0

EnvFactory = Callable[[int, int, Sequence[SideChannel]], BaseEnv]


class RelayChannel(SideChannel):
    """Hands payloads received from the trainer to the environment's own side-channel handling.

    The host registers one per channel id it relays; the environment drains ``message_queue``
    at its next reset or step exactly as if its user had queued the messages.
    """

    def on_message_received(self, msg: IncomingMessage) -> None:
        logger.debug("ignored a message from the environment on %s", self.channel_id)


def _split_side_channel_records(data: bytes) -> list[tuple[uuid.UUID, bytes]]:
    records, offset = [], 0
    while offset < len(data):
        if len(data) - offset < 20:
            raise UnitySideChannelMessageException(
                f"truncated side-channel record from the trainer: {len(data) - offset} bytes "
                f"left at offset {offset}, fewer than the 20-byte record header"
            )
        channel_id = uuid.UUID(bytes_le=data[offset : offset + 16])
        length = int.from_bytes(data[offset + 16 : offset + 20], "little", signed=True)
        offset += 20
        if length < 0 or offset + length > len(data):
            raise UnitySideChannelMessageException(
                f"truncated side-channel record from the trainer: channel {channel_id} "
                f"declares {length} bytes but {len(data) - offset} remain"
            )
        records.append((channel_id, data[offset : offset + length]))
        offset += length
    return records


class UnityHost:
    """Connects to a trainer on ``address`` and serves the environment ``env_factory`` makes.

    ``env_factory(seed, num_areas, side_channels)`` is called after the handshake with the
    seed and area count the trainer sent.
    """

    def __init__(self, env_factory: EnvFactory, address: str, num_areas: int | None = None):
        self._env_factory = env_factory
        self._address = address
        self._num_areas_override = num_areas
        self._relays = {
            channel_id: RelayChannel(channel_id)
            for channel_id in (
                EnvironmentParametersChannel.CHANNEL_ID,
                EngineConfigurationChannel.CHANNEL_ID,
            )
        }
        self._announced: set[str] = set()
        self._env: BaseEnv | None = None

    def run(self) -> int:
        """Serve until the trainer closes the link. Returns the process exit code."""
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        with grpc.insecure_channel(self._address, options=options) as channel:
            exchange = channel.unary_unary(EXCHANGE_METHOD)
            try:
                return self._serve(exchange)
            except grpc.RpcError as error:
                logger.error("lost the connection to the trainer at %s: %s", self._address, error)
                return 1
            finally:
                if self._env is not None:
                    self._env.close()

    def _serve(self, exchange: grpc.UnaryUnaryMultiCallable) -> int:
        academy = {
            "name": ACADEMY_NAME,
            "communication_version": UnityEnvironment.API_VERSION,
            "package_version": PACKAGE_VERSION,
            "capabilities": (True,) * 7,
            "brain_parameters": [],
        }
        first = exchange(
            _native.encode_unity_output(200, True, academy, [], b""),
            wait_for_ready=True,
            timeout=CONNECT_TIMEOUT_S,
        )
        reply = _native.decode_unity_input(first, get_decode_limits())
        init = reply["init_input"]
        if reply["status"] != 200 or init is None:
            logger.error("the trainer did not send an initialization message")
            return 1
        if not UnityEnvironment._check_communication_compatibility(
            init["communication_version"], UnityEnvironment.API_VERSION, init["package_version"]
        ):
            logger.error(
                "communication version %s of the trainer is not compatible with %s",
                init["communication_version"],
                UnityEnvironment.API_VERSION,
            )
            return 1
        num_areas = self._num_areas_override or max(1, init["num_areas"])
        self._env = self._env_factory(init["seed"], num_areas, list(self._relays.values()))
        # Message 2 of the handshake: an empty output, answered by the first reset.
        message = exchange(_native.encode_unity_output(200, False, None, [], b""))
        while True:
            reply = _native.decode_unity_input(message, get_decode_limits())
            if reply["status"] != 200:
                logger.info("the trainer closed the link (status %s)", reply["status"])
                return 0
            rl_input = reply["rl_input"]
            if rl_input is None:
                logger.error("the trainer sent a message without an input")
                return 1
            if rl_input["command"] == COMMAND_QUIT:
                return 0
            self._relay_side_channels(rl_input["side_channel"])
            if rl_input["command"] == COMMAND_RESET:
                self._env.reset()
            else:
                self._set_actions(rl_input["actions"])
                self._env.step()
            message = exchange(self._encode_state())

    def _relay_side_channels(self, data: bytes) -> None:
        for channel_id, payload in _split_side_channel_records(data):
            relay = self._relays.get(channel_id)
            if relay is not None:
                relay.message_queue.append(bytearray(payload))
            elif channel_id != DefaultTrainingAnalyticsSideChannel.CHANNEL_ID:
                logger.warning("Unknown side channel data received. Channel type: %s.", channel_id)

    def _set_actions(self, actions: dict) -> None:
        assert self._env is not None
        for name, (continuous, discrete) in actions.items():
            if name not in self._env.behavior_specs or len(continuous) == 0:
                continue
            self._env.set_actions(name, ActionTuple(continuous=continuous, discrete=discrete))

    def _encode_state(self) -> bytes:
        assert self._env is not None
        batches, new_brains = [], []
        for name, spec in self._env.behavior_specs.items():
            decision, terminal = self._env.get_steps(name)
            n_terminal, n_decision = len(terminal), len(decision)
            if n_terminal + n_decision == 0:
                continue
            mask = None
            if spec.action_spec.discrete_size > 0 and n_decision > 0:
                decision_mask = (
                    np.concatenate(decision.action_mask, axis=1)
                    if decision.action_mask is not None
                    else np.zeros((n_decision, sum(spec.action_spec.discrete_branches)), bool)
                )
                mask = np.concatenate(
                    [np.zeros((n_terminal, decision_mask.shape[1]), bool), decision_mask]
                )
            observations = [
                (
                    np.ascontiguousarray(
                        np.concatenate([terminal_obs, decision_obs]), dtype=np.float32
                    ),
                    tuple(int(d) for d in obs_spec.dimension_property),
                    obs_spec.observation_type.value,
                    obs_spec.name,
                )
                for obs_spec, terminal_obs, decision_obs in zip(
                    spec.observation_specs, terminal.obs, decision.obs, strict=True
                )
            ]
            batches.append(
                {
                    "name": name,
                    "agent_id": _column(terminal.agent_id, decision.agent_id, np.int32),
                    "reward": _column(terminal.reward, decision.reward, np.float32),
                    "done": np.concatenate([np.ones(n_terminal, bool), np.zeros(n_decision, bool)]),
                    "max_step_reached": np.concatenate(
                        [np.asarray(terminal.interrupted, bool), np.zeros(n_decision, bool)]
                    ),
                    "group_id": _column(terminal.group_id, decision.group_id, np.int32),
                    "group_reward": _column(
                        terminal.group_reward, decision.group_reward, np.float32
                    ),
                    "observations": observations,
                    "action_mask": mask,
                }
            )
            if name not in self._announced:
                self._announced.add(name)
                new_brains.append(
                    {
                        "brain_name": name,
                        "is_training": True,
                        "continuous_size": spec.action_spec.continuous_size,
                        "discrete_branches": tuple(spec.action_spec.discrete_branches),
                    }
                )
        init_output = {"brain_parameters": new_brains} if new_brains else None
        return _native.encode_unity_output(200, True, init_output, batches, b"")


def _column(terminal_values, decision_values, dtype) -> np.ndarray:
    return np.ascontiguousarray(
        np.concatenate([np.asarray(terminal_values, dtype), np.asarray(decision_values, dtype)])
    )


def env_factory_for(env: str, agents_per_area: int | None = None) -> EnvFactory:
    """The factory of the environment named ``env`` (builtin:, gym: or python:module:callable)."""
    if env.startswith("python:"):
        module_name, _, attribute = env[len("python:") :].partition(":")
        if not module_name or not attribute:
            raise UnityEnvironmentException(f"--env {env!r}: expected python:<module>:<callable>")
        target = getattr(importlib.import_module(module_name), attribute)

        def make_python_env(seed: int, num_areas: int, side_channels) -> BaseEnv:
            return target(seed=seed, num_areas=num_areas, side_channels=side_channels)

        return make_python_env
    if env.startswith(("builtin:", "gym:")):
        extra: dict[str, Any] = (
            {} if agents_per_area is None else {"agents_per_area": agents_per_area}
        )

        def make_registered_env(seed: int, num_areas: int, side_channels) -> BaseEnv:
            return make_env(
                env, seed=seed, num_areas=num_areas, side_channels=side_channels, **extra
            )

        return make_registered_env
    raise UnityEnvironmentException(
        f"--env {env!r}: expected builtin:<Name>, gym:<id> or python:<module>:<callable>"
    )


def launcher_name_for(env: str) -> str:
    """The executable's base name: the built-in name, gym id or callable name."""
    name = env.split(":")[-1]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "env"


def write_launcher(
    env: str,
    launcher_dir: str,
    name: str | None = None,
    extra_args: Sequence[str] = (),
) -> str:
    """Write ``<launcher_dir>/<name>.x86_64``, a shell script that runs ``env`` as a player.

    ``mlagents-learn --env=<launcher_dir>/<name>`` then launches it like a Unity build. The
    file is written atomically and made executable. Returns its path.
    """
    env_factory_for(env)  # reject a malformed --env now rather than at training time
    os.makedirs(launcher_dir, exist_ok=True)
    path = os.path.join(launcher_dir, f"{name or launcher_name_for(env)}.x86_64")
    command = [sys.executable, "-m", "mlagents_fast.envs.cli", "--env", env, *extra_args]
    script = (
        "#!/bin/sh\n"
        f"# Written by mlagents-fast-env: runs {env} as a Unity player would.\n"
        f'exec {shlex.join(command)} "$@"\n'
    )
    # Executable for everyone the umask allows (0755 with umask 022), like a Unity build.
    write_text_atomically(path, script, permissions=0o777)
    return path


def _take_log_file(argv: list[str]) -> tuple[str | None, list[str]]:
    """Remove Unity's ``-logFile <path>`` (any case) from argv."""
    rest, log_file, index = [], None, 0
    while index < len(argv):
        if argv[index].lower() == "-logfile" and index + 1 < len(argv):
            log_file = argv[index + 1]
            index += 2
            continue
        rest.append(argv[index])
        index += 1
    return log_file, rest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlagents-fast-env",
        description="Run an environment as the Unity side of the ML-Agents link, or write a "
        "launcher that mlagents-learn can start like a Unity build.",
    )
    parser.add_argument("--env", help="builtin:<Name>, gym:<id> or python:<module>:<callable>")
    parser.add_argument("--mlagents-port", type=int, help="trainer port (as Unity players take)")
    parser.add_argument("--host", default="localhost", help="trainer host (default localhost)")
    parser.add_argument("--num-areas", type=int, help="override the trainer's num_areas")
    parser.add_argument("--agents-per-area", type=int, help="built-in environments only")
    parser.add_argument("--write-launcher", metavar="ENV", help="write a launcher for ENV")
    parser.add_argument("--launcher-dir", default=".", help="folder of the launcher file")
    parser.add_argument("--launcher-name", help="launcher base name (default: from ENV)")
    parser.add_argument(
        "--record-demo", metavar="PATH", help="record a .demo file of ENV run by --policy"
    )
    parser.add_argument(
        "--policy",
        default="expert",
        help="expert (built-ins), random, model.onnx, checkpoint.pt or python:<module>:<callable>",
    )
    parser.add_argument("--steps", type=int, default=1000, help="agent steps to record")
    parser.add_argument("--seed", type=int, default=0, help="environment and policy seed")
    parser.add_argument("--behavior", help="behavior to record (default: the only one)")
    parser.add_argument("--demo-name", help="demonstration name (default: the file name)")
    parser.add_argument(
        "--stochastic",
        action="store_true",
        help="sample a model's actions instead of taking the deterministic ones",
    )
    parser.add_argument("env_positional", nargs="?", metavar="ENV", help="same as --env")
    return parser


def _checkpoint_policy(
    checkpoint_path: str, behavior_name: str, behavior_spec: BehaviorSpec, *, deterministic: bool
) -> Any:
    """``--policy checkpoint.pt``: the trainers' CheckpointPolicy (torch is imported only
    when a checkpoint is played)."""
    from mlagents_fast.trainers.policy.checkpoint_policy import CheckpointPolicy

    return CheckpointPolicy(
        checkpoint_path, behavior_name, behavior_spec, deterministic=deterministic
    )


def record_demo_command(args: argparse.Namespace) -> int:
    """``--record-demo``: run the environment with the policy and write the demonstration."""
    env = args.env or args.env_positional
    if not env:
        print("mlagents-fast-env: --record-demo needs an environment (--env)", file=sys.stderr)
        return 2
    try:
        factory = env_factory_for(env, args.agents_per_area)
        environment = factory(args.seed, args.num_areas or 1, [])
    except (UnityEnvironmentException, MlagentsFastError, ValueError) as err:
        print(f"mlagents-fast-env: {err}", file=sys.stderr)
        return 2
    try:
        names = list(environment.behavior_specs) or []
        if not names:
            environment.reset()
            names = list(environment.behavior_specs)
        behavior = args.behavior or (names[0] if len(names) == 1 else None)
        if behavior is None or behavior not in environment.behavior_specs:
            print(
                f"mlagents-fast-env: name the behavior to record with --behavior "
                f"(the environment has: {', '.join(names)})",
                file=sys.stderr,
            )
            return 2
        policy = policy_from_argument(
            args.policy,
            behavior,
            environment.behavior_specs[behavior],
            env=env,
            seed=args.seed,
            deterministic=not args.stochastic,
            checkpoint_policy=_checkpoint_policy,
        )
        summary = record_demonstration(
            environment, policy, args.record_demo, args.steps, behavior, args.demo_name
        )
    except MlagentsFastError as err:
        print(f"mlagents-fast-env: {err}", file=sys.stderr)
        return 2
    finally:
        environment.close()
    print(
        f"wrote {summary.path}: {summary.number_steps} steps, {summary.number_episodes} "
        f"episodes, mean episode reward {summary.mean_reward:.3f}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    log_file, rest = _take_log_file(list(sys.argv[1:] if argv is None else argv))
    args, ignored = _parser().parse_known_args(rest)
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file and log_file != "-" else logging.StreamHandler()
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    if ignored:
        logger.debug("ignored player arguments: %s", ignored)
    if args.record_demo:
        return record_demo_command(args)
    if args.write_launcher:
        extra = (
            [] if args.agents_per_area is None else ["--agents-per-area", str(args.agents_per_area)]
        )
        if args.num_areas is not None:
            extra += ["--num-areas", str(args.num_areas)]
        path = write_launcher(args.write_launcher, args.launcher_dir, args.launcher_name, extra)
        print(path)
        return 0
    args.env = args.env or args.env_positional
    if not args.env:
        logger.error("--env is required")
        return 2
    if args.mlagents_port is None:
        logger.error("no --mlagents-port given: nothing to connect to")
        return 2
    try:
        factory = env_factory_for(args.env, args.agents_per_area)
        host = UnityHost(factory, f"{args.host}:{args.mlagents_port}", args.num_areas)
        return host.run()
    except UnityProtocolException as err:
        # Bytes from the trainer that break the protocol: one line, as the trainer gives.
        logger.error("mlagents-fast-env: the trainer sent a message that cannot be read: %s", err)
        return 1
    except UnityActionException as err:
        logger.error("mlagents-fast-env: the trainer sent actions that do not fit: %s", err)
        return 1
    except Exception:
        logger.exception("mlagents-fast-env failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
