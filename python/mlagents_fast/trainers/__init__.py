"""Trainers, settings and buffers (the counterpart of ``mlagents.trainers``)."""
