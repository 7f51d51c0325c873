"""Every error leaves as RFC 9457 application/problem+json with a stable `code`."""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from exchange.core import errors, retry
from exchange.log import log

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CODE: dict[str, int] = {
    errors.NotAuthenticated.code: 401,
    errors.ParticipantSuspended.code: 403,
    errors.Forbidden.code: 403,
    errors.NotFound.code: 404,
    errors.InvalidInput.code: 422,
    errors.RuleViolated.code: 422,
    errors.RulebookInvalid.code: 422,
    errors.InvalidTransition.code: 409,
    errors.IdempotencyConflict.code: 409,
    errors.Conflict.code: 409,
    errors.TransferRefused.code: 422,
    errors.BookHalted.code: 409,
    errors.TooManyRequests.code: 429,
}

# Litestar's own HTTP errors, named by status.
_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An RFC 9457 problem; some codes add members (`errors`, `violations`, `rulebook_hash`)."""

    type: str
    code: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    """Each field (or rule file and key) that was refused, and why."""


_DOCUMENTED_STATUSES = {
    400: "The request does not decode: malformed JSON, a wrong type, an unknown field",
    401: "Missing or invalid API key",
    403: "Not allowed for this participant",
    404: "Not found",
    409: "Conflicts with the current state",
    422: "Decodes but is refused: invalid input, the exchange rules, a broken rule set",
    429: "Too many requests from this participant: wait as long as Retry-After says",
    503: "The database was too busy to finish in time (nothing was kept), or could not be reached (resend with the same "
         "Idempotency-Key: what landed is replayed): retry after Retry-After",
}


def documented(handlers: list[Any]) -> list[Any]:
    """Document the problems every API operation can answer with, as application/problem+json
    (Litestar would otherwise describe only a 400 in its own JSON shape). Bodies can be too large."""
    for handler in handlers:
        if isinstance(handler, HTTPRouteHandler):
            statuses = dict(_DOCUMENTED_STATUSES)
            if "data" in inspect.signature(handler.fn).parameters:
                statuses[413] = "The body is larger than the exchange accepts"
                statuses[415] = "The body is not sent as application/json"
            specs = {status: ResponseSpec(Problem, description=text, media_type=PROBLEM_JSON, generate_examples=False) for status, text in statuses.items()}
            handler.responses = {**specs, **(handler.responses or {})}
    return handlers


def problem(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[bytes]:
    body = {
        "type": f"urn:exchange:problem:{code}",
        "code": code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def exchange_error(request: Request[Any, Any, Any], error: errors.ExchangeError) -> Response[bytes]:
    status = getattr(error, "status", None) or STATUS_BY_CODE.get(error.code, 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": str(error.extensions.get("retry_after", 1))}
    return problem(request, status, error.code, error.title, error.detail, headers, **error.extensions)


def validation_error(request: Request[Any, Any, Any], error: ValidationException) -> Response[bytes]:
    """A body or parameter that does not decode: name each field and why."""
    found = []
    for item in error.extra if isinstance(error.extra, list) else []:
        if isinstance(item, dict):
            found.append({"field": str(item.get("key") or ""), "reason": str(item.get("message", ""))})
    detail = "; ".join(f"{e['field']}: {e['reason']}" if e["field"] else e["reason"] for e in found)
    return problem(
        request, 400, "invalid_request", "Invalid request", detail or str(error.detail), errors=found
    )


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    status = error.status_code
    code = _CODE_BY_STATUS.get(status, "http_error" if status < 500 else "internal_error")
    headers = dict(error.headers or {})
    return problem(request, status, code, str(error.detail), str(error.detail), headers or None)


BUSY_RETRY_AFTER_S = 1
STATEMENT_TIMEOUT = "57014"


def internal_error(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    busy = database_busy(error)
    if busy is not None:
        # The transaction was rolled back: the same request later is safe (and with its
        # Idempotency-Key, a replay of whatever did land). Not the client's fault, nor a bug.
        log.warning("request.database_busy", reason=busy)
        return problem(
            request, 503, "database_busy", "Database busy",
            f"The database could not finish this request in time ({busy}); nothing of it was kept. Try again.",
            {"Retry-After": str(BUSY_RETRY_AFTER_S)},
        )
    unreachable = database_unreachable(error)
    if unreachable is not None:
        # A connection lost while committing leaves the outcome unknown to us: the client's
        # Idempotency-Key, sent again, turns a landed request into a replay, not a repeat.
        log.warning("request.database_unreachable", reason=unreachable, error_type=type(error).__name__)
        return problem(
            request, 503, "database_unavailable", "Database unavailable",
            f"The exchange could not reach its database ({unreachable}). Send the request again after Retry-After, "
            "with the same Idempotency-Key if it creates something: if it had landed, its answer is replayed.",
            {"Retry-After": str(BUSY_RETRY_AFTER_S)},
        )
    log.exception("request.failed", error_type=type(error).__name__)
    return problem(
        request, 500, "internal_error", "Internal error", "The exchange failed; the error is logged."
    )


def database_busy(error: BaseException) -> str | None:
    """Why the database gave up on a transaction it rolled back, when it did for being busy: a
    deadlock or serialisation failure that outlasted the retries, a statement over the timeout,
    SQLite's writers' queue over its busy timeout. None for anything else."""
    code = retry.sqlstate(error)
    if code in retry.RETRYABLE:
        return retry.RETRYABLE[code]
    if code == STATEMENT_TIMEOUT:
        return "statement_timeout"
    if isinstance(error, sa.exc.OperationalError) and "database is locked" in str(error.orig):
        return "database_locked"
    return None


# Server states in which PostgreSQL refuses or ends connections (class 57P: operator intervention).
_GOING_AWAY = {"57P01": "the server is shutting down", "57P02": "the server crashed", "57P03": "the server is starting up"}


def database_unreachable(error: BaseException) -> str | None:
    """Why no connection could serve the request, when that is what failed it: one lost under it
    (a restart, an operator's pg_terminate_backend, the network), or none to be had (refused, the
    server starting or stopping). None for anything else."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return "the connection was lost"
    code = retry.sqlstate(error)
    if code is not None and code.startswith("08"):  # class 08: connection exception
        return "the connection failed"
    if code in _GOING_AWAY:
        return _GOING_AWAY[code]
    if isinstance(error, ConnectionError):  # asyncpg's connect raises the socket's own error
        return "the connection was refused"
    return None


EXCEPTION_HANDLERS: dict[Any, Any] = {
    errors.ExchangeError: exchange_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: internal_error,
}
