"""Terminal safety in one place (SPEC 7): untrusted text is shown, never obeyed.

Every string railtracks writes to a terminal that came from a run or a file
(names, values, errors, context keys, saved states) goes through ``inert``:
control characters are replaced by a visible escape (``\\x1b``, ``\\x07``,
``\\r``, ``\\x9b``...), so nothing from a run can clear the screen, set the
window title, forge a hyperlink or overwrite a line. Bidirectional overrides
(the "Trojan Source" characters) are shown the same way. Colours are added
after this, by railtracks itself, and are the only escapes that reach the
terminal.
"""

from __future__ import annotations

import re
from typing import Final

# C0 controls (newline and tab included: a record is one line), DEL, C1
# (U+0080-U+009F, U+009B is a one-character CSI), bidi embeddings, overrides
# and isolates, the line / paragraph separators, and lone surrogates (which a
# UTF-8 terminal stream could not even encode).
_UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every control character made visible, safe to write to a terminal."""
    if text.isprintable():  # the common case costs one C-level scan
        return text
    return _UNSAFE.sub(_visible, text)
