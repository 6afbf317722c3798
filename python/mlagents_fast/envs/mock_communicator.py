"""A Communicator that plays a small fake Unity scene (``mlagents_envs.mock_communicator``).

For tests of code that drives a UnityEnvironment without a Unity build::

    class FakeUnity(UnityEnvironment):
        def _get_communicator(self, worker_id, base_port, timeout_wait):
            return MockCommunicator(discrete_action=True, num_agents=3)

    env = FakeUnity(file_name=None)

One behavior (``brain_name``) of ``num_agents`` agents, each observing ``visual_inputs``
black 30x40 PNG images and a vector ``1, 2, ..., vec_obs_size``, reward 1; agent 2 ends its
episode at every step. Actions: two continuous, or discrete branches of 3 and 2.
"""

from __future__ import annotations

import io
from typing import Any

from mlagents_fast.envs.communicator import Communicator, PollCallback
from mlagents_fast.envs.communicator_objects.agent_info_pb2 import AgentInfoProto
from mlagents_fast.envs.communicator_objects.brain_parameters_pb2 import (
    ActionSpecProto,
    BrainParametersProto,
)
from mlagents_fast.envs.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
from mlagents_fast.envs.communicator_objects.observation_pb2 import (
    NONE as COMPRESSION_TYPE_NONE,
)
from mlagents_fast.envs.communicator_objects.observation_pb2 import (
    PNG as COMPRESSION_TYPE_PNG,
)
from mlagents_fast.envs.communicator_objects.observation_pb2 import ObservationProto
from mlagents_fast.envs.communicator_objects.unity_output_pb2 import UnityOutputProto
from mlagents_fast.envs.communicator_objects.unity_rl_initialization_output_pb2 import (
    UnityRLInitializationOutputProto,
)
from mlagents_fast.envs.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto

__all__ = ["MockCommunicator"]

_IMAGE_HEIGHT, _IMAGE_WIDTH = 30, 40


def _black_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (_IMAGE_WIDTH, _IMAGE_HEIGHT)).save(out, format="PNG")
    return out.getvalue()


class MockCommunicator(Communicator):
    """Answers every message with the same agents, as a Unity scene would."""

    def __init__(
        self,
        discrete_action: bool = False,
        visual_inputs: int = 0,
        num_agents: int = 3,
        brain_name: str = "RealFakeBrain",
        vec_obs_size: int = 3,
    ) -> None:
        super().__init__()
        self.is_discrete = discrete_action
        self.steps = 0
        self.visual_inputs = visual_inputs
        self.has_been_closed = False
        self.num_agents = num_agents
        self.brain_name = brain_name
        self.vec_obs_size = vec_obs_size
        self.received: list[Any] = []
        """Every UnityInputProto sent to this communicator."""

    def initialize(self, inputs: Any, poll_callback: PollCallback | None = None) -> Any:
        from mlagents_fast.envs.environment import UnityEnvironment

        self.received.append(inputs)
        if self.is_discrete:
            action_spec = ActionSpecProto(num_discrete_actions=2, discrete_branch_sizes=[3, 2])
        else:
            action_spec = ActionSpecProto(num_continuous_actions=2)
        brain = BrainParametersProto(
            brain_name=self.brain_name, is_training=True, action_spec=action_spec
        )
        init = UnityRLInitializationOutputProto(
            name="RealFakeAcademy",
            communication_version=UnityEnvironment.API_VERSION,
            package_version="mock_package_version",
            log_path="",
            brain_parameters=[brain],
            capabilities=UnityRLCapabilitiesProto(
                baseRLCapabilities=True,
                concatenatedPngObservations=True,
                compressedChannelMapping=True,
                hybridActions=True,
                trainingAnalytics=True,
                variableLengthObservation=True,
                multiAgentGroups=True,
            ),
        )
        return UnityOutputProto(rl_initialization_output=init, rl_output=self._rl_output())

    def _rl_output(self) -> UnityRLOutputProto:
        png = _black_png() if self.visual_inputs else b""
        observations = [
            ObservationProto(
                compressed_data=png,
                shape=[3, _IMAGE_HEIGHT, _IMAGE_WIDTH],
                compression_type=COMPRESSION_TYPE_PNG,
            )
            for _ in range(self.visual_inputs)
        ]
        observations.append(
            ObservationProto(
                float_data=ObservationProto.FloatData(
                    data=[float(i + 1) for i in range(self.vec_obs_size)]
                ),
                shape=[self.vec_obs_size],
                compression_type=COMPRESSION_TYPE_NONE,
            )
        )
        output = UnityRLOutputProto()
        output.agentInfos[self.brain_name].value.extend(
            AgentInfoProto(reward=1, done=(i == 2), id=i, observations=observations)
            for i in range(self.num_agents)
        )
        return output

    def exchange(self, inputs: Any, poll_callback: PollCallback | None = None) -> Any:
        self.received.append(inputs)
        self.steps += 1
        return UnityOutputProto(rl_output=self._rl_output())

    def close(self) -> None:
        self.has_been_closed = True
