"""The UI's access check: open on loopback, an API key (in an HttpOnly cookie) from anywhere else."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from hearthnet.gateway.apikeys import ApiKeyStore
from hearthnet.ui.access import COOKIE, Access, login_routes


@pytest.fixture
def app(tmp_path):
    keys = ApiKeyStore(tmp_path)
    _, secret = keys.create("phone")
    inner = FastAPI()
    login_routes(inner, keys)

    @inner.get("/")
    async def root():
        return PlainTextResponse("the ui")

    @inner.get("/v1/models")
    async def models():
        return PlainTextResponse("the gateway asks for its key itself")

    inner.add_middleware(Access, keys=keys)
    return inner, keys, secret


def client(app, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://box:7860", follow_redirects=False)


def run(coro):
    return asyncio.run(coro)


def test_loopback_is_open_and_the_lan_is_asked_for_a_key(app):
    inner, keys, secret = app

    async def scenario():
        async with client(inner, "127.0.0.1") as c:
            assert (await c.get("/")).text == "the ui"
        async with client(inner, "::1") as c:
            assert (await c.get("/")).status_code == 200
        async with client(inner, "192.168.1.40") as c:
            page = await c.get("/", headers={"accept": "text/html"})
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
            api = await c.get("/")
            assert api.status_code == 401 and api.json()["error"]["code"] == "unauthorized"
            assert (await c.get("/v1/models")).status_code == 200  # its own key check, not this one
            assert (await c.get("/login")).status_code == 200
            bad = await c.post("/login", content="key=hn_wrong&next=/", headers={"content-type": "application/x-www-form-urlencoded"})
            assert bad.status_code == 401 and "error[unauthorized]" in bad.text and "Traceback" not in bad.text
            good = await c.post("/login", content=f"key={secret}&next=//evil.example/x",
                                headers={"content-type": "application/x-www-form-urlencoded"})
            assert good.status_code == 303 and good.headers["location"] == "/"  # never away from this box
            cookie = good.headers["set-cookie"]
            assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
            assert (await c.get("/", cookies={COOKIE: secret})).text == "the ui"
            keys.revoke("phone")
            assert (await c.get("/", cookies={COOKIE: secret})).status_code == 401  # a revoked key stops working at once
            out = await c.post("/logout")
            assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]

    run(scenario())
