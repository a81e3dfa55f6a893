"""Run real railtracks sessions in a loop and serve their metrics for Prometheus.

Started in a subprocess by the ``live_prometheus`` fixture (conftest.py):

    OTEL_SERVICE_NAME=railtracks-stack-test python feed_railtracks.py --port PORT

Like a host application that scrapes its own process, it installs a global SDK
``MeterProvider`` with ``opentelemetry-exporter-prometheus``'s
``PrometheusMetricReader`` *before* railtracks first runs (railtracks then
records into it instead of making its own), and serves ``/metrics`` on
127.0.0.1:PORT. It then runs, every ~0.2 s until killed:

- ``checkout``: fetch_order -> price (a sync node) -> charge_card: completes;
- ``refund``: fetch_order -> refund_payment: completes;
- an unnamed session (session name ``unnamed``): fetch_order: completes;
- ``payment``: fetch_order -> price -> charge_card, which raises: the node and
  the session fail (the exception propagates out of the session).

charge_card and refund_payment each record a model call (``rt.record_usage``),
so the token metrics (SPEC 15) have series too.

It prints "ready" once every kind of session has run at least once.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server


class CardDeclinedError(RuntimeError):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()

    # The host's own metrics setup, in place before railtracks first runs.
    reader = PrometheusMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], resource=Resource.create()))
    start_http_server(args.port, addr="127.0.0.1")

    import railtracks as rt

    @rt.function_node
    async def fetch_order(order_id: str) -> dict[str, object]:
        await asyncio.sleep(0.002)
        return {"id": order_id, "items": 3}

    @rt.function_node
    def price(order: dict[str, object]) -> float:
        time.sleep(0.001)
        return 10.0 * float(str(order["items"]))

    @rt.function_node
    async def charge_card(amount: float, decline: bool = False) -> str:
        await asyncio.sleep(0.004)
        rt.record_usage(model="gpt-4o-mini", input_tokens=120, output_tokens=30)  # SPEC 15
        if decline:
            raise CardDeclinedError(f"card declined for {amount}")
        return "charged"

    @rt.function_node
    async def refund_payment(order: dict[str, object]) -> str:
        await asyncio.sleep(0.003)
        rt.record_usage(model="claude-haiku-4-5", input_tokens=80, output_tokens=20)
        return f"refunded {order['id']}"

    @rt.session(name="checkout", logging_setting="NONE", save_state=False)
    async def checkout(order_id: str) -> str:
        order = await rt.call(fetch_order, order_id)
        amount = await rt.call(price, order)
        return await rt.call(charge_card, amount)

    @rt.session(name="refund", logging_setting="NONE", save_state=False)
    async def refund(order_id: str) -> str:
        order = await rt.call(fetch_order, order_id)
        return await rt.call(refund_payment, order)

    @rt.session(logging_setting="NONE", save_state=False)
    async def lookup(order_id: str) -> object:
        return await rt.call(fetch_order, order_id)

    @rt.session(name="payment", logging_setting="NONE", save_state=False)
    async def payment(order_id: str) -> str:
        order = await rt.call(fetch_order, order_id)
        amount = await rt.call(price, order)
        return await rt.call(charge_card, amount, decline=True)

    async def loop() -> None:
        iteration = 0
        while True:
            order_id = f"order-{iteration}"
            await checkout(order_id)
            await refund(order_id)
            await lookup(order_id)
            try:
                await payment(order_id)
            except CardDeclinedError:
                pass
            else:
                raise AssertionError("the payment session was expected to fail")
            if iteration == 0:
                print("ready", flush=True)
            iteration += 1
            await asyncio.sleep(args.interval)

    asyncio.run(loop())


if __name__ == "__main__":
    main()
