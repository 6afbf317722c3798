"""Trainer base classes and helpers (the counterpart of ``mlagents.trainers.trainer``)."""
