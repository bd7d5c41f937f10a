"""Exceptions whose messages are meant for users: the CLI prints them as one line and exits non-zero."""
from __future__ import annotations

from .registry import UnknownNameError


class ClipstudyError(Exception):
    """Base class for user-facing errors (bad input, missing files, corrupt checkpoints)."""


class DataError(ClipstudyError):
    """A dataset folder is missing, empty or malformed."""


class CheckpointError(ClipstudyError):
    """A checkpoint cannot be found, downloaded or read."""


class ConfigError(ClipstudyError, ValueError):
    """A parameter has the wrong type or an invalid value."""


USER_ERRORS = (ClipstudyError, UnknownNameError, FileNotFoundError)
