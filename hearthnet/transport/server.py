"""The node's HTTP API (FastAPI on uvicorn): bus calls, manifests, sync, pub/sub, health.

Authentication happens before any handler: every endpoint except the public
ones (`/manifest`, `/community/manifest`, `/health`) requires a signed request
(hearthnet.transport.signing) from a current member, with a fresh timestamp and
an unused nonce. `/ready`, `/metrics` and `/trace/recent` also answer unsigned
requests from loopback (the operator and a local Prometheus). Every error is the
JSON shape of docs/contract.md with its code's HTTP status; never a bare 500.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hearthnet import constants as C
from hearthnet.blobs.chunker import check_cid
from hearthnet.blobs.store import BlobStore
from hearthnet.bus import CapabilityBus
from hearthnet.bus.capability import CallContext, parse_version
from hearthnet.config import Config
from hearthnet.errors import HearthNetError
from hearthnet.events import sync
from hearthnet.events.log import EventLog
from hearthnet.identity.canonical import parse_json
from hearthnet.identity.envelope import Signed
from hearthnet.observability.metrics import CONTENT_TYPE
from hearthnet.transport.handling import (
    Authenticator,
    Caller,
    authenticate_signed,
    error_response,
    install_error_handlers,
    rate_check,
    read_body,
)
from hearthnet.transport.pubsub import PubSub
from hearthnet.transport.ratelimit import RateLimiter
from hearthnet.transport.signing import verify_request
from hearthnet.transport.streams import FlowControl, encode_frame
from hearthnet.types import TRUST_ORDER

PUBLIC = {"/manifest", "/community/manifest", "/health"}
LOOPBACK_OK = {"/ready", "/metrics", "/trace/recent"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
MAX_SYNC_TOKENS = 4096


@dataclass(frozen=True)
class Served:
    """A call this node served to a caller, as its trace records it."""

    capability: str
    version: str
    trace_id: str
    caller: str


class Redeemer(Protocol):
    """Admission at the issuing node (services.community): what /community/v1/redeem hands an invite to."""

    def redeem(self, inv: Any, invitee: str, display_name: str) -> dict[str, Any]: ...


class NodeAPI(Authenticator, Protocol):
    """What the server is built from: the running node's collaborators, named here so the
    transport never imports the node (hearthnet.node.Node provides all of them)."""

    node_id: str
    config: Config
    ready: bool
    bus: CapabilityBus
    event_log: EventLog
    blobs: BlobStore
    rate: RateLimiter
    blob_rate: RateLimiter
    pubsub: PubSub
    flows: dict[str, FlowControl]
    community: Redeemer

    def node_manifest(self) -> Signed: ...

    def community_manifest(self) -> Signed: ...

    def health(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def capability_table(self) -> list[dict[str, Any]]: ...

    def refresh_gauges(self) -> None: ...

    def record_served(self, served: Served, result: str, t0: float, frames: int = 0) -> None: ...

    def log_error(self, msg: str, **extra: Any) -> None: ...


def build_app(node: NodeAPI) -> FastAPI:
    app = FastAPI(title="HearthNet node", docs_url=None, redoc_url=None, openapi_url=None)
    cfg = node.config.transport
    sync_tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    install_error_handlers(app, error_response, node.log_error, "transport")

    async def authenticate(request: Request, body: bytes) -> Caller:
        return authenticate_signed(node, request, body)

    async def guard(request: Request, limit: int | None = None) -> tuple[Caller | None, bytes]:
        body = await read_body(request, limit or cfg.max_body_bytes)
        path = request.url.path
        if path in PUBLIC:
            return None, body
        host = request.client.host if request.client else ""
        if path in LOOPBACK_OK and host in LOOPBACK and "x-hn-signature" not in request.headers:
            return None, body
        return await authenticate(request, body), body

    def rate(caller: Caller, capability: str) -> dict[str, str]:
        return rate_check(node.rate, node.metrics, caller.node_id, capability)

    # --- public --------------------------------------------------------------------
    @app.get("/manifest")
    async def manifest(request: Request) -> JSONResponse:
        await guard(request)
        return JSONResponse(node.node_manifest().as_dict())

    @app.get("/community/manifest")
    async def community_manifest(request: Request) -> JSONResponse:
        await guard(request)
        return JSONResponse(node.community_manifest().as_dict())

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        await guard(request)
        return JSONResponse(node.health())

    # --- operator --------------------------------------------------------------------
    @app.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        await guard(request)
        if not node.ready:
            raise HearthNetError("unhealthy", "node is starting or stopping")
        return JSONResponse({"ready": True, "capabilities": len(node.bus.registry.all_local())})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        await guard(request)
        if not node.metrics.enabled:
            raise HearthNetError("not_found", "metrics are disabled (observability.metrics_enabled)")
        node.refresh_gauges()
        return Response(node.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/trace/recent")
    async def trace_recent(request: Request, n: int = 50, capability: str | None = None) -> JSONResponse:
        await guard(request)
        return JSONResponse({"traces": [t.as_dict() for t in node.bus.trace.recent(max(1, min(n, 10000)), capability)]})

    @app.get("/status")
    async def status(request: Request) -> JSONResponse:
        await guard(request)
        return JSONResponse(node.status())

    @app.get("/caps")
    async def caps(request: Request) -> JSONResponse:
        await guard(request)
        return JSONResponse({"capabilities": node.capability_table()})

    # --- bus -------------------------------------------------------------------------
    @app.post("/bus/v1/call")
    async def bus_call(request: Request) -> Response:
        caller, raw = await guard(request)
        assert caller is not None
        req = parse_json(raw, what="call body")
        if not isinstance(req, dict) or not isinstance(req.get("capability"), str) or not isinstance(req.get("body", {}), dict):
            raise HearthNetError("bad_request", "call body must be {capability, version, body, stream?}")
        name = req["capability"]
        version = parse_version(str(req.get("version", "1.0")))
        headers = rate(caller, name)
        timeout = _timeout_seconds(req.get("timeout_ms", cfg.rpc_timeout_seconds * 1000))
        if req.get("route"):
            # Routed through this node's bus (to whichever node is best): only for the
            # node's own key, i.e. its operator's CLI, so peers cannot bounce calls around.
            if caller.node_id != node.node_id:
                raise HearthNetError("forbidden", "only this node itself may ask it to route a call")
            return await _routed(node, name, version, req, timeout, headers)
        node.bus.check_trust(name, version, caller.node_id, caller.level)
        trace_id = req.get("trace_id") if isinstance(req.get("trace_id"), str) else ""
        ctx = CallContext(caller.node_id, trace_id[:64], time.monotonic() + max(0.001, timeout), req.get("session_id"))
        served = Served(name, f"{version[0]}.{version[1]}", ctx.trace_id, caller.node_id)
        if not req.get("stream"):
            t0 = time.perf_counter()
            try:
                out = await node.bus.serve(name, version, req.get("body", {}), ctx)
            except HearthNetError as exc:
                node.record_served(served, exc.code, t0)
                raise
            node.record_served(served, "ok", t0)
            return JSONResponse({"result": out}, headers=headers)
        return await _stream_response(node, served, node.bus.serve_stream(name, version, req.get("body", {}), ctx), headers)

    @app.post("/bus/v1/ack")
    async def bus_ack(request: Request) -> JSONResponse:
        _, raw = await guard(request)
        msg = parse_json(raw, what="ack body")
        upto = msg.get("upto", 0) if isinstance(msg, dict) else None
        if not isinstance(upto, int) or isinstance(upto, bool) or not 0 <= upto < 2**53 or not isinstance(msg.get("stream_id"), str):
            raise HearthNetError("bad_request", "ack body must be {stream_id, upto: a frame number}")
        flow = node.flows.get(msg["stream_id"])
        if flow is None:
            raise HearthNetError("not_found", "no such open stream")
        flow.ack(upto)
        return JSONResponse({"ok": True, "window_used": flow.window_used})

    @app.post("/bus/v1/cancel")
    async def bus_cancel(request: Request) -> JSONResponse:
        _, raw = await guard(request)
        msg = parse_json(raw, what="cancel body")
        flow = node.flows.get(str(msg.get("stream_id")) if isinstance(msg, dict) else "")
        if flow is None:
            raise HearthNetError("not_found", "no such open stream")
        flow.cancel("aborted", "the caller cancelled the stream")
        return JSONResponse({"ok": True})

    # --- sync --------------------------------------------------------------------------
    @app.get("/sync/v1/heads")
    async def sync_heads(request: Request) -> JSONResponse:
        caller, _ = await guard(request)
        assert caller is not None
        rate(caller, "sync")
        token = secrets.token_urlsafe(16)
        sync_tokens[token] = (caller.node_id, time.monotonic())
        while len(sync_tokens) > MAX_SYNC_TOKENS:
            sync_tokens.popitem(last=False)
        heads = await asyncio.to_thread(sync.heads_report, node.event_log)
        return JSONResponse({"token": token, "heads": heads.model_dump()})

    @app.post("/sync/v1/events")
    async def sync_events(request: Request) -> JSONResponse:
        caller, raw = await guard(request, limit=sync.MAX_BATCH_BYTES + 65536)
        assert caller is not None
        rate(caller, "sync")
        msg = parse_json(raw, what="sync body")
        if not isinstance(msg, dict):
            raise HearthNetError("bad_request", "sync body must be an object")
        token = msg.get("token")
        issued = sync_tokens.pop(token, None) if isinstance(token, str) else None
        if issued is None or issued[0] != caller.node_id or time.monotonic() - issued[1] > 120:
            raise HearthNetError("conflict", "unsolicited batch: GET /sync/v1/heads first and send its token")
        result: dict[str, Any] = {}
        if msg.get("batch") is not None:
            batch = sync.parse_batch(json.dumps(msg["batch"]).encode())
            result["applied"] = await asyncio.to_thread(sync.apply_batch, node.event_log, batch)
        if msg.get("heads") is not None:
            try:
                theirs = sync.HeadsReport.model_validate(msg["heads"])
            except ValueError as exc:
                raise HearthNetError("bad_request", f"heads: {exc}") from None
            back = await asyncio.to_thread(sync.batch_for, node.event_log, theirs)
            result["batch"] = back.model_dump()
        return JSONResponse(result)

    # --- blob chunks: raw bytes, not JSON -------------------------------------------------
    def blob_rate(caller: Caller) -> None:
        chk = node.blob_rate.check(caller.node_id, "blobs.chunk")
        if not chk.allowed:
            node.metrics.rate_limited_total.labels(capability="blobs.chunk", reason="hard").inc()
            raise HearthNetError("rate_limited", "too many chunk requests from this node", retry_after_ms=chk.retry_after_ms)

    @app.get("/blobs/v1/chunk/{cid}")
    async def blob_get(request: Request, cid: str) -> Response:
        caller, _ = await guard(request)
        assert caller is not None
        blob_rate(caller)
        check_cid(cid)
        data = await asyncio.to_thread(node.blobs.read_chunk, cid)  # re-verified: a flipped bit is db_corrupt, never served
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})

    @app.get("/blobs/v1/chunks")
    async def blob_get_many(request: Request, cids: str) -> Response:
        caller, _ = await guard(request)
        assert caller is not None
        blob_rate(caller)
        wanted = [check_cid(c) for c in cids.split(",")]
        if len(wanted) > C.BLOB_BATCH_MAX_CHUNKS:
            raise HearthNetError("bad_request", f"at most {C.BLOB_BATCH_MAX_CHUNKS} chunks per request")
        missing = [c for c in wanted if not node.blobs.has(c)]
        if missing:
            raise HearthNetError("not_found", f"{len(missing)} of the {len(wanted)} chunks are not here", missing=missing)
        return StreamingResponse(_stream_chunks(node, wanted), media_type="application/octet-stream", headers={"Cache-Control": "no-store"})

    @app.put("/blobs/v1/chunk/{cid}")
    async def blob_put(request: Request, cid: str) -> JSONResponse:
        check_cid(cid)
        caller, raw = await guard(request, limit=C.CHUNK_SIZE_BYTES)
        assert caller is not None
        if caller.node_id != node.node_id and TRUST_ORDER.get(caller.level, 0) < TRUST_ORDER["trusted"]:
            raise HearthNetError("forbidden", "uploading chunks needs trust level trusted (like file.put)")
        blob_rate(caller)
        await asyncio.to_thread(node.blobs.write_chunk, cid, raw)  # hash checked before anything is written
        return JSONResponse({"cid": cid, "size_bytes": len(raw)})

    # --- onboarding: the one endpoint for a signed caller that is not a member yet -------
    @app.post("/community/v1/redeem")
    async def redeem(request: Request) -> JSONResponse:
        from hearthnet.identity.invite import decode

        raw = await read_body(request, cfg.max_body_bytes)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signed = verify_request(request.headers, request.method, path, raw, community=node.community_id, skew_seconds=cfg.clock_skew_seconds)
        rate(Caller(signed.node_id, "unknown"), "community.redeem")
        msg = parse_json(raw, what="redeem body")
        if not isinstance(msg, dict) or not isinstance(msg.get("invite"), str):
            raise HearthNetError("bad_request", "redeem body must be {invite, display_name?}")
        inv, _ = decode(msg["invite"])
        if inv.inviter != node.node_id or inv.invitee != signed.node_id:
            raise HearthNetError("forbidden", "this invite was not issued here for the signing node")
        node.nonces.use(signed.node_id, signed.nonce)  # only for holders of our own invites: strangers cannot fill the store
        return JSONResponse(await asyncio.to_thread(node.community.redeem, inv, signed.node_id, str(msg.get("display_name") or "")))

    # --- pub/sub -------------------------------------------------------------------------
    @app.get("/pubsub/v1/subscribe")
    async def subscribe(request: Request, topic: str, last_seq: int = 0, timeout: float = 30.0) -> JSONResponse:
        caller, _ = await guard(request)
        assert caller is not None
        return JSONResponse(await node.pubsub.subscribe(topic, last_seq=last_seq, timeout_seconds=max(0.0, min(timeout, 60.0))))

    return app


async def _stream_chunks(node: NodeAPI, cids: list[str]) -> AsyncIterator[bytes]:
    """The chunks back to back, each re-verified as it is read: a damaged one ends the answer
    short (the fetcher keeps the good ones before it and asks elsewhere for the rest)."""
    for cid in cids:
        try:
            data = await asyncio.to_thread(node.blobs.read_chunk, cid)
        except HearthNetError as exc:
            node.log_error("chunk not served", cid=cid, code=exc.code, error=exc.message)
            return
        yield data


async def _routed(node: NodeAPI, name: str, version: tuple[int, int], req: dict[str, Any], timeout: float, headers: dict[str, str]) -> Response:
    body = req.get("body", {})
    if not req.get("stream"):
        out = await node.bus.call(name, version, body, timeout=timeout, session_id=req.get("session_id"))
        return JSONResponse({"result": out}, headers=headers)
    frames = node.bus.stream(name, version, body, timeout=timeout, session_id=req.get("session_id"))
    trace_id = req.get("trace_id") if isinstance(req.get("trace_id"), str) else ""
    return await _stream_response(node, Served(name, f"{version[0]}.{version[1]}", trace_id[:64], node.node_id), frames, headers)


async def _stream_response(node: NodeAPI, served: Served, frames: AsyncIterator[dict[str, Any]], headers: dict[str, str]) -> Response:
    """SSE answer. The first frame is awaited here, so a failure before the first byte
    (unknown capability, schema, capacity, no node) is a plain error response."""
    try:
        first = await frames.__anext__()
    except StopAsyncIteration:
        first = None
    return StreamingResponse(_sse(node, served, first, frames), media_type="text/event-stream", headers={**headers, "Cache-Control": "no-store"})


def _timeout_seconds(value: Any) -> float:
    """A call's `timeout_ms` (a positive number) in seconds; anything else is bad_request."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86_400_000:
        raise HearthNetError("bad_request", "timeout_ms must be a number of milliseconds between 1 and 86400000")
    return float(value) / 1000


async def _sse(node: NodeAPI, served: Served, first: dict[str, Any] | None, frames: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    flow = FlowControl(node.config.transport.stream_window_frames, node.config.transport.stream_ack_interval_frames,
                       node.config.transport.stream_ack_timeout_seconds)
    stream_id = secrets.token_urlsafe(12)
    flow.caller = served.caller  # type: ignore[attr-defined]  # revocation ends the caller's open streams
    node.flows[stream_id] = flow
    t0 = time.perf_counter()
    result = "ok"
    try:
        yield encode_frame(0, "ready", {"stream_id": stream_id, "node_id": node.node_id, "window": flow.window, "ack_every": flow.ack_interval})
        pending = [first] if first is not None else []
        while True:
            if pending:
                frame = pending.pop()
            else:
                try:
                    frame = await frames.__anext__()
                except StopAsyncIteration:
                    break
            seq = await flow.send()  # raises the cancellation's error, which ends the stream with its frame
            yield encode_frame(seq, str(frame.get("event", "chunk")), frame.get("data", {}))
    except HearthNetError as exc:
        result = exc.code
        yield encode_frame(flow.sent + 1, "error", {"code": exc.code, "message": exc.message})
    finally:
        node.flows.pop(stream_id, None)
        await frames.aclose()
        node.record_served(served, result, t0, flow.sent)


__all__ = ["NodeAPI", "Redeemer", "Served", "build_app"]
