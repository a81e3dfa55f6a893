"""The ``railtracks`` command line (SPEC 7).

``cli`` parses the arguments and dispatches to the commands here and to ``view``.
"""
