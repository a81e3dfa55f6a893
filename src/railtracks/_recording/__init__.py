"""Recording: spans and the values on them, the bottom of the data flow (SPEC 3).

Attribute keys (``attributes``), bounded and scrubbed values (``encoding``,
``scrub``, ``limits``), railtracks' own spans (``fastspan``, ``spans``), the
compact form a finished span is kept in (``compact``) and the per-session
collector the state is built from (``collector``). Nothing here knows about
sessions, exporters or files.
"""
