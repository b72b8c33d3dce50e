"""rag.query@1.0, rag.ingest@1.0 and rag.list_corpora@1.0.

Ingest: the document's bytes go into the blob store (its CID names it), are chunked to
the embedder's length, embedded through the bus (`embed.text` with the corpus's model
in params, so a node without a model uses a peer's), stored in the corpus in one
transaction, and a signed `rag.document.ingested` event is appended. Streamed, it
reports progress frames. Ingesting the same bytes again changes nothing.

Query: the question is embedded through the bus the same way and the corpus answers
hybrid (default), dense or keyword rankings (see store.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from hearthnet import constants as C
from hearthnet.blobs.chunker import check_cid, chunk_blob
from hearthnet.blobs.store import BlobStore
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.config import RagConfig
from hearthnet.errors import HearthNetError
from hearthnet.bus.capability import Capabilities
from hearthnet.services.rag.chunker import Splitter, chunk_document, kind_of, splitter_for
from hearthnet.services.rag.store import FILTER_KEYS, MODES, NAME_RE, CorpusStore, check_name, corpus_meta

EMBED_BATCH = 32
_CORPUS = {"type": "string", "pattern": NAME_RE.pattern}
QUERY_REQUEST = {
    "type": "object",
    "properties": {
        "corpus": _CORPUS,
        "query": {"type": "string", "minLength": 1, "maxLength": 4000},
        "k": {"type": "integer", "minimum": 1},
        "mode": {"enum": list(MODES)},
        "filters": {"type": "object", "properties": {k: {"type": ["string", "integer"]} for k in FILTER_KEYS}, "additionalProperties": False},
    },
    "required": ["corpus", "query"],
    "additionalProperties": False,
}
HIT = {
    "type": "object",
    "properties": {"chunk_id": {"type": "integer"}, "doc_cid": {"type": "string"}, "title": {"type": "string"}, "text": {"type": "string"},
                   "score": {"type": "number"}, "page": {"type": ["integer", "null"]}, "section": {"type": ["string", "null"]}},
    "required": ["chunk_id", "doc_cid", "title", "text", "score"],
}
QUERY_RESPONSE = {
    "type": "object",
    "properties": {"corpus": {"type": "string"}, "mode": {"type": "string"}, "model": {"type": "string"}, "hits": {"type": "array", "items": HIT},
                   "ms": {"type": "integer"}},
    "required": ["corpus", "hits"],
}
INGEST_REQUEST = {
    "type": "object",
    "properties": {
        "corpus": _CORPUS,
        "data_b64": {"type": "string", "minLength": 1},
        "doc_cid": {"type": "string", "pattern": "^blake3:[0-9a-f]{64}$"},
        "filename": {"type": "string", "maxLength": 255},
        "title": {"type": "string", "maxLength": 300},
        "language": {"type": "string", "pattern": "^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$"},
        "metadata": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}, "maxProperties": 32},
    },
    "required": ["corpus"],
    "oneOf": [{"required": ["data_b64"]}, {"required": ["doc_cid"]}],
    "additionalProperties": False,
}
INGEST_RESPONSE = {
    "type": "object",
    "properties": {"corpus": {"type": "string"}, "doc_cid": {"type": "string"}, "added": {"type": "boolean"}, "chunks_indexed": {"type": "integer"},
                   "tokens_indexed": {"type": "integer"}, "event_id": {"type": ["string", "null"]}, "ms": {"type": "integer"}},
    "required": ["corpus", "doc_cid", "added", "chunks_indexed"],
}
INGEST_FRAME = {
    "type": "object",
    "properties": {"event": {"enum": ["progress", "done"]}, "data": {"type": "object"}},
    "required": ["event", "data"],
}
LIST_RESPONSE = {"type": "object", "properties": {"corpora": {"type": "array"}}, "required": ["corpora"]}


class RagService:
    name = "rag"

    def __init__(self, config: RagConfig, corpora_dir: Path, *, bus: Any, blobs: BlobStore, append_event: Callable[[str, dict[str, Any]], Any],
                 embed_model: str, embed_dims: int, embed_max_tokens: int, tokenizer_file: Path | None,
                 embed_timeout: float = C.EMBED_TIMEOUT_SECONDS) -> None:
        self.config = config
        self.dir = Path(corpora_dir)
        self.bus = bus
        self.blobs = blobs
        self.append_event = append_event  # signs and appends to the community log; returns the event
        self.model, self.dims = embed_model, embed_dims
        self.embed_timeout = embed_timeout
        self.splitter: Splitter = splitter_for(embed_max_tokens, tokenizer_file)
        self._stores: dict[str, CorpusStore] = {}
        self._ingest_lock = asyncio.Lock()  # one ingest at a time: they share the embedder anyway

    # --- corpora --------------------------------------------------------------------
    def corpus_names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.db") if NAME_RE.match(p.stem))

    def store(self, corpus: str, *, create: bool = False) -> CorpusStore:
        check_name(corpus)
        s = self._stores.get(corpus)
        if s is None:
            path = self.dir / f"{corpus}.db"
            if not create and not path.exists():
                raise HearthNetError("not_found", f"no corpus {corpus!r} on this node (have: {', '.join(self.corpus_names()) or 'none'})", corpus=corpus)
            s = self._stores[corpus] = CorpusStore(path, corpus, model=self.model, dimensions=self.dims)
        return s

    # --- capabilities --------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        corpora = self.corpus_names()
        common = {"embedding_model": self.model}
        return [
            (CapabilityDescriptor("rag.query", (1, 0), QUERY_REQUEST, QUERY_RESPONSE, params={**common, "corpora": corpora, "k_max": self.config.max_k},
                                  max_concurrent=8, timeout_seconds=60, idempotent=True), self._query, None),
            (CapabilityDescriptor("rag.ingest", (1, 0), INGEST_REQUEST, INGEST_RESPONSE, INGEST_FRAME, params={**common, "corpora_available": corpora},
                                  max_concurrent=2, trust_required="trusted", timeout_seconds=self.config.ingest_timeout_seconds),
             self._ingest_handler, None),
            (CapabilityDescriptor("rag.list_corpora", (1, 0), {"type": "object", "additionalProperties": False}, LIST_RESPONSE,
                                  max_concurrent=8, timeout_seconds=30, idempotent=True), self._list, None),
            # Rebuilding a corpus is the box owner's business: only the node itself may ask.
            (CapabilityDescriptor("rag.reindex", (1, 0), {"type": "object", "properties": {"corpus": _CORPUS}, "required": ["corpus"],
                                                          "additionalProperties": False},
                                  {"type": "object"}, max_concurrent=1, trust_required="self", timeout_seconds=3600),
             lambda body, ctx: self.reindex(body["corpus"]), None),
        ]

    def _refresh_registration(self) -> None:
        """A new corpus changes the params peers route by: re-register (bumps the manifest revision)."""
        for d, handler, ok in self.capabilities():
            if d.name in ("rag.query", "rag.ingest"):
                self.bus.registry.deregister_local(d.name, d.version)
                self.bus.register(d, handler, ok)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), EMBED_BATCH):
            r = await self.bus.call("embed.text", (1, 0), {"texts": texts[i:i + EMBED_BATCH], "model": self.model}, params={"model": self.model},
                                    timeout=self.embed_timeout)
            out += r["vectors"]
        return out

    async def _query(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        t0 = time.perf_counter()
        k = body.get("k", self.config.default_k)
        if k > self.config.max_k:
            raise HearthNetError("bad_request", f"k={k} is above this node's maximum of {self.config.max_k}", limit=self.config.max_k)
        store = self.store(body["corpus"])
        mode = body.get("mode", "hybrid")
        vector = (await self.embed([body["query"]]))[0] if mode != "keyword" else None
        hits = await asyncio.to_thread(store.query, k=k, vector=vector, text=body["query"], mode=mode, filters=body.get("filters"),
                                       keyword_weight=self.config.keyword_weight)
        return {"corpus": store.corpus, "mode": mode, "model": self.model, "hits": [h.as_dict() for h in hits], "ms": int((time.perf_counter() - t0) * 1000)}

    async def _list(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        out = []
        for name in self.corpus_names():
            try:
                out.append(await asyncio.to_thread(self.store(name).stats))
            except HearthNetError as exc:  # a corpus of another model: listed, flagged
                meta = corpus_meta(self.dir / f"{name}.db")
                out.append({"corpus": name, "model": meta.get("model"), "dimensions": int(meta.get("dimensions", 0)), "error": exc.code})
        return {"corpora": out}

    # --- ingest -------------------------------------------------------------------------
    def _ingest_handler(self, body: dict[str, Any], ctx: CallContext) -> Any:
        return self._ingest_stream(body) if ctx.stream else self._ingest_unary(body)

    async def _ingest_unary(self, body: dict[str, Any]) -> dict[str, Any]:
        async for frame in self._ingest_stream(body):
            if frame["event"] == "done":
                return frame["data"]
        raise HearthNetError("internal", "ingest ended without a result")

    async def _ingest_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        t0 = time.perf_counter()
        corpus = check_name(body["corpus"])
        manifest = None
        if "data_b64" in body:
            try:
                data = base64.b64decode(body["data_b64"], validate=True)
            except (binascii.Error, ValueError):
                raise HearthNetError("bad_request", "data_b64 is not base64") from None
            filename = body.get("filename")
            doc_cid = chunk_blob(data, filename=filename, mime_type=_mime(kind_of(data, filename)))[0].cid
        else:
            doc_cid = check_cid(body["doc_cid"])
            manifest = await asyncio.to_thread(self.blobs.manifest, doc_cid)
            data = await asyncio.to_thread(self.blobs.get, doc_cid)
            filename = body.get("filename") or manifest.filename
        # Order matters: check, chunk and embed first; store blob, chunks and event only when all of that worked.
        chunks = await asyncio.to_thread(chunk_document, data, self.splitter, filename=filename)
        title = body.get("title") or filename or doc_cid[:19]
        language = body.get("language", "und")
        async with self._ingest_lock:
            new_corpus = not (self.dir / f"{corpus}.db").exists()
            if not new_corpus and self.store(corpus).has_document(doc_cid):
                yield {"event": "done", "data": {"corpus": corpus, "doc_cid": doc_cid, "added": False, "chunks_indexed": 0, "tokens_indexed": 0,
                                                 "event_id": None, "ms": int((time.perf_counter() - t0) * 1000)}}
                return
            yield {"event": "progress", "data": {"stage": "chunked", "done": 0, "total": len(chunks)}}
            vectors: list[list[float]] = []
            for i in range(0, len(chunks), EMBED_BATCH):
                vectors += await self.embed([c.text for c in chunks[i:i + EMBED_BATCH]])
                yield {"event": "progress", "data": {"stage": "embedded", "done": len(vectors), "total": len(chunks)}}
            kind = kind_of(data, filename)
            if manifest is None:
                await asyncio.to_thread(self.blobs.put, data, filename=filename, mime_type=_mime(kind))
            store = self.store(corpus, create=True)
            added = await asyncio.to_thread(store.add_document, doc_cid, title=title, language=language, kind=kind, size=len(data),
                                            metadata=dict(body.get("metadata") or {}), chunks=chunks, vectors=vectors)
            tokens = sum(c.tokens for c in chunks)
            event_id = None
            if added:
                ev = self.append_event("rag.document.ingested", {"corpus": corpus, "doc_cid": doc_cid, "title": title, "language": language, "kind": kind,
                                                                 "bytes": len(data), "chunks": len(chunks), "tokens": tokens, "embedding_model": self.model})
                event_id = getattr(ev, "event_id", None)
            if new_corpus:
                self._refresh_registration()
        yield {"event": "done", "data": {"corpus": corpus, "doc_cid": doc_cid, "added": added, "chunks_indexed": len(chunks) if added else 0,
                                         "tokens_indexed": tokens if added else 0, "event_id": event_id, "ms": int((time.perf_counter() - t0) * 1000)}}

    async def reindex(self, corpus: str) -> dict[str, Any]:
        """Rebuild a corpus from the blobs its documents came from (after a model or chunker change)."""
        async with self._ingest_lock:
            return await self._reindex(corpus)

    async def _reindex(self, corpus: str) -> dict[str, Any]:
        path = self.dir / f"{check_name(corpus)}.db"
        if not path.exists():
            raise HearthNetError("not_found", f"no corpus {corpus!r} on this node", corpus=corpus)
        old = self._stores.pop(corpus, None) or CorpusStore(path, corpus, model=corpus_meta(path).get("model", ""),
                                                           dimensions=int(corpus_meta(path).get("dimensions", 0)))
        docs = old.documents()
        old.close()
        tmp = self.dir / f".{corpus}.reindex.db"
        for p in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            p.unlink(missing_ok=True)
        new = CorpusStore(tmp, corpus, model=self.model, dimensions=self.dims)
        try:
            for d in docs:
                data = await asyncio.to_thread(self.blobs.get, d["doc_cid"])
                # The kind decides the chunker (Markdown by sections); a PDF is known by its bytes.
                chunks = await asyncio.to_thread(chunk_document, data, self.splitter, filename="document.md" if d["kind"] == "markdown" else None)
                vectors = await self.embed([c.text for c in chunks])
                await asyncio.to_thread(new.add_document, d["doc_cid"], title=d["title"], language=d["language"], kind=d["kind"], size=d["bytes"],
                                        metadata=d["metadata"], chunks=chunks, vectors=vectors)
        finally:
            new.close()
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        tmp.replace(path)  # the old corpus stays whole until the new one is complete
        return self.store(corpus).stats()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for s in self._stores.values():
            s.close()
        self._stores.clear()


def _mime(kind: str) -> str:
    return {"pdf": "application/pdf", "markdown": "text/markdown", "text": "text/plain"}[kind]


__all__ = ["INGEST_REQUEST", "QUERY_REQUEST", "RagService"]
