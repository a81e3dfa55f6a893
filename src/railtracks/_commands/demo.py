"""The demo workflow: nested and concurrent calls, context, a handled failure."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from .. import context
from .._runtime.decorator import session
from .._runtime.node import call, function_node
from .._runtime.session import Session

CATALOGUE = {"sku-espresso": 12.5, "sku-grinder": 89.0, "sku-filters": 4.25}


class OutOfStockError(Exception):
    """Raised by the demo's reservation step for an item nobody has."""


@function_node
async def check_stock(sku: str) -> int:
    await asyncio.sleep(random.uniform(0.005, 0.02))
    return 0 if sku == "sku-grinder" else 5


@function_node
def unit_price(sku: str) -> float:
    """A sync node: runs in a worker thread."""
    return CATALOGUE[sku] * (0.9 if context.get("tier") == "gold" else 1.0)


@function_node
async def price_line(sku: str, quantity: int) -> dict[str, Any]:
    stock, price = await asyncio.gather(call(check_stock, sku), call(unit_price, sku))
    return {
        "sku": sku,
        "quantity": quantity,
        "in_stock": stock,
        "total": round(price * quantity, 2),
    }


@function_node
async def reserve(sku: str, quantity: int) -> str:
    line = await call(price_line, sku, quantity)
    if line["in_stock"] < quantity:
        raise OutOfStockError(f"{sku}: wanted {quantity}, {line['in_stock']} in stock")
    return f"reserved {quantity} x {sku}"


@function_node
async def checkout(basket: dict[str, int]) -> dict[str, Any]:
    reserved, backordered = [], []
    for sku, quantity in basket.items():
        try:
            reserved.append(await call(reserve, sku, quantity))
        except OutOfStockError as exc:  # the handled failure the demo shows
            backordered.append(str(exc))
    context.put("backordered", len(backordered))
    return {"reserved": reserved, "backordered": backordered}


@session(
    name="railtracks-demo",
    context={"customer": "acme-coffee", "tier": "gold", "api_key": "sk-demo-not-a-secret"},
)
async def demo_workflow() -> dict[str, Any]:
    basket = {"sku-espresso": 2, "sku-grinder": 1, "sku-filters": 3}
    lines = await asyncio.gather(*(call(price_line, sku, qty) for sku, qty in basket.items()))
    order: dict[str, Any] = await call(checkout, basket)
    order["total"] = round(sum(line["total"] for line in lines), 2)
    return order


def run_demo() -> tuple[dict[str, Any], Session]:
    """Run the demo session and return its result and session."""
    result, demo_session = asyncio.run(demo_workflow())
    return result, demo_session
