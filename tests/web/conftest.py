"""A real server on the demo catalogue and a real Chromium (Debian's, no browser download).
Without Chromium the journeys are skipped with a clear message, except under CI, where they
are required: `.ci/run` installs Chromium where it is missing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("EXCHANGE_TEST_CHROMIUM", "/usr/bin/chromium")


def _chromium() -> str:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"CI requires Chromium for the browser journeys and {CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(f"browser journeys need Chromium at {CHROMIUM} (apt-get install -y chromium); set CI=true to require them")


@dataclass
class Site:
    url: str
    keys: dict[str, Any]
    folder: Path

    def api(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _chromium()
    folder = tmp_path_factory.mktemp("site")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {"EXCHANGE_DATABASE_URL": f"sqlite:///{folder}/web.db", "EXCHANGE_SIGNING_KEY_FILE": str(folder / "signing.key"),
            "EXCHANGE_OPERATOR_KEY_FILE": str(folder / "operator.key"), "EXCHANGE_PORT": str(port), "EXCHANGE_LOG_LEVEL": "warning"}

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "exchange.cli", *args], env=env, cwd=folder, check=True, capture_output=True, timeout=120)

    cli("migrate")
    cli("demo", "--keys-file", str(folder / "keys.json"))
    server = subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve"], env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)
    keys = json.loads((folder / "keys.json").read_text())
    made = Site(url, keys, folder)
    for name, buyer in keys["buyers"].items():
        response = made.api("POST", "/v1/accounts/deposits", keys["operator"]["api_key"],
                            json={"participant_id": buyer["id"], "amount": 50_000_000, "currency": "CNY", "rail": "bank", "reference": f"web-{name}"})
        assert response.status_code == 201, response.text
    try:
        yield made
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
