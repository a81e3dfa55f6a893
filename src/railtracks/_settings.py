"""The ``logging_setting`` vocabulary (SPEC 4)."""

from __future__ import annotations

import enum
from typing import Final

from .errors import ConfigurationError


class LoggingSetting(enum.IntEnum):
    """How loudly a session is reported; higher is quieter."""

    VERBOSE = 10
    REGULAR = 20
    QUIET = 30
    NONE = 100

    @property
    def loguru_level(self) -> str | None:
        """The lowest loguru level printed for this setting, or None for nothing."""
        return _LOGURU_LEVEL[self]


_LOGURU_LEVEL: Final = {
    LoggingSetting.VERBOSE: "DEBUG",
    LoggingSetting.REGULAR: "INFO",
    LoggingSetting.QUIET: "WARNING",
    LoggingSetting.NONE: None,
}

_ALIASES: Final = {
    "VERBOSE": LoggingSetting.VERBOSE,
    "DEBUG": LoggingSetting.VERBOSE,
    "REGULAR": LoggingSetting.REGULAR,
    "INFO": LoggingSetting.REGULAR,
    "QUIET": LoggingSetting.QUIET,
    "WARNING": LoggingSetting.QUIET,
    "ERROR": LoggingSetting.QUIET,
    "NONE": LoggingSetting.NONE,
}


def parse_logging_setting(value: object, *, source: str = "logging_setting") -> LoggingSetting:
    """Accept a ``LoggingSetting`` or one of its names/aliases, case-insensitively."""
    if isinstance(value, LoggingSetting):
        return value
    if isinstance(value, str):
        found = _ALIASES.get(value.strip().upper())
        if found is not None:
            return found
    allowed = ", ".join(_ALIASES)
    raise ConfigurationError(
        f"{source}: unknown logging setting {value!r} (expected one of {allowed})"
    )
