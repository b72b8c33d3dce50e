"""The blob store on disk: one file per chunk, named by its CID, written atomically.

    <dir>/<aa>/<hex>      a chunk or a manifest (a manifest is a chunk too)

Names come from hashes only, never from anything a peer sent, so nothing is ever
written outside `<dir>`. Every read re-hashes what it read: a bit flipped on disk is
`db_corrupt`, not served.
"""

from __future__ import annotations

from pathlib import Path

from hearthnet import constants as C
from hearthnet.blobs.chunker import BlobManifest, check_cid, chunk_blob, verify_chunk
from hearthnet.errors import HearthNetError
from hearthnet.storage import atomic_write_bytes, translate_os_errors


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, cid: str) -> Path:
        hexd = check_cid(cid).split(":", 1)[1]
        return self.root / hexd[:2] / hexd

    def has(self, cid: str) -> bool:
        return self._path(cid).is_file()

    def write_chunk(self, cid: str, data: bytes) -> None:
        verify_chunk(data, cid)  # what is stored under a CID is always what the CID names
        p = self._path(cid)
        if not p.exists():
            atomic_write_bytes(p, data)

    def read_chunk(self, cid: str) -> bytes:
        p = self._path(cid)
        try:
            with translate_os_errors(f"cannot read {p}"):
                data = p.read_bytes()
        except HearthNetError:
            if not p.exists():
                raise HearthNetError("not_found", f"no blob chunk {cid} here", cid=cid) from None
            raise
        verify_chunk(data, cid)
        return data

    def put(self, data: bytes, *, mime_type: str | None = None, filename: str | None = None,
            chunk_size: int = C.CHUNK_SIZE_BYTES) -> BlobManifest:
        """Store bytes; the returned manifest's `cid` names them. Chunks first, manifest last,
        so a manifest present means its chunks are too."""
        manifest, parts = chunk_blob(data, chunk_size=chunk_size, mime_type=mime_type, filename=filename)
        for ref, part in zip(manifest.chunks, parts, strict=True):
            self.write_chunk(ref.cid, part)
        self.write_chunk(manifest.cid, manifest.encode())
        return manifest

    def manifest(self, cid: str) -> BlobManifest:
        return BlobManifest.parse(self.read_chunk(cid), cid)

    def has_blob(self, cid: str) -> bool:
        if not self.has(cid):
            return False
        return all(self.has(c.cid) for c in self.manifest(cid).chunks)

    def get(self, cid: str) -> bytes:
        m = self.manifest(cid)
        return b"".join(self.read_chunk(c.cid) for c in m.chunks)


__all__ = ["BlobStore"]
