"""A lean HTTP/1.1 load generator: raw asyncio protocols, one keep-alive connection per worker,
requests prepared as bytes. httpx spends more CPU per request than the exchange's echo route
does; on a 2-core machine where the generator shares the cores with the server, that would make
the generator the bottleneck.

    .venv/bin/python benchmarks/httpload.py [--seconds 10] [--connections 64]

measures what the generator itself can drive: it serves canned 200 responses from a minimal
asyncio server in another process and loads it; the figure is the ceiling of any figure measured
with this generator on this machine. Used as a library by load.py, ingest.py, search.py."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, header, percentile, result  # noqa: E402

T = TypeVar("T")
WINDOW_S = 30.0
"""The width of the windows a run of at least two of them is also reported by (`Stats.windows`)."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the generator on uvloop, as uvicorn runs the server: it shares the cores with the
    server, and on asyncio's own loop it drove a third fewer requests per second of its CPU
    (this file's ceiling: 54,539 requests/s against 72,725, 8 s each)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class HttpError(ConnectionError):
    pass


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            try:
                parsed = _parse(self.buffer)
            except HttpError as error:
                waiter.set_exception(error)
                return
            if parsed is not None:
                waiter.set_result(parsed)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = exc or HttpError("connection closed by the server")
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(self.lost)


def _parse(buffer: bytearray) -> tuple[int, bytes, bool] | None:
    """(status, body, keep-alive) of the first complete response in `buffer` (consumed), or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1."):
        raise HttpError(f"not an HTTP response: {head[:40]!r}")
    status = int(head[9:12])
    keep_alive = b"\r\nconnection: close" not in head
    start = end + 4
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        if len(buffer) < start + length:
            return None
        body = bytes(buffer[start : start + length])
        del buffer[: start + length]
        return status, body, keep_alive
    if b"\r\ntransfer-encoding: chunked" in head:
        chunks, position = [], start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0 and buffer[line_end : line_end + 4] != b"\r\n\r\n":
                    return None
                finish = line_end + 4 if buffer[line_end : line_end + 4] == b"\r\n\r\n" else trailer_end + 4
                del buffer[:finish]
                return status, b"".join(chunks), keep_alive
            if len(buffer) < line_end + 2 + size + 2:
                return None
            chunks.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
            position = line_end + 2 + size + 2
    if status in (204, 304) or 100 <= status < 200:
        del buffer[:start]
        return status, b"", keep_alive
    raise HttpError("response without Content-Length or chunked body")


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.protocol: _Protocol | None = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        return protocol

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send a prepared request (see `prepare`); (status, body). Reconnects once when the
        server had closed an idle connection."""
        for attempt in (0, 1):
            protocol = self.protocol
            if protocol is None or protocol.lost is not None:
                protocol = self.protocol = await self._open()
            waiter = protocol.waiter = asyncio.get_running_loop().create_future()
            assert protocol.transport is not None
            protocol.transport.write(raw)
            try:
                status, body, keep_alive = await waiter
            except ConnectionError:
                self.protocol = None
                if attempt == 0 and not protocol.buffer:
                    continue
                raise
            if not keep_alive:
                protocol.transport.close()
                self.protocol = None
            return status, body
        raise AssertionError("unreachable")

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        return await self.send(prepare(method, path, self.host, body, headers))

    def close(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()
        self.protocol = None


def prepare(method: str, path: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        if not headers or not any(k.lower() == "content-type" for k in headers):
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ── driving load ──

# A worker's next request: (kind, prepared bytes, what to do with the answer or None). The
# callback returns False when the answer is an error.
Next = Callable[[random.Random], tuple[str, bytes, Callable[[int, bytes], bool] | None]]


@dataclass
class Stats:
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: dict[str, bytes] = field(default_factory=dict)
    """The first answer body of each kind of error."""
    cpu_seconds: float = 0.0
    """CPU time the generator process used during the run (user + system)."""
    machine: MachineCPU | None = None
    """What the whole machine's cores did during the run (None: no /proc to read)."""
    began: float | None = None
    """When the counted seconds began (`time.perf_counter()`), for `windows`."""
    times: dict[str, list[float]] = field(default_factory=dict)
    """Each counted request's time (answered, or due in an open loop), in seconds from `began`."""

    def answered(self, kind: str, elapsed: float, ok: bool, status: int, body: bytes, at: float | None = None) -> None:
        """Count one answered request: its latency, and whether it was an error; `at`: when it
        was due (an open loop), else now."""
        self.latencies.setdefault(kind, []).append(elapsed)
        if self.began is not None:
            self.times.setdefault(kind, []).append((time.perf_counter() if at is None else at) - self.began)
        if not ok:
            self._error(f"{kind} {status}")
            self.samples.setdefault(f"{kind} {status}", body[:300])

    def failed(self, kind: str, error: BaseException) -> None:
        """Count one request the connection failed."""
        self._error(f"{kind} {type(error).__name__}")

    def _error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def rate(self, kind: str | None = None) -> float:
        count = self.requests if kind is None else len(self.latencies.get(kind, []))
        return count / self.seconds if self.seconds else 0.0

    def percentiles_ms(self, kind: str) -> tuple[float, float, float]:
        ordered = sorted(self.latencies.get(kind, []))
        return tuple(percentile(ordered, q) * 1000 for q in (0.50, 0.95, 0.99))  # type: ignore[return-value]

    def window_count(self, width_s: float) -> int:
        """Whole windows of `width_s` in the measured seconds, which end a hair short of or past
        their whole number (timers)."""
        return int(self.seconds / width_s + 0.01)

    def windows(self, kind: str, width_s: float) -> list[tuple[float, float]]:
        """Requests a second and p99 (ms) of `kind` in each whole `width_s` of the counted
        seconds: whether a rate held through the run, not only on average."""
        buckets: list[list[float]] = [[] for _ in range(self.window_count(width_s))]
        if self.began is None:  # not timed: no windows
            return []
        for at, elapsed in zip(self.times.get(kind, []), self.latencies.get(kind, []), strict=True):
            slot = int(at // width_s)
            if 0 <= slot < len(buckets):
                buckets[slot].append(elapsed)
        return [(len(b) / width_s, percentile(sorted(b), 0.99) * 1000 if b else 0.0) for b in buckets]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def cpu_share(self) -> float:
        """The generator's CPU use as a share of one core."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0

    def report(self, label: str) -> None:
        print(f"{label}: {self.requests:,} requests in {self.seconds:.1f} s: {self.rate():,.0f} requests/s "
              f"(the generator used {self.cpu_share:.0%} of one core)")
        for kind in self.latencies:
            p50, p95, p99 = self.percentiles_ms(kind)
            print(f"  {kind:<9} {len(self.latencies[kind]):>8,}  {self.rate(kind):>8,.0f}/s  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms")
        if self.window_count(WINDOW_S) >= 2 and self.times:
            print(f"  by {WINDOW_S:.0f} s (requests/s, p99):")
            for kind in self.latencies:
                shown = ", ".join(f"{rate:,.0f} {p99:.0f} ms" for rate, p99 in self.windows(kind, WINDOW_S))
                print(f"    {kind:<9} {shown}")
        if self.machine is not None and self.requests:
            print(f"  {self.machine.describe(self.requests)}")
        print(f"  errors: {self.errors or 'none'}")
        for kind, sample in self.samples.items():
            print(f"    first {kind}: {sample.decode(errors='replace')}")
        sys.stdout.flush()


def _group(pid: int, command: str) -> str:
    """Whose CPU a process's is, for `MachineCPU`."""
    if pid == os.getpid():
        return "the generator"
    if "exchange serve" in command or "exchange-serve" in command:
        return f"app {pid}"
    for name in ("postgres", "nginx"):
        if command.startswith(name) or f"/{name} " in command or command.endswith(f"/{name}"):
            return "PostgreSQL" if name == "postgres" else name
    return "other"


def _processes() -> dict[int, tuple[str, int]]:
    """Every process's group and CPU ticks so far (user + system)."""
    found: dict[int, tuple[str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat, open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                fields = stat.read().rsplit(b")", 1)[1].split()
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # it ended meanwhile
            continue
        found[int(entry.name)] = (_group(int(entry.name), command), int(fields[11]) + int(fields[12]))
    return found


def _machine_ticks() -> tuple[int, int]:
    """The machine's (idle, total) CPU ticks so far, over all cores."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)  # idle and iowait


@dataclass
class MachineCPU:
    """The CPU every process on the machine used over a window, by whose it is: the app
    processes one by one, PostgreSQL, nginx, this generator, the rest; and how idle the cores
    were. Read from /proc (Linux), so that a run's figure comes with what it cost the machine:
    on a 2-core machine the server, its database and the generator share the cores."""

    seconds: float
    cores: int
    idle_share: float
    """Of all the cores' time over the window, the share left idle."""
    by_group: dict[str, float]
    """CPU seconds over the window, by group."""

    @classmethod
    def start(cls) -> Callable[[], MachineCPU] | None:
        """Start a window; the returned function ends it (None: no /proc on this system)."""
        if not os.path.exists("/proc/stat"):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        cores = os.cpu_count() or 1
        before, (idle_before, total_before), began = _processes(), _machine_ticks(), time.perf_counter()

        def end() -> MachineCPU:
            after, (idle_after, total_after) = _processes(), _machine_ticks()
            seconds = time.perf_counter() - began
            by_group: dict[str, float] = {}
            for pid, (group, ticks) in after.items():
                used = ticks - before[pid][1] if pid in before else ticks  # a process started meanwhile: all of it
                if used > 0:
                    by_group[group] = by_group.get(group, 0.0) + used / tick
            idle = (idle_after - idle_before) / max(1, total_after - total_before)
            return cls(seconds, cores, idle, by_group)

        return end

    @property
    def busy_seconds(self) -> float:
        return sum(self.by_group.values())

    def per_request_ms(self, requests: int) -> float:
        return 1000 * self.busy_seconds / requests if requests else 0.0

    def describe(self, requests: int) -> str:
        apps = sorted((g for g in self.by_group if g.startswith("app ")), key=lambda g: -self.by_group[g])
        shares = ", ".join(f"{self.by_group[g] / self.seconds:.0%}" for g in apps)
        parts = [f"app processes {1000 * sum(self.by_group[g] for g in apps) / requests:.2f} ({shares} of a core)"] if apps else []
        for group in ("PostgreSQL", "nginx", "the generator", "other"):
            if group in self.by_group:
                parts.append(f"{group} {1000 * self.by_group[group] / requests:.2f}")
        return (f"the machine's CPU: {self.per_request_ms(requests):.2f} ms a request ({'; '.join(parts)}); "
                f"idle {self.idle_share * self.cores:.0%} of {self.cores * 100}%")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(host: str, port: int, next_request: Next, *, connections: int, seconds: float, warmup_s: float = 1.0, seed: int = 1) -> Stats:
    """`connections` workers, each on its own keep-alive connection, sending back to back for
    `warmup_s` (not counted) and then `seconds`."""
    stats = Stats()
    rng = random.Random(seed)
    state = {"counting": False, "stop": False}

    async def worker() -> None:
        connection = Connection(host, port)
        clock = time.perf_counter  # not loop.time: uvloop's counts whole milliseconds, as of the loop's last turn
        try:
            while not state["stop"]:
                kind, raw, check = next_request(rng)
                started = clock()
                try:
                    status, body = await connection.send(raw)
                except (ConnectionError, OSError) as error:
                    if state["counting"]:
                        stats.failed(kind, error)
                    await asyncio.sleep(0.01)
                    continue
                elapsed = clock() - started
                ok = check(status, body) if check is not None else status < 400
                if state["counting"]:
                    stats.answered(kind, elapsed, ok, status, body)
        finally:
            connection.close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(warmup_s)
    machine = MachineCPU.start()  # first: reading /proc holds the loop for a few milliseconds
    cpu, began = _cpu(), time.perf_counter()
    stats.began = began
    state["counting"] = True
    await asyncio.sleep(seconds)
    state["counting"] = False
    stats.seconds = time.perf_counter() - began
    stats.cpu_seconds = _cpu() - cpu
    stats.machine = machine() if machine is not None else None
    state["stop"] = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


async def drive_open(host: str, port: int, next_request: Next, *, rate: float, seconds: float, warmup_s: float = 1.0, seed: int = 1,
                     connections_max: int = 256, drain_s: float = 30.0) -> Stats:
    """An open loop: requests arrive `rate` a second on average, at exponentially distributed
    intervals (a Poisson stream, as from many independent clients), whether or not the earlier
    ones were answered. Each goes out on an idle keep-alive connection, or a new one when none is
    idle (up to `connections_max`; past that it waits for one). Its latency runs from the moment
    it was due to its answer, so a server that falls behind is charged for the whole backlog,
    waits for a connection included (no coordinated omission). Counted: the requests due in the
    `seconds` after `warmup_s`; each is waited for up to `drain_s` after the last is due, and one
    still unanswered then is an error."""
    stats = Stats()
    rng, arrivals = random.Random(seed), random.Random(seed + 1)
    idle: list[Connection] = []
    slots = asyncio.Semaphore(connections_max)
    pending: dict[asyncio.Task[None], bool] = {}  # each request on its way, and whether it is counted
    started = time.perf_counter()  # not loop.time: uvloop's counts whole milliseconds
    begin, end = started + warmup_s, started + warmup_s + seconds  # the due times counted
    stats.began = begin

    async def one(kind: str, raw: bytes, check: Callable[[int, bytes], bool] | None, due: float, counted: bool) -> None:
        async with slots:
            connection = idle.pop() if idle else Connection(host, port)
            try:
                status, body = await connection.send(raw)
            except (ConnectionError, OSError) as error:
                connection.close()
                if counted:
                    stats.failed(kind, error)
                return
            idle.append(connection)
        elapsed = time.perf_counter() - due
        ok = check(status, body) if check is not None else status < 400  # always: the workload learns from its answers
        if counted:
            stats.answered(kind, elapsed, ok, status, body, at=due)

    cpu = None
    machine = None
    due = started
    while due < end:
        now = time.perf_counter()
        if cpu is None and now >= begin:
            cpu, machine = _cpu(), MachineCPU.start()
        while due <= now and due < end:
            kind, raw, check = next_request(rng)
            counted = begin <= due
            task = asyncio.create_task(one(kind, raw, check, due, counted))
            pending[task] = counted
            task.add_done_callback(pending.pop)
            due += arrivals.expovariate(rate)
        await asyncio.sleep(max(0.0, min(due, end) - time.perf_counter()))
    stats.seconds = seconds
    stats.cpu_seconds = _cpu() - (cpu if cpu is not None else _cpu())
    stats.machine = machine() if machine is not None else None
    if pending:
        counted = dict(pending)
        _, late = await asyncio.wait(counted, timeout=drain_s)
        for task in late:
            task.cancel()
        if any(counted[task] for task in late):
            stats.errors["unanswered after the run"] = sum(counted[task] for task in late)
    for connection in idle:
        connection.close()
    return stats


# ── the generator's own ceiling ──

_CANNED = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class _NullServer(asyncio.Protocol):
    """Answers every request with a canned 200; parses only enough to find each request's end."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = 0
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = int(head[at + 17 : head.find(b"\r\n", at + 2) if head.find(b"\r\n", at + 2) >= 0 else len(head)]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                break
            del self.buffer[: end + 4 + length]
            answers += 1
        if answers:
            self.transport.write(_CANNED * answers)


async def null_server(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_NullServer, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--null-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.null_server:
        run(null_server(args.null_server))
        return
    header()
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--null-server", str(port)])
    try:
        body = b'{"listing_id": "lst_0123456789", "plan_id": "pln_0123456789", "side": "buy", "quantity": 3, "price": 10050}'
        raw = prepare("POST", "/v1/orders", "127.0.0.1", body, {"Authorization": "Bearer " + "k" * 43})

        async def load() -> Stats:
            await wait_until_served("127.0.0.1", port, "/")
            return await drive("127.0.0.1", port, lambda rng: ("request", raw, None), connections=args.connections, seconds=args.seconds)

        stats = run(load())
    finally:
        server.terminate()
        server.wait()
    stats.report(f"generator ceiling ({args.connections} connections to a canned-response server in another process)")
    result("load generator ceiling", round(stats.rate()), "requests/s", size=f"{args.connections} connections, {args.seconds:g} s",
           note=f"canned 200s from a minimal asyncio server; generator used {stats.cpu_share:.0%} of one core")


async def wait_until_served(host: str, port: int, path: str = "/health", deadline_s: float = 30) -> None:
    started = time.perf_counter()
    while True:
        connection = Connection(host, port)
        try:
            status, _ = await connection.request("GET", path)
            if status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        if time.perf_counter() - started > deadline_s:
            raise TimeoutError(f"http://{host}:{port}{path} did not answer 200")
        await asyncio.sleep(0.05)



if __name__ == "__main__":
    main()
