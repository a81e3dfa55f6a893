"""Session identifiers are random version-4 UUIDs in their canonical text form."""

from __future__ import annotations

import os
import uuid

import railtracks as rt
from railtracks._ids import session_identifier


def test_identifiers_are_canonical_random_uuids_and_do_not_repeat() -> None:
    seen = {session_identifier() for _ in range(10_000)}
    assert len(seen) == 10_000
    for text in seen:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_a_session_is_named_by_one() -> None:
    session = rt.Session(save_state=False)
    assert uuid.UUID(session.identifier).version == 4


def test_a_forked_child_draws_other_identifiers_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next identifier, through the pipe
        os.write(write, session_identifier().encode())
        os._exit(0)
    os.close(write)
    parent_next = session_identifier()
    child_next = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert uuid.UUID(child_next).version == 4
    assert child_next != parent_next
