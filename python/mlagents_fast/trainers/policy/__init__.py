"""Policies (the counterpart of ``mlagents.trainers.policy``)."""

from mlagents_fast.trainers.policy.policy import Policy, UnityPolicyException

__all__ = ["Policy", "UnityPolicyException"]
