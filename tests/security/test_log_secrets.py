"""No API key, entitlement token, session cookie, CSRF token or signing key appears in any log
line: a full journey through the API and the pages runs with the JSON logs captured, then the
logs are searched for every secret the journey saw, whole and 16 characters at a time."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.log import configure_logging
from tests.harness import Api, listing_body

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream)
    yield stream
    structlog.reset_defaults()


class Journey:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.client = api.client
        self.secrets: dict[str, str] = {}
        """What must never be logged, by what it is."""
        self.requests = 0

    def keep(self, what: str, value: str) -> str:
        assert value, what
        self.secrets[what] = value
        return value

    async def send(self, method: str, path: str, key: str | None = None, *, status: int | None = None, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> httpx.Response:
        sent = {**Api.auth(key), **(headers or {})}
        response = await self.client.request(method, path, headers=sent, follow_redirects=False, **kwargs)
        self.requests += 1
        if status is not None:
            assert response.status_code == status, (method, path, response.status_code, response.text)
        for token in JWT.findall(response.text):
            self.keep(f"entitlement token {len(self.secrets)}", token)
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("api_key"), str):
                self.keep(f"API key {len(self.secrets)}", body["api_key"])
        return response


def slices(secret: str, width: int = 16) -> list[str]:
    return [secret[i : i + width] for i in range(max(1, len(secret) - width + 1))]


async def test_no_secret_in_any_log_line(api: Api, json_logs: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    j = Journey(api)
    op = j.keep("operator key", api.operator_key)

    # Registration (once with an Idempotency-Key, replayed), money, a listing reviewed and bought.
    registered = {}
    for name, roles, extra in (("vendor", ["vendor"], {"qualifications": ["data-merchant"]}), ("buyer", ["buyer"], {}), ("regulator", ["regulator"], {})):
        body = {"name": f"Log journey {name}", "roles": roles, **extra}
        created = (await j.send("POST", "/v1/participants", op, status=201, json=body, headers={"Idempotency-Key": f"register-{name}"})).json()
        await j.send("POST", "/v1/participants", op, status=201, json=body, headers={"Idempotency-Key": f"register-{name}"})  # replayed
        registered[name] = (created["id"], created["api_key"])
    (_, vendor), (buyer_id, buyer), (_, regulator) = registered["vendor"], registered["buyer"], registered["regulator"]
    await j.send("POST", "/v1/accounts/deposits", op, status=201, headers={"Idempotency-Key": "deposit-1"},
                 json={"participant_id": buyer_id, "amount": 5_000_000, "currency": "CNY", "rail": "bank", "reference": "ICBC-LOG-1"})
    listing = (await j.send("POST", "/v1/listings", vendor, status=201, json=listing_body(), headers={"Idempotency-Key": "listing-1"})).json()
    submitted = (await j.send("POST", f"/v1/listings/{listing['id']}/submit", vendor, status=200)).json()
    await j.send("POST", f"/v1/listings/{listing['id']}/approve", op, status=200, json=Api.approval(submitted))
    order = (await j.send("POST", "/v1/orders", buyer, status=201, json={"listing_id": listing["id"], "plan_id": submitted["plans"][0]["id"], "purpose": "research"})).json()
    contract_id = order["contract_ids"][0]
    await j.send("GET", f"/v1/contracts/{contract_id}", buyer, status=200)
    await j.send("POST", f"/v1/contracts/{contract_id}/token", buyer, status=200)
    await j.send("GET", f"/v1/contracts/{contract_id}/entitlement", buyer, status=200)
    confirmed = (await j.send("POST", f"/v1/contracts/{contract_id}/confirm", buyer, status=200)).json()
    await j.send("GET", "/v1/ledger/entries", regulator, status=200)
    await j.send("GET", "/v1/accounts/me", vendor, status=200)

    # The pages: sign in with the key, take a token from the account page, sign out.
    form = await j.send("GET", "/signin", status=200)
    j.keep("sign-in CSRF cookie", j.client.cookies["signin_csrf"])
    field = CSRF_FIELD.search(form.text)
    assert field is not None
    signed = await j.send("POST", "/signin", data={"csrf": field.group(1), "api_key": buyer})
    assert signed.status_code in (302, 303) and signed.headers["location"] == "/account"
    j.keep("session cookie", j.client.cookies["exs"])
    account = await j.send("GET", "/account", status=200)
    csrf = CSRF_FIELD.search(account.text)
    assert csrf is not None
    j.keep("session CSRF token", csrf.group(1))
    page = await j.send("POST", f"/contracts/{contract_id}/token", data={"csrf": csrf.group(1)}, status=200)
    assert JWT.search(page.text)
    await j.send("GET", f"/ledger/entries/{confirmed['certificate_index']}", status=200)
    await j.send("POST", "/signout", data={"csrf": csrf.group(1)})
    j.client.cookies.clear()

    # Failures, where a careless log line would carry the key.
    wrong = j.keep("wrong key", "exk_" + base64.urlsafe_b64encode(b"w" * 32).decode().rstrip("="))
    await j.send("GET", "/v1/participants/me", wrong, status=401)
    await j.send("GET", "/v1/participants/me", buyer + "x", status=401)
    await j.send("GET", "/v1/participants/me", headers={"Authorization": f"Basic {buyer}"}, status=401)
    await j.send("GET", "/v1/participants/me", headers={"X-Api-Key": vendor}, status=401)
    await j.send("GET", "/v1/participants/me", params={"api_key": vendor}, status=401)
    await j.send("GET", "/v1/ledger/head", wrong, status=401)
    suspended = (await j.send("POST", "/v1/participants", op, status=201, json={"name": "Suspended later", "roles": ["buyer"]})).json()
    await j.send("POST", f"/v1/participants/{suspended['id']}/suspend", op, status=200)
    await j.send("GET", "/v1/accounts/me", suspended["api_key"], status=403)
    form = await j.send("GET", "/signin", status=200)
    field = CSRF_FIELD.search(form.text)
    assert field is not None
    failed = await j.send("POST", "/signin", data={"csrf": field.group(1), "api_key": wrong})
    assert failed.headers["location"] == "/signin?error=true"
    await j.send("POST", "/signin", data={"csrf": "forged", "api_key": vendor}, status=403)
    j.client.cookies.clear()

    # The ledger's signing key, as the file holds it and as raw bytes.
    pem = Path(api.settings.signing_key_file).read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    seed = private.private_bytes_raw()
    body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
    j.keep("signing key file", body)
    j.keep("signing key (hex)", seed.hex())
    j.keep("signing key (base64)", base64.b64encode(seed).decode())
    j.keep("signing key (base64url)", base64.urlsafe_b64encode(seed).decode().rstrip("="))

    logged = json_logs.getvalue()
    lines = [json.loads(line) for line in logged.splitlines() if line.strip()]
    completed = [line for line in lines if line["event"] == "request.completed"]
    assert len(completed) == j.requests  # the capture saw the whole journey, one line per request
    assert {401, 403} <= {line["status"] for line in completed}
    assert sum(1 for what in j.secrets if what.startswith("API key")) >= 4
    assert sum(1 for what in j.secrets if what.startswith("entitlement token")) >= 3

    searched = logged + "\n".join(record.getMessage() for record in caplog.records)
    leaks = []
    for what, secret in j.secrets.items():
        if what.startswith("entitlement token"):
            secret = secret.rsplit(".", 1)[1]  # the signature: header and claims are not secret
        if what == "signing key file":
            secret = secret[len("MC4CAQAwBQYDK2VwBCIEI"):]  # after the PKCS#8 prefix every Ed25519 key shares
        if secret in searched or any(part in searched for part in slices(secret)):
            leaks.append(what)
    assert not leaks, f"secrets in the logs: {leaks}"
