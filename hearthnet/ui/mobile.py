"""The phone page: static files at /mobile/ (no framework, no build step) and the small
JSON/SSE adapter under /mobile/api/ they call. Every answer comes from the bus, as the
Gradio tabs' do (calls.py); errors are `{"error": {"code", "message"}}`, one line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearthnet.errors import HearthNetError, validation_message
from hearthnet.ui import calls

STATIC = Path(__file__).resolve().parent / "mobile"
MAX_BODY = 16 * 1024
MARKET_LIMIT = 30


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskBody(_Body):
    question: str = Field(min_length=1, max_length=4000)
    corpus: str | None = Field(None, max_length=64)


class ChatBody(_Body):
    to: str = Field(pattern=r"^ed25519:[A-Za-z0-9_-]{43}$")
    text: str = Field(min_length=1, max_length=4000)


class PostBody(_Body):
    category: str = Field(pattern=r"^(offer|request|info|emergency)$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=4000)


def _err(exc: HearthNetError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


async def _parse(request: Request, model: type[_Body]) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HearthNetError("payload_too_large", f"request body over {MAX_BODY} bytes")
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise HearthNetError("bad_request", validation_message(exc, "body")) from None


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def mount_mobile(app: FastAPI, node: calls.UiNode) -> None:
    @app.get("/mobile", include_in_schema=False)
    async def mobile_root() -> RedirectResponse:
        return RedirectResponse("/mobile/", status_code=308)

    @app.get("/mobile/api/status")
    async def status() -> JSONResponse:
        s = node.status()
        return JSONResponse({"name": s["display_name"], "profile": s["profile"], "community": s["community"],
                             "emergency": s["emergency"]["mode"], "node": calls.short(node.node_id)})

    @app.get("/mobile/api/corpora")
    async def corpora() -> JSONResponse:
        return JSONResponse({"corpora": await calls.corpora(node)})

    @app.post("/mobile/api/ask")
    async def ask(request: Request) -> Any:
        try:
            body = await _parse(request, AskBody)
        except HearthNetError as exc:
            return _err(exc)

        async def events() -> AsyncIterator[bytes]:
            sent = 0
            async for ans in calls.ask(node, body.question, body.corpus):
                if len(ans.text) < sent:  # another node started the answer again
                    yield _sse("restart", {})
                    sent = 0
                if len(ans.text) > sent:  # only the new text: small frames on a slow Wi-Fi
                    yield _sse("token", {"t": ans.text[sent:]})
                    sent = len(ans.text)
                if ans.done:
                    name = calls.names(node).get(ans.node or "")
                    yield _sse("done", {"node": calls.short(ans.node), "name": "this node" if name == "you" else name, "ms": ans.ms, "model": ans.model, "error": ans.error,
                                        "citations": ans.citations})

        return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    @app.get("/mobile/api/market")
    async def market(q: str = "") -> JSONResponse:
        req: dict[str, Any] = {"limit": MARKET_LIMIT}
        if q.strip():
            req["query"] = q.strip()[:200]
        try:
            out = await node.bus.call("market.list", (1, 0), req, timeout=15)
        except HearthNetError as exc:
            return _err(exc)
        posts = [{k: p.get(k) for k in ("post_id", "category", "title", "body", "created_at", "expires_at")} | {"author": calls.short(p.get("author"))}
                 for p in out["posts"]]
        return JSONResponse({"posts": posts})

    @app.post("/mobile/api/market")
    async def post(request: Request) -> JSONResponse:
        try:
            body = await _parse(request, PostBody)
            out = await node.bus.call("market.post", (1, 0), body.model_dump(exclude_defaults=False), timeout=30)
        except HearthNetError as exc:
            return _err(exc)
        return JSONResponse({"post_id": out["post_id"], "expires_at": out["expires_at"]})

    @app.get("/mobile/api/chat")
    async def chat(peer: str = "") -> JSONResponse:
        """Without a peer: the people to talk to, with unread counts; with one: that conversation (now read)."""
        try:
            if peer:
                await calls.chat_read(node, peer)
            hist = await calls.chat_history(node, peer or None)
        except HearthNetError as exc:
            return _err(exc)
        known = calls.names(node)
        people = [{"node_id": m["node_id"], "name": m["display_name"] or known.get(m["node_id"]) or calls.short(m["node_id"]),
                   "unread": hist["unread"].get(m["node_id"], 0)}
                  for m in node.members() if m["node_id"] != node.node_id and not m["revoked"] and not m.get("root")]
        msgs = [{"mine": m["mine"], "text": m.get("body") if m.get("body") is not None else f"({m.get('error', 'cannot be opened')})",
                 "at": m["sent_at"][11:16], "state": calls.delivery(m)} for m in hist["messages"]] if peer else []
        return JSONResponse({"people": people, "messages": msgs})

    @app.post("/mobile/api/chat")
    async def chat_send(request: Request) -> JSONResponse:
        try:
            body = await _parse(request, ChatBody)
            out = await calls.chat_send(node, body.to, body.text)
        except HearthNetError as exc:
            return _err(exc)
        return JSONResponse({"msg_id": out.get("msg_id"), "delivery": out.get("delivery")})

    app.mount("/mobile", StaticFiles(directory=STATIC, html=True), name="mobile")


__all__ = ["mount_mobile"]
