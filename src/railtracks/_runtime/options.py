"""Session options: validation and precedence (argument, set_config, environment, default)."""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from .._config import CONFIG
from .._settings import (
    LoggingSetting,
    logging_setting_from_environment,
    parse_logging_setting,
    save_state_from_environment,
    state_max_runs_from_environment,
)
from ..errors import ConfigurationError
from .executors import validate_executor

MAX_NAME_LENGTH: Final = 128
# File systems limit a file *name* in bytes (255 on ext4, XFS, btrfs, APFS, tmpfs);
# the state file adds ".json", and its temporary sibling has a fixed short name.
MAX_FILE_NAME_BYTES: Final = 255
MAX_NAME_BYTES: Final = MAX_FILE_NAME_BYTES - len(".json")

BroadcastCallback = Callable[[Any], Any]


class _Unset(enum.Enum):
    UNSET = enum.auto()

    def __repr__(self) -> str:
        return "UNSET"


Unset = _Unset
UNSET: Final = _Unset.UNSET
"""Marks an option the caller did not pass (``None`` is a meaningful value)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SessionOptions:
    """A session's options after validation and precedence."""

    name: str | None = None
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    timeout: float | None = None
    logging_setting: LoggingSetting = LoggingSetting.REGULAR
    save_state: bool = True
    end_on_error: bool = False
    log_file: Path | None = None
    broadcast_callback: BroadcastCallback | None = None
    executor: Any = None  # None (this process) or an executor, see _runtime.executors
    resume: bool | str | os.PathLike[str] = False  # SPEC 14: the run to resume, see _runtime.resume


OPTION_NAMES: Final = tuple(f.name for f in dataclasses.fields(SessionOptions))


def _validate_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"name: expected a string, got {type(value).__name__}")
    problem = None
    if not value.strip():
        problem = "it is empty"
    elif len(value) > MAX_NAME_LENGTH:
        problem = f"it is {len(value)} characters long (at most {MAX_NAME_LENGTH})"
    elif (size := _utf8_size(value)) is None:
        problem = "it is not valid Unicode (it holds a lone surrogate)"
    elif size > MAX_NAME_BYTES:
        problem = (
            f"it is {size} bytes long in UTF-8 (a state file name holds at most "
            f"{MAX_NAME_BYTES} bytes before '.json')"
        )
    elif "/" in value or "\\" in value or (os.altsep and os.altsep in value):
        problem = "it contains a path separator"
    elif ".." in value:
        problem = "it contains '..'"
    elif any(unicodedata.category(c) == "Cc" for c in value):
        problem = "it contains a NUL or control character"
    if problem:
        shown = ascii(value[:80]) + ("..." if len(value) > 80 else "")
        raise ConfigurationError(f"name: {shown} cannot be used as a session name: {problem}")
    return value


def _utf8_size(value: str) -> int | None:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _validate_context(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"context: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _validate_timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"timeout: expected seconds as a number, got {value!r}")
    if math.isnan(value) or value <= 0:
        raise ConfigurationError(f"timeout: must be a positive number of seconds, got {value!r}")
    return float(value)


def _validate_bool(option: str) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{option}: expected True or False, got {value!r}")
        return value

    return check


def _validate_log_file(value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigurationError(f"log_file: expected a file path, got {value!r}")
    return Path(value)


def _validate_callback(value: object) -> BroadcastCallback | None:
    if value is None:
        return None
    if not callable(value):
        raise ConfigurationError(f"broadcast_callback: expected a callable, got {value!r}")
    return value


def _validate_resume(value: object) -> bool | str | os.PathLike[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, str | os.PathLike) and os.fspath(value):
        return value
    raise ConfigurationError(
        f"resume: expected True, False, a run name or a state file path, got {value!r}"
    )


_VALIDATORS: Final[dict[str, Callable[[object], Any]]] = {
    "name": _validate_name,
    "context": _validate_context,
    "timeout": _validate_timeout,
    "logging_setting": parse_logging_setting,
    "save_state": _validate_bool("save_state"),
    "end_on_error": _validate_bool("end_on_error"),
    "log_file": _validate_log_file,
    "broadcast_callback": _validate_callback,
    "executor": validate_executor,
    "resume": _validate_resume,
}


def validate_option(option: str, value: object) -> Any:
    """The validated form of one option value; raises ``ConfigurationError`` naming it."""
    validator = _VALIDATORS.get(option)
    if validator is None:
        raise ConfigurationError(
            f"unknown session option {option!r} (expected one of {', '.join(OPTION_NAMES)})"
        )
    return validator(value)


# Options the environment can set, each read by its own function in ``_settings``.
_FROM_ENVIRONMENT: Final[dict[str, Callable[[], Any]]] = {
    "logging_setting": logging_setting_from_environment,
    "save_state": save_state_from_environment,
}


def resolve_options(given: Mapping[str, Any]) -> SessionOptions:
    """Options for one session: each from the argument, set_config, environment or default."""
    resolved = {option: validate_option(option, value) for option, value in given.items()}
    for option, value in CONFIG.session_defaults.items():
        if option not in resolved:
            # set_config values were validated when stored; context is copied per session
            resolved[option] = dict(value) if option == "context" else value
    for option, from_environment in _FROM_ENVIRONMENT.items():
        if option not in resolved:
            value = from_environment()
            if value is not None:
                resolved[option] = value
    if resolved.get("save_state", True):
        # not a session option, but read when the state is saved: a bad value fails here, first
        state_max_runs_from_environment()
    return SessionOptions(**resolved)


def set_config(**options: Any) -> None:
    """Set process-wide session defaults, with the same names as ``rt.Session``'s options.

    A session's own arguments win over these; these win over the environment.
    Every value is validated before any is stored, so a bad call changes nothing.
    """
    validated = {option: validate_option(option, value) for option, value in options.items()}
    CONFIG.session_defaults.update(validated)
