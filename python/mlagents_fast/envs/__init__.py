"""Environments (the counterpart of ``mlagents_envs``)."""
