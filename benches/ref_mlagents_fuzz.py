"""ML-Agents 1.1.0 side of fuzz_decoder.py (run under the anchor venv).

    python ref_mlagents_fuzz.py <inputs file> <seconds per input>

The inputs file holds length-prefixed (uint32 little-endian) messages. Each goes through
what ``mlagents_envs.environment.UnityEnvironment`` does with a received message:
``UnityMessageProto.FromString``, ``behavior_spec_from_proto`` for announced behaviors,
``steps_from_proto`` for known ones, and the side channels (the same kinds as
``tests/unity_fuzz.make_side_channels``). The process runs with a 6 GiB address-space limit
(so a huge allocation is a MemoryError, not a machine in trouble) and a per-input timer.
Prints one JSON line: inputs, seconds, hangs and the histogram of outcomes.
"""

from __future__ import annotations

import json
import resource
import signal
import struct
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mlagents_envs import base_env
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.rpc_utils import behavior_spec_from_proto, steps_from_proto
from mlagents_envs.side_channel import SideChannel
from mlagents_envs.side_channel.engine_configuration_channel import (
    EngineConfigurationChannel,
)
from mlagents_envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_envs.side_channel.float_properties_channel import (
    FloatPropertiesChannel,
)
from mlagents_envs.side_channel.raw_bytes_channel import RawBytesChannel
from mlagents_envs.side_channel.side_channel_manager import SideChannelManager
from mlagents_envs.side_channel.stats_side_channel import StatsSideChannel
from unity_fuzz import RAW_CHANNEL_ID, known_specs, primitives_channel


class Hang(Exception):
    pass


def run(data: bytes) -> None:
    output = UnityMessageProto.FromString(data).unity_output
    specs = known_specs(base_env)
    for brain in output.rl_initialization_output.brain_parameters:
        agent_infos = output.rl_output.agentInfos[brain.brain_name]
        if agent_infos.value:
            specs[brain.brain_name] = behavior_spec_from_proto(brain, agent_infos.value[0])
    manager = SideChannelManager(
        [
            EnvironmentParametersChannel(),
            EngineConfigurationChannel(),
            StatsSideChannel(),
            FloatPropertiesChannel(),
            RawBytesChannel(RAW_CHANNEL_ID),
            primitives_channel(SideChannel),
        ]
    )
    manager.process_side_channel_message(output.rl_output.side_channel)
    for name, spec in specs.items():
        if name in output.rl_output.agentInfos:
            steps_from_proto(output.rl_output.agentInfos[name].value, spec)


def main() -> None:
    limit = 6 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    timeout = float(sys.argv[2])

    def alarm(*_):
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    raw = Path(sys.argv[1]).read_bytes()
    histogram: Counter = Counter()
    inputs = hangs = 0
    offset = 0
    start = time.perf_counter()
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        data = raw[offset + 4 : offset + 4 + length]
        offset += 4 + length
        inputs += 1
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            run(data)
            histogram["ok"] += 1
        except Hang:
            hangs += 1
            histogram["hang"] += 1
        except BaseException as err:  # noqa: BLE001 - counting what ML-Agents raises
            histogram[type(err).__name__] += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    print(
        json.dumps({"inputs": inputs, "seconds": seconds, "hangs": hangs, "histogram": histogram})
    )


if __name__ == "__main__":
    main()
