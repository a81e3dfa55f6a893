"""The cyclic garbage collector paused for a burst of acyclic containers."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (process-wide) for a burst of acyclic containers.

    Building, writing or reading a large state makes millions of short- or
    long-lived containers with no cycles: with the collector on, it rescans
    them again and again, and a full pass stops every thread at once.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
