"""The runtime: sessions, node calls, and what stops or runs them (SPEC 1, 2).

A session opens the root span, keeps the run's context and deadline, and ends
through its end hooks; ``rt.call`` opens a child span per node call. The
runtime records through ``_recording``, hands spans to ``_delivery`` and asks
``_runs`` for the state; it never reaches into them beyond their functions.
"""
