"""Import the OpenTelemetry SDK without letting a bad ``OTEL_*`` value break the import.

``opentelemetry.sdk.trace`` reads ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` when it is
first imported and raises ``ValueError`` on a value that is not a non-negative
integer: ``import railtracks`` would fail. The SDK configuration specification
says such a value warns and is treated as unset, so it is hidden for the import
only (and restored); railtracks' own provider then warns about it once, naming
the variable, and applies the default (``_delivery.otel_env.span_limits_from_env``).
"""

from __future__ import annotations

import os

_GUARDED = "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"


def _valid(value: str) -> bool:
    text = value.strip()
    return text == "" or (text.isdigit() and int(text) >= 0)


def import_sdk() -> None:
    value = os.environ.get(_GUARDED)
    if value is None or _valid(value):
        import opentelemetry.sdk.trace  # noqa: PLC0415  # the import this module guards

        return
    del os.environ[_GUARDED]
    try:
        import opentelemetry.sdk.trace  # noqa: F401, PLC0415
    finally:
        os.environ[_GUARDED] = value


import_sdk()
