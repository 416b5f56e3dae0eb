"""A streamed response that closes its stream however the response ends.

Starlette's :class:`~starlette.responses.StreamingResponse` reads a plain (synchronous) generator in a
thread and, when the client goes away mid-download, stops reading without closing it: the generator is
closed only when the garbage collector gets to it. An export's generator holds a read transaction, a
read-ahead thread or a child process (:mod:`labelwright.io.spawned`) until then. :class:`ClosingStream`
closes it as soon as the response ends, finished, failed or abandoned.
"""

from __future__ import annotations

from collections.abc import Iterator

from anyio import to_thread
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class ClosingStream(StreamingResponse):
    """``StreamingResponse(blocks, ...)`` that calls ``blocks.close()`` (a generator's) when the response
    ends, in a thread: closing may wait for a child process or a thread to stop."""

    def __init__(self, content: Iterator[bytes], **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._close = getattr(content, "close", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # no thread is inside the generator now: Starlette awaits each next() to the end, even when
            # the download is cancelled, so this close never meets "generator already executing"
            if self._close is not None:
                await to_thread.run_sync(self._close)
