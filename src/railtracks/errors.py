"""Exceptions raised by railtracks.

Hierarchy::

    RailtracksError
    ├── ConfigurationError      (also ValueError)  bad option, setting or environment value
    ├── ContextError            (also RuntimeError) rt.context used outside a session
    ├── GlobalTimeOutError      (also TimeoutError) a session ran past its timeout
    └── StateError                                  a saved state cannot be read
        └── StateNotFoundError  (also FileNotFoundError)

Exceptions raised by your own nodes are never wrapped: they reach the caller
as the very same object.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ContextError",
    "GlobalTimeOutError",
    "RailtracksError",
    "StateError",
    "StateNotFoundError",
]


class RailtracksError(Exception):
    """Base class of every exception railtracks itself raises."""


class ConfigurationError(RailtracksError, ValueError):
    """An option, setting or environment variable has a value railtracks cannot use."""


class ContextError(RailtracksError, RuntimeError):
    """``rt.context`` was used where there is no running session."""


class GlobalTimeOutError(RailtracksError, TimeoutError):
    """The session's ``timeout`` expired; its running nodes were cancelled."""

    def __init__(self, timeout: float, session_name: str | None = None) -> None:
        self.timeout = timeout
        self.session_name = session_name
        label = f"session {session_name!r}" if session_name else "session"
        super().__init__(f"{label} timed out after {timeout:g} s")


class StateError(RailtracksError):
    """A saved state file cannot be read or is not a railtracks state."""


class StateNotFoundError(StateError, FileNotFoundError):
    """No saved state matches the given path or name."""
