"""The OpenAI-compatible gateway: `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`.

Stock OpenAI clients cannot pin a self-signed certificate or sign requests, so this
listens on its own plain-HTTP port (`ui.host`, loopback by default) and asks for an
API key (`Authorization: Bearer hn_...`, see apikeys.py); a signed community member
may send its X-HN-* signature instead. Nobody else gets in: an open model port is
how strangers use your box.

Every request becomes a bus call with params `{model}`, so it is routed over the mesh
like any other (local model, or whichever node has it). A stream that another node
took over half-way continues seamlessly when it `resumed`; when it `restarted`, the
gateway holds back the new answer's tokens until they pass what the client already
has, and ends the stream with an error if the new answer says something else.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ulid import ULID

from hearthnet.errors import HearthNetError, validation_message
from hearthnet.gateway.apikeys import ApiKeyStore
from hearthnet.bus import CapabilityBus
from hearthnet.config import Config
from hearthnet.transport.handling import (
    AsciiJSONResponse,
    Authenticator,
    authenticate_signed,
    install_error_handlers,
    rate_check,
    read_body,
    retry_after_header,
)
from hearthnet.transport.ratelimit import RateLimiter


class GatewayNode(Authenticator, Protocol):
    """What the gateway is built from (hearthnet.node.Node provides it): the bus it calls, the
    node's config and rate limiter, and what authenticates a signed member."""

    config: Config
    bus: CapabilityBus
    rate: RateLimiter

    def log_error(self, msg: str, **extra: Any) -> None: ...

MAX_BODY = 4 * 1024 * 1024
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "invalid_request_error",
          429: "rate_limit_error"}


# --- request shapes (what stock clients send; unknown fields are ignored) ----------------------
class _Req(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = Field(1, ge=1, le=1)

    def generation(self, default_max: int) -> dict[str, Any]:
        out: dict[str, Any] = {"max_tokens": self.max_completion_tokens or self.max_tokens or default_max}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.seed is not None:
            out["seed"] = self.seed
        if self.stop:
            out["stop"] = [self.stop] if isinstance(self.stop, str) else self.stop
        return out

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatRequest(_Req):
    messages: list[dict[str, Any]] = Field(min_length=1)
    rag: dict[str, Any] | None = None  # HearthNet extension (extra_body): answer from a corpus, with citations


class CompletionRequest(_Req):
    prompt: str | list[str]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    input: str | list[str]
    encoding_format: str = "float"


def _content(message: dict[str, Any]) -> dict[str, str]:
    """OpenAI message -> ours: text parts joined; roles other than system/user/assistant refused."""
    role, content = message.get("role"), message.get("content")
    if role == "developer":
        role = "system"
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise HearthNetError("bad_request", "messages: a text part's `text` must be a string")
        content = "".join(texts)
    if role not in ("system", "user", "assistant") or not isinstance(content, str):
        raise HearthNetError("bad_request", f"messages: role {role!r} with text content is needed (tools and images are not served here)")
    return {"role": role, "content": content}


def _error(err: HearthNetError) -> JSONResponse:
    body = {"error": {"message": err.message, "type": _TYPES.get(err.http_status, "server_error"), "code": err.code, "param": None}}
    return AsciiJSONResponse(body, status_code=err.http_status, headers=retry_after_header(err))


def _sse(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()) + b"\n\n"


def _finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"


def _usage(d: dict[str, Any]) -> dict[str, int]:
    p, c = int(d.get("tokens_in") or 0), int(d.get("tokens_out") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


class _Takeover:
    """Tokens after a `restarted` failover repeat an answer the client already has in part:
    pass on only what goes beyond it, and say so when the new answer differs."""

    def __init__(self) -> None:
        self.sent = ""
        self.replay: str | None = None

    def restart(self) -> None:
        self.replay = ""

    def feed(self, text: str) -> str:
        if self.replay is None:
            self.sent += text
            return text
        self.replay += text
        if len(self.replay) <= len(self.sent):
            if not self.sent.startswith(self.replay):
                raise HearthNetError("partition", "the node that took over this answer said something else; ask again")
            return ""
        if not self.replay.startswith(self.sent):
            raise HearthNetError("partition", "the node that took over this answer said something else; ask again")
        extra = self.replay[len(self.sent):]
        self.sent, self.replay = self.replay, None
        return extra


def build_gateway(node: GatewayNode) -> FastAPI:
    app = FastAPI(title="HearthNet OpenAI-compatible gateway", docs_url=None, redoc_url=None, openapi_url=None)
    keys = ApiKeyStore(node.config.data_dir)

    install_error_handlers(app, _error, node.log_error, "gateway")

    async def admit(request: Request) -> bytes:
        """The body of a request from a known caller (API key or signed member); rate-limited per caller."""
        body = await read_body(request, MAX_BODY)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            who = "apikey:" + keys.check(auth[7:].strip()).id
        elif "x-hn-signature" in request.headers:
            who = authenticate_signed(node, request, body).node_id
        else:
            raise HearthNetError("unauthorized", "this gateway needs an API key (hearthnet apikey create) as 'Authorization: Bearer hn_...'")
        rate_check(node.rate, node.metrics, who, "gateway")
        return body

    def parse(model: type[BaseModel], body: bytes) -> Any:
        try:
            return model.model_validate_json(body or b"{}")
        except ValidationError as exc:
            raise HearthNetError("bad_request", validation_message(exc, "body")) from None

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        await admit(request)
        seen: dict[str, str] = {}
        for e in node.bus.registry.all():
            if e.name in ("llm.chat", "embed.text") and e.params.get("model"):
                seen.setdefault(e.params["model"], "hearthnet")
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": o} for m, o in sorted(seen.items())]})

    async def run(capability: str, req: _Req, body: dict[str, Any], shape: Any) -> Response:
        cid, created = f"{'chatcmpl' if capability == 'llm.chat' else 'cmpl'}-{ULID()}", int(time.time())
        params = {"model": req.model}
        if not req.stream:
            out = await node.bus.call(capability, (1, 0), body, params=params)
            return JSONResponse(shape.whole(cid, created, req.model, out))
        frames = node.bus.stream(capability, (1, 0), body, params=params)
        try:
            first = await frames.__anext__()  # errors before the first frame are plain HTTP errors
        except StopAsyncIteration:
            raise HearthNetError("internal", f"{capability} answered an empty stream") from None

        async def events() -> AsyncIterator[bytes]:
            take = _Takeover()
            try:
                yield _sse(shape.start(cid, created, req.model))
                frame: dict[str, Any] | None = first
                while frame is not None:
                    ev, data = frame.get("event"), frame.get("data") or {}
                    if ev == "token":
                        text = take.feed(data.get("text", ""))
                        if text:
                            yield _sse(shape.piece(cid, created, req.model, text))
                    elif ev == "failover" and data.get("mode") == "restarted":
                        take.restart()
                    elif ev == "error":
                        raise HearthNetError.from_wire(data, "stream failed")
                    elif ev == "done":
                        yield _sse(shape.end(cid, created, req.model, data))
                        if req.include_usage:
                            yield _sse({"id": cid, "object": shape.chunk_object, "created": created, "model": req.model, "choices": [],
                                        "usage": _usage(data)})
                        yield _sse(b"[DONE]")
                        return
                    frame = await anext(frames, None)
                raise HearthNetError("partition", "the answer ended before it was finished")
            except HearthNetError as exc:
                yield _sse({"error": {"message": exc.message, "type": "server_error", "code": exc.code}})
            finally:
                await frames.aclose()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        req: ChatRequest = parse(ChatRequest, await admit(request))
        body = {"messages": [_content(m) for m in req.messages], **req.generation(256)}
        if req.rag is not None:
            body["rag"] = req.rag
        return await run("llm.chat", req, body, _ChatShape)

    @app.post("/v1/completions")
    async def complete(request: Request) -> Response:
        req: CompletionRequest = parse(CompletionRequest, await admit(request))
        prompt = req.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise HearthNetError("bad_request", "prompt: one prompt per request")
            prompt = prompt[0]
        return await run("llm.complete", req, {"prompt": prompt, **req.generation(16)}, _CompletionShape)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        req: EmbeddingRequest = parse(EmbeddingRequest, await admit(request))
        texts = [req.input] if isinstance(req.input, str) else req.input
        if req.encoding_format not in ("float", "base64"):
            raise HearthNetError("bad_request", "encoding_format: float or base64")
        out = await node.bus.call("embed.text", (1, 0), {"texts": texts, "model": req.model}, params={"model": req.model})

        def enc(v: list[float]) -> Any:
            return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if req.encoding_format == "base64" else v

        data = [{"object": "embedding", "index": i, "embedding": enc(v)} for i, v in enumerate(out["vectors"])]
        return JSONResponse({"object": "list", "data": data, "model": out["model"], "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    known = {r.path for r in app.routes if getattr(r, "path", "").startswith("/v1/")}

    # Last under /v1: a wrong method or an unknown path still gets the gateway's error shape. Without
    # it, Starlette would hand them to whatever is mounted at / beside the gateway (the Gradio UI).
    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], include_in_schema=False)
    async def elsewhere(request: Request, rest: str) -> Response:
        if request.url.path in known:
            raise HearthNetError("bad_request", f"{request.method} is not allowed on {request.url.path}")
        raise HearthNetError("not_found", f"no gateway route {request.url.path}")

    return app


class _ChatShape:
    chunk_object = "chat.completion.chunk"

    @staticmethod
    def whole(cid: str, created: int, model: str, out: dict[str, Any]) -> dict[str, Any]:
        res = {"id": cid, "object": "chat.completion", "created": created, "model": model,
               "choices": [{"index": 0, "message": {"role": "assistant", "content": out["text"]}, "finish_reason": _finish(out["stop_reason"])}],
               "usage": _usage(out)}
        if "citations" in out:
            res["citations"] = out["citations"]
        return res

    @staticmethod
    def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    @classmethod
    def start(cls, cid: str, created: int, model: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, {"role": "assistant", "content": ""}, None)

    @classmethod
    def piece(cls, cid: str, created: int, model: str, text: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, {"content": text}, None)

    @classmethod
    def end(cls, cid: str, created: int, model: str, done: dict[str, Any]) -> dict[str, Any]:
        chunk = cls._chunk(cid, created, model, {}, _finish(done.get("stop_reason", "stop")))
        if "citations" in done:
            chunk["citations"] = done["citations"]
        return chunk


class _CompletionShape:
    chunk_object = "text_completion"

    @staticmethod
    def whole(cid: str, created: int, model: str, out: dict[str, Any]) -> dict[str, Any]:
        return {"id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": out["text"], "logprobs": None, "finish_reason": _finish(out["stop_reason"])}], "usage": _usage(out)}

    @staticmethod
    def _chunk(cid: str, created: int, model: str, text: str, finish: str | None) -> dict[str, Any]:
        return {"id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}

    @classmethod
    def start(cls, cid: str, created: int, model: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, "", None)

    @classmethod
    def piece(cls, cid: str, created: int, model: str, text: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, text, None)

    @classmethod
    def end(cls, cid: str, created: int, model: str, done: dict[str, Any]) -> dict[str, Any]:
        return cls._chunk(cid, created, model, "", _finish(done.get("stop_reason", "stop")))


__all__ = ["build_gateway"]
