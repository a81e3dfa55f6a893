"""The run viewer (SPEC 11): ``railtracks view``.

A local web page over the saved runs of the state directory, and an
OTLP/HTTP receiver on the same port for runs as they happen. Everything the
page needs ships in this package (``static/``): no CDN, no download, no
Node.js. The viewer reads spans and state files; it never reaches back into
the runtime. Nothing here is public API: the command is the interface, and
the server (``_server``) and the HTML export (``_html``) load only when the
command needs them.
"""

__all__: list[str] = []
