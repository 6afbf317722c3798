"""PyTorch networks, distributions and helpers (the counterpart of ``mlagents.trainers.torch_entities``)."""
