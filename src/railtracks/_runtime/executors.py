"""What ``executor=`` accepts (SPEC 2, 12): where a node call runs.

``None`` (the default) and ``"local"`` run the call in this process. Anything
else is an *executor*: an object with an ``async run_call(call)`` method that
runs a :class:`RemoteCall` somewhere else and returns the reply made there by
``_remote.segment.execute_call`` (the node's outcome, its spans and its context
changes). ``railtracks.ray.RayExecutor`` is one; a process pool or a task
queue would be another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .._remote.carrier import SessionCarrier


class _Local:
    """``executor="local"`` on a node: run in this process whatever the session says."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'local'"

    def __reduce__(self) -> str:
        return "LOCAL"


LOCAL: Final = _Local()


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteCall:
    """One node call, ready to be shipped: the function, its arguments, the session carrier."""

    node_name: str
    func: Callable[..., Any]
    is_async: bool
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    carrier: SessionCarrier


@runtime_checkable
class NodeExecutor(Protocol):
    """Runs node calls elsewhere; see ``railtracks.ray.RayExecutor``."""

    async def run_call(self, call: RemoteCall) -> Mapping[str, Any]:
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
