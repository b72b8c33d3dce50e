"""The request handling the node's server and the gateway share, on a real FastAPI app over ASGI:
real ed25519 keys, a real event log, real nonce store and rate limiter."""

import asyncio
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hearthnet.errors import ERRORS, HearthNetError
from hearthnet.identity import keys
from hearthnet.observability.metrics import Metrics
from hearthnet.transport.handling import authenticate_signed, error_response, install_error_handlers, rate_check, read_body
from hearthnet.transport.nonces import NonceStore
from hearthnet.transport.ratelimit import RateLimiter
from hearthnet.transport.signing import sign_request


@dataclass
class Auth:
    """An Authenticator from real parts (what the Node hands the server)."""

    community_id: str
    event_log: object
    nonces: NonceStore
    clock_skew_seconds: float = 120
    metrics: Metrics = field(default_factory=Metrics)


@pytest.fixture
def app_and_auth(community, tmp_path):
    log, root, anchor = community
    auth = Auth(log.community_id, log, NonceStore(tmp_path / "nonces.db", keep_seconds=300))
    errors: list[str] = []
    app = FastAPI()
    install_error_handlers(app, error_response, lambda msg, **kw: errors.append(msg), "test")

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        body = await read_body(request, 64)
        caller = authenticate_signed(auth, request, body)
        return JSONResponse({"node": caller.node_id, "level": caller.level, "size": len(body)})

    @app.get("/boom")
    async def boom() -> JSONResponse:
        raise RuntimeError("a bug")

    yield app, auth, anchor, errors
    auth.nonces.close()


def post(app, path, body=b"", headers=None):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t") as c:
            return await c.post(path, content=body, headers=headers or {})

    return asyncio.run(go())


def test_a_signed_member_gets_in_once_per_nonce(app_and_auth):
    app, auth, anchor, _ = app_and_auth
    h = sign_request(anchor, auth.community_id, "POST", "/echo", b"hello")
    r = post(app, "/echo", b"hello", h)
    assert r.status_code == 200 and r.json() == {"node": anchor.node_id, "level": "anchor", "size": 5}
    again = post(app, "/echo", b"hello", h)
    assert again.status_code == 401 and again.json()["error"]["code"] == "replay"


@pytest.mark.parametrize("case, code, status", [
    ("stranger", "not_member", 403), ("tampered", "invalid_signature", 401), ("unsigned", "invalid_signature", 401), ("too_big", "payload_too_large", 413),
])
def test_who_is_refused_and_with_which_code(app_and_auth, case, code, status):
    app, auth, anchor, _ = app_and_auth
    body = b"x" * (100 if case == "too_big" else 5)
    signer = keys.generate() if case == "stranger" else anchor
    h = sign_request(signer, auth.community_id, "POST", "/echo", body)
    if case == "tampered":
        body = b"y" * 5
    if case == "unsigned":
        h = {}
    r = post(app, "/echo", body, h)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    if case in ("stranger", "tampered"):  # counted by reason
        assert auth.metrics.signature_failures_total.labels(reason=code)._value.get() == 1


def test_an_unexpected_fault_is_internal_one_log_line_and_a_bad_route_is_not_found(app_and_auth):
    app, _, _, errors = app_and_auth
    r = post(app, "/boom")
    assert r.status_code in (400, 404, 405)  # POST to a GET route: the router's own answer, mapped onto the set
    assert r.json()["error"]["code"] in ERRORS

    async def get(path):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t") as c:
            return await c.get(path)

    r = asyncio.run(get("/boom"))
    assert r.status_code == 500 and r.json() == {"error": {"code": "internal", "message": "RuntimeError: a bug"}}
    assert errors == ["unhandled error in test request"]
    assert asyncio.run(get("/nowhere")).json()["error"]["code"] == "not_found"


def test_error_answers_are_ascii_even_when_they_echo_a_lone_surrogate():
    r = error_response(HearthNetError("bad_request", "no such capability '\ud800'"))
    assert r.body.decode("ascii") == '{"error":{"code":"bad_request","message":"no such capability \'\\ud800\'"}}'
    assert error_response(HearthNetError("rate_limited", "slow down", retry_after_ms=1500)).headers["retry-after"] == "2"


def test_rate_check_soft_then_hard_with_metrics():
    limiter, metrics = RateLimiter(soft_per_cap=2, hard_per_cap=4, soft_total=100, hard_total=100), Metrics()
    answers = []
    for _ in range(6):
        try:
            answers.append(rate_check(limiter, metrics, "node-a", "echo.ping"))
        except HearthNetError as exc:
            answers.append(exc.code)
    assert answers[0] == {} and {"X-HN-Rate": "soft"} in answers and answers[-1] == "rate_limited"
    assert metrics.rate_limited_total.labels(capability="echo.ping", reason="hard")._value.get() >= 1
    assert metrics.rate_limited_total.labels(capability="echo.ping", reason="soft")._value.get() >= 1
    with pytest.raises(HearthNetError) as e:
        for _ in range(10):
            rate_check(limiter, metrics, "apikey:key_1", "echo.ping")
    assert "from this key" in e.value.message  # a gateway key is not called a node
