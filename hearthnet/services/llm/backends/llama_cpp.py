"""The embedded backend: llama-cpp-python on a pinned GGUF file, loaded on first use.

Generation is blocking C code, so it runs in a worker thread; tokens cross to the
event loop through a queue. It is always the same thread (one per backend): llama.cpp's
OpenMP team belongs to the thread that calls it, and a new calling thread per request
builds a new team while the old one still spins, which cost up to 20 % speed here. Closing the stream sets a flag the worker checks on
every token, which stops the generation. One generation at a time per model
(a llama.cpp context is not re-entrant); the bus answers capacity_exceeded
beyond that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from hearthnet.errors import HearthNetError
from hearthnet.services.llm.backends.base import BackendModel, ChatResult, Generation, collect, done_frame

_DONE = object()
FLUSH_SECONDS = 0.05


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
        self._llm: Any = None
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _submit(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run fn on this backend's one llama thread; the result as an asyncio future."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve_jobs, name=f"llama-{self.model.name}", daemon=True)
            self._thread.start()
        self._jobs.put((fn, fut))
        return asyncio.wrap_future(fut)

    def _serve_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, fut = job
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:
                    fut.set_exception(exc)

    def _load(self) -> Any:
        with self._load_lock:
            if self._llm is None:
                try:
                    import llama_cpp
                except ImportError as exc:
                    raise HearthNetError("not_found", "llama-cpp-python is not installed (pip install 'hearthnet[llm]')") from exc
                path = self._path()
                self._llm = llama_cpp.Llama(model_path=str(path), n_ctx=self._n_ctx, n_threads=self._threads, verbose=False)
            return self._llm

    async def warm(self) -> None:
        await self._submit(self._load)

    def count_tokens(self, text: str) -> int:
        """Exact, with the model's own tokenizer (loads the model if it is not yet)."""
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False)) if text else 0

    async def health(self) -> bool:
        """The pinned file is there and matches its hash (cached after the first check)."""
        try:
            await asyncio.to_thread(self._path)
        except HearthNetError:
            return False
        return True

    def _check_model(self, model: str) -> None:
        if model and model != self.model.name:
            raise HearthNetError("not_found", f"this backend serves {self.model.name}, not {model}")

    def _prompt_tokens(self, llm: Any, text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=True))

    def _fit(self, llm: Any, tokens_in: int, gen: Generation) -> None:
        if tokens_in + gen.max_tokens > llm.n_ctx():
            raise HearthNetError("payload_too_large", f"prompt is {tokens_in} tokens + max_tokens {gen.max_tokens}; the context holds {llm.n_ctx()}",
                                 limit=llm.n_ctx())

    def _chat_prompt_tokens(self, llm: Any, messages: list[dict[str, str]]) -> int:
        # The chat template adds a few tokens per message; count the content plus that overhead.
        return sum(self._prompt_tokens(llm, m["content"]) + 4 for m in messages) + 2

    # --- streaming core ------------------------------------------------------------
    async def _stream(self, start: Callable[[Any], Any], tokens_in_of: Callable[[Any], int], gen: Generation) -> AsyncIterator[dict[str, Any]]:
        llm = await self._submit(self._load)
        tokens_in = tokens_in_of(llm)
        self._fit(llm, tokens_in, gen)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        t0 = time.perf_counter()
        # Tokens wait in `pending` and the loop is woken at most every FLUSH_SECONDS (and at
        # once for the first token): on a small box every wake-up of the node's thread takes
        # a core from llama.cpp's compute threads, so one wake per token costs ~10 % speed.
        pending: list[str] = []
        lock = threading.Lock()
        last_wake = [0.0]
        waiting = [False]  # a wake-up is on its way to the loop

        def wake(item: Any = None) -> None:
            last_wake[0] = time.monotonic()
            loop.call_soon_threadsafe(q.put_nowait, item)

        def work() -> None:
            reason = "stop"
            try:
                if not self._gen_lock.acquire(blocking=False):
                    raise HearthNetError("capacity_exceeded", f"{self.model.name} is busy", retry_after_ms=500)
                try:
                    for chunk in start(llm):
                        if stop.is_set():
                            reason = "cancelled"
                            break
                        choice = chunk["choices"][0]
                        text = choice.get("delta", {}).get("content") if "delta" in choice else choice.get("text")
                        if text:
                            with lock:
                                pending.append(text)
                                due = not waiting[0] and time.monotonic() - last_wake[0] >= FLUSH_SECONDS
                                waiting[0] = waiting[0] or due
                            if due:
                                wake()
                        if choice.get("finish_reason"):
                            reason = choice["finish_reason"]
                finally:
                    self._gen_lock.release()
                wake((_DONE, reason))
            except BaseException as exc:  # delivered to the consumer, not lost in the thread
                wake(exc)

        if self._gen_lock.locked():
            raise HearthNetError("capacity_exceeded", f"{self.model.name} is busy", retry_after_ms=500)
        worker = self._submit(work)
        out = 0
        try:
            while True:
                item = await q.get()
                with lock:
                    texts = pending[:]
                    pending.clear()
                    waiting[0] = False
                if texts:
                    out += len(texts)
                    yield {"event": "token", "data": {"text": "".join(texts), "tokens": len(texts)}}
                if isinstance(item, BaseException):
                    if isinstance(item, HearthNetError):
                        raise item
                    raise HearthNetError("internal", f"llama.cpp: {type(item).__name__}: {item}")
                if isinstance(item, tuple) and item and item[0] is _DONE:
                    with lock:
                        texts = pending[:]
                        pending.clear()
                    if texts:
                        out += len(texts)
                        yield {"event": "token", "data": {"text": "".join(texts), "tokens": len(texts)}}
                    yield done_frame(self.model.name, self.name, tokens_in, out, item[1], int((time.perf_counter() - t0) * 1000))
                    return
        finally:
            stop.set()  # the consumer left (or finished): the worker stops at its next token
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(worker), 30)

    def stream_chat(self, model: str, messages: list[dict[str, str]], gen: Generation, prefix: str = "") -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        kw = self._kw(gen)
        if prefix:
            # Continue the assistant's turn: the chat template's prompt, then the text so far,
            # generated on as plain completion (the model's end-of-turn token still ends it).
            return self._stream(lambda llm: llm.create_completion(prompt=self._chat_prompt(llm, messages) + prefix, stream=True, **kw),
                                lambda llm: self._prompt_tokens(llm, self._chat_prompt(llm, messages) + prefix), gen)
        return self._stream(lambda llm: llm.create_chat_completion(messages=messages, stream=True, **kw),
                            lambda llm: self._chat_prompt_tokens(llm, messages), gen)

    @staticmethod
    def _chat_prompt(llm: Any, messages: list[dict[str, str]]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise HearthNetError("bad_request", "this model has no chat template, so a partial answer cannot be continued")
        eos = llm._model.token_get_text(llm.token_eos())  # what the template writes at a turn's end
        bos = llm._model.token_get_text(llm.token_bos())
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=messages).prompt

    def stream_complete(self, model: str, prompt: str, gen: Generation) -> AsyncIterator[dict[str, Any]]:
        self._check_model(model)
        kw = self._kw(gen)
        return self._stream(lambda llm: llm.create_completion(prompt=prompt, stream=True, **kw), lambda llm: self._prompt_tokens(llm, prompt), gen)

    async def chat(self, model: str, messages: list[dict[str, str]], gen: Generation) -> ChatResult:
        return await collect(self.stream_chat(model, messages, gen))

    async def complete(self, model: str, prompt: str, gen: Generation) -> ChatResult:
        return await collect(self.stream_complete(model, prompt, gen))

    @staticmethod
    def _kw(gen: Generation) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_tokens": gen.max_tokens, "temperature": gen.temperature, "stop": gen.stop or None}
        if gen.seed is not None:
            kw["seed"] = gen.seed
        return kw

    async def close(self) -> None:
        with self._load_lock:
            llm, self._llm = self._llm, None
        if llm is not None and hasattr(llm, "close"):
            await self._submit(llm.close)
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None


__all__ = ["LlamaCppBackend"]
