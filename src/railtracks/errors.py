"""Exceptions raised by railtracks.

Hierarchy::

    RailtracksError
    ├── ConfigurationError      (also ValueError)  bad option, setting or environment value
    ├── ContextError            (also RuntimeError) rt.context used outside a session
    ├── GlobalTimeOutError      (also TimeoutError) a session ran past its timeout
    ├── StateError                                  a saved state cannot be read
    │   └── StateNotFoundError  (also FileNotFoundError)
    ├── ReplayMismatchError                         a replayed call has no recorded match (strict)
    ├── CarrierError            (also ValueError)   a session carrier or segment reply is invalid
    └── RemoteCallError                             a node call on another machine could not run
        ├── NodeSerializationError (also TypeError) its arguments/result cannot be serialised
        └── WorkerLostError     (also ConnectionError) the process running it died or was lost

Exceptions raised by your own nodes are never wrapped: they reach the caller
as the very same object (for a node run on another machine, an equal copy of
the same type, with the same message).
"""

from __future__ import annotations

__all__ = [
    "CarrierError",
    "ConfigurationError",
    "ContextError",
    "GlobalTimeOutError",
    "NodeSerializationError",
    "RailtracksError",
    "RemoteCallError",
    "ReplayMismatchError",
    "StateError",
    "StateNotFoundError",
    "WorkerLostError",
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


class CarrierError(RailtracksError, ValueError):
    """A session carrier or a segment reply received from elsewhere is malformed."""


class RemoteCallError(RailtracksError):
    """A node call handed to an executor (``executor=``) could not run to an outcome."""

    def __init__(self, node: str, message: str) -> None:
        self.node = node
        super().__init__(f"node {node!r}: {message}")


class NodeSerializationError(RemoteCallError, TypeError):
    """A remote node call's arguments, result or exception cannot be serialised."""


class WorkerLostError(RemoteCallError, ConnectionError):
    """The worker process (or machine) running a remote node call died or was lost."""


class ReplayMismatchError(RailtracksError):
    """A node call under ``rt.testing.replay(strict=True)`` that the recorded run does not hold.

    The message names the call's place, the nearest recorded call and how the
    arguments differ; ``place`` is the call's place as ``"a[0]/b[1]"``.
    """

    def __init__(self, message: str, place: str) -> None:
        super().__init__(message)
        self.place = place
