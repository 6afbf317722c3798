"""Loggers that share one level and format (the counterpart of ``mlagents_envs.logging_util``).

``get_logger(name)`` returns a logger printing to stdout; ``set_log_level(level)`` changes
the level of every logger made so far and of those made later, and switches to the detailed
format (time, file and line) at DEBUG, as ML-Agents does.
"""

from __future__ import annotations

import logging
import sys

__all__ = [
    "CRITICAL",
    "DATE_FORMAT",
    "DEBUG",
    "DEBUG_LOG_FORMAT",
    "ERROR",
    "FATAL",
    "INFO",
    "LOG_FORMAT",
    "NOTSET",
    "WARNING",
    "get_logger",
    "set_log_level",
]

CRITICAL = logging.CRITICAL
FATAL = logging.FATAL
ERROR = logging.ERROR
WARNING = logging.WARNING
INFO = logging.INFO
DEBUG = logging.DEBUG
NOTSET = logging.NOTSET

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
DEBUG_LOG_FORMAT = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"
LOG_FORMAT = "[%(levelname)s] %(message)s"

_managed_loggers: set[logging.Logger] = set()
_log_level = NOTSET


def _formatter(level: int) -> logging.Formatter:
    if level == DEBUG:
        return logging.Formatter(fmt=DEBUG_LOG_FORMAT, datefmt=DATE_FORMAT)
    return logging.Formatter(fmt=LOG_FORMAT)


def get_logger(name: str) -> logging.Logger:
    """The logger ``name``, printing to stdout at the level set by :func:`set_log_level`."""
    logger = logging.getLogger(name)
    if logger not in _managed_loggers:
        # One handler per logger, however often it is asked for.
        handler = logging.StreamHandler(stream=sys.stdout)
        handler.setFormatter(_formatter(_log_level))
        logger.addHandler(handler)
        _managed_loggers.add(logger)
    if _log_level != NOTSET:
        logger.setLevel(_log_level)
    return logger


def set_log_level(log_level: int) -> None:
    """Level of every logger from :func:`get_logger`, now and later; DEBUG adds detail."""
    global _log_level
    _log_level = log_level
    formatter = _formatter(log_level)
    for logger in _managed_loggers:
        logger.setLevel(log_level)
        for handler in logger.handlers:
            handler.setFormatter(formatter)
