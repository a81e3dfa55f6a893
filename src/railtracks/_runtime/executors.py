"""What ``executor=`` accepts (SPEC 2, 12): where a node call runs.

``None`` (the default) and ``"local"`` run the call in this process. Anything
else is an *executor*: an object with an ``async run_call(call)`` method that
runs a ``_remote.carrier.RemoteCall`` somewhere else and returns the reply made
there by ``_remote.segment.execute_call`` (the node's outcome, its spans and its
context changes). ``railtracks.ray.RayExecutor`` is one; a process pool or a
task queue would be another. The runtime only checks that shape: the remote
layer, above it, makes the call and reads the reply (see ``node.set_remote_runner``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from ..errors import ConfigurationError


class _Local:
    """``executor="local"`` on a node: run in this process whatever the session says."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'local'"

    def __reduce__(self) -> str:
        return "LOCAL"


LOCAL: Final = _Local()


@runtime_checkable
class NodeExecutor(Protocol):
    """Runs node calls elsewhere; see ``railtracks.ray.RayExecutor``.

    ``call`` is a ``_remote.carrier.RemoteCall``.
    """

    async def run_call(self, call: Any) -> Mapping[str, Any]:
        """Run ``call`` and return the reply of ``_remote.segment.execute_call`` for it."""
        ...


def validate_executor(value: object, *, node: bool = False) -> Any:
    """``None``, ``"local"`` or an executor; a node keeps ``"local"`` (it overrides the session)."""
    if value is None:
        return None
    if value is LOCAL or (isinstance(value, str) and value.strip().lower() == "local"):
        return LOCAL if node else None
    if isinstance(value, NodeExecutor):
        return value
    raise ConfigurationError(
        f"executor: expected None, 'local' or an executor such as "
        f"railtracks.ray.RayExecutor(), got {value!r}"
    )
