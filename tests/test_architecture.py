"""The pure core stays pure: no I/O, framework or database imports, no async."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "exchange"
PURE = [
    *sorted((ROOT / "core").glob("*.py")),
    ROOT / "rulebook" / "model.py",
    ROOT / "rulebook" / "load.py",
    ROOT / "rulebook" / "evaluate.py",
    ROOT / "rulebook" / "explain.py",
    ROOT / "listings" / "schemas.py",
    ROOT / "listings" / "search.py",
    ROOT / "listings" / "states.py",
    ROOT / "listings" / "plans.py",
    ROOT / "settlement" / "merkle.py",
    ROOT / "settlement" / "posting.py",
    ROOT / "settlement" / "entries.py",
    ROOT / "settlement" / "signing.py",
    ROOT / "settlement" / "verify.py",
    ROOT / "orders" / "matching.py",
    ROOT / "orders" / "auction.py",
    ROOT / "orders" / "billing.py",
    ROOT / "orders" / "entitlements.py",
    ROOT / "rulebook" / "trading.py",
]
FORBIDDEN = ("sqlalchemy", "sqlmodel", "litestar", "structlog", "asyncio", "aiosqlite", "asyncpg", "httpx", "socket", "pathlib", "exchange.db", "exchange.tables", "exchange.context")


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_no_io_and_has_no_async(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
        assert not isinstance(node, (ast.AsyncFunctionDef, ast.Await)), f"{path.name} has async code"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "open", f"{path.name} opens files"
