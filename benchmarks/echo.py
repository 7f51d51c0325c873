"""The echo baseline: a bare Litestar app with one POST route that returns its JSON body, served by
uvicorn exactly as `exchange serve` serves the exchange (same `uvicorn.run` options, one
process). What the order-entry figure is compared with: the cost of HTTP, Litestar and msgspec
on this machine, without the exchange's work.

    .venv/bin/python benchmarks/echo.py --port 8300            # serve it
    .venv/bin/python benchmarks/load.py --echo-only            # load it with the order-entry generator
"""

from __future__ import annotations

import argparse
from typing import Any

from litestar import Litestar, get, post


@post("/echo", status_code=200)
async def echo(data: dict[str, Any]) -> dict[str, Any]:
    return data


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    return Litestar(route_handlers=[echo, health], logging_config=None, debug=False)


def main() -> None:
    import uvicorn

    from exchange.oneflush import OneWriteHttpProtocol

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    args = parser.parse_args()
    # The same options as exchange.cli.cmd_serve.
    uvicorn.run(create_app(), host=args.host, port=args.port, log_config=None, access_log=False, timeout_graceful_shutdown=30, http=OneWriteHttpProtocol)


if __name__ == "__main__":
    main()
