"""One client for every LLM server that speaks the OpenAI HTTP API.

ollama, LM Studio, vLLM, OpenBMB's MiniCPM servers, NVIDIA NIM (Nemotron) and the
Hugging Face router all answer `POST /v1/chat/completions` and `/v1/completions`
the same way, so one class serves them; a preset only supplies the default URL.

Whether a backend needs the internet is read from its URL, not from its name:
an Ollama on the LAN does not, a Nemotron in NVIDIA's cloud does (and is withdrawn
in emergency mode). Cancelling a stream closes the HTTP connection, which stops
generation on servers that watch for it (llama.cpp, vLLM, Ollama).

Tools pass through as they are (llm.chat's tool fields and turns are OpenAI's shapes);
a streamed call's deltas are assembled here and handed on whole in the `done` frame.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hearthnet.errors import HearthNetError
from hearthnet.services.llm import tools
from hearthnet.services.llm.backends.base import BackendModel, ChatResult, Generation, HttpBackendBase, done_frame
from hearthnet.httpclient import CallError, ServiceClient


@dataclass(frozen=True)
class Preset:
    url: str
    local_url: str | None = None  # for services that can run on the box as well (a self-hosted NIM)


PRESETS: dict[str, Preset] = {
    "ollama": Preset("http://127.0.0.1:11434/v1"),
    "lmstudio": Preset("http://127.0.0.1:1234/v1"),
    "vllm": Preset("http://127.0.0.1:8000/v1"),
    "openbmb": Preset("http://127.0.0.1:8000/v1"),
    "nemotron": Preset("https://integrate.api.nvidia.com/v1", local_url="http://127.0.0.1:8000/v1"),
    "hf_api": Preset("https://router.huggingface.co/v1"),
}


def url_requires_internet(url: str) -> bool:
    """True unless the host is loopback, private, link-local, or a LAN name (no dot, .local, .lan, .home.arpa)."""
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return not ("." not in host or host == "localhost" or host.endswith((".local", ".lan", ".home.arpa", ".internal")))
    return not (ip.is_loopback or ip.is_private or ip.is_link_local)


def default_url(name: str, *, local: bool = False) -> str:
    p = PRESETS[name]
    return (p.local_url or p.url) if local else p.url


class OpenAICompatBackend(HttpBackendBase):
    """An LLM behind an OpenAI-compatible server. It cannot continue a partial assistant
    turn through the chat API, so a failed-over stream restarts here (`resumable` False)."""

    resumable = False

    def __init__(self, name: str, url: str, model: BackendModel, *, api_key: str | None = None, max_concurrent: int = 4,
                 timeout: float = 120.0) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.model = model
        self.models = [model]
        self.max_concurrent = max_concurrent
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = ServiceClient(self.url, headers, timeout=timeout)

    def _check_model(self, model: str) -> None:
        if model and model != self.model.name:
            raise HearthNetError("not_found", f"this backend serves {self.model.name}, not {model}")

    def _body(self, gen: Generation, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model.name, "max_tokens": gen.max_tokens, "temperature": gen.temperature, **extra}
        if gen.stop:
            body["stop"] = gen.stop
        if gen.seed is not None:
            body["seed"] = gen.seed
        if gen.tools is not None:
            body.update(gen.tools.openai_fields())
        return body

    # --- unary ---------------------------------------------------------------------
    async def _unary(self, path: str, body: dict[str, Any], text_of: Any) -> ChatResult:
        t0 = time.perf_counter()
        out = await self._http.post(path, body)
        try:
            choice = out["choices"][0]
            text = text_of(choice) or ""
            usage = out.get("usage") or {}
        except (KeyError, IndexError, TypeError):
            raise CallError("partition", f"{self.url}{path} answered without choices") from None
        calls = [_call(c) for c in (choice.get("message") or {}).get("tool_calls") or []]
        return ChatResult(text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                          "tool_calls" if calls else _reason(choice.get("finish_reason")), int((time.perf_counter() - t0) * 1000), calls)

    async def chat(self, model: str, messages: list[dict[str, Any]], gen: Generation) -> ChatResult:
        self._check_model(model)
        return await self._unary("/chat/completions", self._body(gen, messages=messages), lambda c: (c.get("message") or {}).get("content"))

    async def complete(self, model: str, prompt: str, gen: Generation) -> ChatResult:
        self._check_model(model)
        return await self._unary("/completions", self._body(gen, prompt=prompt), lambda c: c.get("text"))

    # --- streaming -----------------------------------------------------------------
    async def _stream(self, path: str, body: dict[str, Any], chat: bool) -> AsyncIterator[dict[str, Any]]:
        t0 = time.perf_counter()
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}  # servers that ignore it report no prompt tokens
        tokens_in = tokens_out = 0
        counted = 0
        reason: str | None = None
        calls: dict[int, dict[str, Any]] = {}  # streamed tool calls by index, assembled
        src = self._http.stream_sse(path, body)
        try:
            async for chunk in src:
                usage = chunk.get("usage") or {}
                tokens_in = int(usage.get("prompt_tokens", tokens_in) or tokens_in)
                tokens_out = int(usage.get("completion_tokens", tokens_out) or tokens_out)
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text = delta.get("content") if chat else choice.get("text")
                    if text:
                        counted += 1
                        yield {"event": "token", "data": {"text": text}}
                    for d in delta.get("tool_calls") or [] if chat else []:
                        _assemble(calls, d)
                    if choice.get("finish_reason"):
                        reason = choice["finish_reason"]
        finally:
            await src.aclose()
        if reason is None:  # the server went away before saying it had finished
            raise CallError("partition", f"{self.url}{path} ended the stream before the answer was finished")
        yield done_frame(self.model.name, self.name, tokens_in, tokens_out or counted, _reason(reason), int((time.perf_counter() - t0) * 1000),
                         [_call(calls[i]) for i in sorted(calls)])

    def stream_chat(self, model: str, messages: list[dict[str, Any]], gen: Generation, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        if prefix:
            raise HearthNetError("bad_request", f"{self.name} cannot continue a partial answer (its API has no assistant prefix)")
        return self._stream("/chat/completions", self._body(gen, messages=messages), chat=True)

    def stream_complete(self, model: str, prompt: str, gen: Generation) -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        return self._stream("/completions", self._body(gen, prompt=prompt), chat=False)



def _assemble(calls: dict[int, dict[str, Any]], d: dict[str, Any]) -> None:
    """One streamed tool-call delta into the call at its index (id and name come first, arguments in pieces)."""
    c = calls.setdefault(int(d.get("index", len(calls))), {"id": "", "function": {"name": "", "arguments": ""}})
    c["id"] = d.get("id") or c["id"]
    fn = d.get("function") or {}
    c["function"]["name"] = fn.get("name") or c["function"]["name"]
    c["function"]["arguments"] += fn.get("arguments") or ""


def _call(c: dict[str, Any]) -> dict[str, Any]:
    """A server's tool call in llm.chat's shape (some servers send arguments as an object, or none)."""
    fn = c.get("function") or {}
    args = fn.get("arguments")
    if not isinstance(args, str):
        args = json.dumps(args if args is not None else {}, separators=(",", ":"))
    call = tools.new_call(str(fn.get("name") or ""), args or "{}")
    return {**call, "id": c.get("id") or call["id"]}


def _reason(finish: str | None) -> str:
    return {"stop": "stop", "length": "length", "eos": "stop", None: "stop"}.get(finish, finish or "stop")


__all__ = ["PRESETS", "OpenAICompatBackend", "default_url", "url_requires_internet"]
