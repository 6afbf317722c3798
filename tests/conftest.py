import os
import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state."""
    random.seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def shared_dir():
    """The shared/ folder beside the checkout (ML-Agents configs and protocol facts)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(here, "..", "..", "shared"))
