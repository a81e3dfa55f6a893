"""One object per OpenTelemetry meter, made on first use and gone with the meter.

Metric instruments are made once per meter (OpenTelemetry warns on a
duplicate), while pipelines, and so processors, are rebuilt whenever the
configuration changes: both the run metrics and the usage metrics keep theirs
here.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from opentelemetry.metrics import Meter

T = TypeVar("T")


class PerMeter(Generic[T]):
    """``get(meter)`` returns the one ``T`` made for ``meter`` by ``make``."""

    def __init__(self, make: Callable[[Meter], T]) -> None:
        self._make = make
        self._by_meter: weakref.WeakKeyDictionary[Meter, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, meter: Meter) -> T:
        with self._lock:
            found = self._by_meter.get(meter)
            if found is None:
                found = self._by_meter[meter] = self._make(meter)
            return found

    def __iter__(self) -> Iterator[T]:
        with self._lock:
            return iter(list(self._by_meter.values()))
