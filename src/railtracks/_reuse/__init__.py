"""Use a saved run again (SPEC 14): resume it, replay it in tests, diff it, import one.

``recorded`` keeps a call's output as full JSON and digests its arguments,
``rebuild`` (with ``plans``) turns recorded JSON back into the return annotation's
types, ``callindex`` reads a recorded run once for replay and
``callkey`` names each call by its place in the tree (resume, replay and
diff). ``valuediff`` and ``rundiff`` compare two runs; ``imported``
turns OTLP files into saved runs.
"""
