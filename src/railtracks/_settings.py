"""The ``logging_setting`` vocabulary (SPEC 4), and the session options read from the environment.

The environment's options live here, below the logs and the runtime: the
logs need the default ``logging_setting`` as much as sessions do.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from typing import Final

from .errors import ConfigurationError

ENV_LOGGING_SETTING: Final = "RAILTRACKS_LOGGING_SETTING"
ENV_SAVE_STATE: Final = "RAILTRACKS_SAVE_STATE"
ENV_STATE_MAX_RUNS: Final = "RAILTRACKS_STATE_MAX_RUNS"


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


def logging_setting_from_environment() -> LoggingSetting | None:
    """``RAILTRACKS_LOGGING_SETTING``, or None when it is unset or blank."""
    raw = os.environ.get(ENV_LOGGING_SETTING)
    if raw is None or not raw.strip():
        return None
    return parse_logging_setting(raw, source=ENV_LOGGING_SETTING)


def save_state_from_environment() -> bool | None:
    """``RAILTRACKS_SAVE_STATE`` (``0``/``1``/``false``/``true``), or None when unset or blank."""
    raw = os.environ.get(ENV_SAVE_STATE)
    if raw is None or not raw.strip():
        return None
    flag = raw.strip().lower()
    if flag in ("1", "true"):
        return True
    if flag in ("0", "false"):
        return False
    raise ConfigurationError(f"{ENV_SAVE_STATE}: expected 0 or 1, got {raw!r}")


def state_max_runs_from_environment() -> int | None:
    """``RAILTRACKS_STATE_MAX_RUNS`` (a positive integer), or None when it is unset or blank."""
    raw = os.environ.get(ENV_STATE_MAX_RUNS)
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ConfigurationError(
            f"{ENV_STATE_MAX_RUNS}: expected a positive whole number of runs to keep, got {raw!r}"
        )
    return int(text)


def default_logging_setting(session_defaults: Mapping[str, object]) -> LoggingSetting:
    """The setting of a session given none: ``set_config``'s, the environment's, or REGULAR.

    Raises ``ConfigurationError`` for a bad environment value, as sessions do.
    """
    configured = session_defaults.get("logging_setting")
    if isinstance(configured, LoggingSetting):
        return configured
    return logging_setting_from_environment() or LoggingSetting.REGULAR
