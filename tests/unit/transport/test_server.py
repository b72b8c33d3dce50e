"""The node's server app on its own: built from real collaborators (an event log, a bus with the
diagnostics service, a blob store, rate limiters, a nonce store) through its NodeAPI protocol, with
no Node and no network — requests go through ASGI."""

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hearthnet.blobs.store import BlobStore
from hearthnet.bus import CapabilityBus
from hearthnet.config import BusConfig, Config
from hearthnet.events.community import build_community_manifest
from hearthnet.observability.metrics import Metrics
from hearthnet.services.diag import DiagService
from hearthnet.transport.nonces import NonceStore
from hearthnet.transport.pubsub import PubSub
from hearthnet.transport.ratelimit import RateLimiter
from hearthnet.transport.server import Served, build_app
from hearthnet.transport.signing import sign_request
from hearthnet.transport.streams import parse_sse


@dataclass
class Parts:
    """A NodeAPI from real parts; what only a running node knows (manifest, status) is kept minimal."""

    node_id: str
    community_id: str
    config: Config
    event_log: Any
    bus: CapabilityBus
    blobs: BlobStore
    nonces: NonceStore
    kp: Any
    ready: bool = True
    clock_skew_seconds: float = 120
    metrics: Metrics = field(default_factory=Metrics)
    rate: RateLimiter = field(default_factory=lambda: RateLimiter(100, 1000, 1000, 10000))
    blob_rate: RateLimiter = field(default_factory=lambda: RateLimiter(100, 1000, 1000, 10000))
    pubsub: PubSub = field(default_factory=PubSub)
    flows: dict = field(default_factory=dict)
    community: Any = None
    served: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def node_manifest(self) -> Any:
        raise NotImplementedError  # not asked for in these tests

    def community_manifest(self) -> Any:
        return build_community_manifest(self.event_log.membership, self.event_log.head(), self.kp)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "node_id": self.node_id}

    def status(self) -> dict[str, Any]:
        return {"node_id": self.node_id}

    def capability_table(self) -> list[dict[str, Any]]:
        return [{"name": e.name, "local": e.is_local} for e in self.bus.registry.all()]

    def refresh_gauges(self) -> None:
        pass

    def record_served(self, served: Served, result: str, t0: float, frames: int = 0) -> None:
        self.served.append((served, result, frames))

    def log_error(self, msg: str, **extra: Any) -> None:
        self.errors.append(msg)


@pytest.fixture
def parts(community, tmp_path):
    log, root, anchor = community
    bus = CapabilityBus(anchor.node_id, BusConfig())
    bus.register_service(DiagService(anchor.node_id))
    p = Parts(anchor.node_id, log.community_id, Config(data_dir=tmp_path / "data"), log, bus, BlobStore(tmp_path / "blobs"),
              NonceStore(tmp_path / "nonces.db", keep_seconds=300), anchor)
    yield p
    p.nonces.close()


def request(p: Parts, method: str, path: str, body: Any = None, signed: bool = True):
    raw = b"" if body is None else json.dumps(body).encode()
    headers = sign_request(p.kp, p.community_id, method, path, raw) if signed else {}

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(p), client=("10.9.9.9", 1)), base_url="http://node") as c:
            return await c.request(method, path, content=raw, headers=headers)

    return asyncio.run(go())


def test_a_signed_call_is_served_through_the_bus_and_traced(parts):
    r = request(parts, "POST", "/bus/v1/call", {"capability": "echo.ping", "version": "1.0", "body": {"message": "hi"}, "trace_id": "01T"})
    assert r.status_code == 200 and r.json()["result"]["message"] == "hi"
    (served, result, _), = parts.served
    assert (served.capability, served.version, served.trace_id, served.caller, result) == ("echo.ping", "1.0", "01T", parts.node_id, "ok")


def test_a_stream_answers_sse_with_ready_then_frames_then_done(parts):
    r = request(parts, "POST", "/bus/v1/call", {"capability": "echo.count", "version": "1.0", "body": {"n": 3, "interval_ms": 1}, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")

    async def frames():
        return [f async for f in parse_sse(_lines(r.text))]

    got = asyncio.run(frames())
    assert [f.event for f in got] == ["ready", "chunk", "chunk", "chunk", "done"] and got[0].data["node_id"] == parts.node_id
    assert parts.flows == {} and parts.served[-1][1:] == ("ok", 4)  # the flow is gone; the trace counts the frames sent


async def _lines(text: str):
    for line in text.split("\n"):
        yield line


def test_public_and_loopback_rules(parts):
    assert request(parts, "GET", "/health", signed=False).json() == {"status": "ok", "node_id": parts.node_id}
    assert request(parts, "GET", "/community/manifest", signed=False).status_code == 200
    assert request(parts, "GET", "/caps", signed=False).json()["error"]["code"] == "invalid_signature"
    assert request(parts, "GET", "/metrics", signed=False).status_code == 401  # unsigned only from loopback; this client is 10.9.9.9
    assert request(parts, "GET", "/caps").status_code == 200


@pytest.mark.parametrize("path, body, code", [
    ("/bus/v1/call", {"capability": "nope.nope", "version": "1.0", "body": {}}, "not_found"),
    ("/bus/v1/call", {"capability": "echo.ping", "version": "1.0", "body": {}, "timeout_ms": "soon"}, "bad_request"),
    ("/bus/v1/ack", {"stream_id": "gone", "upto": 8}, "not_found"),
    ("/bus/v1/ack", {"stream_id": "gone", "upto": "8"}, "bad_request"),
    ("/bus/v1/cancel", {"stream_id": "gone"}, "not_found"),
    ("/sync/v1/events", {"token": "never-issued", "heads": {}, "batch": None}, None),
])
def test_bad_requests_get_their_code_and_nothing_is_logged_as_a_fault(parts, path, body, code):
    r = request(parts, "POST", path, body)
    assert r.status_code < 500 and (code is None or r.json()["error"]["code"] == code)
    assert parts.errors == []


def test_rate_limits_apply_per_caller(parts):
    parts.rate = RateLimiter(1, 2, 1000, 10000)
    codes = []
    for _ in range(4):
        r = request(parts, "POST", "/bus/v1/call", {"capability": "echo.ping", "version": "1.0", "body": {"message": "x"}})
        codes.append(r.json()["error"]["code"] if r.status_code >= 400 else r.headers.get("x-hn-rate", "ok"))
    assert codes[0] == "ok" and "soft" in codes and codes[-1] == "rate_limited"
