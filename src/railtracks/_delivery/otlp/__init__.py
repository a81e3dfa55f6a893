"""railtracks' own OTLP route: nothing lost silently, nothing stalls the run (SPEC 5).

``wire`` writes OTLP protobuf, ``send`` makes one attempt at a time,
``outbox`` keeps what could not be delivered yet, ``route`` ties sender and
outbox together, and ``batch`` is the span processor that queues and drives
them from its own thread.
"""
