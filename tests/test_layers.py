"""The plan of the package beyond what ``lint-imports`` checks (pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import railtracks
from railtracks._remote.merge import run_remote
from railtracks._runs.save import save_session_state
from railtracks._runtime import node, session_end

PACKAGE = Path(railtracks.__file__).parent
# Private modules beside the packages: small leaves and entry points, not a flat heap.
MAX_TOP_LEVEL_PRIVATE_MODULES = 20


def test_importing_railtracks_wires_the_layers_above_the_runtime() -> None:
    # The runtime never imports _remote or _runs: railtracks/__init__ hands it their hooks.
    assert node._remote_runner is run_remote
    assert session_end._END_HOOKS.count(save_session_state) == 1


def test_few_private_modules_sit_directly_in_the_package() -> None:
    private = sorted(
        path.name
        for path in PACKAGE.glob("_*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )
    assert len(private) <= MAX_TOP_LEVEL_PRIVATE_MODULES, private
