"""A session's context: one shared mapping, copied from what the session was given."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from .._recording import attributes as attr
from .._recording.encoding import ValueEncoder
from .._recording.limits import max_context_attributes, max_final_context_attributes

_UNCHANGED: Final[Mapping[str, AttributeValue]] = MappingProxyType({})


def context_record(encoder: ValueEncoder, context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` as a state records it: keys bounded, values encoded and redacted."""
    attributes, _ = encoder.context_attributes("", context, max_context_attributes())
    return {
        key: list(value) if isinstance(value, tuple) else value for key, value in attributes.items()
    }


class SessionContext:
    """The live context of one session, safe to use from nodes in worker threads.

    Encoded span attributes are cached per version, so a node call does not
    re-encode an unchanged context.
    """

    __slots__ = ("_cache", "_cache_key", "_data", "_lock", "_version")

    def __init__(self, initial: Mapping[str, Any]) -> None:
        self._data = dict(initial)
        self._lock = threading.Lock()
        self._version = 0
        self._cache: dict[str, AttributeValue] = {}
        self._cache_key: tuple[int, int] | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._version += 1

    def update(self, values: Mapping[str, Any]) -> None:
        with self._lock:
            self._data.update(values)
            self._version += 1

    def delete(self, key: str) -> None:
        with self._lock:
            del self._data[key]
            self._version += 1

    def keys(self) -> list[str]:
        return list(self._data)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._data.items())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._data)

    def view(self) -> Mapping[str, Any]:
        return MappingProxyType(self._data)

    def attributes(self, encoder: ValueEncoder) -> dict[str, AttributeValue]:
        """``railtracks.context.{key}`` attributes of the current values, redacted.

        At most ``limits.MAX_CONTEXT_ATTRIBUTES`` keys travel on a span, so the
        SDK's attribute limit never evicts railtracks' identity attributes; the
        keys left out are counted in ``railtracks.dropped.context_keys``.
        """
        if not self._data:  # most sessions: nothing to encode, no limit to read
            return {}
        key = (self._version, id(encoder))
        if self._cache_key != key:
            with self._lock:
                attributes, dropped = encoder.context_attributes(
                    attr.CONTEXT_PREFIX, self._data, max_context_attributes()
                )
                if dropped:
                    attributes[attr.DROPPED_CONTEXT_KEYS] = dropped
                self._cache = attributes
                self._cache_key = key
        return self._cache

    def final_attributes(
        self, encoder: ValueEncoder, start_attributes: int
    ) -> Mapping[str, AttributeValue]:
        """The session span's attributes for the context as it ends (SPEC 6 ``final_context``).

        An unchanged context writes nothing (its final context is its start
        context). A changed one writes ``railtracks.session.context_changed =
        True`` and ``railtracks.final_context.{key}``, encoded and redacted as
        the context is, within the room the ``start_attributes`` start-context
        attributes leave on the span; keys left out are counted in
        ``railtracks.dropped.final_context_keys``.
        """
        if not self._version:
            return _UNCHANGED
        current = self.attributes(encoder)  # cached when a node already saw this version
        room = max_final_context_attributes(start_attributes)
        final: dict[str, AttributeValue] = {attr.SESSION_CONTEXT_CHANGED: True}
        dropped = 0
        cut = len(attr.CONTEXT_PREFIX)
        prefix = attr.FINAL_CONTEXT_PREFIX
        for key, value in current.items():
            if key == attr.DROPPED_CONTEXT_KEYS:
                dropped += value if isinstance(value, int) else 0
            elif room > 0:
                final[prefix + key[cut:]] = value
                room -= 1
            else:
                dropped += 1
        if dropped:
            final[attr.DROPPED_FINAL_CONTEXT_KEYS] = dropped
        return final
