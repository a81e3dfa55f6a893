"""Saved runs: the state built from a session's spans, written, read and re-created (SPEC 6).

``state`` builds the document, ``tree`` assembles the call tree, ``head``
holds the counts written ahead of the nodes, ``store`` writes and reads state
files, ``schema`` validates them and ``respan`` turns a state back into spans
(``railtracks export``).
"""
