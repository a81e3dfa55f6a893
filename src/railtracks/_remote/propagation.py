"""The session across any transport (SPEC 12): ``rt.session_carrier``, ``rt.session_segment``,
``rt.merge_segment``.

```python
# caller, inside a session (e.g. in a node)
headers = rt.session_carrier()                 # W3C traceparent/tracestate/baggage + railtracks-*
reply = post(url, body, headers=headers)       # any transport
rt.merge_segment(reply["segment"])             # spans and context changes come back

# the other side
with rt.session_segment(request_headers) as segment:
    result = await rt.call(work, ...)
send({"result": result, "segment": segment.reply()})
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._runtime.current import require_session
from .carrier import capture
from .merge import merge
from .segment import Segment, open_segment


def session_carrier() -> dict[str, str]:
    """The current session as text headers, to send with a request to another process.

    Holds ``traceparent``, ``tracestate`` and ``baggage`` (W3C) of the current
    span, and ``railtracks-session`` / ``railtracks-context`` (JSON: session id,
    name, deadline, logging setting; the context values JSON can represent).
    The context travels in clear: send it only where the context may go.
    """
    return capture(require_session("rt.session_carrier()")).to_headers()


def session_segment(carrier: Mapping[str, Any]) -> Segment:
    """Continue the caller's session here, from the headers ``rt.session_carrier()`` made.

    Use it as ``with``/``async with``. Inside, ``rt.context``, ``rt.call`` and
    ``rt.current_session()`` act in the caller's session; spans are kept for
    the caller, never exported, printed or saved here. Send ``segment.reply()``
    back and give it to ``rt.merge_segment`` on the caller's side. Raises
    ``rt.errors.CarrierError`` when the headers are not a valid carrier.
    """
    return open_segment(carrier)


def merge_segment(reply: Mapping[str, Any]) -> None:
    """Bring a segment's reply into the current session (call it where the carrier was made).

    Its spans are emitted through this process's processors (console, saved
    state, export), the attributes and events it set on the calling span are
    applied, and its context changes are applied in order. The reply is
    checked as untrusted input: ``rt.errors.CarrierError`` when it is not a
    reply of this session; malformed parts are left out with a warning.
    """
    merge(require_session("rt.merge_segment()"), reply)
