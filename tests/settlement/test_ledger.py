"""The signed log from outside: proofs checked by an RFC 9162 verifier written here from the
RFC's text (not the exchange's own code), head signatures checked by openssl, tampering caught
by `exchange ledger verify`, keys rotated without losing old heads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.core.canonical import canonical_bytes
from exchange.db import Database
from exchange.settlement import audit
from exchange.settlement.ledger import Ledger
from exchange.settlement.posting import Transfer, TransferKind
from exchange.settlement.service import JournalIn, post_journals
from exchange.settlement.signing import load_public_pem, verify_signature
from exchange.tables import LedgerEntry, LedgerHead
from tests.conftest import MovableClock
from tests.harness import Api, listing_body, until_a_statement_waits_for_a_lock


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc9162_verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def rfc9162_verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, step by step."""
    if first == second:
        return not path and first_root == second_root
    if first & (first - 1) == 0:
        path = [first_root, *path]
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


async def fill(api: Api, clock: MovableClock, deposits: int) -> None:
    """Many deposits in one batch, straight through the settlement service."""
    buyer, _ = await api.participant("buyer")
    db = Database(api.settings)
    try:
        async with db.write() as session:
            journals = [
                JournalIn(transfers=[Transfer(id=f"fill-{buyer}-{n}", kind=TransferKind.deposit, debit_account="exchange:bank:CNY",  # type: ignore[arg-type]
                                              credit_account=f"{buyer}:available:CNY", amount=100 + n, currency="CNY")])
                for n in range(deposits)
            ]
            results = await post_journals(session, Ledger(api.settings), journals, clock())
            assert all(not isinstance(r, Exception) for r in results), [r for r in results if isinstance(r, Exception)][:1]
    finally:
        await db.dispose()


async def sign_head(api: Api, clock: MovableClock) -> dict[str, Any]:
    db = Database(api.settings)
    try:
        async with db.write() as session:
            await Ledger(api.settings).sign_head(session, clock())
    finally:
        await db.dispose()
    return (await api.request("GET", "/v1/ledger/head")).json()  # type: ignore[no-any-return]


async def test_served_proofs_verify_against_signed_heads(api: Api, clock: MovableClock) -> None:
    await fill(api, clock, 300)
    first_head = await sign_head(api, clock)
    await fill(api, clock, 277)  # past 512 entries: level-8 stored nodes serve the proofs
    clock.advance(seconds=1)
    head = await sign_head(api, clock)
    assert head["size"] > 512 and first_head["size"] < head["size"]
    root = bytes.fromhex(head["root_hash"])

    for index in (0, 1, 255, 256, 300, head["size"] - 1):
        proof = (await api.request("GET", "/v1/ledger/proofs/inclusion", params={"index": index, "size": head["size"]})).json()
        entry = (await api.request("GET", "/v1/ledger/entries", api.operator_key, params={"start": index, "end": index + 1})).json()["entries"][0]
        leaf = hashlib.sha256(b"\x00" + base64.b64decode(entry["canonical"])).digest()
        assert proof["leaf_hash"] == entry["leaf_hash"] == leaf.hex()
        path = [bytes.fromhex(h) for h in proof["path"]]
        assert rfc9162_verify_inclusion(index, head["size"], leaf, path, root)
        assert not rfc9162_verify_inclusion(index, head["size"], hashlib.sha256(b"forged").digest(), path, root)

    consistency = (await api.request("GET", "/v1/ledger/proofs/consistency", params={"first": first_head["size"], "second": head["size"]})).json()
    path = [bytes.fromhex(h) for h in consistency["path"]]
    assert rfc9162_verify_consistency(first_head["size"], head["size"], bytes.fromhex(first_head["root_hash"]), root, path)
    assert not rfc9162_verify_consistency(first_head["size"], head["size"], bytes.fromhex(first_head["root_hash"]), hashlib.sha256(b"x").digest(), path)

    too_big = await api.request("GET", "/v1/ledger/proofs/inclusion", params={"index": 0, "size": head["size"] + 1000})
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "size"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
async def test_openssl_verifies_a_head_signature_with_the_served_pem(api: Api, clock: MovableClock, tmp_path: Path) -> None:
    await fill(api, clock, 3)
    head = await sign_head(api, clock)
    [key] = (await api.request("GET", "/v1/ledger/keys")).json()["keys"]
    assert key["key_id"] == head["key_id"] and key["active"] is True
    (tmp_path / "key.pem").write_text(key["public_key_pem"])
    signed = {name: head[name] for name in ("key_id", "root_hash", "size", "timestamp")}
    (tmp_path / "head.json").write_bytes(json.dumps(signed, sort_keys=True, separators=(",", ":")).encode())
    (tmp_path / "head.sig").write_bytes(base64.b64decode(head["signature"]))
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin", "-in", "head.json", "-sigfile", "head.sig"]
    good = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert good.returncode == 0 and "Signature Verified Successfully" in good.stdout
    (tmp_path / "head.json").write_bytes(json.dumps({**signed, "size": head["size"] + 1}, sort_keys=True, separators=(",", ":")).encode())
    assert subprocess.run(command, cwd=tmp_path, capture_output=True).returncode != 0


async def test_heads_are_signed_every_n_entries(api: Api, clock: MovableClock) -> None:
    from msgspec.structs import replace

    settings = replace(api.settings, ledger_head_every_entries=10, ledger_head_interval_ms=60_000)
    db = Database(settings)
    try:
        for batch in range(6):
            async with db.write() as session:
                await post_journals(session, Ledger(settings), [
                    JournalIn(transfers=[Transfer(id=f"n-{batch}-{n}", kind=TransferKind.deposit, debit_account="exchange:bank:CNY",  # type: ignore[arg-type]
                                                  credit_account="exchange:fees:CNY", amount=1, currency="CNY")])
                    for n in range(4)
                ], clock())
        async with db.read() as session:
            sizes = list((await session.execute(sa.select(LedgerHead.size).order_by(LedgerHead.size))).scalars())
    finally:
        await db.dispose()
    gaps = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]
    assert sizes and all(gap >= 10 for gap in gaps) and max(gaps) < 10 + 4


async def test_tampering_in_the_database_or_the_export_names_the_entry(api: Api, clock: MovableClock, tmp_path: Path) -> None:
    await fill(api, clock, 40)
    db = Database(api.settings)
    ledger = Ledger(api.settings)
    try:
        assert (await audit.verify_database(db)).ok  # signs nothing: the first batch got a head
        export = tmp_path / "ledger.jsonl"
        await audit.export(db, ledger, export, clock())
        report = audit.verify_file(export)
        assert report.ok, report.problems
        assert report.totals == {"CNY": 0} and report.entries > 40

        async with db.read() as session:
            target = (await session.execute(sa.select(LedgerEntry.index).where(LedgerEntry.transfer_id.like("fill-%-17")))).scalar_one()
        async with db.write() as session:
            await session.execute(sa.text('UPDATE ledger_entries SET amount = amount + 100 WHERE "index" = :i'), {"i": target})
        bad = await audit.verify_database(db)
        assert not bad.ok and bad.first_bad_index == target
        assert any(f"entry {target}: column amount" in problem for problem in bad.problems)

        async with db.write() as session:
            await session.execute(sa.text('UPDATE ledger_entries SET amount = amount - 100 WHERE "index" = :i'), {"i": target})
            row = (await session.execute(sa.text('SELECT canonical FROM ledger_entries WHERE "index" = :i'), {"i": target})).scalar_one()
            forged = bytes(row).replace(b'"amount":117', b'"amount":217')
            assert forged != bytes(row)
            await session.execute(sa.text('UPDATE ledger_entries SET canonical = :c WHERE "index" = :i'), {"c": forged, "i": target})
        bad = await audit.verify_database(db)
        assert not bad.ok and bad.first_bad_index == target
    finally:
        await db.dispose()

    lines = export.read_text().splitlines()
    for number, line in enumerate(lines):
        record = json.loads(line)
        if record["record"] == "entry" and record["index"] == target:
            canonical = base64.b64decode(record["canonical"]).replace(b'"amount":117', b'"amount":118')
            lines[number] = json.dumps({**record, "canonical": base64.b64encode(canonical).decode()})
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    report = audit.verify_file(tampered)
    assert not report.ok and report.first_bad_index == target


async def test_rotated_keys_keep_old_heads_verifiable(api: Api, clock: MovableClock, tmp_path: Path) -> None:
    await fill(api, clock, 5)
    old_head = await sign_head(api, clock)
    db = Database(api.settings)
    try:
        async with db.write() as session:
            await Ledger(api.settings).rotate(session, clock())
    finally:
        await db.dispose()
    await fill(api, clock, 5)
    new_head = await sign_head(api, clock)
    keys = {key["key_id"]: key for key in (await api.request("GET", "/v1/ledger/keys")).json()["keys"]}
    assert new_head["key_id"] != old_head["key_id"] and set(keys) == {old_head["key_id"], new_head["key_id"]}
    assert keys[new_head["key_id"]]["active"] and not keys[old_head["key_id"]]["active"]
    db = Database(api.settings)
    try:
        export = tmp_path / "rotated.jsonl"
        await audit.export(db, Ledger(api.settings), export, clock())
    finally:
        await db.dispose()
    report = audit.verify_file(export)
    assert report.ok, report.problems
    assert report.heads >= 3


async def test_approval_issues_a_signed_certificate_in_the_log(api: Api) -> None:
    vendor, vendor_key = await api.participant("vendor", qualifications=["data-merchant"])
    listed = await api.listed(vendor_key)
    response = await api.request("GET", f"/v1/listings/{listed['id']}/certificate")
    assert response.status_code == 200, response.text
    certificate = response.json()
    content = certificate["certificate"]
    assert content["listing_id"] == listed["id"] and content["vendor_id"] == vendor and content["revision"] == listed["revision"]
    assert len(content["content_sha256"]) == 64 and content["attestations"]["rights"]
    [key] = [k for k in (await api.request("GET", "/v1/ledger/keys")).json()["keys"] if k["key_id"] == certificate["key_id"]]
    assert verify_signature(load_public_pem(key["public_key_pem"]), canonical_bytes(content), certificate["signature"])
    entry = (await api.request("GET", "/v1/ledger/entries", vendor_key, params={"start": certificate["ledger_index"], "end": certificate["ledger_index"] + 1})).json()["entries"][0]
    assert entry["type"] == "certificate" and entry["certificate"] == content
    draft = (await api.request("POST", "/v1/listings", vendor_key, json=listing_body())).json()
    assert (await api.request("GET", f"/v1/listings/{draft['id']}/certificate", vendor_key)).status_code == 404


async def test_a_batch_refuses_a_transfer_id_an_earlier_journal_of_it_uses(api: Api, clock: MovableClock) -> None:
    from exchange.core.errors import TransferRefused

    def deposit(transfer_id: str, amount: int) -> JournalIn:
        return JournalIn(transfers=[Transfer(id=transfer_id, kind=TransferKind.deposit, debit_account="exchange:bank:CNY",
                                             credit_account="exchange:fees:CNY", amount=amount, currency="CNY")])

    db = Database(api.settings)
    try:
        async with db.write() as session:
            results = await post_journals(session, Ledger(api.settings), [deposit("same", 1), deposit("same", 2), deposit("other", 3)], clock())
        assert [type(r).__name__ for r in results] == ["Posted", "TransferRefused", "Posted"]
        assert isinstance(results[1], TransferRefused) and results[1].code == "transfer_id_reused"
        assert (await audit.verify_database(db)).ok
    finally:
        await db.dispose()


@pytest.mark.postgres_only
async def test_a_batch_that_waited_for_the_ledger_s_lock_posts_on_what_the_holder_committed(
    api: Api, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock and the reads go in one statement, whose snapshot predates the wait: when the
    holder posted meanwhile, the reads are made again. Here the holder spends 80 of the buyer's
    100 while the other batch waits to spend 80 too: that one must find 20, and be refused."""
    from exchange.core.errors import TransferRefused
    from exchange.settlement import service

    buyer, _ = await api.participant("buyer")
    ledger = Ledger(api.settings)

    def move(transfer_id: str, kind: TransferKind, debit: str, credit: str, amount: int) -> JournalIn:
        return JournalIn(transfers=[Transfer(id=transfer_id, kind=kind, debit_account=debit, credit_account=credit, amount=amount, currency="CNY")])

    def spend(transfer_id: str) -> JournalIn:
        return move(transfer_id, TransferKind.withdrawal, f"{buyer}:available:CNY", "exchange:bank:CNY", 80)

    reread: list[int] = []
    posting_reads = service._posting_reads

    async def counted(*args: Any) -> Any:
        reread.append(1)
        return await posting_reads(*args)

    monkeypatch.setattr(service, "_posting_reads", counted)
    db = Database(api.settings)
    try:
        async with db.write() as session:
            await post_journals(session, ledger, [move("fund", TransferKind.deposit, "exchange:bank:CNY", f"{buyer}:available:CNY", 100)], clock())
        async with db.write() as holder:
            [first] = await post_journals(holder, ledger, [spend("first")], clock())
            assert not isinstance(first, Exception), first

            async def second() -> Any:
                async with db.write() as session:
                    return (await post_journals(session, ledger, [spend("second")], clock()))[0]

            waiting = asyncio.create_task(second())
            await until_a_statement_waits_for_a_lock(db, "locked.size")
        refused = await waiting
        assert isinstance(refused, TransferRefused) and refused.code == "insufficient_funds", refused
        assert reread == [1]  # the snapshot was stale: read again, once
        assert (await audit.verify_database(db)).ok
    finally:
        await db.dispose()


async def test_waiting_entries_get_a_head_once_the_interval_passes(api: Api, clock: MovableClock) -> None:
    import asyncio

    buyer, _ = await api.participant("buyer")
    before = (await api.request("GET", "/v1/ledger/head")).json()
    deposited = await api.request("POST", "/v1/accounts/deposits", api.operator_key,
                                  json={"participant_id": buyer, "amount": 5, "currency": "CNY", "rail": "bank", "reference": "wait-1"})
    index = deposited.json()["entries"][0]["index"]
    await asyncio.sleep(0.6)  # the signer wakes every quarter interval, but no time has passed on the clock
    assert (await api.request("GET", "/v1/ledger/head")).json()["size"] == before["size"] == index
    clock.advance(milliseconds=api.settings.ledger_head_interval_ms)
    for _ in range(20):
        await asyncio.sleep(0.1)
        head = (await api.request("GET", "/v1/ledger/head")).json()
        if head["size"] > index:
            break
    assert head["size"] == index + 1
