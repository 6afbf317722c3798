"""ML-Agents' ``custom_reset_parameters_pb2``: defined in ``misc.proto`` here."""

from mlagents_fast.envs.communicator_objects.misc_pb2 import (
    CustomResetParametersProto,
)

__all__ = ["CustomResetParametersProto"]
