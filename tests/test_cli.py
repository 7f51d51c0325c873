"""The `exchange` command as an operator runs it."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from exchange.settings import shipped_rules_dir

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "exchange.cli", *args], capture_output=True, text=True, env=env, cwd=env["HOME"], timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    return {**clean, "HOME": str(tmp_path), "EXCHANGE_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}


def test_migrate_bootstrap_and_add_participant(env: dict[str, str], tmp_path: Path) -> None:
    assert "up to date" in run("migrate", env=env).stdout
    first = run("bootstrap", env=env).stdout
    key_file = tmp_path / "var" / "operator.key"
    assert str(key_file) in first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() not in first  # the key goes to the file, not the screen
    assert "an operator exists" in run("bootstrap", env=env).stdout

    added = run("participants", "add", "--name", "上海数商", "--role", "vendor", "--role", "buyer", "--qualification", "data-merchant", env=env)
    lines = added.stdout.strip().splitlines()
    assert re.fullmatch(r"exk_[A-Za-z0-9_-]{43}", lines[-1])
    refused = run("participants", "add", "--name", "x", "--role", "king", env=env, check=False)
    assert refused.returncode != 0


def test_rules_validate_prints_the_hash_of_a_valid_set(env: dict[str, str]) -> None:
    result = run("rules", "validate", env=env)
    assert re.fullmatch(r"[0-9a-f]{64}", result.stdout.strip().splitlines()[-1])


def test_rules_validate_names_file_key_and_reason_of_every_error(env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "rules"
    shutil.copytree(shipped_rules_dir(), broken)
    catalogue = broken / "catalogue.toml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8") + "\nsurprise = 1\n", encoding="utf-8")
    (broken / "listing.toml").write_text("this is = = not toml", encoding="utf-8")
    result = run("rules", "validate", str(broken), env=env, check=False)
    assert result.returncode == 1
    assert re.search(r"^catalogue\.toml: .*surprise", result.stderr, re.M), result.stderr
    assert re.search(r"^listing\.toml: ", result.stderr, re.M), result.stderr


def test_rules_apply_refuses_a_broken_set_and_keeps_the_active_one(env: dict[str, str], tmp_path: Path) -> None:
    run("migrate", env=env)
    broken = tmp_path / "rules"
    shutil.copytree(shipped_rules_dir(), broken)
    (broken / "listing.toml").write_text("[[[", encoding="utf-8")
    result = run("rules", "apply", str(broken), "--reason", "typo", env=env, check=False)
    assert result.returncode == 1 and "listing.toml" in result.stderr
    good = run("rules", "apply", str(shipped_rules_dir()), "--reason", "same again", env=env)
    assert "version 2" in good.stdout  # version 1 is the initial set; the broken one took no number


def test_ci_fails_loudly_when_postgresql_is_required_and_absent(tmp_path: Path) -> None:
    env = {**os.environ, "CI": "true", "EXCHANGE_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:9/none"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/listings/test_states.py"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )
    assert result.returncode != 0
    assert "CI requires PostgreSQL" in result.stdout + result.stderr


def test_ledger_export_verify_and_key_rotation(env: dict[str, str], tmp_path: Path) -> None:
    import sqlite3

    run("migrate", env=env)
    run("bootstrap", env=env)  # rule set 1 is the first ledger entry
    run("rules", "apply", str(shipped_rules_dir()), "--reason", "again", env=env)
    key_file = tmp_path / "var" / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() not in run("ledger", "verify", env=env).stdout + run("ledger", "verify", env=env).stderr
    assert run("ledger", "verify", env=env).stdout.startswith("ok: 2 entries")

    rotated = run("keys", "rotate", env=env)
    assert "signs from now on" in rotated.stdout
    export = tmp_path / "ledger.jsonl"
    run("ledger", "export", str(export), env=env)
    assert "ok:" in run("ledger", "verify", str(export), env=env).stdout

    with sqlite3.connect(tmp_path / "cli.db") as connection:
        connection.execute("""UPDATE ledger_entries SET canonical = CAST(REPLACE(CAST(canonical AS TEXT), '"version":2', '"version":3') AS BLOB) WHERE "index" = 1""")
    tampered = run("ledger", "verify", env=env, check=False)
    assert tampered.returncode == 1 and "first bad entry: 1" in tampered.stderr, tampered.stderr
    assert "ok:" in run("ledger", "verify", str(export), env=env).stdout  # the export was taken before


def test_backup_and_restore_the_embedded_database(env: dict[str, str], tmp_path: Path) -> None:
    run("migrate", env=env)
    run("bootstrap", env=env)
    backup = tmp_path / "backup.db"
    assert "integrity ok" in run("backup", str(backup), env=env).stdout
    assert run("backup", str(backup), env=env, check=False).returncode == 2  # never overwrites
    assert "version 2" in run("rules", "apply", str(shipped_rules_dir()), "--reason", "after the backup", env=env).stdout
    assert run("ledger", "verify", env=env).stdout.startswith("ok: 2 entries")
    restored = run("restore", str(backup), env=env)
    assert "previous database is kept" in restored.stdout
    assert run("ledger", "verify", env=env).stdout.startswith("ok: 1 entries")  # back to the state of the backup
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database")
    assert run("restore", str(garbage), env=env, check=False).returncode == 1
    pg = {**env, "EXCHANGE_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test"}
    assert run("backup", str(tmp_path / "pg.db"), env=pg, check=False).returncode == 2


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620], ids=lambda mode: f"{mode:04o}")
def test_a_signing_key_others_can_read_stops_the_server(env: dict[str, str], tmp_path: Path, mode: int) -> None:
    """Any permission for the group or others (read or write) is refused, not only the world's read."""
    run("migrate", env=env)
    run("bootstrap", env=env)
    key = tmp_path / "var" / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(mode)
    try:
        served = subprocess.run([sys.executable, "-m", "exchange.cli", "serve", "--port", "0"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`exchange serve` started serving with a signing key of mode {mode:04o}")
    assert served.returncode != 0 and "must be readable by its owner only" in served.stdout + served.stderr
    refused = run("rules", "apply", str(shipped_rules_dir()), "--reason", "signs nothing with an exposed key", env=env, check=False)
    assert refused.returncode == 1 and "signing_key_exposed" in refused.stderr


def test_a_serving_process_sets_the_cycle_collector_for_the_order_desk() -> None:
    """What `exchange serve` does before it serves (`collect_for_serving`): what was built so far
    set aside from the collector, and the young generation collected every 10,000 new objects,
    not Python's 700. Run in a process of its own: it changes the interpreter's collector."""
    probe = (
        "import gc\n"
        "from exchange.cli import collect_for_serving\n"
        "before = gc.get_threshold()\n"
        "collect_for_serving()\n"
        "print(before, gc.get_threshold(), gc.get_freeze_count() > 1000)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split("\n")[0] == "(700, 10, 10) (10000, 10, 10) True"
