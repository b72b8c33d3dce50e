"""Fetching pinned model files onto a box: the network half of models.lock.json.

Fetch tries the sources in a fixed order — mirrors (directories or http(s) URLs), the
anchor's blob over the mesh, then upstream URLs only when the caller allows the internet —
streams into a temporary file beside the target while hashing, and moves the file into
place only when size and sha256 match: a box never holds a half-fetched or wrong model
under its real name.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.provision.lock import PARTIAL, Hashed, Lock, LockedModel, Progress, local_path, stat_key
from hearthnet.storage import fsync_dir, sha256_of


@dataclass
class FetchResult:
    fetched: dict[str, str] = field(default_factory=dict)  # id -> source it came from
    present: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)  # id -> what each source said
    hashed: Hashed = field(default_factory=dict)  # what this fetch hashed, for a verify right after (not on the wire)

    def as_dict(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "present": self.present, "failed": self.failed}


BlobReader = Callable[[str], AsyncIterator[bytes]]  # blob CID -> its bytes, fetched over the mesh


def _candidates(m: LockedModel, mirrors: list[str], upstream: bool, mesh: bool = False) -> list[str]:
    """Sources in order: each mirror (the file by its mirror path or name), the anchor's blob over
    the mesh (`anchor:<cid>`), then upstream URLs if allowed."""
    names = [s["path"] for s in m.sources if s.get("kind") == "mirror"] or [m.file]
    out = [f"{mirror.rstrip('/')}/{name}" for mirror in mirrors for name in dict.fromkeys(names)]
    if mesh:
        out += [f"anchor:{s['cid']}" for s in m.sources if s.get("kind") == "anchor"]
    if upstream:
        out += [s["url"] for s in m.sources if s.get("kind") == "upstream"]
    return out


async def _copy_into(src: str, tmp: Path, m: LockedModel, progress: Progress | None, blobs: BlobReader | None = None) -> None:
    """Stream one source into tmp while hashing; raise on a short, long or wrong file."""
    from hearthnet.httpclient import ServiceClient  # the one plain HTTP client

    h, size = hashlib.sha256(), 0

    def take(block: bytes, fh: Any) -> None:
        nonlocal size
        size += len(block)
        if size > m.size:
            raise HearthNetError("db_corrupt", f"{src} is longer than the {m.size} bytes the lock pins")
        h.update(block)
        fh.write(block)
        if progress:
            progress(m.id, len(block))

    with open(tmp, "wb") as fh:
        if src.startswith("anchor:") and blobs is not None:
            async for block in blobs(src.removeprefix("anchor:")):
                take(block, fh)
        elif src.startswith(("http://", "https://")):
            base, _, name = src.rpartition("/")
            client = ServiceClient(base, timeout=60)
            try:
                async for block in client.stream_bytes("/" + name):
                    take(block, fh)
            finally:
                await client.close()
        else:
            p = Path(src)
            if not p.is_file():
                raise HearthNetError("not_found", f"{src}: no such file")
            with open(p, "rb") as inp:
                while block := inp.read(1 << 20):
                    take(block, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if size != m.size or h.hexdigest() != m.sha256:
        raise HearthNetError("db_corrupt", f"{src}: {size} bytes, sha256 {h.hexdigest()[:12]}… does not match the lock")


def _room_for(models: list[LockedModel], models_dir: Path) -> None:
    """Refuse before the first byte when the disk cannot hold the files still to fetch (each lands
    in a partial file beside its final name first), rather than fill it and fail halfway."""
    if not models:
        return
    where = next(p for p in (models_dir, *models_dir.parents) if p.exists())
    free, need = shutil.disk_usage(where).free, sum(m.size for m in models) + C.MODELS_DISK_MARGIN_BYTES
    if free < need:
        raise HearthNetError("storage_error", f"{free >> 20} MB free in {where}; the {len(models)} pinned file(s) this box lacks need "
                                              f"{need >> 20} MB with {C.MODELS_DISK_MARGIN_BYTES >> 20} MB to spare: free space there, "
                                              "or pin smaller models for this host in the site")


async def fetch(lock: Lock, models_dir: Path, mirrors: list[str], *, upstream: bool = False, progress: Progress | None = None,
                blobs: BlobReader | None = None) -> FetchResult:
    """Bring every pinned file the box lacks (or has wrong) into models_dir; verified before it is moved into place."""
    res = FetchResult()
    todo = []
    for m in lock.models:
        have = local_path(m, models_dir)
        if have is not None and have.stat().st_size == m.size:
            key, digest = stat_key(have), sha256_of(have)
            res.hashed[str(have)] = (*key, digest)
            if digest == m.sha256:
                res.present.append(m.id)
                continue
        todo.append(m)
    _room_for(todo, models_dir)
    for m in todo:
        models_dir.mkdir(parents=True, exist_ok=True)
        tmp = models_dir / f"{PARTIAL}{m.file}"
        tried = []
        for src in _candidates(m, mirrors, upstream, mesh=blobs is not None):
            try:
                await _copy_into(src, tmp, m, progress, blobs)
            except HearthNetError as exc:
                tmp.unlink(missing_ok=True)  # a bad or short source leaves nothing behind
                tried.append(f"{src}: [{exc.code}] {exc.message}")
                continue
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, models_dir / m.file)
            fsync_dir(models_dir)
            res.hashed[str(models_dir / m.file)] = (*stat_key(models_dir / m.file), m.sha256)  # _copy_into checked it
            res.fetched[m.id] = src
            break
        else:
            tmp.unlink(missing_ok=True)
            res.failed[m.id] = tried or ["no source to try (no mirror given" + ("" if upstream else ", upstream not allowed") + ")"]
    return res


def fetch_sync(lock: Lock, models_dir: Path, mirrors: list[str], *, upstream: bool = False, progress: Progress | None = None,
               blobs: BlobReader | None = None) -> FetchResult:
    return asyncio.run(fetch(lock, models_dir, mirrors, upstream=upstream, progress=progress, blobs=blobs))


__all__ = ["BlobReader", "FetchResult", "fetch", "fetch_sync"]
