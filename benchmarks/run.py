"""Run every benchmark, each as a subprocess, and print one table of what they measured: each
figure with its unit, its aim (issue #8) and whether this run met it, the database, the size
measured and the command that reproduces it, under a header naming the machine.

    make bench                            # the full run (about ten minutes on a 2-core machine)
    make bench ARGS=--quick               # about a minute: smaller sizes, said in the table
    .venv/bin/python benchmarks/run.py [--quick] [--only search,startup] [--markdown docs/PERFORMANCE.md] [--quiet]

Each benchmark prints its own human output (shown as it runs, prefixed with `|`, and kept in
var/bench/<time>/<name>.log) and one `RESULT {json}` line per figure (benchmarks/common.py);
every figure in the table is measured in this run. --markdown writes the same table between
the `<!-- bench:begin -->` and `<!-- bench:end -->` markers of that file (or creates it).
The exit code is 1 when a benchmark failed to run, and (with --strict) when an aim was missed."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULT_PREFIX, ROOT, postgres_version  # noqa: E402

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass
class Bench:
    key: str
    full: list[str]
    quick: list[str] | None
    """None: not run with --quick."""
    timeout_s: int = 1800
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def suite() -> list[Bench]:
    return [
        Bench("generator", ["benchmarks/httpload.py", "--seconds", "10"], ["benchmarks/httpload.py", "--seconds", "2"]),
        Bench("matching", ["benchmarks/matching.py", "--orders", "1000000"], ["benchmarks/matching.py", "--orders", "100000"]),
        Bench("order-entry", ["benchmarks/load.py", "--serve", "--orders-only", "--echo", "--seconds", "30"],
              ["benchmarks/load.py", "--serve", "--orders-only", "--echo", "--seconds", "4", "--warmup", "1"]),
        # Two starts of the deploy recipe take longer than --quick has.
        Bench("scaling", ["benchmarks/load.py", "--recipe", "--orders-only", "--processes", "1,3", "--seconds", "30"], None),
        # Issue #7's aim: the mixed load through the recipe, spread over enough buyers for the shipped order-rate limit.
        Bench("mixed-load", ["benchmarks/load.py", "--recipe", "--seconds", "150", "--buyers", "3000", "--order-rate", "rules",
                             "--concurrency", "76"], None),
        Bench("ledger", ["benchmarks/ledger.py", "--entries", "1000000", "--batch", "1000"],
              ["benchmarks/ledger.py", "--entries", "20000", "--batch", "1000"], timeout_s=3600),
        Bench("ingest", ["benchmarks/ingest.py", "--records", "200000", "--batch", "1000"],
              ["benchmarks/ingest.py", "--records", "20000", "--batch", "1000"]),
        Bench("search", ["benchmarks/search.py", "--listings", "100000"], ["benchmarks/search.py", "--listings", "10000", "--rounds", "5"], timeout_s=3600),
        Bench("startup", ["benchmarks/startup.py", "--orders", "100000"], ["benchmarks/startup.py", "--orders", "10000", "--starts", "1"]),
        Bench("merkle", ["benchmarks/merkle.py", "1000000"], ["benchmarks/merkle.py", "100000"]),
        Bench("usage", ["benchmarks/usage.py"], ["benchmarks/usage.py", "--records", "100000", "--bills", "20000"]),
        Bench("statement", ["benchmarks/statement.py"], ["benchmarks/statement.py", "--count", "300"]),
        Bench("desk", ["benchmarks/desk.py", "--batches", "300"], ["benchmarks/desk.py", "--batches", "60"]),
    ]


def machine() -> dict[str, str]:
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "postgresql": postgres_version(),
        "sqlite": sqlite3.sqlite_version,
        "load": f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(bench: Bench, quick: bool, logs: Path, quiet: bool) -> None:
    argv = bench.quick if quick else bench.full
    assert argv is not None
    command = [sys.executable, *argv]
    shown = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable, *argv])
    print(f"\n▶ {bench.key}: {shown}", flush=True)
    log = logs / f"{bench.key}.log"
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                out.write(line)
                if line.startswith(RESULT_PREFIX):
                    bench.results.append(json.loads(line[len(RESULT_PREFIX):]))
                elif not quiet:
                    print(f"  | {line}", end="", flush=True)
                if time.perf_counter() - started > bench.timeout_s:
                    process.kill()
                    bench.error = f"timed out after {bench.timeout_s} s"
            code = process.wait()
        except KeyboardInterrupt:
            process.kill()
            raise
    bench.seconds = time.perf_counter() - started
    if code != 0 and bench.error is None:
        bench.error = f"exit code {code}; see {os.path.relpath(log, ROOT)}"
    print(f"  {bench.key}: {len(bench.results)} figure(s) in {bench.seconds:.0f} s" + (f"; FAILED: {bench.error}" if bench.error else ""), flush=True)


def value_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    if isinstance(value, float):
        if abs(value) < 1:
            return f"{value:.2g}"
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "–"}[met]


def rows(benches: list[Bench]) -> list[list[str]]:
    table = []
    for bench in benches:
        for r in bench.results:
            table.append([r["name"], value_text(r["value"]), r["unit"], r["aim"] or "–", met_text(r["met"]), r["database"] or "–",
                          r["size"] or "–", r["command"]])
        if bench.error:
            table.append([bench.key, "FAILED", "", "", "", "", "", bench.error])
    return table


HEADINGS = ["figure", "value", "unit", "aim", "met", "database", "size", "command"]


def text_table(table: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(HEADINGS)]
    right = {1}
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADINGS, widths, strict=True)).rstrip(), "  ".join("-" * w for w in widths)]
    for row in table:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def header_lines(info: dict[str, str], quick: bool, end_load: str) -> list[str]:
    return [
        f"{info['date']}: {info['cores']} cores ({info['cpu']}), Python {info['python']}, {info['postgresql']}, SQLite {info['sqlite']}",
        f"load average (1, 5, 15 min) at the start {info['load']}, at the end {end_load}"
        + (" — other work shared the machine" if float(info["load"].split(",")[0]) > 0.5 or float(end_load.split(",")[0]) > 0.5 else ""),
        "QUICK RUN (--quick): smaller sizes than the aims are stated for; see the size column" if quick else
        "full run: the sizes the aims are stated for",
    ]


def notes(benches: list[Bench]) -> list[str]:
    return [f"{r['name']} ({r['database'] or 'no database'}): {r['note']}" for bench in benches for r in bench.results if r.get("note")]


def markdown(table: list[list[str]], head: list[str], note_lines: list[str]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [*(f"{line}  " for line in head), "", "| " + " | ".join(HEADINGS) + " |", "|" + "|".join(["---"] * len(HEADINGS)) + "|"]
    for row in table:
        cells = [cell(c) for c in row]
        cells[-1] = f"`{cells[-1]}`" if cells[-1] and row[1] not in ("FAILED", "not run") else cells[-1]
        lines.append("| " + " | ".join(cells) + " |")
    if note_lines:
        lines += ["", "Notes:", ""] + [f"- {cell(n)}" for n in note_lines]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    section = f"{BEGIN}\n{block}{END}"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = (text.rstrip() + "\n\n" if text else "") + section + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute: smaller sizes")
    parser.add_argument("--only", help="comma-separated benchmarks: " + ", ".join(b.key for b in suite()))
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table into FILE between the bench markers")
    parser.add_argument("--quiet", action="store_true", help="do not show the benchmarks' own output (it is kept in the logs)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when an aim is missed")
    args = parser.parse_args()
    benches = suite()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {b.key for b in benches}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        benches = [b for b in benches if b.key in wanted]
    skipped = [b for b in benches if args.quick and b.quick is None]
    benches = [b for b in benches if b not in skipped]
    logs = ROOT / "var" / "bench" / datetime.now().strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    info = machine()
    began = time.perf_counter()
    print(f"benchmarks: {', '.join(b.key for b in benches)}{' (quick)' if args.quick else ''}; logs in {os.path.relpath(logs, ROOT)}")
    for bench in benches:
        run(bench, args.quick, logs, args.quiet)
    load = os.getloadavg()
    end_load = f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    head = header_lines(info, args.quick, end_load)
    table = rows(benches) + [[b.key, "not run", "", "", "", "", "", f"not with --quick: {shlex.join(['.venv/bin/python', *b.full])}"] for b in skipped]
    note_lines = notes(benches)
    print()
    print("\n".join(head))
    print(f"all benchmarks took {time.perf_counter() - began:.0f} s; commands run from the repository root")
    print()
    print(text_table(table))
    if note_lines:
        print("\nnotes:")
        for line in note_lines:
            print(f"  {line}")
    block = markdown(table, head, note_lines)
    (logs / "table.md").write_text(block, encoding="utf-8")
    if args.markdown:
        write_markdown(args.markdown, block)
        print(f"\ntable written to {args.markdown}")
    failed = any(b.error for b in benches)
    missed = any(r["met"] is False for b in benches for r in b.results)
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
