"""railtracks' SIGTERM handler stays in the process that installed it (SPEC 5)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .conftest import run_python

FORKED_WORKER = textwrap.dedent(
    """
    import asyncio, multiprocessing, signal, time
    import railtracks as rt

    @rt.function_node
    async def work() -> int:
        return 1

    @rt.session(name="parent", logging_setting="NONE", save_state=False)
    async def flow():
        return await rt.call(work)

    asyncio.run(flow())
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # railtracks' own

    def idle(started) -> None:
        started.set()
        time.sleep(60)

    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    worker = fork.Process(target=idle, args=(started,))
    worker.start()
    assert started.wait(120)  # the worker runs its own code now
    worker.terminate()
    worker.join(10)
    print(worker.exitcode)
    """
)


def test_a_forked_worker_is_terminated_as_before(tmp_path: Path) -> None:
    done = run_python(FORKED_WORKER, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "-15"  # killed by SIGTERM, not a KeyboardInterrupt
    assert "Traceback" not in done.stderr
