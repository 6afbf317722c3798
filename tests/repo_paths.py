"""Folders of this checkout that tests read from."""

import os

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
FIXTURES = os.path.join(TESTS_DIR, "fixtures")
# ML-Agents' example trainer configs, shipped with the package as ML-Agents ships config/.
CONFIG_DIR = os.path.join(REPO_ROOT, "config")
