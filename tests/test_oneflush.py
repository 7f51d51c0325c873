"""Each response in one write (exchange/oneflush.py): joined within a turn of the event loop, in
order, flushed before a close, and served correctly by uvicorn over keep-alive and close."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from exchange.oneflush import OneWriteHttpProtocol, _Joined


class _Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def test_the_writes_of_one_turn_reach_the_socket_as_one_in_order() -> None:
    recording = _Recording()
    joined = _Joined(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    joined.write(b"{}")
    assert recording.writes == []  # not before the turn ends
    await asyncio.sleep(0)
    assert recording.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    joined.write(b"next")
    await asyncio.sleep(0)
    assert recording.writes[1:] == [b"next"]
    assert joined.get_extra_info("peername") == ("127.0.0.1", 1)  # everything else is the transport's


async def test_a_close_sends_what_was_written_first() -> None:
    recording = _Recording()
    joined = _Joined(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"last words")
    joined.close()
    assert recording.writes == [b"last words"] and recording.closed
    await asyncio.sleep(0)
    assert recording.writes == [b"last words"]  # the scheduled flush finds nothing more


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = scope["path"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if scope["path"] == "/bye":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_uvicorn_serves_keep_alive_and_close_through_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port, http=OneWriteHttpProtocol, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Two pipelined requests, then one that closes: three answers in order, then the end.
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write(b"GET /bye HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        received = await asyncio.wait_for(reader.read(), timeout=5)  # to EOF: the server closed
        writer.close()
        answers = received.split(b"HTTP/1.1 200 OK\r\n")[1:]
        assert len(answers) == 3, received
        assert [answer.rsplit(b"\r\n\r\n", 1)[1] for answer in answers] == [b"/one", b"/two", b"/bye"]
    finally:
        server.should_exit = True
        await serving
