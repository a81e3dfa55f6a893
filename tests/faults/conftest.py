"""The fault-injecting receiver (railtracks.testing._receiver in its own process),
one for the whole test session, reset (mode ok, counts zero) before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from railtracks.testing._receiver import Receiver, otlp_receiver_process


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    with otlp_receiver_process() as started:
        yield started


@pytest.fixture
def fresh(receiver: Receiver) -> Receiver:
    receiver.reset()
    return receiver
