"""Anthropic's Messages API (`POST /v1/messages`), the one internet backend that is not OpenAI-shaped.

The system prompt travels beside the messages, not among them; streamed text arrives
as `content_block_delta` events and the end as `message_delta` (stop reason, output
tokens) then `message_stop`. A completion is sent as a single user turn.

Tools map to Anthropic's tool use: `tools` as `{name, description, input_schema}`, the
choice as `auto`/`any`/`tool`/`none` (`disable_parallel_tool_use` for
parallel_tool_calls false), an assistant's calls as `tool_use` blocks and tool results as
`tool_result` blocks of a user turn; a streamed `tool_use` block (its `input_json_delta`
pieces) comes back as one OpenAI-shaped call in the `done` frame.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from hearthnet.errors import HearthNetError
from hearthnet.services.llm.tools import ToolRequest
from hearthnet.services.llm.backends.base import BackendModel, ChatResult, Generation, HttpBackendBase, collect, done_frame
from hearthnet.httpclient import CallError, ServiceClient

DEFAULT_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"
_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


class AnthropicBackend(HttpBackendBase):
    name = "anthropic_api"
    resumable = False

    def __init__(self, url: str, model: BackendModel, *, api_key: str | None, max_concurrent: int = 4, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.models = [model]
        self.max_concurrent = max_concurrent
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        self._http = ServiceClient(self.url, headers, timeout=timeout)

    def _body(self, messages: list[dict[str, Any]], gen: Generation) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": self.model.name, "max_tokens": gen.max_tokens, "temperature": min(gen.temperature, 1.0),
            "messages": _turns(messages),
        }
        if system:
            body["system"] = system
        if gen.stop:
            body["stop_sequences"] = gen.stop
        if gen.tools is not None:
            body.update(_tool_fields(gen.tools))
        return body

    def _check_model(self, model: str) -> None:
        if model and model != self.model.name:
            raise HearthNetError("not_found", f"this backend serves {self.model.name}, not {model}")

    async def stream_messages(self, messages: list[dict[str, str]], gen: Generation) -> AsyncIterator[dict[str, Any]]:
        t0 = time.perf_counter()
        tokens_in = tokens_out = 0
        reason: str | None = None
        calls: dict[int, dict[str, Any]] = {}  # tool_use blocks by index
        src = self._http.stream_sse("/messages", {**self._body(messages, gen), "stream": True})
        try:
            async for ev in src:
                kind = ev.get("type")
                if kind == "message_start":
                    tokens_in = int(((ev.get("message") or {}).get("usage") or {}).get("input_tokens", 0))
                elif kind == "content_block_start" and (ev.get("content_block") or {}).get("type") == "tool_use":
                    block = ev["content_block"]
                    calls[int(ev.get("index", len(calls)))] = {"id": block.get("id", ""), "type": "function",
                                                               "function": {"name": block.get("name", ""), "arguments": ""}}
                elif kind == "content_block_delta" and (ev.get("delta") or {}).get("type") == "input_json_delta":
                    call = calls.get(int(ev.get("index", -1)))
                    if call is not None:
                        call["function"]["arguments"] += ev["delta"].get("partial_json", "")
                elif kind == "content_block_delta" and (ev.get("delta") or {}).get("type") == "text_delta":
                    yield {"event": "token", "data": {"text": ev["delta"].get("text", "")}}
                elif kind == "message_delta":
                    reason = _REASONS.get((ev.get("delta") or {}).get("stop_reason"), "stop")
                    tokens_out = int((ev.get("usage") or {}).get("output_tokens", tokens_out))
                elif kind == "error":
                    err = ev.get("error") or {}
                    code = "capacity_exceeded" if err.get("type") == "overloaded_error" else "partition"
                    raise CallError(code, f"{self.url}: {err.get('message', 'stream error')}")
                elif kind == "message_stop":
                    break
        finally:
            await src.aclose()
        if reason is None:
            raise CallError("partition", f"{self.url}/messages ended the stream before the answer was finished")
        done = [{**c, "function": {**c["function"], "arguments": c["function"]["arguments"] or "{}"}} for _, c in sorted(calls.items())]
        yield done_frame(self.model.name, self.name, tokens_in, tokens_out, reason, int((time.perf_counter() - t0) * 1000), done)

    def stream_chat(self, model: str, messages: list[dict[str, Any]], gen: Generation, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        if prefix:
            raise HearthNetError("bad_request", f"{self.name} cannot continue a partial answer (its API has no assistant prefix)")
        return self.stream_messages(messages, gen)

    def stream_complete(self, model: str, prompt: str, gen: Generation) -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        return self.stream_messages([{"role": "user", "content": prompt}], gen)

    async def chat(self, model: str, messages: list[dict[str, Any]], gen: Generation) -> ChatResult:
        return await collect(self.stream_chat(model, messages, gen))

    async def complete(self, model: str, prompt: str, gen: Generation) -> ChatResult:
        return await collect(self.stream_complete(model, prompt, gen))


def _turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """llm.chat's turns (system left out) as Anthropic's: calls as tool_use blocks, results as
    tool_result blocks of a user turn; turns of one role in a row become one turn of blocks."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if m["role"] == "tool":
            role, blocks = "user", [{"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m["content"]}]
        elif m.get("tool_calls"):
            role = "assistant"
            blocks = ([{"type": "text", "text": m["content"]}] if m["content"] else []) + [
                {"type": "tool_use", "id": c["id"], "name": c["function"]["name"], "input": json.loads(c["function"]["arguments"])}
                for c in m["tool_calls"]]
        else:
            role, blocks = m["role"], [{"type": "text", "text": m["content"]}]
        if out and out[-1]["role"] == role:
            prev = out[-1]["content"]
            out[-1]["content"] = (prev if isinstance(prev, list) else [{"type": "text", "text": prev}]) + blocks
        else:
            out.append({"role": role, "content": m["content"] if blocks == [{"type": "text", "text": m["content"]}] else blocks})
    return out


def _tool_fields(req: ToolRequest) -> dict[str, Any]:
    tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in req.tools]
    choice: dict[str, Any] = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}.get(req.choice) or {
        "type": "tool", "name": req.function}
    if not req.parallel and req.choice != "none":
        choice["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": choice}


__all__ = ["DEFAULT_URL", "AnthropicBackend"]
