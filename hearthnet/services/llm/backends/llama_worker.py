"""The llama.cpp worker process: `python -m hearthnet.services.llm.backends.llama_worker CONFIG_JSON`.

Started and supervised by LlamaCppBackend (worker_process.WorkerProcess). It loads the model
at its first request and serves one request at a time on its main thread (llama.cpp's
OpenMP team belongs to the thread that calls it). A second thread reads stdin, so a
`cancel` reaches a generation between two tokens; stdin's end stops everything.

Requests (one JSON line each, with an `id`):
    {"op": "load"}                                     -> {"ev": "loaded", "n_ctx": N}
    {"op": "tokenize", "text": T}                      -> {"ev": "result", "count": N}
    {"op": "chat", "messages": [...], "gen": {...}, "prefix": P, "grammar_schema": S?}
    {"op": "complete", "prompt": P, "gen": {...}}      -> {"ev": "token", "text", "tokens"}…, {"ev": "done", …}
    {"op": "cancel", "target": ID}                     (no answer; the generation ends with stop_reason "cancelled")
Any request may end in {"ev": "error", "code", "message", "details"}.

A chat with `grammar_schema` (a JSON Schema; a forced tool call, services/llm/tools.py) is
decoded under the llama.cpp grammar made from it, so what it writes matches the schema.

Tokens are sent in batches, at most one line every LLM_WORKER_FLUSH_SECONDS (the first at
once): every wake-up of the node's process takes a core from llama.cpp's threads.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from typing import Any, BinaryIO

from hearthnet import constants as C
from hearthnet.errors import HearthNetError


class Worker:
    def __init__(self, cfg: dict[str, Any], out: BinaryIO) -> None:
        self.cfg = cfg
        self.out = out
        self.jobs: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.cancelled: set[int] = set()
        self.eof = threading.Event()
        self.llm: Any = None
        self.grammars: dict[str, Any] = {}  # by schema text: building one costs more than a short answer

    def say(self, msg: dict[str, Any]) -> None:
        self.out.write((json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n").encode())
        self.out.flush()

    def read(self, stdin: BinaryIO) -> None:
        for line in stdin:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("op") == "cancel":
                self.cancelled.add(int(msg.get("target", -1)))
            else:
                self.jobs.put(msg)
        self.eof.set()  # the node is gone or closed us: stop at the next token
        self.jobs.put(None)

    def serve(self) -> None:
        while (msg := self.jobs.get()) is not None:
            rid = msg.get("id")
            try:
                self.handle(msg)
            except HearthNetError as exc:
                self.say({"id": rid, "ev": "error", "code": exc.code, "message": exc.message, "details": exc.details})
            except Exception as exc:
                self.say({"id": rid, "ev": "error", "code": "internal", "message": f"llama.cpp: {type(exc).__name__}: {exc}", "details": {}})
            finally:
                self.cancelled.discard(rid)

    # --- the model -------------------------------------------------------------------------
    def load(self) -> Any:
        if self.llm is None:
            try:
                import llama_cpp
            except ImportError:
                raise HearthNetError("not_found", "llama-cpp-python is not installed (`hearthnet llama install`)") from None
            c = self.cfg
            self.llm = llama_cpp.Llama(model_path=c["model_path"], n_ctx=c["n_ctx"], n_threads=c["threads"], verbose=False)
        return self.llm

    def handle(self, msg: dict[str, Any]) -> None:
        op, rid = msg.get("op"), msg.get("id")
        if op == "load":
            self.say({"id": rid, "ev": "loaded", "n_ctx": self.load().n_ctx()})
        elif op == "tokenize":
            text = msg["text"]
            n = len(self.load().tokenize(text.encode("utf-8"), add_bos=False)) if text else 0
            self.say({"id": rid, "ev": "result", "count": n})
        elif op in ("chat", "complete"):
            self.generate(rid, msg)
        else:
            raise HearthNetError("bad_request", f"unknown worker op {op!r}")

    def generate(self, rid: int, msg: dict[str, Any]) -> None:
        llm = self.load()
        gen = msg["gen"]
        kw: dict[str, Any] = {"max_tokens": gen["max_tokens"], "temperature": gen["temperature"], "stop": gen.get("stop") or None}
        if gen.get("seed") is not None:
            kw["seed"] = gen["seed"]
        schema = msg.get("grammar_schema")
        if schema is not None:
            # A forced tool call: the template's prompt (and any prefix), decoded under the grammar.
            prompt = self._chat_prompt(msg["messages"]) + msg.get("prefix", "")
            tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            tokens_in = len(tokens)
            self._fit(tokens_in, kw["max_tokens"])
            it = self._constrained(rid, tokens, schema, gen)
        elif msg["op"] == "chat" and not msg.get("prefix"):
            tokens_in = sum(self._count(m["content"]) + 4 for m in msg["messages"]) + 2  # the template adds a few tokens per message
            self._fit(tokens_in, kw["max_tokens"])
            it = llm.create_chat_completion(messages=msg["messages"], stream=True, **kw)
        else:
            # A completion, or an assistant turn continued from a prefix: the chat template's
            # prompt then the text so far, generated on as plain completion.
            prompt = msg["prompt"] if msg["op"] == "complete" else self._chat_prompt(msg["messages"]) + msg["prefix"]
            tokens_in = self._count(prompt)
            self._fit(tokens_in, kw["max_tokens"])
            it = llm.create_completion(prompt=prompt, stream=True, **kw)
        t0 = time.perf_counter()
        reason, out, pending, last = "stop", 0, [], 0.0
        for chunk in it:
            if rid in self.cancelled or self.eof.is_set():
                reason = "cancelled"
                break
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content") if "delta" in choice else choice.get("text")
            if text:
                pending.append(text)
                now = time.monotonic()
                if now - last >= C.LLM_WORKER_FLUSH_SECONDS:
                    out += len(pending)
                    self.say({"id": rid, "ev": "token", "text": "".join(pending), "tokens": len(pending)})
                    pending, last = [], now
            if choice.get("finish_reason"):
                reason = choice["finish_reason"]
        if pending:
            out += len(pending)
            self.say({"id": rid, "ev": "token", "text": "".join(pending), "tokens": len(pending)})
        self.say({"id": rid, "ev": "done", "tokens_in": tokens_in, "tokens_out": out, "stop_reason": reason,
                  "ms": int((time.perf_counter() - t0) * 1000)})

    def _constrained(self, rid: int, tokens: list[int], schema: dict[str, Any], gen: dict[str, Any]) -> Any:
        """Chunks in create_completion's stream shape, from the lazily checked grammar decoder."""
        from hearthnet.services.llm.backends import llama_constrained

        for text, reason in llama_constrained.generate(self.llm, tokens, self._grammar(schema), max_tokens=gen["max_tokens"],
                                                       temperature=gen["temperature"], seed=gen.get("seed"),
                                                       stop=lambda: rid in self.cancelled or self.eof.is_set()):
            yield {"choices": [{"text": text, "finish_reason": reason}]}

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import llama_grammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self.grammars:
            try:
                g = llama_grammar.LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception:
                # A schema feature the converter lacks: any JSON, checked against the schema afterwards.
                g = llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
            if len(self.grammars) >= 16:
                self.grammars.pop(next(iter(self.grammars)))
            self.grammars[key] = g
        return self.grammars[key]

    def _count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=True))

    def _fit(self, tokens_in: int, max_tokens: int) -> None:
        n_ctx = self.llm.n_ctx()
        if tokens_in + max_tokens > n_ctx:
            raise HearthNetError("payload_too_large", f"prompt is {tokens_in} tokens + max_tokens {max_tokens}; the context holds {n_ctx}", limit=n_ctx)

    def _chat_prompt(self, messages: list[dict[str, str]]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise HearthNetError("bad_request", "this model has no chat template, so a partial answer cannot be continued")
        eos = llm._model.token_get_text(llm.token_eos())  # what the template writes at a turn's end
        bos = llm._model.token_get_text(llm.token_bos())
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=messages).prompt


def main() -> None:
    cfg = json.loads(sys.argv[1])
    # The protocol gets its own copy of stdout; fd 1 then points at stderr, so whatever the
    # C library prints cannot corrupt a protocol line.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    w = Worker(cfg, out)
    threading.Thread(target=w.read, args=(sys.stdin.buffer,), name="worker-stdin", daemon=True).start()
    w.serve()


if __name__ == "__main__":
    main()
