"""``mlagents-fast-run-experiment CONFIG``: train from one file holding the whole RunOptions.

The counterpart of ``mlagents.trainers.run_experiment`` (``mlagents-run-experiment``): the
YAML or JSON file has every section mlagents-learn's ``configuration.yaml`` has
(``behaviors``, ``env_settings``, ``checkpoint_settings``, ...), and no flags are read. A
configuration error prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.learn import run_cli

__all__ = ["main", "parse_command_line"]


def parse_command_line(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("experiment_config_path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    from mlagents_fast.trainers.cli_utils import CONFIG_ERROR_EXIT_CODE
    from mlagents_fast.trainers.settings import RunOptions, load_config

    args = parse_command_line(argv)
    try:
        options = RunOptions.from_dict(load_config(args.experiment_config_path))
        run_cli(options)
    except TrainerConfigError as error:
        name = os.path.basename(sys.argv[0] or "mlagents-fast-run-experiment")
        print(f"{name}: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT_CODE)


if __name__ == "__main__":
    main()
