"""The fault-injecting receiver, one per test module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.receiver import Receiver, fault_receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with fault_receiver() as started:
        yield started


@pytest.fixture
def fresh(receiver: Receiver) -> Receiver:
    receiver.reset()
    return receiver
