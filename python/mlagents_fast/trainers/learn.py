"""``mlagents-fast-learn``: the command line of training (the counterpart of ``mlagents.trainers.learn``).

    mlagents-fast-learn config.yaml --run-id NAME [--env builtin:3DBall | path/to/Unity.x86_64]

Every mlagents-learn flag is accepted (parsed by :mod:`mlagents_fast.trainers.cli_utils`); the
work is done by :func:`mlagents_fast.trainers.run.run_training`. A configuration error (bad YAML,
unknown key, a run id that exists without --resume/--force) prints one line on stderr and exits
with status 2.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np

from mlagents_fast import __version__

__all__ = [
    "create_environment_factory",
    "main",
    "parse_command_line",
    "run_cli",
    "run_training",
]

logger = logging.getLogger("mlagents_fast.trainers")

_ASCII_BOX = str.maketrans("\u256d\u256e\u2570\u256f\u2500\u2502", "++++-|")


def banner() -> str:
    """This project's name and version in a box, printed when training starts."""
    lines = [
        f"mlagents-fast {__version__}",
        "Rust-accelerated trainers for ML-Agents environments",
    ]
    width = max(len(line) for line in lines) + 2
    rows = ["\u256d" + "\u2500" * width + "\u256e"]
    rows += ["\u2502 " + line.ljust(width - 1) + "\u2502" for line in lines]
    rows.append("\u2570" + "\u2500" * width + "\u256f")
    return "\n".join(rows)


def parse_command_line(argv: list[str] | None = None) -> Any:
    """The RunOptions given by ``argv`` (defaults to sys.argv[1:])."""
    from mlagents_fast.trainers.cli_utils import parse_command_line as parse

    return parse(sys.argv[1:] if argv is None else argv)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a record comes: while the progress bars are
    drawn, that is rich's proxy, which prints the line above the bars."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stdout


def _configure_logging(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    fmt = (
        "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"
        if debug
        else "[%(levelname)s] %(message)s"
    )
    root = logging.getLogger("mlagents_fast")
    root.setLevel(level)
    if not any(getattr(h, "_mlagents_fast_cli", False) for h in root.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter(fmt))
        handler._mlagents_fast_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False


def run_cli(options: Any) -> None:
    """Train with parsed RunOptions, as mlagents-learn's run_cli does."""
    from mlagents_fast.trainers.run import run_training

    _configure_logging(bool(getattr(options, "debug", False)))
    text = banner()
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.translate(_ASCII_BOX)
    print(text)
    import torch

    from mlagents_fast.envs.environment import UnityEnvironment

    logger.info(
        "Version information: mlagents-fast %s, Communicator API %s, PyTorch %s, Python %s",
        __version__,
        UnityEnvironment.API_VERSION,
        torch.__version__,
        sys.version.split()[0],
    )
    run_seed = options.env_settings.seed
    if run_seed == -1:
        run_seed = int(np.random.randint(0, 10000))
        logger.debug("run_seed set to %d", run_seed)
    run_training(run_seed, options, options.env_settings.num_areas)


def run_training(run_seed: int, options: Any, num_areas: int = 1, **kw: Any) -> Any:
    """Train with ``options`` (ML-Agents' ``learn.run_training``; see :mod:`.run`)."""
    from mlagents_fast.trainers.run import run_training as run

    return run(run_seed, options, num_areas, **kw)


def create_environment_factory(
    env_path: str | None,
    no_graphics: bool,
    no_graphics_monitor: bool,
    seed: int,
    num_areas: int,
    timeout_wait: int,
    start_port: int | None,
    env_args: list[str] | None,
    log_folder: str,
) -> Any:
    """A picklable ``(worker_id, side_channels) -> BaseEnv`` factory, as ML-Agents' one.

    Worker ``w`` gets seed ``seed + w``. Besides Unity executables (and None for the Editor),
    ``env_path`` may be ``builtin:<Name>`` or ``gym:<id>``.
    """
    from mlagents_fast.trainers.subprocess_env_manager import EnvFactory

    return EnvFactory(
        env_path=env_path,
        seed=seed,
        num_areas=num_areas,
        timeout_wait=timeout_wait,
        base_port=start_port,
        env_args=tuple(env_args or ()),
        no_graphics=no_graphics,
        no_graphics_monitor=no_graphics_monitor,
        log_folder=log_folder,
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: configuration errors exit 2 with one line on stderr."""
    from mlagents_fast.trainers.cli_utils import run_cli_or_exit

    run_cli_or_exit(run_cli, argv, prog="mlagents-fast-learn")


if __name__ == "__main__":
    main()
