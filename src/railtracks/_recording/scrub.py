"""Secrets never leave the process in clear (SPEC 3): redaction by key, scrubbing by shape.

Two rules, applied to every payload railtracks records (context, node inputs
and outputs, answers, context changes, broadcasts, exception messages, log
records and warnings):

* **by key**: a value standing under a sensitive key, at any depth of a mapping,
  is replaced by ``[REDACTED]`` (whatever its type, a whole sub-tree included);
* **by shape**: inside any string, credentials in well-known shapes are replaced
  and the text around them kept: URL user-info passwords, ``Bearer``/``Basic``
  credentials, ``key=value`` / ``"key": "value"`` assignments whose key is
  sensitive, PEM private-key blocks, AWS access key ids, GitHub, OpenAI /
  Anthropic, Slack, Stripe and Google API keys, JWTs.

Compared with Pydantic Logfire's scrubber (one keyword pattern run over keys
and whole string values, which redacts a whole message that merely mentions
"password" yet lets ``postgres://u:pw@host`` or ``Bearer eyJ...`` through and
never looks at exception messages), only the credential itself is replaced,
and exception messages, log records and warnings are scrubbed like values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

REDACTED: Final = "[REDACTED]"

# Case-insensitive. Acronyms need a boundary (``_`` counts): "ssn" in "lessons"
# is not a social security number. "auth" spares "author(s)".
_KEY_WORDS: Final = (
    r"passw(?:or)?d|pwd|passphrase|secret|token|(?:^|[\W_])jwt(?:$|[\W_])"
    r"|api[._ -]?key|access[._ -]?key|session[._ -]?key|private[._ -]?key"
    r"|authori[sz]ation|auth(?!ors?(?:$|[\W_]))|credential|cookie"
    r"|(?:^|[\W_])(?:csrf|xsrf|ssn)(?:$|[\W_])|credit[._ -]?card"
)
DEFAULT_KEY_PATTERN: Final = _KEY_WORDS

# Keys that match a word above but are known not to hold a secret: railtracks'
# own identity, and the token *counts* of LLM usage (GenAI semantic conventions).
SAFE_KEYS: Final = frozenset(
    {
        "railtracks.session.id",
        "session.id",
        "railtracks.session.save_state",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "max_tokens",
        "max_completion_tokens",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "input_tokens",
        "output_tokens",
    }
)

# Credential shapes inside free text, each with the lower-case literals one of
# which the text must contain for the pattern to be tried at all: a regex with
# alternatives is tried at every position of the text, a substring test is one
# C-level scan, so a 4 KB string without any of them costs microseconds.
_SHAPES: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    # -----BEGIN RSA PRIVATE KEY----- ... (to the END line, or to the end of a cut text)
    (
        ("-----begin",),
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    ),
    # scheme://user:password@host: the password goes, the user stays
    (("://",), r"(?P<keep>(?<=://)[^\s/?#@:]*:)[^\s/?#@]+(?=@)"),
    # Authorization: Bearer <token> / Basic <base64>; needs a digit, as English words have none
    (
        ("bearer", "basic"),
        r"(?P<keep>\b(?:bearer|basic)\s+)(?=[A-Za-z0-9._~+/=-]{0,512}\d)[A-Za-z0-9._~+/=-]{8,}",
    ),
    # AWS access key ids
    (
        ("akia", "asia", "abia", "acca", "agpa", "aida", "aipa", "anpa", "anva", "aroa", "apka"),
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b",
    ),
    # GitHub tokens (classic and fine-grained)
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})",
    ),
    # OpenAI / Anthropic style keys
    (("sk-",), r"\bsk-(?:[A-Za-z0-9]+-)?[A-Za-z0-9_-]{20,}"),
    # Slack tokens and incoming-webhook URLs
    (
        ("xox", "hooks.slack.com"),
        r"\bxox[abposre]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/[A-Za-z0-9/]{20,}",
    ),
    # Stripe and Google API keys
    (
        ("_live_", "_test_", "aiza"),
        r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}",
    ),
    # JWTs: base64url header.payload.signature, header and payload JSON objects
    (("eyj",), r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
)
# key=value, key: value, "key": "value": the key is any word, checked in the
# replacement against the sensitive-key pattern; it starts at a word boundary,
# so the scan is linear whatever the text.
_KEY_VALUE: Final = (
    r"""(?<![\w.-])(?P<key>[\w.-]{1,60})(?P<sep>["']?\s{0,3}[:=]\s{0,3}["']?)"""
    r"""(?!\[REDACTED\])(?:(?:bearer|basic)\s+)?[^\s"'&,;}\])]+"""
)
_SHORTEST_SECRET: Final = 8

_Sub = Callable[[Callable[[re.Match[str]], str], str], str]


def _replace(match: re.Match[str]) -> str:
    kept = match.group("keep") if "keep" in match.re.groupindex else None
    return REDACTED if kept is None else kept + REDACTED


class Scrubber:
    """One set of rules: a sensitive-key pattern and the string shapes.

    ``enabled=False`` turns both off (values are recorded as they are).
    ``extra_patterns`` are more regular expressions whose matches inside any
    string are replaced by ``[REDACTED]``.
    """

    __slots__ = ("_key_cache", "_key_search", "_key_value", "_shapes", "enabled", "key_pattern")

    def __init__(
        self,
        key_pattern: str = DEFAULT_KEY_PATTERN,
        extra_patterns: Sequence[str] = (),
        *,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.key_pattern = key_pattern
        self._key_search = re.compile(key_pattern, re.IGNORECASE).search
        flags = re.IGNORECASE | re.DOTALL
        self._shapes: list[tuple[tuple[str, ...], _Sub]] = [
            (guard, re.compile(pattern, flags).sub) for guard, pattern in _SHAPES
        ]
        # extra patterns have no guard: each is compiled alone, so a bad one is reported alone
        self._shapes.extend(((), re.compile(pattern, flags).sub) for pattern in extra_patterns)
        self._key_value = re.compile(_KEY_VALUE, flags).sub
        self._key_cache: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        """Whether the value under ``key`` must never leave the process."""
        if not self.enabled:
            return False
        cached = self._key_cache.get(key)
        if cached is None:
            cached = key not in SAFE_KEYS and self._key_search(key) is not None
            if len(self._key_cache) < 4096:
                self._key_cache[key] = cached
        return cached

    def _assignment(self, match: re.Match[str]) -> str:
        key = match.group("key")
        if not self.is_sensitive(key):
            return match.group()
        return key + match.group("sep") + REDACTED

    def text(self, text: str) -> str:
        """``text`` with every credential shape in it replaced."""
        if not self.enabled or len(text) < _SHORTEST_SECRET:
            return text
        lower = text.lower()
        try:
            for guard, sub in self._shapes:
                if not guard or any(literal in lower for literal in guard):
                    text = sub(_replace, text)
            if "=" in text or ":" in text:
                text = self._key_value(self._assignment, text)
        except RecursionError:  # pathological input for the regex engine: drop it whole
            return REDACTED
        return text


DEFAULT_SCRUBBER: Final = Scrubber()


def redact_url(url: str) -> str:
    """A URL (an OTLP endpoint, say) fit to print: any user-info password replaced."""
    return DEFAULT_SCRUBBER.text(url)
