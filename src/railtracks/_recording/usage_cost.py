"""What model calls cost, in USD, exactly (SPEC 15).

Prices come from ``rt.configure(prices={model: {"input": usd_per_1m, "output":
usd_per_1m}})`` (optionally ``"cached_input"``: the price of cache-read input
tokens, else they cost what input does); a model not configured is looked up in
the ``genai-prices`` package's table when it is installed (the ``prices``
extra), else it has no cost. All arithmetic is ``Decimal``: a configured float
is read through its shortest text (``0.15`` is ``Decimal("0.15")``), so a sum
never drifts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NamedTuple

from ..errors import ConfigurationError

PER_TOKENS: Final = Decimal(1_000_000)


class ModelPrice(NamedTuple):
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


Prices = Mapping[str, ModelPrice]
_PRICE_KEYS: Final = frozenset({"input", "output", "cached_input"})


def _decimal(model: str, key: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConfigurationError(
            f"configure(prices=...): {model!r} {key}: expected a number, got {value!r}"
        )
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ConfigurationError(
            f"configure(prices=...): {model!r} {key}: expected a number, got {value!r}"
        ) from None
    if not number.is_finite() or number < 0:
        raise ConfigurationError(
            f"configure(prices=...): {model!r} {key}: expected a price >= 0, got {value!r}"
        )
    return number


def parse_prices(prices: Mapping[str, Mapping[str, Any]] | None) -> dict[str, ModelPrice]:
    """``configure(prices=...)`` checked and made exact; ``ConfigurationError`` when malformed."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ConfigurationError("configure(prices=...): expected {model: {'input':, 'output':}}")
    parsed: dict[str, ModelPrice] = {}
    for model, price in prices.items():
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError(f"configure(prices=...): bad model name {model!r}")
        if not isinstance(price, Mapping) or not {"input", "output"} <= set(price) <= _PRICE_KEYS:
            raise ConfigurationError(
                f"configure(prices=...): {model!r}: expected 'input' and 'output' "
                f"(and optionally 'cached_input') in USD per million tokens, got {price!r}"
            )
        cached = price.get("cached_input")
        parsed[model] = ModelPrice(
            _decimal(model, "input", price["input"]),
            _decimal(model, "output", price["output"]),
            None if cached is None else _decimal(model, "cached_input", cached),
        )
    return parsed


def _configured(price: ModelPrice, inputs: int, outputs: int, cached: int) -> Decimal:
    cached = min(cached, inputs) if price.cached_input is not None else 0
    total = (inputs - cached) * price.input + outputs * price.output
    if price.cached_input is not None:
        total += cached * price.cached_input
    return total / PER_TOKENS


class _Table:
    """The ``genai-prices`` table, imported once in a thread of its own (it takes a second or
    two: never on an event loop); the models it does not know, remembered."""

    def __init__(self) -> None:
        self._module: Any = None
        self._ready = threading.Event()
        self._started = False
        self._unknown: set[str] = set()
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Start loading the table, once (a model call was seen)."""
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="railtracks-prices", daemon=True).start()

    def _load(self) -> None:
        try:
            import genai_prices  # noqa: PLC0415  # optional: the `prices` extra

            genai_prices.calc_price(genai_prices.Usage(input_tokens=0), model_ref="gpt-4o")
            self._module = genai_prices
        except Exception:  # not installed, or broken: no table, no cost
            self._module = None
        self._ready.set()

    def cost(
        self, model: str, inputs: int, outputs: int, cached: int, wait: float
    ) -> Decimal | None:
        """The table's price, waiting at most ``wait`` seconds for it to load."""
        self.warm()
        if not self._ready.wait(wait):
            return None
        module = self._module
        if module is None or model in self._unknown:
            return None
        try:
            usage = module.Usage(
                input_tokens=inputs, output_tokens=outputs, cache_read_tokens=min(cached, inputs)
            )
            total = module.calc_price(usage, model_ref=model).total_price
        except Exception:  # LookupError for an unknown model; anything else: no cost either
            self._unknown.add(model)
            return None
        return total if isinstance(total, Decimal) else Decimal(str(total))


TABLE: Final = _Table()


def cost_of(
    model: str, inputs: int, outputs: int, cached: int, prices: Prices, *, wait: float = 0.0
) -> Decimal | None:
    """USD for these tokens of ``model``: configured, else ``genai-prices``, else None.

    ``wait``: how long the table may take to load (0 on a span's end: a span
    ending before it is loaded has no cost from it; the saved state waits).
    """
    price = prices.get(model)
    if price is not None:
        return _configured(price, inputs, outputs, cached)
    return TABLE.cost(model, inputs, outputs, cached, wait)
