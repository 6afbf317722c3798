"""MA-POCA (``trainer_type: poca``): the counterpart of ``mlagents.trainers.poca``."""
