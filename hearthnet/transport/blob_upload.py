"""Putting a local file on a node: its chunks go raw to the node's chunk endpoint (a few at a
time), then `file.put` stores, pins and (by default) advertises the manifest. The CLI's
`file put`, `models publish` and the UI's Files tab all upload through this one function."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearthnet import constants as C
from hearthnet.blobs.chunker import BlobManifest, ChunkRef
from hearthnet.blobs.transfer import CHUNK_PATH
from hearthnet.identity.canonical import blake3_hex
from hearthnet.storage import translate_os_errors
from hearthnet.transport.client import TransportClient

UPLOADS_IN_FLIGHT = 4


async def upload_file(c: TransportClient, url: str, path: Path, *, advertise: bool = True, filename: str | None = None,
                      on_bytes: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Upload `path` to the node at `url` as a blob named `filename` (default: the file's name).
    `on_bytes(n)` is told each chunk's size once the node has it. Returns file.put's answer."""
    refs: list[ChunkRef] = []
    sem = asyncio.Semaphore(UPLOADS_IN_FLIGHT)
    uploads: list[asyncio.Task[Any]] = []

    async def one(cid: str, data: bytes) -> None:
        try:
            await c.put_bytes(url, CHUNK_PATH + cid, data, timeout=120)
        finally:
            sem.release()
        if on_bytes is not None:
            on_bytes(len(data))

    with translate_os_errors(f"cannot read {path}"), path.open("rb") as fh:
        try:
            while True:
                data = fh.read(C.CHUNK_SIZE_BYTES)
                if not data and refs:
                    break
                cid = blake3_hex(data)
                refs.append(ChunkRef(len(refs), cid, len(data)))
                await sem.acquire()
                failed = next((t for t in uploads if t.done() and t.exception()), None)
                if failed is not None:
                    raise failed.exception()  # type: ignore[misc]
                uploads.append(asyncio.create_task(one(cid, data)))
                if not data:
                    break  # an empty file is one empty chunk
            await asyncio.gather(*uploads)
        finally:
            for t in uploads:
                t.cancel()
    manifest = BlobManifest(sum(r.size_bytes for r in refs), C.CHUNK_SIZE_BYTES, tuple(refs), None, filename or path.name)
    return await c.call_remote(url, "file.put", "1.0", {"manifest": manifest.as_dict(), "advertise": advertise},
                               timeout=120, trace_id="", session_id=None)


__all__ = ["UPLOADS_IN_FLIGHT", "upload_file"]
