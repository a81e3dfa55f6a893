"""Sessions across processes and machines (SPEC 12).

A ``carrier`` captures the running session; a ``segment`` continues it
elsewhere and replies with its spans (``spancodec``) and context changes;
``merge`` brings the reply back. ``propagation`` holds the public functions.
"""
