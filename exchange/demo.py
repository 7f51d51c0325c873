"""`exchange demo`: a realistic catalogue through the same use cases the API runs, so every
demo listing was judged by the rules like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from exchange.auth import Caller
from exchange.context import utc_now
from exchange.db import Database
from exchange.demo_catalogue import BUYERS, LISTINGS, VENDORS
from exchange.listings import service as listings
from exchange.listings.schemas import ApproveIn, ListingIn
from exchange.participants import service as participants
from exchange.participants.schemas import ParticipantIn
from exchange.rulebook import store
from exchange.rulebook.files import read_rule_dir
from exchange.secretfile import write_secret
from exchange.settings import Settings
from exchange.settlement.ledger import Ledger
from exchange.tables import Participant

DEMO_OPERATOR = "Demo operator 演示运营方"
DEMO_REGULATOR = "Demo regulator 演示监管方"


def _caller(created: Any) -> Caller:
    p = created.participant
    return Caller(id=p.id, name=p.name, roles=frozenset(p.roles), qualifications=frozenset(p.qualifications), sponsor_id=p.sponsor_id)


async def load_demo(db: Database, settings: Settings, keys_file: Path) -> str:
    now = utc_now()
    ledger = Ledger(settings)
    async with db.write() as session:
        await store.ensure_initial(session, ledger, read_rule_dir(settings.rules_path), now)
    async with db.write() as session:
        exists = await session.execute(sa.select(Participant.id).where(Participant.name == DEMO_OPERATOR))
        if exists.first() is not None:
            return f"the demo is already loaded; its keys are in {keys_file.resolve()}"
        rules = await store.active(session, store.RulebookCache(), now)
        keys: dict[str, Any] = {"vendors": {}, "buyers": {}}
        register = participants.register
        operator = await register(session, ParticipantIn(name=DEMO_OPERATOR, roles=["operator"]), now)  # type: ignore[list-item]
        regulator = await register(session, ParticipantIn(name=DEMO_REGULATOR, roles=["regulator"]), now)  # type: ignore[list-item]
        keys["operator"] = {"id": operator.id, "name": DEMO_OPERATOR, "api_key": operator.api_key}
        keys["regulator"] = {"id": regulator.id, "name": DEMO_REGULATOR, "api_key": regulator.api_key}
        vendors: dict[str, Caller] = {}
        for vendor in VENDORS:
            created = await register(
                session,
                msgspec.convert({"name": vendor["name"], "roles": ["vendor"], "qualifications": vendor["qualifications"]}, ParticipantIn),
                now,
            )
            vendors[vendor["key"]] = _caller(created)
            keys["vendors"][vendor["key"]] = {"id": created.id, "name": vendor["name"], "api_key": created.api_key}
        for buyer in BUYERS:
            created = await register(
                session,
                msgspec.convert({"name": buyer["name"], "roles": ["buyer"], "qualifications": buyer["qualifications"]}, ParticipantIn),
                now,
            )
            keys["buyers"][buyer["key"]] = {"id": created.id, "name": buyer["name"], "api_key": created.api_key}
        reviewer = _caller(operator)
        counts: dict[str, int] = {}
        for entry in LISTINGS:
            vendor = vendors[entry["vendor"]]
            listing = await listings.create(session, rules, vendor, msgspec.convert(entry["body"], ListingIn), now)
            if entry["status"] in ("submitted", "listed"):
                listing = await listings.submit(session, rules, vendor, listing.id, now)
            if entry["status"] == "listed":
                answers = [
                    {"item": item.item, "passed": True, "evidence": f"demo review: {item.text}"}
                    for item in listing.checklist or []
                ]
                await listings.approve(
                    session, ledger, rules, reviewer, listing.id, msgspec.convert({"reason": "demo catalogue", "checklist": answers}, ApproveIn), now
                )
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    write_secret(keys_file, msgspec.json.format(msgspec.json.encode(keys), indent=2).decode() + "\n")
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return f"demo loaded: {len(VENDORS)} vendors, {len(BUYERS)} buyers, {len(LISTINGS)} listings ({summary}); keys in {keys_file.resolve()} (mode 0600)"
