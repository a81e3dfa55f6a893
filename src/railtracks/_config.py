"""All of railtracks' process-wide state, in one object tests can reset.

``rt.set_config`` stores session defaults here; ``rt.configure`` stores the
telemetry settings. Nothing else in the package keeps module-level mutable
state except the telemetry pipeline built *from* this object.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export import SpanExporter

from ._recording.encoding import DEFAULT_REDACT_PATTERN, DEFAULT_VALUE_LIMIT, ValueEncoder
from ._recording.usage_cost import ModelPrice, parse_prices
from ._settings import state_max_runs_from_environment
from .errors import ConfigurationError

if TYPE_CHECKING:  # the metrics SDK is imported only when metrics are exported
    from opentelemetry.sdk.metrics.export import MetricReader

DEFAULT_STATE_DIR = ".railtracks"
ENV_STATE_DIR = "RAILTRACKS_STATE_DIR"


@dataclasses.dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """What ``rt.configure`` sets. ``None`` means: use the environment or the default."""

    service_name: str | None = None
    endpoint: str | None = None
    protocol: str | None = None
    headers: Mapping[str, str] | None = None
    export: bool | None = None
    span_exporters: tuple[SpanExporter, ...] = ()
    metric_readers: tuple[MetricReader, ...] = ()
    console_stream: IO[str] | None = None
    state_dir: Path | None = None
    state_max_runs: int | None = None
    redact_pattern: str = DEFAULT_REDACT_PATTERN
    value_limit: int = DEFAULT_VALUE_LIMIT
    secret_patterns: tuple[str, ...] = ()
    redact: bool = True
    prices: Mapping[str, ModelPrice] = dataclasses.field(default_factory=dict)


class Configuration:
    """The single holder of process-wide settings."""

    def __init__(self) -> None:
        self.session_defaults: dict[str, Any] = {}
        self.telemetry = TelemetrySettings()
        self.encoder = ValueEncoder()
        self.generation = 0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the telemetry settings change or are reset."""
        self._listeners.append(listener)

    def set_telemetry(self, settings: TelemetrySettings) -> None:
        self.telemetry = settings
        self.encoder = ValueEncoder(
            settings.value_limit,
            settings.redact_pattern,
            settings.secret_patterns,
            redact=settings.redact,
        )
        self.generation += 1
        for listener in self._listeners:
            listener()

    def reset(self) -> None:
        """Forget every ``set_config`` default and ``configure`` setting."""
        self.session_defaults = {}
        self.set_telemetry(TelemetrySettings())

    def state_dir(self) -> Path:
        """Saved states' directory: configure(), then RAILTRACKS_STATE_DIR, then .railtracks."""
        if self.telemetry.state_dir is not None:
            return self.telemetry.state_dir
        env = os.environ.get(ENV_STATE_DIR, "")
        if env.strip():
            return Path(env)
        return Path(DEFAULT_STATE_DIR)

    def state_max_runs(self) -> int | None:
        """Runs kept per state directory: configure(), then RAILTRACKS_STATE_MAX_RUNS; None: all.

        Raises ``ConfigurationError`` for a bad environment value.
        """
        if self.telemetry.state_max_runs is not None:
            return self.telemetry.state_max_runs
        return state_max_runs_from_environment()


CONFIG = Configuration()


def scrub_text(text: str) -> str:
    """``text`` scrubbed with the configured rules (for log records and warnings)."""
    return CONFIG.encoder.scrubber.text(text)


def configure(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    export: bool | None = None,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    console_stream: IO[str] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    state_max_runs: int | None = None,
    redact_pattern: str | None = None,
    value_limit: int | None = None,
    secret_patterns: Sequence[str] = (),
    redact: bool = True,
    prices: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Set up telemetry in code; each argument overrides its ``OTEL_*`` counterpart.

    Calling it again replaces the previous settings as a whole (arguments left
    out go back to the environment or the default).

    Args:
        service_name: ``service.name`` of railtracks' own provider (else ``OTEL_SERVICE_NAME``).
        endpoint: OTLP endpoint; setting it turns export on (else ``OTEL_EXPORTER_OTLP_ENDPOINT``).
        protocol: ``"grpc"`` or ``"http/protobuf"`` (else ``OTEL_EXPORTER_OTLP_PROTOCOL``).
        headers: extra OTLP headers (else ``OTEL_EXPORTER_OTLP_HEADERS``).
        export: force OTLP export on or off regardless of the environment.
        span_exporters: more exporters, each fed by its own non-dropping batch processor.
        metric_readers: more metric readers for railtracks' own meter provider.
        console_stream: where console spans and logs are written (default: stderr).
        state_dir: directory of saved states (else ``RAILTRACKS_STATE_DIR``, else ``.railtracks``).
        state_max_runs: keep only the newest N runs of a state directory, deleting older
            state files as new ones are written (else ``RAILTRACKS_STATE_MAX_RUNS``; default:
            keep all).
        redact_pattern: regular expression of sensitive keys (case-insensitive), matched
            against context keys, node parameter names and keys at any depth of inputs,
            outputs, answers, context changes and broadcasts. Replaces the default pattern.
        secret_patterns: more regular expressions; their matches inside any recorded string
            are replaced by ``[REDACTED]`` (on top of the built-in credential shapes).
        redact: ``False`` turns all redaction and scrubbing off (values recorded in clear).
        value_limit: longest attribute string before truncation (default 4096).
        prices: USD per million tokens by model, ``{model: {"input": 0.15, "output": 0.6}}``
            (optionally ``"cached_input"``), for the cost of model calls (SPEC 15); a model
            not listed is priced from ``genai-prices`` when installed, else has no cost.
    """
    if protocol is not None and protocol not in ("grpc", "http/protobuf"):
        raise ConfigurationError(
            f"configure(protocol=...): expected 'grpc' or 'http/protobuf', got {protocol!r}"
        )
    if value_limit is not None and (
        isinstance(value_limit, bool) or not isinstance(value_limit, int) or value_limit < 64
    ):
        raise ConfigurationError(
            f"configure(value_limit=...): expected an integer >= 64, got {value_limit!r}"
        )
    if state_max_runs is not None and (
        type(state_max_runs) is not int or state_max_runs < 1  # True is not a number of runs
    ):
        raise ConfigurationError(
            f"configure(state_max_runs=...): expected a positive integer, got {state_max_runs!r}"
        )
    if redact_pattern is not None:
        try:
            ValueEncoder(redact_pattern=redact_pattern)
        except Exception as exc:
            raise ConfigurationError(f"configure(redact_pattern=...): {exc}") from exc
    if isinstance(secret_patterns, str) or not all(isinstance(p, str) for p in secret_patterns):
        raise ConfigurationError("configure(secret_patterns=...): expected a list of regexes")
    for pattern in secret_patterns:
        try:
            ValueEncoder(secret_patterns=[pattern])
        except Exception as exc:
            raise ConfigurationError(f"configure(secret_patterns=...): {pattern!r}: {exc}") from exc
    if not isinstance(redact, bool):
        raise ConfigurationError(f"configure(redact=...): expected True or False, got {redact!r}")
    if console_stream is not None and not callable(getattr(console_stream, "write", None)):
        raise ConfigurationError("configure(console_stream=...): expected a text stream")
    parsed_prices = parse_prices(prices)
    CONFIG.set_telemetry(
        TelemetrySettings(
            service_name=service_name,
            endpoint=endpoint,
            protocol=protocol,
            headers=dict(headers) if headers is not None else None,
            export=export,
            span_exporters=tuple(span_exporters),
            metric_readers=tuple(metric_readers),
            console_stream=console_stream,
            state_dir=Path(state_dir) if state_dir is not None else None,
            state_max_runs=state_max_runs,
            redact_pattern=redact_pattern if redact_pattern is not None else DEFAULT_REDACT_PATTERN,
            value_limit=value_limit if value_limit is not None else DEFAULT_VALUE_LIMIT,
            secret_patterns=tuple(secret_patterns),
            redact=redact,
            prices=parsed_prices,
        )
    )
