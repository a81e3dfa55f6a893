"""Nodes and ``rt.call``: every call a child span of the current one (SPEC 1).

A call whose executor runs it elsewhere goes through the *remote runner*, which
the remote layer installs with ``set_remote_runner`` (``railtracks/__init__``
wires ``_remote.merge.run_remote``): the runtime never imports ``_remote``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace

from .._recording import attributes as attr
from .._recording import spans as _spans
from .._recording.fastspan import set_trusted, start_span
from .._reuse.recorded import arguments_digest
from ..errors import ConfigurationError, GlobalTimeOutError
from . import never_awaited as _never_awaited
from . import recording as _recording
from . import usage as _usage
from .executors import LOCAL, validate_executor
from .options import validate_option
from .replayed import replay_answer
from .session import _CURRENT, Session

if TYPE_CHECKING:
    from .._recording.encoding import ValueEncoder

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY


class _Binder:
    """Binds call arguments to parameter names, with a fast path for plain signatures."""

    __slots__ = ("_node_name", "_parameters", "_positional", "_required", "_signature", "_simple")

    def __init__(self, func: Callable[..., Any], node_name: str) -> None:
        self._node_name = node_name
        try:
            self._signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins have no signature: nothing to check
            self._signature = None
        params = list(self._signature.parameters.values()) if self._signature else []
        self._simple = self._signature is not None and all(
            p.kind in (_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY) for p in params
        )
        self._positional = tuple(p.name for p in params if p.kind is _POSITIONAL_OR_KEYWORD)
        self._parameters = frozenset(p.name for p in params)
        self._required = frozenset(p.name for p in params if p.default is inspect.Parameter.empty)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``{parameter: value}`` as passed; ``TypeError`` naming the node when it does not fit."""
        if self._simple and len(args) <= len(self._positional):
            bound = dict(zip(self._positional, args, strict=False))
            for key, value in kwargs.items():
                if key not in self._parameters or key in bound:
                    return self._bind_slowly(args, kwargs)
                bound[key] = value
            if len(bound) == len(self._parameters) or bound.keys() >= self._required:
                return bound
        return self._bind_slowly(args, kwargs)

    def _bind_slowly(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._signature is None:
            return {"args": list(args), "kwargs": kwargs}
        try:
            return dict(self._signature.bind(*args, **kwargs).arguments)
        except TypeError as exc:
            raise TypeError(f"bad arguments for node {self._node_name!r}: {exc}") from None


class RemoteRunner(Protocol):
    """Runs one node call through ``executor`` and returns its result (or raises its error)."""

    async def __call__(
        self,
        executor: Any,
        session: Session,
        node: Node[..., Any],
        *,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: trace.Span,
    ) -> Any: ...


_remote_runner: RemoteRunner | None = None


def set_remote_runner(runner: RemoteRunner) -> None:
    """Install how a node call runs through an executor (``_remote.merge.run_remote``)."""
    global _remote_runner  # noqa: PLW0603  # wired once, by railtracks/__init__
    _remote_runner = runner


def _is_async(func: Callable[..., Any]) -> bool:
    """An ``async def``, or an object whose ``__call__`` is one."""
    call_method = getattr(type(func), "__call__", None)  # noqa: B004  # the method itself, not callable()
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call_method)


class Node(Generic[P, R]):
    """A function made into a railtracks node by ``@rt.function_node``.

    Calling it directly runs the plain function (no span, no session);
    ``await rt.call(node, ...)`` runs it as a traced node. Decorated methods
    work too: ``rt.call(agent.act, ...)`` binds ``agent`` like Python does.
    """

    def __init__(self, func: Callable[P, R], name: str | None = None, executor: Any = None) -> None:
        if not callable(func):
            raise TypeError(f"a node wraps a function, got {func!r}")
        if name is None:
            name = getattr(func, "__name__", None) or type(func).__name__
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(
                f"function_node(name=...): expected a non-empty string, got {name!r}"
            )
        # Copies __name__, __doc__, __wrapped__...: never the function's own
        # __dict__, which could shadow the attributes set below.
        functools.update_wrapper(self, func, updated=())
        self.func = func
        self.name = name
        self.is_async = _is_async(func)
        self.binder: _Binder | _BoundBinder = _Binder(func, name)
        # None: the session's executor; LOCAL: this process; else where this node runs
        self.executor: Any = validate_executor(executor, node=True)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Node[..., Any]:
        if instance is None:
            return self
        bound: Node[..., Any] = Node.__new__(Node)
        bound.__dict__.update(self.__dict__)
        bound.func = types.MethodType(self.func, instance)
        bound.binder = _BoundBinder(self.binder, instance)
        return bound

    def __repr__(self) -> str:
        return f"<railtracks node {self.name!r}>"


class _BoundBinder:
    """A method's binder: the instance fills the first parameter and is not recorded."""

    __slots__ = ("_binder", "_instance")

    def __init__(self, binder: _Binder | _BoundBinder, instance: object) -> None:
        self._binder = binder
        self._instance = instance

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self._binder.bind((self._instance, *args), kwargs)
        bound.pop(next(iter(bound)), None)  # the instance, first in parameter order
        return bound


@overload
def function_node(func: Callable[P, R], /) -> Node[P, R]: ...


@overload
def function_node(
    *, name: str | None = None, executor: Any = None
) -> Callable[[Callable[P, R]], Node[P, R]]: ...


def function_node(
    func: Callable[P, R] | None = None, /, *, name: str | None = None, executor: Any = None
) -> Node[P, R] | Callable[[Callable[P, R]], Node[P, R]]:
    """Make an ``async def`` or a plain ``def`` into a node.

    ``@rt.function_node`` or ``@rt.function_node(name="...")``. A sync node runs
    in a worker thread, with the caller's context (session, span) carried over.
    ``executor=`` runs this node's calls elsewhere (``railtracks.ray.RayExecutor()``),
    or in this process whatever the session says (``"local"``).
    """
    if func is not None:
        return Node(func, name, executor)
    return lambda f: Node(f, name, executor)


def as_node(target: Callable[..., Any]) -> Node[..., Any]:
    """The node for ``target``: itself when decorated, else a fresh wrapper.

    Plain callables are wrapped on every call rather than cached: a cache keyed
    by the callable would keep bound methods and closures (and their objects)
    alive, and could hand one caller's equal-comparing object to another.
    """
    if isinstance(target, Node):
        return target
    return Node(target)


@overload
async def call(node: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


@overload
async def call(node: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


async def call(node: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run ``node`` with these arguments as a child span of the current one; return its result.

    Arguments are bound against the node's signature first (``TypeError``
    naming the node when they do not fit). Outside any session, the call runs
    in a fresh implicit session named after the node. The node's own
    exceptions reach the caller unchanged.
    """
    spec = as_node(node)
    bound = spec.binder.bind(args, kwargs)
    session = _CURRENT.get()
    if session is not None and not session.ended:
        return await _execute(session, spec, args, kwargs, bound)
    implicit = Session(name=_implicit_name(spec.name))
    implicit.implicit = True
    async with implicit:
        result = await _execute(implicit, spec, args, kwargs, bound)
        implicit.set_answer(result)
    return result


_never_awaited.watch(call)


def _implicit_name(node_name: str) -> str | None:
    try:
        name: str | None = validate_option("name", node_name)
        return name
    except ConfigurationError:  # e.g. a lambda's "<lambda>" is fine, "a/b" is not
        return None


async def _execute(  # noqa: PLR0912, PLR0915  # one branch per way a node can end
    session: Session,
    node: Node[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    bound: dict[str, Any],
) -> Any:
    session.check_running()
    encoder = session.encoder
    attributes = session.node_attributes(node.name)
    _spans.set_node_input(attributes, encoder.json(bound))
    replay = session.replay
    if replay is not None or _recording.reusable(session):  # only matching calls needs it
        attributes[attr.NODE_ARGS_DIGEST] = arguments_digest(bound, encoder.scrubber)
    answer = place_token = None
    if replay is not None:
        place = replay.place(node.name)
        answer = replay.answer(place, node, attributes)
    assert session.tracer is not None  # set when the session started
    span = start_span(session.tracer, node.name, attributes)
    token = otel_context.attach(trace.set_span_in_context(span))
    if replay is not None:
        place_token = replay.enter(place)
    task = asyncio.current_task()
    tracked = task is not None and task is not session.task
    if tracked:
        session.register_node(task, span)  # type: ignore[arg-type]  # tracked implies a task
    executor = session.executor if node.executor is None else node.executor
    try:
        if answer is not None:
            result = replay_answer(session, span, answer)
        elif executor is not None and executor is not LOCAL:
            assert _remote_runner is not None, "railtracks/__init__ installs the remote runner"
            result = await _remote_runner(
                executor, session, node, args=args, kwargs=kwargs, span=span
            )
        elif node.is_async:
            result = await node.func(*args, **kwargs)
        else:
            run = functools.partial(contextvars.copy_context().run, node.func, *args, **kwargs)
            result = await asyncio.get_running_loop().run_in_executor(None, run)
            if inspect.isawaitable(result):  # a plain function that returned a coroutine
                result = await result
    except asyncio.CancelledError:
        interrupted = session.cancel_reason == attr.STATUS_TIMEOUT
        if span.is_recording():
            _spans.mark_interrupted(
                span,
                attr.STATUS_TIMEOUT if interrupted else attr.STATUS_CANCELLED,
                "GlobalTimeOutError: session timed out"
                if interrupted
                else "CancelledError: node cancelled",
            )
        raise
    except GlobalTimeOutError:
        # the deadline passed while this node ran, before the timer could fire
        _spans.mark_interrupted(span, attr.STATUS_TIMEOUT, "GlobalTimeOutError: session timed out")
        raise
    except BaseException as exc:
        _spans.mark_failed(span, exc, encoder)
        session.node_failed(exc)
        raise
    else:
        _completed(span, result, encoder)
        return result
    finally:
        if place_token is not None:
            place_token.var.reset(place_token)
        if tracked:
            session.unregister_node(task, span)  # type: ignore[arg-type]  # tracked implies a task
        otel_context.detach(token)
        if span.is_recording():  # the session may have ended it already (see Session._finish)
            if _usage.PENDING:  # model calls under it: their totals go on the span
                _usage.close_usage(span)
            span.end()


def _completed(span: trace.Span, result: Any, encoder: ValueEncoder) -> None:
    """A completed call's output: shown (bounded) and, when that is not it, recorded in full."""
    shown = encoder.json(result)
    _spans.set_output(span, attr.NODE_OUTPUT, shown, attr.STATUS_COMPLETED)
    recorded = _recording.output_attributes(result, shown, encoder)
    if recorded is not None:
        set_trusted(span, recorded)
