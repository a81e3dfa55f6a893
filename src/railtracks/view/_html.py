"""``railtracks view RUN --html FILE``: one self-contained HTML file of one run.

The page's CSS and JavaScript are inlined and allowed by their SHA-256 hashes
in a Content-Security-Policy meta tag (no other script, no network at all);
the run is embedded as JSON in a ``<script type="application/json">`` block
with ``<``, ``>`` and ``&`` escaped, so no value can close the block.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from ._model import Run
from ._server import static_file


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def embedded_json(document: Any) -> str:
    """JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render(run: Run) -> str:
    """The whole file for ``run``."""
    script = static_file("viewer.js").decode()
    style = static_file("viewer.css").decode()
    for source, closer in ((script, "</script"), (style, "</style")):
        if closer in source.lower():
            raise ValueError(f"bundled asset contains {closer}")  # pragma: no cover - our files
    data = embedded_json({"mode": "file", "run": run.outline(), "details": run.details()})
    csp = (
        f"default-src 'none'; script-src {_hash(script)}; style-src {_hash(style)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    title = "railtracks · run"
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{title}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        '<div id="app"></div>\n'
        f'<script type="application/json" id="rt-data">{data}</script>\n'
        f"<script>{script}</script>\n</body>\n</html>\n"
    )


def write_html(run: Run, destination: Path) -> int:
    """Write the file; returns its size in bytes."""
    content = render(run).encode("utf-8")
    destination.write_bytes(content)
    return len(content)
