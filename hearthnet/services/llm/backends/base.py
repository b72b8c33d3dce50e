"""What every LLM backend offers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from hearthnet.errors import HearthNetError
from hearthnet.services.llm.tools import ToolRequest


@dataclass(frozen=True)
class BackendModel:
    name: str
    quant: str
    ctx_max: int
    modalities: list[str] = field(default_factory=lambda: ["text"])
    requires_internet: bool = False
    tools: str = "auto"  # auto | forced | none: how well it calls tools (the model index's flag)


@dataclass(frozen=True)
class Generation:
    """Sampling settings of one request."""

    max_tokens: int = 256
    temperature: float = 0.7
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    tools: ToolRequest | None = None  # the request's tools, checked (services/llm/tools.py)


@dataclass(frozen=True)
class ChatResult:
    text: str
    tokens_in: int
    tokens_out: int
    stop_reason: str  # stop | length | cancelled | tool_calls
    ms: int
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # OpenAI's shape: {id, type, function: {name, arguments}}


class LlmBackend(Protocol):
    name: str
    models: list[BackendModel]
    max_concurrent: int
    # Can it continue an assistant turn from a given prefix (`stream_chat(..., prefix=)`)?
    # Chat-only HTTP APIs cannot; a stream they lose is restarted elsewhere instead.
    resumable: bool

    # Messages are llm.chat's (tools.py): assistant turns may carry tool_calls, role "tool" results.
    async def chat(self, model: str, messages: list[dict[str, Any]], gen: Generation) -> ChatResult: ...

    def stream_chat(self, model: str, messages: list[dict[str, Any]], gen: Generation, prefix: str = "") -> AsyncIterator[dict[str, Any]]: ...

    async def complete(self, model: str, prompt: str, gen: Generation) -> ChatResult: ...

    def stream_complete(self, model: str, prompt: str, gen: Generation) -> AsyncIterator[dict[str, Any]]: ...

    def count_tokens(self, text: str) -> int: ...

    async def health(self) -> bool: ...

    async def warm(self) -> None: ...

    async def close(self) -> None: ...


class HttpBackendBase:
    """What the HTTP backends share: a ServiceClient in `self._http`, health from `GET /models`,
    token counts estimated (the server's tokenizer is not here), nothing to warm."""

    _http: Any

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    async def health(self) -> bool:
        try:
            await self._http.get("/models", timeout=5)
        except HearthNetError:
            return False
        return True

    async def warm(self) -> None:
        return None

    async def close(self) -> None:
        await self._http.close()


def approx_tokens(text: str) -> int:
    """For servers whose tokenizer is not here: about four characters a token (English BPE)."""
    return max(1, (len(text) + 3) // 4) if text else 0


async def collect(frames: AsyncIterator[dict[str, Any]]) -> ChatResult:
    """A stream of token/done frames as one result (the unary form of every backend). The stream is
    closed before this returns, so whatever it holds (a model's one-at-a-time lock) is free again."""
    parts: list[str] = []
    async with contextlib.aclosing(frames) as fr:  # type: ignore[type-var]
        async for f in fr:
            if f["event"] == "token":
                parts.append(f["data"]["text"])
            elif f["event"] == "done":
                d = f["data"]
                return ChatResult("".join(parts), d["tokens_in"], d["tokens_out"], d["stop_reason"], d["ms"], d.get("tool_calls") or [])
    raise HearthNetError("internal", "generation ended without a done frame")


def done_frame(model: str, backend: str, tokens_in: int, tokens_out: int, stop_reason: str, ms: int,
               tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The end of a stream. Tool calls travel whole in it, never as fragments, so an answer
    taken over by another node half-way can never splice two nodes' calls together."""
    data: dict[str, Any] = {"model": model, "backend": backend, "tokens_in": tokens_in, "tokens_out": tokens_out, "stop_reason": stop_reason, "ms": ms}
    if tool_calls:
        data["tool_calls"] = tool_calls
        data["stop_reason"] = "tool_calls"
    return {"event": "done", "data": data}


__all__ = ["BackendModel", "ChatResult", "Generation", "HttpBackendBase", "LlmBackend", "approx_tokens", "collect", "done_frame"]
