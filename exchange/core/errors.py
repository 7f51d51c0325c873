"""Operating errors: expected failures with a stable code, mapped to HTTP once in problems.py."""

from __future__ import annotations

from typing import Any


class ExchangeError(Exception):
    """Base of every operating error. `code` is stable and part of the public API."""

    code: str = "exchange_error"
    title: str = "Request failed"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotAuthenticated(ExchangeError):
    code = "not_authenticated"
    title = "Missing or invalid API key"


class ParticipantSuspended(ExchangeError):
    code = "participant_suspended"
    title = "Participant is suspended"


class Forbidden(ExchangeError):
    code = "forbidden"
    title = "Not allowed for this participant"


class NotFound(ExchangeError):
    code = "not_found"
    title = "Not found"


class InvalidInput(ExchangeError):
    """Input that decodes but is wrong; `errors` lists `{"field", "reason"}`."""

    code = "invalid_input"
    title = "Invalid input"


class RuleViolated(ExchangeError):
    """The active rulebook refuses the request; `violations` names each failing rule."""

    code = "rule_violated"
    title = "Refused by the exchange rules"


class RulebookInvalid(ExchangeError):
    """A candidate rule set is broken; `errors` lists `{"file", "key", "reason"}`."""

    code = "rulebook_invalid"
    title = "Rule set is invalid"


class InvalidTransition(ExchangeError):
    code = "invalid_transition"
    title = "Not allowed in the current state"


class IdempotencyConflict(ExchangeError):
    code = "idempotency_key_reused"
    title = "Idempotency-Key was used with a different request"


class Conflict(ExchangeError):
    code = "conflict"
    title = "Conflicts with the current state"


class BookHalted(ExchangeError):
    code = "book_halted"
    title = "Trading in this listing is halted"


class TooManyRequests(ExchangeError):
    """The caller went over its request rate; `retry_after` says when it may try again (seconds)."""

    code = "too_many_requests"
    title = "Too many requests"


class TransferRefused(ExchangeError):
    """A transfer breaks a ledger rule; nothing of its journal was applied. `code` says which
    (insufficient_funds, transfer_id_reused, …) and `field` names the offending field."""

    code = "transfer_refused"
    title = "Transfer refused"

    def __init__(self, code: str, detail: str, *, status: int = 422, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.code = code
        self.status = status
