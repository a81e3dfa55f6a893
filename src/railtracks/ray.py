"""Node calls on a Ray cluster, in one session (SPEC 12). ``pip install 'railtracks[ray]'``.

```python
import railtracks as rt
from railtracks.ray import RayExecutor

@rt.session(executor=RayExecutor())          # every node call of the session runs on Ray
async def flow(): ...

@rt.function_node(executor=RayExecutor("auto"))   # or only this node's calls
def heavy(x): ...
```

Each call runs as a Ray task inside the caller's session (same trace, context,
deadline and ``logging_setting``); its spans come back and are exported once,
by the caller. Ray itself is imported on first use, never by ``import railtracks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Final

from ._remote import segment as _segment
from ._remote.carrier import RemoteCall
from .errors import ConfigurationError, NodeSerializationError, WorkerLostError

__all__ = ["RayExecutor"]

INSTALL_HINT: Final = "Ray is not installed: pip install 'railtracks[ray]'"
# Ray's system failures: the task's process or node went away, not the node's code.
_LOST: Final = (
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
    "ObjectLostError",
    "OwnerDiedError",
    "ObjectReconstructionFailedError",
    "RaySystemError",
)


_NOT_LOADED: Final = -1


def _import_ray() -> Any:
    try:
        import ray  # noqa: PLC0415  # optional: imported only when an executor is used
    except ImportError as exc:
        raise ConfigurationError(INSTALL_HINT) from exc
    return ray


class RayExecutor:
    """Runs node calls as Ray tasks.

    ``address``: ``None`` connects to the cluster this machine runs (or
    ``RAY_ADDRESS``) and starts a local one when there is none; ``"auto"``
    requires a running cluster; ``"ray://host:10001"`` goes through Ray Client.
    Other keyword arguments go to ``ray.init`` (``num_cpus=...``,
    ``runtime_env=...``), except ``task_options``: options of each node
    call's Ray task (``{"num_cpus": 2, "resources": {...}, "runtime_env": ...}``,
    see ``ray.remote``). When Ray is already initialised in this process (by
    you, or because this is a Ray worker) it is used as it is.

    Tasks are not retried on a lost worker (a node may have side effects):
    the call fails with ``rt.errors.WorkerLostError``. A cancelled call (the
    session's timeout, ``end_on_error``, a cancelled task) ends its worker
    process, the only way to stop a sync function mid-way.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        task_options: Mapping[str, Any] | None = None,
        **ray_init_options: Any,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise ConfigurationError(
                f"RayExecutor(address=...): expected a string, got {address!r}"
            )
        self.address = address
        self.ray_init_options = dict(ray_init_options)
        self.task_options = dict(task_options or {})
        self._remote: Any = None
        self._lock = threading.Lock()
        self._functions: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Shipped with a node to a worker: the worker reuses its own connection.
        state = {"ray_init_options": self.ray_init_options, "task_options": self.task_options}
        return (RayExecutor, (self.address,), state)

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.ray_init_options = dict(state["ray_init_options"])
        self.task_options = dict(state["task_options"])

    def connect(self) -> Any:
        """Initialise Ray if needed; return the remote function node calls go through."""
        remote = self._remote
        if remote is not None:
            return remote
        with self._lock:
            if self._remote is None:
                ray = _import_ray()
                if not ray.is_initialized():
                    ray.init(address=self.address, **self.ray_init_options)
                options = {"max_retries": 0, **self.task_options}
                self._remote = ray.remote(**options)(_run_on_worker)
            return self._remote

    def _function_blob(self, ray: Any, call: RemoteCall) -> bytes:
        # Like Ray's own functions, a node's function is serialised once per executor.
        try:
            blob = self._functions.get(call.func)
        except TypeError:  # not weak-referenceable: serialised on each call
            blob = None
        if blob is None:
            blob = _dumps(ray, call.func, call.node_name, "its function")
            with contextlib.suppress(TypeError):
                self._functions[call.func] = blob
        return blob

    async def run_call(self, call: RemoteCall) -> Mapping[str, Any]:
        """Run ``call`` as a Ray task; cancel it if the caller is cancelled."""
        remote = self.connect()
        ray = _import_ray()
        function = self._function_blob(ray, call)
        bare = dataclasses.replace(call, func=_shipped_apart)
        arguments = _dumps(ray, bare, call.node_name, "its arguments")
        ref = remote.remote(function, arguments)
        try:
            blob = await ref
        except asyncio.CancelledError:
            _cancel(ray, ref)
            raise
        except ray.exceptions.RayError as exc:
            raise _translate(ray, exc, call.node_name) from exc
        try:
            reply: Mapping[str, Any] = ray.cloudpickle.loads(blob)
        except Exception as exc:
            raise NodeSerializationError(
                call.node_name, f"its result or exception cannot be loaded here: {exc!r}"
            ) from exc
        if reply.get("version") == _NOT_LOADED:
            raise NodeSerializationError(
                call.node_name, f"the call cannot be loaded on the Ray worker: {reply['value']!r}"
            )
        return reply


def _dumps(ray: Any, value: Any, node: str, what: str) -> bytes:
    try:
        blob: bytes = ray.cloudpickle.dumps(value)
    except Exception as exc:
        raise NodeSerializationError(
            node, f"{what} cannot be serialised to run on Ray: {type(exc).__name__}: {exc}"
        ) from exc
    return blob


def _cancel(ray: Any, ref: Any) -> None:
    try:
        ray.cancel(ref, force=True)
    except Exception as exc:  # the task may have finished or its worker be gone already
        from ._logs.log import emit  # noqa: PLC0415  # only on this rare path

        emit("DEBUG", "Ray", f"cancelling a remote call: {exc!r}")


def _translate(ray: Any, exc: BaseException, node: str) -> BaseException:
    name = type(exc).__name__
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return asyncio.CancelledError(f"remote call of node {node!r} was cancelled")
    lost = tuple(getattr(ray.exceptions, kind, ()) for kind in _LOST)
    if isinstance(exc, tuple(kind for kind in lost if isinstance(kind, type))):
        return WorkerLostError(node, f"the Ray worker running it was lost ({name}: {exc})")
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.as_instanceof_cause()
        return cause if isinstance(cause, BaseException) else exc
    return WorkerLostError(node, f"Ray could not run it ({name}: {exc})")


def _shipped_apart(*args: Any, **kwargs: Any) -> Any:
    """Stands for the node's function in a shipped call: it travels apart, cached."""
    raise RuntimeError("the node's function was not restored on the worker")


_LOADED: dict[bytes, Any] = {}
_LOADED_MAX: Final = 256


def _load_function(ray: Any, blob: bytes) -> Any:
    function = _LOADED.get(blob)
    if function is None:
        function = ray.cloudpickle.loads(blob)
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.clear()
        _LOADED[blob] = function
    return function


def _run_on_worker(function: bytes, arguments: bytes) -> bytes:
    """The Ray task: load the call, run it in a segment, send the reply back as bytes."""
    ray = _import_ray()
    _segment.capture_global_spans()
    try:
        shipped: RemoteCall = ray.cloudpickle.loads(arguments)
        call = dataclasses.replace(shipped, func=_load_function(ray, function))
    except Exception as exc:
        blob: bytes = ray.cloudpickle.dumps(_load_failure(exc))
        return blob
    reply = _segment.execute_call(call)
    try:
        done: bytes = ray.cloudpickle.dumps(reply)
        return done
    except Exception as exc:
        what = "its exception" if reply.get("outcome") == "error" else "its result"
        reply["outcome"] = "error"
        reply["value"] = NodeSerializationError(
            call.node_name, f"{what} cannot be serialised to come back from Ray: {exc!r}"
        )
        reply["traceback"] = ""
        failed: bytes = ray.cloudpickle.dumps(reply)
        return failed


def _load_failure(exc: Exception) -> dict[str, Any]:
    # The call could not even be loaded (e.g. its module is missing on the worker):
    # no segment ran, so there is nothing else to bring back.
    return {"version": _NOT_LOADED, "outcome": "error", "value": exc}
