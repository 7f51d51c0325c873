"""The `exchange` command: serve, migrate, bootstrap, participants, rules, demo."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from exchange.context import utc_now
from exchange.core.errors import ExchangeError, RulebookInvalid
from exchange.db import Database
from exchange.log import configure_logging
from exchange.secretfile import write_secret
from exchange.settings import Settings
from exchange.settlement.ledger import Ledger, SigningKeyExposed

T = TypeVar("T")
SHUTDOWN_GRACE_S = 30


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _print_rule_errors(error: RulebookInvalid) -> None:
    for item in error.extensions.get("errors", []):
        print(f"{item['file']}: {item['key'] or '(file)'}: {item['reason']}", file=sys.stderr)


async def _ensure_rules(db: Database, settings: Settings, now: datetime) -> None:
    from exchange.rulebook import store
    from exchange.rulebook.files import read_rule_dir

    async with db.write() as session:
        await store.ensure_initial(session, Ledger(settings), read_rule_dir(settings.rules_path), now)


YOUNG_COLLECTION_OBJECTS = 10_000
"""New objects between two collections of the youngest generation (Python's default: 700)."""


def collect_for_serving() -> None:
    """Set the cycle collector for serving, once the app is built.

    What the imports and the app built lives as long as the process: set it aside from the
    collector, whose every full pass otherwise walked it (some 170,000 objects, 100 ms of a
    stalled event loop under load, every second or two).

    And collect the young generation every YOUNG_COLLECTION_OBJECTS new objects, not every 700:
    a batch of the order desk makes tens of thousands of objects that live until its session
    closes, and at 700 each was examined again and again on its way to the older generations.
    In 200 batches of 44 (`benchmarks/desk.py --batches 200 --batch 44`): 1,024 young, 92 middle
    and 9 full collections, 0.35 s in all, the full ones stalling the event loop up to 55 ms;
    at 10,000, 21, 1 and 1, 0.12 s. Six alternating pairs: 944, 984, 984, 998, 968 and 977
    requests/s at 700; 980, 1,011, 1,021, 991, 1,006 and 993 at 10,000 (a few percent, about
    the collector's time saved). A young collection then takes 2-3 ms."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS, 10, 10)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from exchange.app import create_app
    from exchange.oneflush import OneWriteHttpProtocol

    settings = msgspec.structs.replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    configure_logging(settings.log_level)
    app = create_app(settings)
    collect_for_serving()
    # On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to the timeout),
    # then runs the app's shutdown hooks (the head signer stops, connections close).
    # Each response in one write (exchange/oneflush.py): the bare echo route served 15,315
    # requests/s so, against 10,956 with uvicorn's two writes a response.
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False, timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
                http=OneWriteHttpProtocol)
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.migrate import upgrade

    upgrade(settings.database_url)
    print(f"database is up to date: {_safe_url(settings.database_url)}")
    return 0


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


def cmd_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    """Make sure an operator exists; a new one's key goes to a 0600 file, never to the screen."""
    from exchange.participants import repository, service
    from exchange.participants.schemas import ParticipantIn, Role

    key_file = Path(settings.operator_key_file)

    async def work(db: Database) -> str | None:
        now = utc_now()
        await _ensure_rules(db, settings, now)
        async with db.write() as session:
            if await repository.any_with_role(session, "operator"):
                return None
            created = await service.register(
                session, ParticipantIn(name="Exchange operator", roles=[Role.operator]), now
            )
            write_secret(key_file, created.api_key + "\n")
            return created.id

    operator_id = _run(settings, work)
    if operator_id:
        print(f"created operator {operator_id}; its API key is in {key_file.resolve()}")
    elif key_file.exists():
        print(f"an operator exists; the first operator's API key is in {key_file.resolve()}")
    else:
        print("an operator exists; its key was written elsewhere (EXCHANGE_OPERATOR_KEY_FILE)")
    return 0


def cmd_participants_add(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.participants import service
    from exchange.participants.schemas import ParticipantIn

    try:
        command = msgspec.convert(
            {"name": args.name, "roles": args.role, "qualifications": args.qualification or [], "sponsor_id": args.sponsor},
            ParticipantIn,
        )
    except msgspec.ValidationError as error:
        print(f"invalid participant: {error}", file=sys.stderr)
        return 2

    async def work(db: Database) -> Any:
        async with db.write() as session:
            return await service.register(session, command, utc_now())

    created = _run(settings, work)
    print(f"participant {created.id} ({', '.join(created.participant.roles)})")
    print(created.api_key)
    return 0


def cmd_participants_status(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.participants import service

    async def work(db: Database) -> Any:
        async with db.write() as session:
            return await service.set_status(session, args.participant_id, args.status)

    out = _run(settings, work)
    print(f"participant {out.id} is {out.status}")
    return 0


def cmd_rules_validate(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.rulebook.files import read_rule_dir
    from exchange.rulebook.load import decode_rulebook, rulebook_hash

    folder = Path(args.dir) if args.dir else settings.rules_path
    try:
        files = read_rule_dir(folder)
        decode_rulebook(files)
    except RulebookInvalid as error:
        _print_rule_errors(error)
        print(f"invalid rule set in {folder}", file=sys.stderr)
        return 1
    print(f"valid rule set in {folder} ({', '.join(sorted(files))})")
    print(rulebook_hash(files))
    return 0


def cmd_rules_dry_run(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.rulebook import service, store
    from exchange.rulebook.files import read_rule_dir

    async def work(db: Database) -> str:
        now = utc_now()
        await _ensure_rules(db, settings, now)
        files = read_rule_dir(Path(args.dir))
        async with db.read() as session:
            active = await store.active(session, store.RulebookCache(), now)
            return service.report_json(await service.dry_run(session, active, files, now))

    print(_run(settings, work))
    return 0


def cmd_rules_apply(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.rulebook import service, store
    from exchange.rulebook.files import read_rule_dir

    effective_at = datetime.fromisoformat(args.effective_at) if args.effective_at else None

    async def work(db: Database) -> Any:
        now = utc_now()
        await _ensure_rules(db, settings, now)
        files = read_rule_dir(Path(args.dir))
        async with db.write() as session:
            active = await store.active(session, store.RulebookCache(), now)
            return await service.apply(
                session, Ledger(settings), active, files, reason=args.reason, actor_id=f"cli:{getpass.getuser()}"[:40], effective_at=effective_at, now=now
            )

    out = _run(settings, work)
    state = "in force now" if out.active else f"in force from {out.effective_at.isoformat()}"
    print(f"rule set version {out.version} stored, {state}")
    print(out.hash)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.demo import load_demo

    keys_file = Path(args.keys_file)
    summary = _run(settings, lambda db: load_demo(db, settings, keys_file))
    print(summary)
    return 0


def cmd_ledger_export(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.settlement import audit

    path = Path(args.file)
    size = _run(settings, lambda db: audit.export(db, Ledger(settings), path, utc_now()))
    print(f"exported {size} entries with their heads, keys and balances to {path.resolve()}")
    return 0


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.settlement import audit

    if args.file:
        try:
            report = audit.verify_file(Path(args.file))
        except (OSError, ValueError) as error:
            print(f"cannot read {args.file}: {error}", file=sys.stderr)
            return 2
        source = args.file
    else:
        report = _run(settings, audit.verify_database)
        source = "the database"
    if report.ok:
        totals = ", ".join(f"{currency} {total}" for currency, total in sorted(report.totals.items())) or "no money yet"
        print(f"ok: {report.entries} entries and {report.heads} signed heads in {source} verify; balances replay exactly; totals: {totals}")
        return 0
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if report.first_bad_index is not None:
        print(f"FAILED: first bad entry: {report.first_bad_index}", file=sys.stderr)
    else:
        print(f"FAILED: {len(report.problems)} problem(s)", file=sys.stderr)
    return 1


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    ledger = Ledger(settings)

    async def work(db: Database) -> str:
        async with db.write() as session:
            signer = await ledger.rotate(session, utc_now())
        return signer.key_id

    key_id = _run(settings, work)
    print(f"key {key_id} signs from now on; earlier heads stay verifiable with the keys at /v1/ledger/keys")
    return 0


def cmd_entitlements_verify(settings: Settings, args: argparse.Namespace) -> int:
    from exchange.orders import entitlements

    if args.keys:
        try:
            published = msgspec.json.decode(Path(args.keys).read_bytes())
            keys = {key["key_id"]: key["public_key_pem"] for key in published["keys"]}
        except (OSError, msgspec.DecodeError, KeyError, TypeError) as error:
            print(f"cannot read keys from {args.keys}: {error}", file=sys.stderr)
            return 2
    else:
        import sqlalchemy as sa

        from exchange.tables import SigningKey

        async def work(db: Database) -> dict[str, str]:
            async with db.read() as session:
                rows = (await session.execute(sa.select(SigningKey.key_id, SigningKey.public_key_pem))).all()
            return {key_id: pem for key_id, pem in rows}

        keys = _run(settings, work)
    try:
        claims = entitlements.verify(args.token, keys, audience=args.audience)
    except entitlements.EntitlementInvalid as error:
        print(f"invalid: {error}", file=sys.stderr)
        return 1
    print(msgspec.json.format(msgspec.json.encode(claims), indent=2).decode())
    return 0


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.database_url
    prefix = "sqlite+aiosqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) else None


def _integrity(path: Path) -> str:
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def _copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while the server writes."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    database = _sqlite_path(settings)
    if database is None:
        print("backup is for the embedded SQLite database; back PostgreSQL up with pg_dump", file=sys.stderr)
        return 2
    target = Path(args.file)
    if target.exists():
        print(f"{target} exists; choose a new file", file=sys.stderr)
        return 2
    _copy(database, target)
    state = _integrity(target)
    if state != "ok":
        print(f"the copy failed its integrity check: {state}", file=sys.stderr)
        return 1
    print(f"backed up {database} to {target.resolve()} ({target.stat().st_size:,} bytes, integrity ok)")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC

    database = _sqlite_path(settings)
    if database is None:
        print("restore is for the embedded SQLite database; restore PostgreSQL with pg_restore", file=sys.stderr)
        return 2
    source = Path(args.file)
    if not source.is_file() or _integrity(source) != "ok":
        print(f"{source} is not an intact SQLite database", file=sys.stderr)
        return 1
    kept = None
    if database.exists():
        kept = database.with_name(f"{database.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        _copy(database, kept)
    _copy(source, database)  # written through SQLite, so a server holding the file sees one or the other
    from exchange.migrate import upgrade

    upgrade(settings.database_url)
    print(f"restored {database} from {source.resolve()}" + (f"; the previous database is kept in {kept}" if kept else ""))
    print("check it with: exchange ledger verify")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="exchange", description="A data exchange engine.")
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(handler=cmd_serve)

    commands.add_parser("migrate", help="bring the database up to date").set_defaults(handler=cmd_migrate)
    commands.add_parser(
        "bootstrap", help="store the first rule set and make sure an operator exists"
    ).set_defaults(handler=cmd_bootstrap)

    participants = commands.add_parser("participants", help="manage participants").add_subparsers(
        dest="action", required=True
    )
    add = participants.add_parser("add", help="register a participant; prints its API key last")
    add.add_argument("--name", required=True)
    add.add_argument("--role", action="append", required=True, choices=["vendor", "buyer", "operator", "regulator"])
    add.add_argument("--qualification", action="append")
    add.add_argument("--sponsor", help="id of a sponsoring participant")
    add.set_defaults(handler=cmd_participants_add)
    for action, status in (("suspend", "suspended"), ("reactivate", "active")):
        sub = participants.add_parser(action, help=f"{action} a participant")
        sub.add_argument("participant_id")
        sub.set_defaults(handler=cmd_participants_status, status=status)

    rules = commands.add_parser("rules", help="validate, dry-run and apply rule files").add_subparsers(
        dest="action", required=True
    )
    validate = rules.add_parser("validate", help="check a folder of rule files; print its hash")
    validate.add_argument("dir", nargs="?")
    validate.set_defaults(handler=cmd_rules_validate)
    dry = rules.add_parser("dry-run", help="report what a candidate rule set would change")
    dry.add_argument("dir")
    dry.set_defaults(handler=cmd_rules_dry_run)
    apply = rules.add_parser("apply", help="validate and switch to a new rule set")
    apply.add_argument("dir")
    apply.add_argument("--reason", required=True)
    apply.add_argument("--effective-at", help="ISO 8601 time with zone, e.g. 2026-12-01T00:00:00+08:00")
    apply.set_defaults(handler=cmd_rules_apply)

    ledger = commands.add_parser("ledger", help="export and verify the signed ledger").add_subparsers(dest="action", required=True)
    export = ledger.add_parser("export", help="write entries, heads, keys and balances as JSON lines")
    export.add_argument("file")
    export.set_defaults(handler=cmd_ledger_export)
    verify = ledger.add_parser("verify", help="check an export file offline, or the database when no file is given")
    verify.add_argument("file", nargs="?")
    verify.set_defaults(handler=cmd_ledger_verify)

    keys = commands.add_parser("keys", help="the ledger's signing keys").add_subparsers(dest="action", required=True)
    keys.add_parser("rotate", help="sign with a new key from now on").set_defaults(handler=cmd_keys_rotate)

    entitlements = commands.add_parser("entitlements", help="check entitlement tokens").add_subparsers(dest="action", required=True)
    check = entitlements.add_parser("verify", help="verify an entitlement JWT offline; prints its claims")
    check.add_argument("token")
    check.add_argument("--audience", help="the vendor id the token must be for")
    check.add_argument("--keys", help="a saved GET /v1/ledger/keys response; default: the keys in the database")
    check.set_defaults(handler=cmd_entitlements_verify)

    backup = commands.add_parser("backup", help="copy the embedded SQLite database, consistently, while it runs")
    backup.add_argument("file")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", help="replace the embedded SQLite database with a backup (the old one is kept)")
    restore.add_argument("file")
    restore.set_defaults(handler=cmd_restore)

    demo = commands.add_parser("demo", help="load a demo catalogue")
    demo.add_argument("--keys-file", default="var/demo-keys.json")
    demo.set_defaults(handler=cmd_demo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        return int(args.handler(settings, args))
    except RulebookInvalid as error:
        _print_rule_errors(error)
        print(f"refused: {error.detail}", file=sys.stderr)
        return 1
    except ExchangeError as error:
        print(f"refused ({error.code}): {error.detail}", file=sys.stderr)
        return 1
    except SigningKeyExposed as error:
        print(f"refused ({error.code}): {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
