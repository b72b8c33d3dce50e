"""`POST /v1/chat/completions` and `POST /v1/completions`: llm.chat and llm.complete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from hearthnet.errors import HearthNetError
from hearthnet.gateway.admit import Gate
from hearthnet.gateway.relay import GenerationRequest, answer, finish, usage
from hearthnet.gateway.tool_calls import ToolFields, answer_message, call_deltas, version_for, wire_message


class ChatRequest(GenerationRequest, ToolFields):
    messages: list[dict[str, Any]] = Field(min_length=1)
    rag: dict[str, Any] | None = None  # HearthNet extension (extra_body): answer from a corpus, with citations


class CompletionRequest(GenerationRequest):
    prompt: str | list[str]


class ChatShape:
    prefix, chunk_object = "chatcmpl", "chat.completion.chunk"

    @staticmethod
    def whole(cid: str, created: int, model: str, out: dict[str, Any]) -> dict[str, Any]:
        res = {"id": cid, "object": "chat.completion", "created": created, "model": model,
               "choices": [{"index": 0, "message": answer_message(out), "finish_reason": finish(out["stop_reason"])}], "usage": usage(out)}
        if "citations" in out:
            res["citations"] = out["citations"]
        return res

    @staticmethod
    def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    @classmethod
    def start(cls, cid: str, created: int, model: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, {"role": "assistant", "content": ""}, None)

    @classmethod
    def piece(cls, cid: str, created: int, model: str, text: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, {"content": text}, None)

    @classmethod
    def end(cls, cid: str, created: int, model: str, done: dict[str, Any]) -> list[dict[str, Any]]:
        chunks = [cls._chunk(cid, created, model, d, None) for d in call_deltas(done.get("tool_calls") or [])]
        last = cls._chunk(cid, created, model, {}, finish(done.get("stop_reason", "stop")))
        if "citations" in done:
            last["citations"] = done["citations"]
        return [*chunks, last]


class CompletionShape:
    prefix, chunk_object = "cmpl", "text_completion"

    @staticmethod
    def whole(cid: str, created: int, model: str, out: dict[str, Any]) -> dict[str, Any]:
        return {"id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": out["text"], "logprobs": None, "finish_reason": finish(out["stop_reason"])}], "usage": usage(out)}

    @staticmethod
    def _chunk(cid: str, created: int, model: str, text: str, reason: str | None) -> dict[str, Any]:
        return {"id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": reason}]}

    @classmethod
    def start(cls, cid: str, created: int, model: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, "", None)

    @classmethod
    def piece(cls, cid: str, created: int, model: str, text: str) -> dict[str, Any]:
        return cls._chunk(cid, created, model, text, None)

    @classmethod
    def end(cls, cid: str, created: int, model: str, done: dict[str, Any]) -> list[dict[str, Any]]:
        return [cls._chunk(cid, created, model, "", finish(done.get("stop_reason", "stop")))]


def chat_body(req: ChatRequest) -> dict[str, Any]:
    """llm.chat's request for a client's chat request."""
    body: dict[str, Any] = {"messages": [wire_message(m, i) for i, m in enumerate(req.messages)], **req.generation(256), **req.tool_body()}
    if req.rag is not None:
        body["rag"] = req.rag
    return body


def router(gate: Gate) -> APIRouter:
    r = APIRouter()
    bus = gate.node.bus

    @r.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        req = await gate.read(request, ChatRequest)
        body = chat_body(req)
        return await answer(bus, "llm.chat", version_for(body), req, body, ChatShape)

    @r.post("/v1/completions")
    async def complete(request: Request) -> Response:
        req = await gate.read(request, CompletionRequest)
        prompt = req.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise HearthNetError("bad_request", "prompt: one prompt per request")
            prompt = prompt[0]
        return await answer(bus, "llm.complete", (1, 0), req, {"prompt": prompt, **req.generation(16)}, CompletionShape)

    return r


__all__ = ["ChatRequest", "ChatShape", "CompletionRequest", "CompletionShape", "chat_body", "router"]
