"""ML-Agents' ``communicator_objects.demonstration_meta_pb2``: defined in ``misc.proto`` here."""

from mlagents_fast.envs.communicator_objects.misc_pb2 import (
    DemonstrationMetaProto,
)

__all__ = ["DemonstrationMetaProto"]
