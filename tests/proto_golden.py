"""Access to the generated protobuf classes in tests/golden (test helper, not a test module)."""

from __future__ import annotations

import sys
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
if str(GOLDEN_DIR) not in sys.path:
    sys.path.insert(0, str(GOLDEN_DIR))

from communicator_objects import (
    agent_pb2,
    brain_parameters_pb2,
    misc_pb2,
    observation_pb2,
    unity_message_pb2,
)

__all__ = ["agent_pb2", "brain_parameters_pb2", "misc_pb2", "observation_pb2", "unity_message_pb2"]
