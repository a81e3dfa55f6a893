"""``@rt.session``: each call of an async function in a new session of its own."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

from .._settings import LoggingSetting
from .options import BroadcastCallback, validate_option
from .session import Session

P = ParamSpec("P")
R = TypeVar("R")


SessionResult = Coroutine[Any, Any, tuple[R, Session]]


def _decorate(
    func: Callable[P, Awaitable[R]], options: dict[str, Any]
) -> Callable[P, SessionResult[R]]:
    if not inspect.iscoroutinefunction(func):
        name = getattr(func, "__qualname__", repr(func))
        raise TypeError(
            f"@rt.session only works on async functions: {name} is not one "
            "(define it with 'async def')"
        )

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> tuple[R, Session]:
        session = Session(**options)
        async with session:
            result = await func(*args, **kwargs)
            session.set_answer(result)
        return result, session

    return run


@overload
def session(func: Callable[P, Awaitable[R]], /) -> Callable[P, SessionResult[R]]: ...


@overload
def session(
    *,
    name: str | None = ...,
    context: Mapping[str, Any] | None = ...,
    timeout: float | None = ...,
    logging_setting: str | LoggingSetting = ...,
    save_state: bool = ...,
    end_on_error: bool = ...,
    log_file: str | Path | None = ...,
    broadcast_callback: BroadcastCallback | None = ...,
    executor: Any = ...,
    resume: bool | str | Path = ...,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, SessionResult[R]]]: ...


def session(func: Callable[P, Awaitable[R]] | None = None, /, **options: Any) -> Any:
    """Run each call of an async function in its own new session.

    ``@rt.session`` or ``@rt.session(...)`` with the options of ``rt.Session``.
    Awaiting the decorated function returns ``(result, session)``. Options are
    validated here, at decoration time; a sync function raises ``TypeError``.
    """
    for option, value in options.items():
        validate_option(option, value)
    if func is not None:
        return _decorate(func, options)
    return lambda f: _decorate(f, options)
