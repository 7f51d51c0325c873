"""Money: an integer count of minor units (fen for CNY) with an ISO 4217 currency. Never float."""

from __future__ import annotations

from typing import Annotated

import msgspec

AMOUNT_MAX = 10**15  # 10 trillion yuan in fen: far above any trade, far below int64
CURRENCIES = frozenset({"CNY"})

Amount = Annotated[int, msgspec.Meta(ge=0, le=AMOUNT_MAX, description="Integer minor units (fen)")]
Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code")]


class Money(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An amount in minor units (fen for CNY); never float."""

    amount: Amount
    currency: Currency = "CNY"
