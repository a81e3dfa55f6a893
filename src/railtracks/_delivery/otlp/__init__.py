"""railtracks' own OTLP route: nothing lost silently, nothing stalls the run (SPEC 5).

``wire`` writes OTLP protobuf, ``send`` makes one attempt at a time,
``outbox`` keeps what could not be delivered yet, ``route`` ties sender and
outbox together. ``batch`` is the span processor: it composes ``batch_queue``
(the queue and its worker thread, which know nothing of OTLP) with a policy
from ``delivery`` (retries, backoff, the outbox, or an SDK exporter; no
thread of its own).
"""
