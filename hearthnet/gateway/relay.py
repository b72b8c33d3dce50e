"""A generation request as a bus call, its answer in OpenAI's shape, whole or as server-sent events.

Every request becomes a bus call with params `{model}`, so it is routed over the mesh
like any other (local model, or whichever node has it). A stream that another node
took over half-way continues seamlessly when it `resumed`; when it `restarted`, the
gateway holds back the new answer's tokens until they pass what the client already
has, and ends the stream with an error if the new answer says something else. Tool
calls come whole in the `done` frame, so a takeover can never splice two nodes' calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from hearthnet.bus import CapabilityBus
from hearthnet.errors import HearthNetError
from hearthnet.types import Version


class GenerationRequest(BaseModel):
    """The fields chat and completions share (what stock clients send; unknown fields are ignored)."""

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


class Shape(Protocol):
    """How one endpoint's answers look: whole, and as the chunks of a stream."""

    prefix: str  # of the answer's id
    chunk_object: str

    def whole(self, cid: str, created: int, model: str, out: dict[str, Any]) -> dict[str, Any]: ...

    def start(self, cid: str, created: int, model: str) -> dict[str, Any]: ...

    def piece(self, cid: str, created: int, model: str, text: str) -> dict[str, Any]: ...

    def end(self, cid: str, created: int, model: str, done: dict[str, Any]) -> list[dict[str, Any]]: ...


def finish(reason: str) -> str:
    return {"length": "length", "tool_calls": "tool_calls"}.get(reason, "stop")


def usage(d: dict[str, Any]) -> dict[str, int]:
    p, c = int(d.get("tokens_in") or 0), int(d.get("tokens_out") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def sse(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()) + b"\n\n"


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


async def answer(bus: CapabilityBus, capability: str, version: Version, req: GenerationRequest, body: dict[str, Any], shape: Shape) -> Response:
    cid, created = f"{shape.prefix}-{ULID()}", int(time.time())
    params = {"model": req.model}
    if not req.stream:
        out = await bus.call(capability, version, body, params=params)
        return JSONResponse(shape.whole(cid, created, req.model, out))
    frames = bus.stream(capability, version, body, params=params)
    try:
        first = await frames.__anext__()  # errors before the first frame are plain HTTP errors
    except StopAsyncIteration:
        raise HearthNetError("internal", f"{capability} answered an empty stream") from None

    async def events() -> AsyncIterator[bytes]:
        take = _Takeover()
        try:
            yield sse(shape.start(cid, created, req.model))
            frame: dict[str, Any] | None = first
            while frame is not None:
                ev, data = frame.get("event"), frame.get("data") or {}
                if ev == "token":
                    text = take.feed(data.get("text", ""))
                    if text:
                        yield sse(shape.piece(cid, created, req.model, text))
                elif ev == "failover" and data.get("mode") == "restarted":
                    take.restart()
                elif ev == "error":
                    raise HearthNetError.from_wire(data, "stream failed")
                elif ev == "done":
                    for chunk in shape.end(cid, created, req.model, data):
                        yield sse(chunk)
                    if req.include_usage:
                        yield sse({"id": cid, "object": shape.chunk_object, "created": created, "model": req.model, "choices": [],
                                   "usage": usage(data)})
                    yield sse(b"[DONE]")
                    return
                frame = await anext(frames, None)
            raise HearthNetError("partition", "the answer ended before it was finished")
        except HearthNetError as exc:
            yield sse({"error": {"message": exc.message, "type": "server_error", "code": exc.code}})
        finally:
            await frames.aclose()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


__all__ = ["GenerationRequest", "Shape", "answer", "finish", "sse", "usage"]
