"""Order entry: new orders and cancels handed to the order desk straight from the ASGI messages.

Under load the desk's process spends on each order a fifth of a millisecond of HTTP work, and a
third of that is Litestar's handling of the request around the handler (the Request, the
signature's parameters, the dependency, the Response). For the requests the desk answers, this
middleware does what the handler does with what the handler would have been given: the body
checked as `app.refuse_hostile_input` checks it and decoded as strictly, the same ticket, the
same answer, sent as Litestar sends it. Anything it is not sure of goes on to Litestar untouched
(the body it read is given again): a query string, a repeated header, another media type, a body
the checks would refuse, an Idempotency-Key of the wrong length. So does whatever the desk does
not answer with a response: the handler then raises the desk's error, or serves the order the
single-order way, without asking the desk again. Logging, request ids and /metrics stay with
the middleware outside this one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
from litestar import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from exchange import hostile
from exchange.context import IDEMPOTENCY_KEY_MAX, fingerprint_of
from exchange.orders.desk import DESK_ANSWER, Cancel, Ticket
from exchange.orders.routes import cancel_order, place_order
from exchange.orders.schemas import OrderIn

if TYPE_CHECKING:
    from exchange.context import Exchange

_HEADERS = {b"content-type": "content_type", b"authorization": "authorization", b"idempotency-key": "idempotency_key"}
_encode = msgspec.json.Encoder().encode


def order_entry(exchange: Exchange, body_bytes_max: int) -> Callable[[ASGIApp], ASGIApp]:
    placing, cancelling = place_order.fn, cancel_order.fn

    def wrap(app: ASGIApp) -> ASGIApp:
        async def entry(scope: Scope, receive: Receive, send: Send) -> None:
            handler = scope.get("route_handler")
            fn = getattr(handler, "fn", None)
            if exchange.desk is None or (fn is not placing and fn is not cancelling) or scope.get("query_string"):
                await app(scope, receive, send)
                return
            headers = _headers(scope)
            if headers is None:
                await app(scope, receive, send)
                return
            if fn is cancelling:
                order_id = scope["path_params"].get("order_id")
                if not isinstance(order_id, str) or "\x00" in order_id:
                    await app(scope, receive, send)
                    return
                answer = await exchange.desk.place(Cancel(headers.get("authorization"), order_id))
                if answer is None or isinstance(answer, Exception):
                    scope[DESK_ANSWER] = answer  # type: ignore[literal-required]
                    await app(scope, receive, send)
                    return
                await _send(send, 200, _encode(answer), None)
                return
            read, body = await _body(receive, body_bytes_max)
            ticket = _ticket(scope, headers, body) if body is not None else None
            if ticket is None:
                await app(scope, _again(read, receive), send)
                return
            answer = await exchange.desk.place(ticket)
            if isinstance(answer, Response):
                await _send(send, answer.status_code, answer.content, answer.headers.get("Idempotent-Replayed"))
                return
            scope[DESK_ANSWER] = answer  # type: ignore[literal-required]
            await app(scope, _again(read, receive), send)

        return entry

    return wrap


def _headers(scope: Scope) -> dict[str, str] | None:
    """The headers the order routes read (None: one of them is given twice)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _HEADERS.get(name.lower())
        if key is not None:
            if key in found:
                return None
            found[key] = value.decode("latin-1")
    return found


async def _body(receive: Receive, most: int) -> tuple[list[Message], bytes | None]:
    """The messages read, and the body they make (None: more than `most` bytes, or the client
    went: Litestar answers either)."""
    read: list[Message] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return read, None
        size += len(message.get("body", b""))
        if size > most:
            return read, None
        if not message.get("more_body", False):
            return read, b"".join(m.get("body", b"") for m in read)


def _again(read: list[Message], receive: Receive) -> Receive:
    """`receive` as it was before `read` was taken from it."""
    waiting = list(read)

    async def replay() -> Message:
        return waiting.pop(0) if waiting else await receive()

    return replay


def _ticket(scope: Scope, headers: dict[str, str], body: bytes) -> Ticket | None:
    """The order's ticket as the handler would build it, or None where `refuse_hostile_input` or
    Litestar would answer instead (and word the answer)."""
    media_type = headers.get("content_type", "").partition(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        return None
    key = headers.get("idempotency_key")
    if not body or (key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX):
        return None
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    if not isinstance(decoded, dict) or not hostile.plain_members(decoded, body) or hostile.first_not_text(decoded) is not None:
        return None
    try:
        order = msgspec.convert(decoded, OrderIn, strict=True)
    except msgspec.ValidationError:
        return None
    return Ticket(headers.get("authorization"), key, fingerprint_of("POST", scope.get("root_path", "") + scope["path"], body, decoded), order)


async def _send(send: Send, status: int, body: bytes, replayed: str | None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if replayed is not None:
        headers.append((b"idempotent-replayed", replayed.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
