"""Self-play (``self_play:`` settings): the counterpart of ``mlagents.trainers.ghost``."""
