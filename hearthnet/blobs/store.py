"""The blob store on disk: one file per chunk, named by its CID, written atomically.

    <dir>/<aa>/<hex>      a chunk or a manifest (a manifest is a chunk too)
    <dir>/packs/<hex>     a fetched blob's chunks in one file, each at index * chunk size
    <dir>/index.db        the blobs whose manifests are here (size, label, pinned, last use)
                          and where each packed chunk lies

A fetch writes its chunks into one pack file (one file per blob is much cheaper than
one per chunk); local puts and uploads write chunk files. Reads find a chunk either way.

Names come from hashes only, never from anything a peer sent, and a shard directory
that turns out to be a symlink is refused, so nothing is ever written outside `<dir>`.
Every read re-hashes what it read: a bit flipped on disk is `db_corrupt`, not served.

Garbage collection runs only when the filesystem is fuller than the threshold. It
removes the least recently used *unpinned* blobs, then chunks no manifest names that
are older than the upload grace period, and never a chunk that a pinned blob or a
transfer in flight needs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearthnet import constants as C
from hearthnet.blobs.chunker import CID_RE, BlobManifest, ChunkRef, check_cid, chunk_blob, verify_chunk
from hearthnet.errors import HearthNetError
from hearthnet.storage import atomic_write_bytes, connect, sync_filesystem, translate_os_errors

INDEX_DB = "index.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    cid TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, chunks INTEGER NOT NULL,
    filename TEXT, mime_type TEXT, pinned INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL, last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS packed (
    chunk TEXT NOT NULL, blob TEXT NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (chunk, blob)
);
CREATE INDEX IF NOT EXISTS packed_blob ON packed(blob);
"""
PACKS = "packs"

DiskUsage = Callable[[Path], tuple[int, int]]  # (total bytes, used bytes) of the filesystem holding a path


def _disk_usage(path: Path) -> tuple[int, int]:
    u = shutil.disk_usage(path)
    return u.total, u.used


@dataclass(frozen=True)
class BlobInfo:
    cid: str
    size_bytes: int
    chunks: int
    filename: str | None
    mime_type: str | None
    pinned: bool
    added_at: float
    last_used: float

    def as_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "size_bytes": self.size_bytes, "chunks": self.chunks, "filename": self.filename,
                "mime_type": self.mime_type, "pinned": self.pinned}


@dataclass(frozen=True)
class GcReport:
    usage_before: float
    usage_after: float
    blobs_removed: int
    chunks_removed: int
    bytes_freed: int

    def as_dict(self) -> dict[str, Any]:
        return {"usage_before": round(self.usage_before, 4), "usage_after": round(self.usage_after, 4), "blobs_removed": self.blobs_removed,
                "chunks_removed": self.chunks_removed, "bytes_freed": self.bytes_freed}


class BlobStore:
    def __init__(self, root: Path, gc_threshold: float = C.BLOB_GC_DISK_THRESHOLD, *, disk_usage: DiskUsage = _disk_usage,
                 orphan_grace_seconds: float = C.BLOB_ORPHAN_GRACE_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self._clock = clock  # wall-clock seconds: last use orders GC, and orphan ages compare with file mtimes
        self.gc_threshold = gc_threshold
        self.orphan_grace_seconds = orphan_grace_seconds
        self._disk_usage = disk_usage
        self._lock = threading.RLock()
        self._db: Any = None
        self._in_flight: Counter[str] = Counter()

    # --- the index (created on the first write, so a store nobody wrote to leaves no files) ---
    def _conn(self, create: bool = True) -> Any:
        if self._db is None:
            path = self.root / INDEX_DB
            if not create and not path.exists():
                return None
            with translate_os_errors(f"cannot create {self.root}"):
                self.root.mkdir(parents=True, exist_ok=True)
            self._db = connect(path)
            self._db.executescript(SCHEMA)
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- chunks ---------------------------------------------------------------------------
    def _path(self, cid: str) -> Path:
        hexd = check_cid(cid).split(":", 1)[1]
        return self.root / hexd[:2] / hexd

    def _safe_path(self, cid: str) -> Path:
        """The chunk's path, refusing a shard directory that is a symlink (it could point anywhere)."""
        p = self._path(cid)
        if p.parent.is_symlink():
            raise HearthNetError("storage_error", f"{p.parent} is a symlink; the blob store writes only inside {self.root}")
        return p

    def has(self, cid: str) -> bool:
        return self._path(cid).is_file() or self._packed(cid) is not None

    def _packed(self, cid: str) -> tuple[str, int, int] | None:
        with self._lock:
            conn = self._conn(create=False)
            if conn is None:
                return None
            return conn.execute("SELECT blob, offset, size FROM packed WHERE chunk = ? LIMIT 1", (cid,)).fetchone()

    def _pack_path(self, blob_cid: str) -> Path:
        return self.root / PACKS / check_cid(blob_cid).split(":", 1)[1]

    def pack_writer(self, manifest: BlobManifest) -> PackWriter:
        return PackWriter(self, manifest)

    def write_chunk(self, cid: str, data: bytes | memoryview, *, verified: bool = False) -> None:
        """Store one chunk file. `verified`: the caller has just hashed `data` against `cid`."""
        if not verified:
            verify_chunk(data, cid)  # what is stored under a CID is always what the CID names
        p = self._safe_path(cid)
        if not p.is_file() or p.is_symlink():
            atomic_write_bytes(p, data)  # rename replaces a planted symlink, never writes through it

    def sync(self) -> None:
        """Make what pack writers wrote durable (one syncfs for all of it)."""
        if self.root.is_dir():
            sync_filesystem(self.root)

    def read_chunk(self, cid: str) -> bytes:
        p = self._path(cid)
        if p.is_symlink():
            raise HearthNetError("db_corrupt", f"{p} is a symlink, not a stored chunk", cid=cid)
        try:
            with translate_os_errors(f"cannot read {p}"):
                data = p.read_bytes()
        except HearthNetError:
            if p.exists():
                raise
            where = self._packed(cid)
            if where is None:
                raise HearthNetError("not_found", f"no blob chunk {cid} here", cid=cid) from None
            data = self._read_packed(cid, *where)
        verify_chunk(data, cid, code="db_corrupt")
        return data

    def _read_packed(self, cid: str, blob: str, offset: int, size: int) -> bytes:
        pack = self._pack_path(blob)
        with translate_os_errors(f"cannot read {pack}"):
            try:
                fd = os.open(pack, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                raise HearthNetError("db_corrupt", f"chunk {cid} is indexed in a pack that is gone", cid=cid) from None
            try:
                return os.pread(fd, size, offset)
            finally:
                os.close(fd)

    def delete_chunk(self, cid: str) -> bool:
        try:
            self._path(cid).unlink()
            return True
        except FileNotFoundError:
            return False

    def chunk_cids(self) -> Iterator[str]:
        """Every chunk file here (manifests included)."""
        if not self.root.is_dir():
            return
        for shard in self.root.iterdir():
            if len(shard.name) != 2 or not shard.is_dir() or shard.is_symlink():
                continue
            for f in shard.iterdir():
                cid = "blake3:" + f.name
                if CID_RE.match(cid):
                    yield cid

    # --- blobs ------------------------------------------------------------------------------
    def put(self, data: bytes, *, mime_type: str | None = None, filename: str | None = None,
            chunk_size: int = C.CHUNK_SIZE_BYTES, pin: bool = True) -> BlobManifest:
        """Store bytes; the returned manifest's `cid` names them. Chunks first, manifest last,
        so a manifest present means its chunks are too."""
        manifest, parts = chunk_blob(data, chunk_size=chunk_size, mime_type=mime_type, filename=filename)
        for ref, part in zip(manifest.chunks, parts, strict=True):
            self.write_chunk(ref.cid, part, verified=True)  # chunk_blob has just hashed it
        self.add_manifest(manifest, pin=pin)
        return manifest

    def add_manifest(self, manifest: BlobManifest, *, pin: bool = False) -> None:
        """Record a blob whose chunks are all here (checked): the manifest chunk, then its index row."""
        missing = [c.cid for c in manifest.chunks if not self.has(c.cid)]
        if missing:
            raise HearthNetError("not_found", f"{len(missing)} of the blob's {len(manifest.chunks)} chunks are not here (first {missing[0]})",
                                 missing=len(missing))
        self.write_chunk(manifest.cid, manifest.encode())
        now = self._clock()
        with self._lock:
            self._conn().execute(
                "INSERT INTO blobs(cid, size_bytes, chunks, filename, mime_type, pinned, added_at, last_used) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(cid) DO UPDATE SET pinned = MAX(pinned, excluded.pinned), last_used = excluded.last_used",
                (manifest.cid, manifest.size_bytes, len(manifest.chunks), manifest.filename, manifest.mime_type, int(pin), now, now))

    def manifest(self, cid: str) -> BlobManifest:
        return BlobManifest.parse(self.read_chunk(cid), cid)

    def has_blob(self, cid: str) -> bool:
        if not self.has(cid):
            return False
        return all(self.has(c.cid) for c in self.manifest(cid).chunks)

    def get(self, cid: str) -> bytes:
        m = self.manifest(cid)
        self.touch(cid)
        return b"".join(self.read_chunk(c.cid) for c in m.chunks)

    async def stream(self, cid: str) -> AsyncIterator[tuple[ChunkRef, bytes]]:
        """The blob's chunks in order, each re-verified, read off the event loop."""
        import asyncio

        m = await asyncio.to_thread(self.manifest, cid)
        self.touch(cid)
        for ref in m.chunks:
            yield ref, await asyncio.to_thread(self.read_chunk, ref.cid)

    def touch(self, cid: str) -> None:
        with self._lock:
            conn = self._conn(create=False)
            if conn is not None:
                conn.execute("UPDATE blobs SET last_used = ? WHERE cid = ?", (self._clock(), cid))

    def info(self, cid: str) -> BlobInfo | None:
        rows = self._rows("WHERE cid = ?", (cid,))
        return rows[0] if rows else None

    def blobs(self) -> list[BlobInfo]:
        return self._rows("ORDER BY added_at", ())

    def _rows(self, where: str, args: tuple[Any, ...]) -> list[BlobInfo]:
        with self._lock:
            conn = self._conn(create=False)
            if conn is None:
                return []
            rows = conn.execute(f"SELECT cid, size_bytes, chunks, filename, mime_type, pinned, added_at, last_used FROM blobs {where}", args).fetchall()
        return [BlobInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7]) for r in rows]

    # --- pins and transfers in flight ----------------------------------------------------------
    def pin(self, cid: str) -> None:
        if not self.has_blob(cid):
            raise HearthNetError("not_found", f"no blob {cid} here to pin")
        with self._lock:
            if self.info(cid) is None:
                self.add_manifest(self.manifest(cid), pin=True)
            self._conn().execute("UPDATE blobs SET pinned = 1 WHERE cid = ?", (cid,))

    def unpin(self, cid: str) -> bool:
        """Unpin; True when it was pinned. The data stays until a collection needs the space."""
        with self._lock:
            conn = self._conn(create=False)
            if conn is None:
                return False
            return conn.execute("UPDATE blobs SET pinned = 0 WHERE cid = ? AND pinned = 1", (cid,)).rowcount > 0

    def is_pinned(self, cid: str) -> bool:
        i = self.info(cid)
        return bool(i and i.pinned)

    @contextlib.contextmanager
    def in_flight(self, cids: Iterable[str]) -> Iterator[None]:
        """Protect these chunks from collection while a transfer or upload uses them."""
        held = list(cids)
        with self._lock:
            self._in_flight.update(held)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.subtract(held)
                self._in_flight += Counter()  # drop zero counts

    # --- garbage collection ---------------------------------------------------------------------
    def usage(self) -> float:
        total, used = self._disk_usage(self.root if self.root.exists() else self.root.parent)
        return used / total if total else 0.0

    def _size(self, cid: str) -> int:
        try:
            return self._path(cid).stat().st_size
        except FileNotFoundError:
            return 0

    def gc(self, *, force: bool = False) -> GcReport:
        """Collect when usage is above the threshold (or always with force), down to threshold - margin."""
        with self._lock:
            before = self.usage()
            if not force and before <= self.gc_threshold:
                return GcReport(before, before, 0, 0, 0)
            target = self.gc_threshold - C.BLOB_GC_TARGET_MARGIN
            total = max(1, self._disk_usage(self.root if self.root.exists() else self.root.parent)[0])
            rows = self.blobs()
            needed: dict[str, set[str]] = {}
            for b in rows:
                try:
                    needed[b.cid] = {b.cid, *(c.cid for c in self.manifest(b.cid).chunks)}
                except HearthNetError:
                    needed[b.cid] = {b.cid}  # manifest gone or damaged: only the row is left to drop
            keep: set[str] = set(self._in_flight)
            for b in rows:
                if b.pinned:
                    keep |= needed[b.cid]
            freed = blobs_removed = chunks_removed = 0

            def done() -> bool:
                return not force and before - freed / total <= target

            remaining = {b.cid for b in rows}
            for b in sorted((b for b in rows if not b.pinned and b.cid not in keep), key=lambda b: b.last_used):
                if done():
                    break
                remaining.discard(b.cid)
                still = set().union(*(needed[c] for c in remaining)) if remaining else set()
                pack = self._pack_path(b.cid)
                if pack.exists() and not (needed[b.cid] & (keep | still)) - {b.cid}:
                    freed += pack.stat().st_size
                    chunks_removed += len(needed[b.cid]) - 1
                    pack.unlink()
                    self._conn().execute("DELETE FROM packed WHERE blob = ?", (b.cid,))
                for cid in needed[b.cid] - keep - still:
                    size = self._size(cid)
                    if self.delete_chunk(cid):
                        freed += size
                        chunks_removed += 1
                self._conn().execute("DELETE FROM blobs WHERE cid = ?", (b.cid,))
                blobs_removed += 1
            if not done():  # chunks no manifest names: abandoned uploads and transfers, once their grace is over
                named = set().union(*(needed[c] for c in remaining)) if remaining else set()
                cutoff = self._clock() - self.orphan_grace_seconds
                packs = self.root / PACKS
                for pack in list(packs.iterdir()) if packs.is_dir() else []:
                    blob = "blake3:" + pack.name
                    if blob in remaining or blob in keep or pack.stat().st_mtime > cutoff:
                        continue
                    inside = {r[0] for r in self._conn().execute("SELECT chunk FROM packed WHERE blob = ?", (blob,))}
                    if inside & (named | keep):
                        continue  # another blob's only copy of a shared chunk lives here
                    freed += pack.stat().st_size
                    pack.unlink()
                    chunks_removed += self._conn().execute("DELETE FROM packed WHERE blob = ?", (blob,)).rowcount
                    if done():
                        break
                for cid in list(self.chunk_cids()):
                    if cid in named or cid in keep:
                        continue
                    p = self._path(cid)
                    with contextlib.suppress(FileNotFoundError):
                        if p.stat().st_mtime > cutoff:
                            continue
                        size = p.stat().st_size
                        p.unlink()
                        freed += size
                        chunks_removed += 1
                    if done():
                        break
            return GcReport(before, before - freed / total, blobs_removed, chunks_removed, freed)

    def total_bytes(self) -> int:
        packs = self.root / PACKS
        return sum(self._size(c) for c in self.chunk_cids()) + (sum(p.stat().st_size for p in packs.iterdir()) if packs.is_dir() else 0)


class PackWriter:
    """Writes one blob's fetched chunks into its pack file (`pwrite` at index * chunk size) and
    indexes them. Data first, index row after; `BlobStore.sync()` makes both durable before the
    manifest is written. Not thread-safe: one writer per fetch."""

    def __init__(self, store: BlobStore, manifest: BlobManifest) -> None:
        self.store, self.manifest, self.blob = store, manifest, manifest.cid
        self.path = store._pack_path(self.blob)
        self._fd: int | None = None
        self._rows: list[tuple[str, str, int, int]] = []

    def write(self, ref: ChunkRef, data: bytes | memoryview) -> None:
        if self._fd is None:
            with translate_os_errors(f"cannot create {self.path}"):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.parent.is_symlink():
                    raise HearthNetError("storage_error", f"{self.path.parent} is a symlink; the blob store writes only inside {self.store.root}")
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        offset = ref.index * self.manifest.chunk_size_bytes
        with translate_os_errors(f"cannot write {self.path}"):
            view = memoryview(data)
            while view:
                view = view[os.pwrite(self._fd, view, offset + len(data) - len(view)):]
        self._rows.append((ref.cid, self.blob, offset, ref.size_bytes))

    def flush(self) -> None:
        """Index the chunks written since the last flush (one transaction)."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        with self.store._lock:
            conn = self.store._conn()
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO packed(chunk, blob, offset, size) VALUES (?,?,?,?)", rows)
            conn.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_stale_temp(root: Path, older_than_seconds: float = 3600) -> int:
    """Temp files of writes that never finished (a crash mid-write); atomic writes leave no other debris."""
    n = 0
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    for f in root.glob("*/.*.tmp"):
        with contextlib.suppress(OSError):
            if f.stat().st_mtime < cutoff:
                os.unlink(f)
                n += 1
    return n


__all__ = ["BlobInfo", "BlobStore", "GcReport", "PackWriter", "remove_stale_temp"]
