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
from collections.abc import Sequence
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

# Credential shapes inside free text. Each alternative is a named group; the
# replacement keeps what names the credential (scheme, user, key) and drops
# the credential itself.
_VALUE: Final = r"""(?:(?:bearer|basic)\s+)?[^\s"'&,;}\])]+"""
_SHAPES: Final = (
    # -----BEGIN RSA PRIVATE KEY----- ... (to the END line, or to the end of a cut text)
    r"(?P<pem>-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|.*\Z))",
    # scheme://user:password@host
    r"(?P<url>(?<=://)[^\s/?#@:]*:)[^\s/?#@]+(?=@)",
    # Authorization: Bearer <token> / Basic <base64>; needs a digit, as English words have none
    r"(?P<scheme>\b(?:bearer|basic)\s+)(?=[A-Za-z0-9._~+/=-]{0,512}\d)[A-Za-z0-9._~+/=-]{8,}",
    # AWS access key ids
    r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b",
    # GitHub tokens (classic and fine-grained)
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})",
    # OpenAI / Anthropic style keys
    r"\bsk-(?:[A-Za-z0-9]+-)?[A-Za-z0-9_-]{20,}",
    # Slack tokens and incoming-webhook URLs
    r"\bxox[abposre]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/[A-Za-z0-9/]{20,}",
    # Stripe and Google API keys
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}",
    # JWTs: base64url header.payload.signature, header and payload JSON objects
    r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
)
# Starts at the sensitive word itself (``db_password=...`` keeps ``db_``) and
# every repetition is bounded: no backtracking blow-up on long runs of letters.
_KEY_VALUE_TEMPLATE: Final = (
    r"""(?P<kv>(?:{keys})[\w.-]{{0,40}}["']?\s{{0,3}}[:=]\s{{0,3}}["']?)(?!\[REDACTED\]){value}"""
)
_SHORTEST_SECRET: Final = 8


def _replace(match: re.Match[str]) -> str:
    for group in ("kv", "url", "scheme"):
        kept = match.group(group)
        if kept is not None:
            return kept + REDACTED
    return REDACTED


class Scrubber:
    """One set of rules: a sensitive-key pattern and the string shapes.

    ``enabled=False`` turns both off (values are recorded as they are).
    ``extra_patterns`` are more regular expressions whose matches inside any
    string are replaced by ``[REDACTED]``.
    """

    __slots__ = ("_key_cache", "_key_search", "_text_sub", "enabled", "key_pattern")

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
        key_value = _KEY_VALUE_TEMPLATE.format(keys=key_pattern, value=_VALUE)
        # each extra pattern is compiled alone first: a bad one is reported by itself
        for pattern in extra_patterns:
            re.compile(pattern)
        shapes = [*_SHAPES, key_value, *(f"(?:{p})" for p in extra_patterns)]
        self._text_sub = re.compile("|".join(shapes), re.IGNORECASE | re.DOTALL).sub
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

    def text(self, text: str) -> str:
        """``text`` with every credential shape in it replaced."""
        if not self.enabled or len(text) < _SHORTEST_SECRET:
            return text
        try:
            return self._text_sub(_replace, text)
        except RecursionError:  # pathological input for the regex engine: drop it whole
            return REDACTED


DEFAULT_SCRUBBER: Final = Scrubber()


def scrub_text(text: str) -> str:
    """``text`` scrubbed with the configured rules (for log records and warnings)."""
    from ._config import CONFIG  # noqa: PLC0415  # _config imports _encoding, which imports us

    return CONFIG.encoder.scrubber.text(text)


def redact_url(url: str) -> str:
    """A URL (an OTLP endpoint, say) fit to print: any user-info password replaced."""
    return DEFAULT_SCRUBBER.text(url)
