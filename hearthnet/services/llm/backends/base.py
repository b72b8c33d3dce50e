"""What every LLM backend offers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class BackendModel:
    name: str
    quant: str
    ctx_max: int
    modalities: list[str] = field(default_factory=lambda: ["text"])
    requires_internet: bool = False


@dataclass(frozen=True)
class Generation:
    """Sampling settings of one request."""

    max_tokens: int = 256
    temperature: float = 0.7
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChatResult:
    text: str
    tokens_in: int
    tokens_out: int
    stop_reason: str  # stop | length | cancelled
    ms: int


class LlmBackend(Protocol):
    name: str
    models: list[BackendModel]
    max_concurrent: int

    async def chat(self, model: str, messages: list[dict[str, str]], gen: Generation) -> ChatResult: ...

    def stream_chat(self, model: str, messages: list[dict[str, str]], gen: Generation) -> AsyncIterator[dict[str, Any]]: ...

    async def complete(self, model: str, prompt: str, gen: Generation) -> ChatResult: ...

    def stream_complete(self, model: str, prompt: str, gen: Generation) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None: ...


__all__ = ["BackendModel", "ChatResult", "Generation", "LlmBackend"]
