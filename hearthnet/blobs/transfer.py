"""Fetching a blob from peers: many sources in parallel, every chunk verified before it is written.

A fetch reads the manifest from the first source that has it (verified against the
CID asked for), then spreads the chunks it lacks over all sources, a few requests in
flight per source. A chunk that arrives with the wrong hash, or too many bytes, marks
its source bad for the rest of the fetch and goes to another source; a source that
lacks a chunk is simply not asked for it again. Chunks already here are not fetched
again, so a fetch that was interrupted resumes where it stopped. The manifest is
written last: until then the blob does not exist here, only protected chunks do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearthnet import constants as C
from hearthnet.blobs.chunker import BlobManifest, ChunkRef, check_cid, verify_chunk
from hearthnet.blobs.store import BlobStore
from hearthnet.errors import HearthNetError

CHUNK_PATH = "/blobs/v1/chunk/"
BATCH_PATH = "/blobs/v1/chunks?cids="
Progress = Callable[[int, int, int], None]  # (chunks done, chunks total, bytes fetched)


@dataclass(frozen=True)
class Source:
    node_id: str
    url: str


@dataclass
class FetchReport:
    cid: str
    size_bytes: int = 0
    chunks: int = 0
    already_had: int = 0
    fetched: int = 0
    bytes_fetched: int = 0
    ms: float = 0.0
    by_source: dict[str, int] = field(default_factory=dict)
    bad_sources: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"cid": self.cid, "size_bytes": self.size_bytes, "chunks": self.chunks, "already_had": self.already_had, "fetched": self.fetched,
                "bytes_fetched": self.bytes_fetched, "ms": round(self.ms, 1), "by_source": self.by_source, "bad_sources": self.bad_sources}


class _Fetch:
    """The state of one blob fetch: which chunks wait, which sources are still trusted."""

    def __init__(self, mgr: TransferManager, manifest: BlobManifest, todo: list[ChunkRef], sources: list[Source], report: FetchReport,
                 progress: Progress | None) -> None:
        self.mgr, self.manifest, self.report, self.progress = mgr, manifest, report, progress
        self.pending: list[ChunkRef] = list(todo)
        self.busy = 0
        self.lacks: dict[str, set[str]] = {s.node_id: set() for s in sources}  # source -> chunk CIDs it does not have
        self.failures: dict[str, int] = {s.node_id: 0 for s in sources}
        self.live: dict[str, Source] = {s.node_id: s for s in sources}
        self.failed: dict[str, HearthNetError] = {}  # chunk CID -> why no source could give it
        self.changed = asyncio.Condition()
        self.pack = mgr.store.pack_writer(manifest)
        self.fatal: BaseException | None = None  # our own failure (the disk): every worker stops

    def _eligible(self, src: Source) -> list[ChunkRef]:
        """The next chunks for this source: up to a batch, fewer near the end so every source keeps busy."""
        workers = max(1, len(self.live) * self.mgr.concurrency)
        want = max(1, min(C.BLOB_BATCH_MAX_CHUNKS, -(-len(self.pending) // workers)))
        lacks = self.lacks[src.node_id]
        take = [i for i, ref in enumerate(self.pending) if ref.cid not in lacks][:want]
        picked = [self.pending[i] for i in take]
        for i in reversed(take):
            del self.pending[i]
        return picked

    def _orphaned(self) -> None:
        """Chunks that no live source may still have: the fetch cannot finish them."""
        keep = []
        for ref in self.pending:
            if all(ref.cid in self.lacks[n] for n in self.live):
                self.failed.setdefault(ref.cid, HearthNetError("not_found", f"no source has chunk {ref.index} ({ref.cid})"))
            else:
                keep.append(ref)
        self.pending = keep

    async def worker(self, src: Source) -> None:
        while True:
            async with self.changed:
                while True:
                    if src.node_id not in self.live or self.fatal is not None:
                        return
                    refs = self._eligible(src)
                    if refs:
                        self.busy += 1
                        break
                    if not self.pending and self.busy == 0:
                        return
                    await self.changed.wait()  # a chunk in flight elsewhere may fail and come back
            try:
                left = await self._batch(src, refs)
            except BaseException as exc:
                async with self.changed:
                    self.busy -= 1
                    self.fatal = self.fatal or exc
                    self.changed.notify_all()
                raise
            async with self.changed:
                self.busy -= 1
                if left:
                    self.pending.extend(left)
                    self._orphaned()
                self.changed.notify_all()

    async def _batch(self, src: Source, refs: list[ChunkRef]) -> list[ChunkRef]:
        """Fetch these chunks from one source in one streamed request, verifying and writing each
        as soon as its bytes are in; returns the ones still to get."""
        mgr = self.mgr
        total = sum(r.size_bytes for r in refs)
        path = CHUNK_PATH + refs[0].cid if len(refs) == 1 else BATCH_PATH + ",".join(r.cid for r in refs)
        buf = bytearray()
        done = 0
        try:
            async for block in mgr.client.iter_bytes(src.url, path, max_bytes=total, timeout=mgr.chunk_timeout):
                buf += block
                n = self._take(src, refs[done:], buf)
                if n < 0:
                    return refs[done:]  # a chunk hashed wrong: the source is dropped, the rest goes elsewhere
                done += n
        except HearthNetError as exc:
            if exc.code == "storage_error":
                raise  # our disk refused the write: not the source's fault, and the fetch cannot go on
            missing = set(exc.details.get("missing") or []) if exc.code == "not_found" and len(refs) > 1 else None
            if missing is not None and missing < {r.cid for r in refs[done:]}:
                self.lacks[src.node_id].update(missing)  # it has the others: they stay eligible for it
            else:
                for ref in refs[done:]:
                    self._blame(src, ref, exc)
            return refs[done:]
        finally:
            self.pack.flush()  # index what this request brought (one transaction per request)
        if done < len(refs):
            # The answer ended short: ask for the next chunk alone to learn why (damaged copy, gone, or a cut).
            got = await self._single(src, refs[done])
            return refs[done + got:]
        return []

    def _take(self, src: Source, refs: list[ChunkRef], buf: bytearray) -> int:
        """Verify and store every whole chunk at the front of `buf`; -1 if one is wrong."""
        n = off = 0
        view = memoryview(buf)
        try:
            while n < len(refs) and len(buf) - off >= refs[n].size_bytes:
                ref = refs[n]
                with view[off:off + ref.size_bytes] as part:
                    try:
                        verify_chunk(part, ref.cid)
                    except HearthNetError as exc:
                        self._blame(src, ref, exc)
                        self._count(src, n)
                        return -1
                    self.pack.write(ref, part)  # into the page cache: cheaper here than a thread hop
                off += ref.size_bytes
                n += 1
        finally:
            view.release()
        del buf[:off]
        self._count(src, n, sum(r.size_bytes for r in refs[:n]))
        return n

    def _count(self, src: Source, n: int, nbytes: int = 0) -> None:
        if not n:
            return
        r = self.report
        r.fetched += n
        r.bytes_fetched += nbytes
        r.by_source[src.node_id] = r.by_source.get(src.node_id, 0) + n
        if self.progress:
            self.progress(r.already_had + r.fetched, r.chunks, r.bytes_fetched)

    async def _single(self, src: Source, ref: ChunkRef) -> int:
        """Fetch one chunk alone; 1 when it is now here, 0 when the source was blamed."""
        try:
            data = await self.mgr.client.get_bytes(src.url, CHUNK_PATH + ref.cid, max_bytes=ref.size_bytes, timeout=self.mgr.chunk_timeout)
            verify_chunk(data, ref.cid)
        except HearthNetError as exc:
            self._blame(src, ref, exc)
            return 0
        self.pack.write(ref, data)
        self.pack.flush()
        self._count(src, 1, len(data))
        return 1

    def _blame(self, src: Source, ref: ChunkRef, exc: HearthNetError) -> None:
        self.lacks[src.node_id].add(ref.cid)
        if src.node_id not in self.live:
            return  # dropped already: this was one of its requests still in flight
        if exc.code == "not_found":
            return  # it just does not have this chunk: ask another
        entry = {"node_id": src.node_id, "url": src.url, "chunk": str(ref.index), "code": exc.code, "message": exc.message[:200]}
        if exc.code == "db_corrupt":
            self.report.bad_sources.append(entry)  # its copy of this chunk is damaged; its other chunks may be fine
            return
        # Wrong bytes (bad_request), too many (payload_too_large), no longer admitted,
        # or failed again and again: stop asking it.
        self.failures[src.node_id] += 1
        lying = exc.code in ("bad_request", "payload_too_large")
        if lying or self.failures[src.node_id] >= C.BLOB_SOURCE_MAX_FAILURES or exc.code in ("not_member", "revoked", "forbidden"):
            self.live.pop(src.node_id, None)
            self.report.bad_sources.append(entry)


class TransferManager:
    def __init__(self, store: BlobStore, client: Any, *, concurrency: int = C.BLOB_FETCH_CONCURRENCY, chunk_timeout: float = 60.0) -> None:
        self.store = store
        self.client = client  # hearthnet.transport.client.TransportClient
        self.concurrency = concurrency
        self.chunk_timeout = chunk_timeout
        self._running: dict[str, asyncio.Future[FetchReport]] = {}

    async def fetch(self, cid: str, sources: list[Source], *, pin: bool = False, progress: Progress | None = None) -> FetchReport:
        """Fetch blob `cid` into the store (one fetch per CID at a time; a second caller waits for the first)."""
        check_cid(cid)
        running = self._running.get(cid)
        if running is not None:
            return await asyncio.shield(running)
        fut: asyncio.Future[FetchReport] = asyncio.get_running_loop().create_future()
        self._running[cid] = fut
        try:
            report = await self._fetch(cid, sources, pin, progress)
            fut.set_result(report)
            return report
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: a fetch nobody else waited for is not "never retrieved"
            raise
        finally:
            self._running.pop(cid, None)

    def _intact(self, cid: str) -> bool:
        """Here and whole: a chunk written by a fetch that a crash interrupted may not be (it is fetched again)."""
        if not self.store.has(cid):
            return False
        try:
            self.store.read_chunk(cid)
            return True
        except HearthNetError:
            return False

    async def _manifest(self, cid: str, sources: list[Source], report: FetchReport) -> BlobManifest:
        if self.store.has(cid):
            return await asyncio.to_thread(self.store.manifest, cid)
        last: HearthNetError | None = None
        for src in sources:
            try:
                data = await self.client.get_bytes(src.url, CHUNK_PATH + cid, max_bytes=C.BLOB_MAX_MANIFEST_BYTES, timeout=self.chunk_timeout)
                return BlobManifest.parse(data, cid)
            except HearthNetError as exc:
                last = exc
                if exc.code != "not_found":
                    report.bad_sources.append({"node_id": src.node_id, "url": src.url, "chunk": "manifest", "code": exc.code, "message": exc.message[:200]})
        if last is None:
            raise HearthNetError("not_found", f"no source to fetch {cid} from (no live peer advertises it)")
        raise HearthNetError("not_found" if last.code == "not_found" else "partition",
                             f"no source gave the manifest of {cid}: {last.code}: {last.message}", sources=len(sources))

    async def _fetch(self, cid: str, sources: list[Source], pin: bool, progress: Progress | None) -> FetchReport:
        t0 = time.perf_counter()
        report = FetchReport(cid)
        manifest = await self._manifest(cid, sources, report)
        report.size_bytes, report.chunks = manifest.size_bytes, len(manifest.chunks)
        seen: set[str] = set()
        unique = []
        for ref in manifest.chunks:
            if ref.cid not in seen:  # the same bytes twice in a file: fetched once
                seen.add(ref.cid)
                unique.append(ref)
        present = await asyncio.to_thread(lambda: [self._intact(ref.cid) for ref in unique])
        todo = [ref for ref, here in zip(unique, present, strict=True) if not here]
        report.already_had += len(unique) - len(todo)
        report.already_had += len(manifest.chunks) - len(seen)
        with self.store.in_flight([cid, *seen]):
            if todo:
                if not sources:
                    raise HearthNetError("not_found", f"{cid}: {len(todo)} chunks missing and no source to fetch them from")
                job = _Fetch(self, manifest, todo, sources, report, progress)
                workers = [asyncio.ensure_future(job.worker(s)) for s in sources for _ in range(self.concurrency)]
                try:
                    await asyncio.gather(*workers)
                except BaseException:
                    # One worker failed (our disk) or the fetch was cancelled: stop the others and wait
                    # for them, so none writes into the pack after it is closed or outlives the fetch.
                    for w in workers:
                        w.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
                    raise
                finally:
                    job.pack.close()
                if job.failed or job.pending:
                    n = len(job.failed) + len(job.pending)
                    why = next(iter(job.failed.values()), None)
                    code = "partition" if report.bad_sources else "not_found"
                    raise HearthNetError(code, f"{cid}: {n} of {report.chunks} chunks could not be fetched"
                                         + (f" ({why.message})" if why else "") + "; fetch again to resume",
                                         missing=n, bad_sources=report.bad_sources)
            await asyncio.to_thread(self.store.sync)  # chunks durable before the manifest says the blob is here
            await asyncio.to_thread(self.store.add_manifest, manifest, pin=pin)
        report.ms = (time.perf_counter() - t0) * 1000
        return report


__all__ = ["CHUNK_PATH", "FetchReport", "Source", "TransferManager"]
