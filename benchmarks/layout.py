"""The package's plan in figures: modules per folder, the deepest import chain, long modules.

    python benchmarks/layout.py

Reads ``src/railtracks`` with ``ast`` (nothing is imported): module-level
imports count, imports under ``if TYPE_CHECKING:`` do not. The deepest chain
is the longest path of modules each importing the next (issue 18 measured 19
before the subpackages).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "railtracks"
LONG = 400  # lines: the size a module should stay under


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, packages as their ``__init__``."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _targets(module: str, node: ast.stmt, is_package: bool, known: dict[str, Path]) -> set[str]:
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")[: None if is_package else -1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
        else:
            target = node.module or ""
        names = {target} | {f"{target}.{alias.name}" for alias in node.names}
    return {name for name in names if name in known}


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules ``module`` imports when it is imported."""
    found: set[str] = set()
    stack = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.If | ast.Try):
            stack.extend(node.body + node.orelse)
            stack.extend(s for h in getattr(node, "handlers", []) for s in h.body)
        found |= _targets(module, node, path.name == "__init__.py", known)
    found.discard(module)
    return found


def main() -> int:
    known = module_files(ROOT)
    edges = {module: imports_of(module, path, known) for module, path in known.items()}

    @cache
    def deepest(module: str, seen: frozenset[str] = frozenset()) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for target in edges[module] - seen:
            chain = deepest(target, seen | {module})
            best = max(best, chain, key=len)
        return (module, *best)

    sys.setrecursionlimit(10_000)
    chain = max((deepest(module) for module in known), key=len)
    folders = Counter(str(path.parent.relative_to(ROOT.parent)) for path in known.values())
    print(f"{len(known)} modules")
    for folder, count in sorted(folders.items()):
        print(f"  {folder + '/':<28} {count:>3}")
    print(f"deepest import chain: {len(chain)} modules")
    print("  " + " -> ".join(chain))
    long = sorted(
        (lines, str(path.relative_to(ROOT.parent)))
        for path in known.values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > LONG
    )
    print(f"modules over {LONG} lines: " + (", ".join(f"{p} {n}" for n, p in long) or "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
