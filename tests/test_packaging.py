"""The wheel must carry every package and the shipped rules and migrations."""

import tomllib
from pathlib import Path

from exchange.rulebook.model import RULE_FILES

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_under_exchange_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "exchange").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert config["package-dir"] == {"exchange._rules": "rules", "exchange._migrations": "migrations"}


def test_shipped_rule_files_and_migrations_exist_where_the_wheel_maps_them() -> None:
    assert {p.name for p in (ROOT / "rules").glob("*.toml")} >= set(RULE_FILES)
    assert (ROOT / "migrations" / "env.py").is_file()
    assert list((ROOT / "migrations" / "versions").glob("0001_*.py"))
