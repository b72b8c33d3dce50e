"""Anthropic's Messages API (`POST /v1/messages`), the one internet backend that is not OpenAI-shaped.

The system prompt travels beside the messages, not among them; streamed text arrives
as `content_block_delta` events and the end as `message_delta` (stop reason, output
tokens) then `message_stop`. A completion is sent as a single user turn.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from hearthnet.errors import HearthNetError
from hearthnet.services.llm.backends.base import BackendModel, ChatResult, Generation, HttpBackendBase, collect, done_frame
from hearthnet.httpclient import CallError, ServiceClient

DEFAULT_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"
_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


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

    def _body(self, messages: list[dict[str, str]], gen: Generation) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": self.model.name, "max_tokens": gen.max_tokens, "temperature": min(gen.temperature, 1.0),
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"],
        }
        if system:
            body["system"] = system
        if gen.stop:
            body["stop_sequences"] = gen.stop
        return body

    def _check_model(self, model: str) -> None:
        if model and model != self.model.name:
            raise HearthNetError("not_found", f"this backend serves {self.model.name}, not {model}")

    async def stream_messages(self, messages: list[dict[str, str]], gen: Generation) -> AsyncIterator[dict[str, Any]]:
        t0 = time.perf_counter()
        tokens_in = tokens_out = 0
        reason: str | None = None
        src = self._http.stream_sse("/messages", {**self._body(messages, gen), "stream": True})
        try:
            async for ev in src:
                kind = ev.get("type")
                if kind == "message_start":
                    tokens_in = int(((ev.get("message") or {}).get("usage") or {}).get("input_tokens", 0))
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
        yield done_frame(self.model.name, self.name, tokens_in, tokens_out, reason, int((time.perf_counter() - t0) * 1000))

    def stream_chat(self, model: str, messages: list[dict[str, str]], gen: Generation, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        if prefix:
            raise HearthNetError("bad_request", f"{self.name} cannot continue a partial answer (its API has no assistant prefix)")
        return self.stream_messages(messages, gen)

    def stream_complete(self, model: str, prompt: str, gen: Generation) -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        return self.stream_messages([{"role": "user", "content": prompt}], gen)

    async def chat(self, model: str, messages: list[dict[str, str]], gen: Generation) -> ChatResult:
        return await collect(self.stream_chat(model, messages, gen))

    async def complete(self, model: str, prompt: str, gen: Generation) -> ChatResult:
        return await collect(self.stream_complete(model, prompt, gen))



__all__ = ["DEFAULT_URL", "AnthropicBackend"]
