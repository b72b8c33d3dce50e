"""One SQLite database per corpus: documents, chunks, a sqlite-vec index and an FTS5 index.

    documents(doc_cid PK, title, language, kind, metadata, chunks, tokens, bytes, ingested_at)
    chunks(id PK, doc_cid, ord, text, tokens, page, section, metadata)
    vec_chunks   vec0: embedding float[D] (cosine) + metadata columns doc_cid, language, page, section
    fts_chunks   fts5 over chunks.text (porter stemming), external content

Retrieval modes: `dense` (k nearest vectors), `keyword` (BM25) and `hybrid`, which
fuses the two rankings by weighted reciprocal rank fusion:
score = 1 / (RAG_RRF_K + dense rank) + w / (RAG_RRF_K + keyword rank), over the top
RAG_CANDIDATES of each (a ranking that misses a chunk adds nothing). RRF needs no
score calibration between cosine distances and BM25, and a chunk found by both rises
above one found by either. w = `rag.keyword_weight` (0.5): the keyword ranking also
lists chunks that share only common words with the question, so it counts half
(measured in bench_rag against w = 1, plain RRF).

A document is added in one transaction, keyed by its CID: adding it again changes
nothing, and a failure half-way leaves the corpus as it was.
"""

from __future__ import annotations

import json
import re
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.services.rag.chunker import Chunk
from hearthnet.storage import connect

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FILTER_KEYS = ("doc_cid", "language", "page", "section")
MODES = ("hybrid", "dense", "keyword")


def check_name(corpus: str) -> str:
    if not isinstance(corpus, str) or not NAME_RE.match(corpus):
        raise HearthNetError("bad_request", f"corpus name {str(corpus)[:70]!r}: use 1-64 of a-z 0-9 _ - (starting with a letter or digit)")
    return corpus


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    doc_cid: str
    title: str
    text: str
    score: float
    ord: int
    page: int | None
    section: str | None
    dense_rank: int | None
    keyword_rank: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"chunk_id": self.chunk_id, "doc_cid": self.doc_cid, "title": self.title, "text": self.text, "score": round(self.score, 6),
                "ord": self.ord, "page": self.page, "section": self.section, "dense_rank": self.dense_rank, "keyword_rank": self.keyword_rank}


def _vec(v: list[float]) -> bytes:
    return struct.pack(f"{len(v)}f", *v)


def fts_query(text: str) -> str | None:
    """A user's words as an FTS5 query: every word quoted (no operators smuggled in), OR-ed, BM25 ranks."""
    words = re.findall(r"\w+", text.lower())
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words)) or None


class CorpusStore:
    def __init__(self, path: Path, corpus: str, *, model: str, dimensions: int, create: bool = True) -> None:
        self.corpus = check_name(corpus)
        self.path = Path(path)
        if not create and not self.path.exists():
            raise HearthNetError("not_found", f"no corpus {corpus!r}", corpus=corpus)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = connect(self.path, extensions=True)
        # A vector query scans every vector: reading the pages through mmap instead of
        # SQLite's page cache halves its time at 100k chunks (bench_rag).
        self.db.execute(f"PRAGMA mmap_size={C.RAG_MMAP_BYTES}")
        self._init(model, dimensions)

    def _init(self, model: str, dimensions: int) -> None:
        with self._lock:
            have = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
            if "meta" in have:
                meta = dict(self.db.execute("SELECT key, value FROM meta"))
                if meta.get("model") != model or int(meta.get("dimensions", 0)) != dimensions:
                    raise HearthNetError("conflict", f"corpus {self.corpus} holds {meta.get('model')} vectors ({meta.get('dimensions')} dims), "
                                                     f"not {model} ({dimensions}); reindex it to change model", corpus=self.corpus)
                self.model, self.dimensions = model, dimensions
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in f"""
                    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE documents(doc_cid TEXT PRIMARY KEY, title TEXT NOT NULL, language TEXT NOT NULL, kind TEXT NOT NULL,
                        metadata TEXT NOT NULL, chunks INTEGER NOT NULL, tokens INTEGER NOT NULL, bytes INTEGER NOT NULL, ingested_at TEXT NOT NULL);
                    CREATE TABLE chunks(id INTEGER PRIMARY KEY, doc_cid TEXT NOT NULL REFERENCES documents(doc_cid) ON DELETE CASCADE,
                        ord INTEGER NOT NULL, text TEXT NOT NULL, tokens INTEGER NOT NULL, page INTEGER, section TEXT, metadata TEXT NOT NULL);
                    CREATE INDEX chunks_doc ON chunks(doc_cid, ord);
                    CREATE VIRTUAL TABLE vec_chunks USING vec0(chunk_id integer primary key, embedding float[{int(dimensions)}] distance_metric=cosine,
                        doc_cid text, language text, page integer, section text);
                    CREATE VIRTUAL TABLE fts_chunks USING fts5(text, content='chunks', content_rowid='id', tokenize='porter unicode61');
                """.split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)  # one by one: executescript would commit half-way
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", [("model", model), ("dimensions", str(dimensions)), ("corpus", self.corpus),
                                                                       ("created_at", clock.iso())])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.model, self.dimensions = model, dimensions

    # --- writing ----------------------------------------------------------------------
    def has_document(self, doc_cid: str) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM documents WHERE doc_cid = ?", (doc_cid,)).fetchone() is not None

    def add_document(self, doc_cid: str, *, title: str, language: str, kind: str, size: int, metadata: dict[str, Any],
                     chunks: list[Chunk], vectors: list[list[float]]) -> bool:
        """False when the document was there already (nothing changes)."""
        if len(chunks) != len(vectors) or any(len(v) != self.dimensions for v in vectors):
            raise HearthNetError("internal", f"{len(chunks)} chunks but {len(vectors)} vectors of the wrong size for {self.model}")
        with self._lock:
            if self.db.execute("SELECT 1 FROM documents WHERE doc_cid = ?", (doc_cid,)).fetchone():
                return False
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
                                (doc_cid, title, language, kind, json.dumps(metadata, sort_keys=True), len(chunks), sum(c.tokens for c in chunks),
                                 size, clock.iso()))
                for ord_, (ch, vec) in enumerate(zip(chunks, vectors, strict=True)):
                    page, section = ch.metadata.get("page"), ch.metadata.get("section")
                    cur = self.db.execute("INSERT INTO chunks(doc_cid, ord, text, tokens, page, section, metadata) VALUES (?,?,?,?,?,?,?)",
                                          (doc_cid, ord_, ch.text, ch.tokens, page, section, json.dumps(ch.metadata, sort_keys=True)))
                    cid = cur.lastrowid
                    self.db.execute("INSERT INTO fts_chunks(rowid, text) VALUES (?, ?)", (cid, ch.text))
                    # vec0 metadata columns take no NULL: 0 and "" stand for "no page", "no section".
                    self.db.execute("INSERT INTO vec_chunks(chunk_id, embedding, doc_cid, language, page, section) VALUES (?,?,?,?,?,?)",
                                    (cid, _vec(vec), doc_cid, language, page or 0, section or ""))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return True

    def add_vectors_raw(self, rows: list[tuple[str, str, list[float]]]) -> None:
        """(doc_cid, text, vector) rows in one transaction, for benchmarks of large corpora."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for doc_cid, text, vec in rows:
                    if not self.db.execute("SELECT 1 FROM documents WHERE doc_cid = ?", (doc_cid,)).fetchone():
                        self.db.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)", (doc_cid, doc_cid, "und", "text", "{}", 0, 0, 0, clock.iso()))
                    cid = self.db.execute("INSERT INTO chunks(doc_cid, ord, text, tokens, metadata) VALUES (?,?,?,?,?)", (doc_cid, 0, text, 0, "{}")).lastrowid
                    self.db.execute("INSERT INTO fts_chunks(rowid, text) VALUES (?, ?)", (cid, text))
                    self.db.execute("INSERT INTO vec_chunks(chunk_id, embedding, doc_cid, language, page, section) VALUES (?,?,?,?,0,'')",
                                    (cid, _vec(vec), doc_cid, "und"))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    # --- reading ----------------------------------------------------------------------
    @staticmethod
    def _check_filters(filters: dict[str, Any] | None) -> dict[str, Any]:
        filters = dict(filters or {})
        bad = sorted(set(filters) - set(FILTER_KEYS))
        if bad:
            raise HearthNetError("bad_request", f"unknown filter {bad[0]!r}; filters are {', '.join(FILTER_KEYS)}")
        return filters

    def dense(self, vector: list[float], k: int, filters: dict[str, Any] | None = None) -> list[tuple[int, float]]:
        if len(vector) != self.dimensions:
            raise HearthNetError("bad_request", f"query vector has {len(vector)} dimensions; corpus {self.corpus} has {self.dimensions}")
        f = self._check_filters(filters)
        where = "".join(f" AND {key} = ?" for key in f)
        with self._lock:
            return [(int(r[0]), float(r[1])) for r in self.db.execute(
                f"SELECT chunk_id, distance FROM vec_chunks WHERE embedding MATCH ? AND k = ?{where} ORDER BY distance", (_vec(vector), k, *f.values()))]

    def keyword(self, text: str, k: int, filters: dict[str, Any] | None = None) -> list[tuple[int, float]]:
        f = self._check_filters(filters)
        q = fts_query(text)
        if q is None:
            return []
        cols = {"doc_cid": "c.doc_cid", "language": "d.language", "page": "c.page", "section": "c.section"}
        where = "".join(f" AND {cols[key]} = ?" for key in f)
        with self._lock:
            return [(int(r[0]), float(r[1])) for r in self.db.execute(
                "SELECT c.id, bm25(fts_chunks) AS s FROM fts_chunks JOIN chunks c ON c.id = fts_chunks.rowid JOIN documents d ON d.doc_cid = c.doc_cid "
                f"WHERE fts_chunks MATCH ?{where} ORDER BY s LIMIT ?", (q, *f.values(), k))]

    def query(self, *, k: int, vector: list[float] | None = None, text: str | None = None, mode: str = "hybrid",
              filters: dict[str, Any] | None = None, keyword_weight: float = 1.0) -> list[Hit]:
        if mode not in MODES:
            raise HearthNetError("bad_request", f"mode {mode!r}: use one of {', '.join(MODES)}")
        n = max(k, C.RAG_CANDIDATES) if mode == "hybrid" else k
        dense = self.dense(vector, n, filters) if mode in ("hybrid", "dense") and vector is not None else []
        keyword = self.keyword(text or "", n, filters) if mode in ("hybrid", "keyword") else []
        d_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        k_rank = {cid: r for r, (cid, _) in enumerate(keyword, 1)}
        if mode == "dense":
            scored = [(cid, 1.0 - dist) for cid, dist in dense]
        elif mode == "keyword":
            scored = [(cid, -s) for cid, s in keyword]  # bm25() is lower-is-better
        else:
            fused: dict[int, float] = {}
            for ranks, weight in ((d_rank, 1.0), (k_rank, keyword_weight)):
                for cid, r in ranks.items():
                    fused[cid] = fused.get(cid, 0.0) + weight / (C.RAG_RRF_K + r)
            scored = sorted(fused.items(), key=lambda x: (-x[1], x[0]))
        scored = scored[:k]
        if not scored:
            return []
        ids = [cid for cid, _ in scored]
        with self._lock:
            rows = {r[0]: r for r in self.db.execute(
                f"SELECT c.id, c.doc_cid, d.title, c.text, c.ord, c.page, c.section FROM chunks c JOIN documents d ON d.doc_cid = c.doc_cid "
                f"WHERE c.id IN ({','.join('?' * len(ids))})", ids)}
        return [Hit(cid, rows[cid][1], rows[cid][2], rows[cid][3], score, rows[cid][4], rows[cid][5], rows[cid][6], d_rank.get(cid), k_rank.get(cid))
                for cid, score in scored if cid in rows]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            docs, chunks, tokens = self.db.execute("SELECT count(*), coalesce(sum(chunks), 0), coalesce(sum(tokens), 0) FROM documents").fetchone()
            langs = Counter(dict(self.db.execute("SELECT language, sum(chunks) FROM documents GROUP BY language")))
        size = sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists())
        return {"corpus": self.corpus, "documents": docs, "chunks": chunks, "tokens": tokens, "size_bytes": size,
                "language": langs.most_common(1)[0][0] if langs else None, "model": self.model, "dimensions": self.dimensions}

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT doc_cid, title, language, kind, chunks, tokens, bytes, ingested_at, metadata FROM documents "
                                   "ORDER BY ingested_at, doc_cid").fetchall()
        keys = ("doc_cid", "title", "language", "kind", "chunks", "tokens", "bytes", "ingested_at")
        return [{**dict(zip(keys, r[:8], strict=True)), "metadata": json.loads(r[8])} for r in rows]

    def close(self) -> None:
        with self._lock:
            self.db.close()


def corpus_meta(path: Path) -> dict[str, str]:
    """model and dimensions of a corpus file, without opening it as a store."""
    db = connect(path)
    try:
        return dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()


__all__ = ["FILTER_KEYS", "MODES", "CorpusStore", "Hit", "check_name", "corpus_meta", "fts_query"]
