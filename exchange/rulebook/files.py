"""Reading rule files from a folder (the only I/O of the rulebook)."""

from __future__ import annotations

from pathlib import Path

from exchange.core.errors import RulebookInvalid

FILE_BYTES_MAX = 1_000_000


def read_rule_dir(path: Path) -> dict[str, str]:
    """Every *.toml file in `path`, by name. Unreadable files are reported like rule errors."""
    if not path.is_dir():
        raise RulebookInvalid(
            f"{path} is not a folder of rule files",
            errors=[{"file": str(path), "key": "", "reason": "not a folder"}],
        )
    files: dict[str, str] = {}
    problems = []
    for file in sorted(path.glob("*.toml")):
        try:
            raw = file.read_bytes()
            if len(raw) > FILE_BYTES_MAX:
                raise ValueError(f"larger than {FILE_BYTES_MAX} bytes")
            files[file.name] = raw.decode("utf-8")
        except (OSError, ValueError) as error:
            problems.append({"file": file.name, "key": "", "reason": str(error)})
    if problems:
        raise RulebookInvalid("rule files could not be read", errors=problems)
    return files
