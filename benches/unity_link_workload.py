"""Messages of the Unity-link decode benchmarks (issue 4 item 8), shared by both sides.

Built with the protobuf classes generated from ``protos/``
(``mlagents_fast.envs.communicator_objects``), written to files so that ML-Agents 1.1.0 (``ref_mlagents_unity_link.py``) parses exactly the same bytes.
Each workload has an ``announce`` message (brain parameters + agents, where the behavior spec
comes from) and a ``steady`` message (agents only), the one that is timed.

- vector: 1000 agents x 8 floats, 2 continuous actions (a large 3DBall scene);
- png: 16 agents x one 84x84x3 PNG camera observation, a branch of 3 actions.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("vector", "png")
BEHAVIOR = "Bench?team=0"
VECTOR_AGENTS, VECTOR_SIZE = 1000, 8
PNG_AGENTS, PNG_SIDE = 16, 84


def camera_image(rng: np.random.Generator) -> np.ndarray:
    """An 84x84 RGB frame with smooth gradients, a few boxes and sensor noise (HWC uint8)."""
    y, x = np.mgrid[0:PNG_SIDE, 0:PNG_SIDE].astype(np.float32) / PNG_SIDE
    image = np.stack([x, y, 0.5 * (x + y)], axis=-1) * 160 + 40
    for _ in range(4):
        top, left = rng.integers(0, PNG_SIDE - 20, size=2)
        image[top : top + 20, left : left + 20] = rng.integers(0, 256, size=3)
    image += rng.normal(0, 4, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def build_messages(workload: str) -> tuple[bytes, bytes]:
    """(announce, steady) message bytes of ``workload``."""
    from mlagents_fast.envs.communicator_objects import (  # generated from protos/
        agent_pb2,
        brain_parameters_pb2,
        observation_pb2,
        unity_message_pb2,
    )
    from PIL import Image

    rng = np.random.default_rng(4)
    agents = []
    if workload == "vector":
        values = rng.normal(size=(VECTOR_AGENTS, VECTOR_SIZE)).astype(np.float32)
        for agent_id in range(VECTOR_AGENTS):
            obs = observation_pb2.ObservationProto(
                shape=[VECTOR_SIZE], dimension_properties=[1], name="VectorSensor_size8"
            )
            obs.float_data.data.extend(values[agent_id])
            agents.append(agent_pb2.AgentInfoProto(id=agent_id, reward=0.1, observations=[obs]))
        action_spec = brain_parameters_pb2.ActionSpecProto(num_continuous_actions=2)
    else:
        for agent_id in range(PNG_AGENTS):
            png = io.BytesIO()
            Image.fromarray(camera_image(rng), "RGB").save(png, format="PNG")
            obs = observation_pb2.ObservationProto(
                shape=[3, PNG_SIDE, PNG_SIDE],
                compression_type=observation_pb2.PNG,
                compressed_data=png.getvalue(),
                dimension_properties=[1, 2, 2],
                name="CameraSensor",
            )
            agents.append(agent_pb2.AgentInfoProto(id=agent_id, reward=0.1, observations=[obs]))
        action_spec = brain_parameters_pb2.ActionSpecProto(
            num_discrete_actions=1, discrete_branch_sizes=[3]
        )

    def message(with_brain: bool) -> bytes:
        msg = unity_message_pb2.UnityMessageProto()
        msg.header.status = 200
        msg.unity_output.rl_output.agentInfos[BEHAVIOR].value.extend(agents)
        if with_brain:
            msg.unity_output.rl_initialization_output.brain_parameters.append(
                brain_parameters_pb2.BrainParametersProto(
                    brain_name=BEHAVIOR, is_training=True, action_spec=action_spec
                )
            )
        return msg.SerializeToString()

    return message(True), message(False)


def write_messages(folder: Path) -> None:
    """Write ``<workload>.announce.bin`` and ``<workload>.steady.bin`` for every workload."""
    for workload in WORKLOADS:
        announce, steady = build_messages(workload)
        (folder / f"{workload}.announce.bin").write_bytes(announce)
        (folder / f"{workload}.steady.bin").write_bytes(steady)
