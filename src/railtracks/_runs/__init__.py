"""Saved runs: the state built from a session's spans, written, read and re-created (SPEC 6, 13).

``state`` builds the document, ``tree`` assembles the call tree, ``head``
holds the counts written ahead of the nodes, ``journal`` appends finished
spans while the run goes on and ``assemble`` streams it into the state,
``store`` writes and reads state files, ``schema`` and ``fastcheck`` validate
them, ``stream`` reads one node at a time and ``respan`` turns a state back
into spans (``railtracks export``).
"""
