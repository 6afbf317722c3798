"""ML-Agents' ``space_type_pb2``: defined in ``brain_parameters.proto`` here."""

from mlagents_fast.envs.communicator_objects.brain_parameters_pb2 import (
    SpaceTypeProto,
    continuous,
    discrete,
)

__all__ = ["SpaceTypeProto", "continuous", "discrete"]
