"""Delivery: from the tracer provider to the console, exporters and metrics (SPEC 4, 5).

``telemetry`` decides who owns the provider, ``pipeline`` which processors
railtracks feeds, ``processors`` fans finished spans out to them. railtracks'
own OTLP route (batching, retries, the durable outbox) is the ``otlp``
subpackage.
"""
