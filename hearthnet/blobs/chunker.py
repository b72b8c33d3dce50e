"""Blobs as chunks: a blob's CID is the CID of its manifest, which lists its chunks' CIDs.

A chunk's CID is `blake3:<hex>` of its bytes; the manifest is canonical JSON, so the
same bytes cut the same way always give the same CID on every node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.identity.canonical import blake3_hex, canonical_json

CID_RE = re.compile(r"^blake3:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ChunkRef:
    index: int
    cid: str
    size_bytes: int


@dataclass(frozen=True)
class BlobManifest:
    size_bytes: int
    chunk_size_bytes: int
    chunks: tuple[ChunkRef, ...]
    mime_type: str | None = None
    filename: str | None = None  # a label only: never used as a path

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "hearthnet.blob/1", "size_bytes": self.size_bytes, "chunk_size_bytes": self.chunk_size_bytes,
            "chunks": [[c.cid, c.size_bytes] for c in self.chunks], "mime_type": self.mime_type, "filename": self.filename,
        }

    def encode(self) -> bytes:
        return canonical_json(self.as_dict())

    @cached_property
    def cid(self) -> str:  # cached: a transfer asks for it once per chunk
        return blake3_hex(self.encode())

    @classmethod
    def parse(cls, data: bytes, expected_cid: str) -> BlobManifest:
        verify_chunk(data, expected_cid)
        if len(data) > C.BLOB_MAX_MANIFEST_BYTES:
            raise HearthNetError("payload_too_large", f"{expected_cid}: manifest of {len(data)} bytes exceeds {C.BLOB_MAX_MANIFEST_BYTES}")
        try:
            import json

            d = json.loads(data)
            if d.get("kind") != "hearthnet.blob/1":
                raise ValueError("not a blob manifest")
            chunks = tuple(ChunkRef(i, str(c), int(n)) for i, (c, n) in enumerate(d["chunks"]))
            m = cls(int(d["size_bytes"]), int(d["chunk_size_bytes"]), chunks, d.get("mime_type"), d.get("filename"))
        except (ValueError, KeyError, TypeError) as exc:
            raise HearthNetError("bad_request", f"{expected_cid} is not a blob manifest: {exc}") from None
        if (any(not CID_RE.match(c.cid) or not 0 <= c.size_bytes <= m.chunk_size_bytes for c in chunks)
                or sum(c.size_bytes for c in chunks) != m.size_bytes or not 0 < m.chunk_size_bytes <= 4 * C.CHUNK_SIZE_BYTES):
            raise HearthNetError("bad_request", f"{expected_cid}: blob manifest lists bad chunks")
        return m


def manifest_of_file(path: Any, *, filename: str | None = None, chunk_size: int = C.CHUNK_SIZE_BYTES) -> BlobManifest:
    """The manifest `file put` would give this file, computed without holding it in memory."""
    refs: list[ChunkRef] = []
    with open(path, "rb") as fh:
        while True:
            part = fh.read(chunk_size)
            if not part and refs:
                break
            refs.append(ChunkRef(len(refs), blake3_hex(part), len(part)))
            if not part:
                break
    return BlobManifest(sum(r.size_bytes for r in refs), chunk_size, tuple(refs), None, filename)


def manifest_from_dict(d: Any) -> BlobManifest:
    """A manifest sent as JSON (file.put): its CID is computed here, from its canonical form."""
    if not isinstance(d, dict):
        raise HearthNetError("bad_request", "manifest must be an object")
    try:
        data = canonical_json(d)
    except (TypeError, ValueError) as exc:
        raise HearthNetError("bad_request", f"manifest: {exc}") from None
    m = BlobManifest.parse(data, blake3_hex(data))
    if m.encode() != data:
        raise HearthNetError("bad_request", "manifest has fields or forms other than hearthnet.blob/1's")
    return m


def check_cid(cid: str) -> str:
    if not isinstance(cid, str) or not CID_RE.match(cid):
        raise HearthNetError("bad_request", f"not a CID: {str(cid)[:80]!r} (expected blake3:<64 hex>)")
    return cid


def verify_chunk(data: bytes, expected_cid: str, *, code: str = "bad_request") -> None:
    """Raise `code` unless `data` hashes to `expected_cid`: bad_request for bytes that
    arrived (a peer's or an upload's), db_corrupt for bytes read back from disk."""
    got = blake3_hex(data)
    if got != expected_cid:
        raise HearthNetError(code, f"chunk hash mismatch: expected {expected_cid}, got {got}", cid=expected_cid)


def local_name(label: str | None, cid: str) -> str:
    """Where a fetched blob may be written, from its label (a label, never a path): the label's
    last part; the CID's first hex digits when that is empty, a dot name or hidden."""
    name = (label or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return cid.split(":", 1)[1][:16] if name in ("", ".", "..") or name.startswith(".") else name[:255]


def chunk_blob(data: bytes, *, chunk_size: int = C.CHUNK_SIZE_BYTES, mime_type: str | None = None,
               filename: str | None = None) -> tuple[BlobManifest, list[memoryview]]:
    """The manifest and the chunks (views into `data`, not copies: hashing a large blob stays at blake3's speed)."""
    view = memoryview(data)
    parts = [view[i:i + chunk_size] for i in range(0, len(data), chunk_size)] or [memoryview(b"")]
    refs = tuple(ChunkRef(i, blake3_hex(p), len(p)) for i, p in enumerate(parts))
    return BlobManifest(len(data), chunk_size, refs, mime_type, filename), parts


__all__ = ["CID_RE", "BlobManifest", "ChunkRef", "check_cid", "chunk_blob", "local_name", "manifest_from_dict", "manifest_of_file", "verify_chunk"]
