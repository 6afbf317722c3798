"""Reading a YAML configuration file (the counterpart of ML-Agents' ``cli_utils.load_config``,
which the command line re-exports from here)."""

import os
from typing import Any, TextIO

import yaml

from mlagents_fast.trainers.exception import TrainerConfigError

__all__ = ["load_config"]


def load_config(config_path: str) -> dict[str, Any]:
    """Read a YAML configuration file; any failure is a TrainerConfigError naming the file."""
    try:
        with open(config_path, encoding="utf-8") as data_file:
            return _load_config(data_file)
    except TrainerConfigError as error:
        error.config_file = config_path
        raise
    except OSError as error:
        abs_path = os.path.abspath(config_path)
        raise TrainerConfigError(
            f"Config file could not be found at {abs_path} ({error.strerror})."
        ) from None
    except UnicodeDecodeError:
        raise TrainerConfigError(
            f"There was an error decoding Config file from {config_path}. "
            f"Make sure your file is save using UTF-8"
        ) from None


def _load_config(fp: TextIO) -> dict[str, Any]:
    """Load the YAML configuration from a file-like object."""
    try:
        return yaml.safe_load(fp)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise TrainerConfigError(
            f"Error parsing yaml file{where}: {problem}. Please check for formatting errors."
        ) from None
