"""The embedded backend: llama-cpp-python on a pinned GGUF file, in a worker process of its own.

llama.cpp is native code; a fault in it (a CPU instruction the guest cannot run, a bug)
kills the process it runs in. So it runs in a child process the node supervises
(llama_worker.py, through worker_process.WorkerProcess), like Ollama's and LocalAI's
runners: when the child dies, the call in flight ends with `unhealthy` (the bus hands an
llm.* stream to another node when one offers it), the node stays up, and the child is
restarted with backoff. The child is started at the first request and loads the model then.

One generation at a time per model (a llama.cpp context is not re-entrant); the bus
answers capacity_exceeded beyond that. Closing the stream cancels the generation in the
child between two tokens, and the next request waits for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hearthnet.errors import HearthNetError
from hearthnet.services.llm.backends.base import BackendModel, ChatResult, Generation, collect, done_frame
from hearthnet.services.llm import tools
from hearthnet.services.llm.backends.worker_process import WorkerProcess

CANCEL_WAIT_SECONDS = 30  # how long a cancelled generation may take to notice


class LlamaCppBackend:
    name = "llama_cpp"
    max_concurrent = 1
    resumable = True

    def __init__(self, model: BackendModel, path: Callable[[], Path], *, n_ctx: int | None = None, threads: int | None = None) -> None:
        self.model = model
        self.models = [model]
        self._path = path  # resolves and verifies the pinned file (at first use)
        self._n_ctx = n_ctx or min(model.ctx_max, 4096)
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._worker: WorkerProcess | None = None
        self._start_lock = threading.Lock()
        self._busy = threading.Lock()  # held for the whole of one generation

    # --- the worker ----------------------------------------------------------------------
    def _process(self) -> WorkerProcess:
        """The supervised worker, created (and the model file verified) at first use."""
        with self._start_lock:
            if self._worker is None:
                cfg = {"model_path": str(self._path()), "n_ctx": self._n_ctx, "threads": self._threads}
                argv = [sys.executable, "-m", "hearthnet.services.llm.backends.llama_worker", json.dumps(cfg)]
                self._worker = WorkerProcess(argv, f"llama_cpp/{self.model.name}")
            return self._worker

    def worker_status(self) -> dict[str, Any]:
        """For /health and `hearthnet doctor`: the worker's state, pid, restarts and last crash."""
        w = self._worker
        return {"backend": self.name, "model": self.model.name, **(w.status() if w is not None else WorkerProcess.NOT_STARTED)}

    def _ask(self, msg: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
        """One request with one answer, waited for in this thread."""
        w = self._process()
        answers: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        rid = w.request(msg, answers.put)
        try:
            ans = answers.get(timeout=timeout)
        except queue.Empty:
            raise HearthNetError("timeout", f"the llama.cpp worker did not answer {msg['op']} within {timeout:.0f}s") from None
        finally:
            w.done(rid)
        return _raise_if_error(ans)

    async def warm(self) -> None:
        await asyncio.to_thread(self._ask, {"op": "load"})

    def count_tokens(self, text: str) -> int:
        """Exact, with the model's own tokenizer (starts the worker and loads the model if need be)."""
        return int(self._ask({"op": "tokenize", "text": text})["count"])

    async def health(self) -> bool:
        """The pinned file is there and matches its hash, and the worker is not down."""
        try:
            await asyncio.to_thread(self._path)
        except HearthNetError:
            return False
        return self._worker is None or not self._worker.down

    def _check_model(self, model: str) -> None:
        if model and model != self.model.name:
            raise HearthNetError("not_found", f"this backend serves {self.model.name}, not {model}")

    # --- streaming core ------------------------------------------------------------
    async def _stream(self, msg: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        if not self._busy.acquire(blocking=False):
            raise HearthNetError("capacity_exceeded", f"{self.model.name} is busy", retry_after_ms=500)
        w: WorkerProcess | None = None
        rid = None
        ended = False
        try:
            w = await asyncio.to_thread(self._process)  # hashes the model file the first time
            loop = asyncio.get_running_loop()
            q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            rid = w.request(msg, lambda m: loop.call_soon_threadsafe(q.put_nowait, m))
            while True:
                m = await q.get()
                ev = m.get("ev")
                if ev == "token":
                    yield {"event": "token", "data": {"text": m["text"], "tokens": m["tokens"]}}
                elif ev == "done":
                    ended = True
                    yield done_frame(self.model.name, self.name, m["tokens_in"], m["tokens_out"], m["stop_reason"], m["ms"])
                    return
                else:
                    ended = True
                    _raise_if_error(m)
        finally:
            try:
                if w is not None and rid is not None and not ended:
                    # The consumer left: stop the generation, and wait for it to stop, so the
                    # next request finds the model free.
                    w.send({"op": "cancel", "target": rid})
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                            while (await q.get()).get("ev") not in ("done", "error", "died"):
                                pass
            finally:
                if w is not None and rid is not None:
                    w.done(rid)
                self._busy.release()

    def stream_chat(self, model: str, messages: list[dict[str, Any]], gen: Generation, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        req = gen.tools
        if req is not None or any(m["role"] == "tool" or m.get("tool_calls") for m in messages):
            messages = tools.prompt_messages(messages, req)  # a chat template knows text turns only
        # A forced call is decoded under a grammar, from the part of it already known; a continued
        # answer is text already.
        start, schema = tools.forced_start(req) if req is not None and req.forced and req.offered and not prefix else ("", None)
        inner = self._stream({"op": "chat", "messages": messages, "gen": asdict(replace(gen, tools=None)), "prefix": prefix or start,
                              "grammar_schema": schema})
        if req is None or not req.offered or prefix:
            return inner
        return self._calls(inner, req, start)

    async def _calls(self, inner: AsyncIterator[dict[str, Any]], req: tools.ToolRequest, start: str) -> AsyncIterator[dict[str, Any]]:
        """The frames of an answer that may call tools: a forced call is held whole and checked;
        with auto, text passes on until it may be a call (tools.ToolStream)."""
        watch = tools.ToolStream(req)
        held: list[str] = []
        owed = 0  # tokens of text held back, counted when it is sent
        try:
            async for frame in inner:
                if frame["event"] == "token":
                    n = int(frame["data"].get("tokens", 1))
                    if req.forced:
                        held.append(frame["data"]["text"])
                        continue
                    text = watch.feed(frame["data"]["text"])
                    owed += n
                    if text:
                        yield {"event": "token", "data": {"text": text, "tokens": owed}}
                        owed = 0
                    continue
                d = frame["data"]
                if req.forced:
                    calls = tools.forced(tools.forced_text(start, "".join(held)), req, d["stop_reason"])
                else:
                    rest, calls = watch.finish()
                    if rest:
                        yield {"event": "token", "data": {"text": rest, "tokens": max(owed, 1)}}
                yield done_frame(d["model"], d["backend"], d["tokens_in"], d["tokens_out"], d["stop_reason"], d["ms"], calls)
                return
        finally:
            await inner.aclose()

    def stream_complete(self, model: str, prompt: str, gen: Generation) -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        return self._stream({"op": "complete", "prompt": prompt, "gen": asdict(gen)})

    async def chat(self, model: str, messages: list[dict[str, Any]], gen: Generation) -> ChatResult:
        return await collect(self.stream_chat(model, messages, gen))

    async def complete(self, model: str, prompt: str, gen: Generation) -> ChatResult:
        return await collect(self.stream_complete(model, prompt, gen))

    async def close(self) -> None:
        w, self._worker = self._worker, None
        if w is not None:
            await asyncio.to_thread(w.close)


def _raise_if_error(m: dict[str, Any]) -> dict[str, Any]:
    ev = m.get("ev")
    if ev == "error":
        raise HearthNetError(m.get("code", "internal"), m.get("message", "the llama.cpp worker failed"), **(m.get("details") or {}))
    if ev == "died":
        crash = m.get("crash")
        if crash is None:
            raise HearthNetError("unhealthy", "the llama.cpp worker was shut down")
        how = f"killed by {crash['signal']}" if crash.get("signal") else f"exited with status {crash['exit_code']}"
        raise HearthNetError("unhealthy", f"the llama.cpp worker (pid {crash['pid']}) was {how}; the node restarts it", worker_pid=crash["pid"],
                             signal=crash.get("signal"))
    return m


__all__ = ["LlamaCppBackend"]
