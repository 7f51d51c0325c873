"""uvicorn's HTTP protocol with each response sent in one write.

uvicorn writes a response's status line and headers as soon as the app starts it, and its body
when the app sends that: two `send` system calls per response, and two wake-ups of the proxy
reading the other end (nginx), for what is one small answer. Here the writes a connection makes
in one turn of the event loop are joined and written once, at the end of that turn: the start
and the body of a response go out together, no later than they would have."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _Joined:
    """A transport whose writes within one turn of the event loop reach the socket as one."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()  # what was written goes out before the connection closes
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """`uvicorn.run(..., http=OneWriteHttpProtocol)`: httptools, each response in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Joined(transport, self.loop))  # type: ignore[arg-type]
