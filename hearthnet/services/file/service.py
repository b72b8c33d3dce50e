"""file.read / file.list / file.advertise / file.put / file.fetch / file.unpin.

Bytes between nodes travel on the raw chunk endpoint (`/blobs/v1/chunk/{cid}`), not in
these calls: `file.put` names a manifest whose chunks were uploaded there, `file.fetch`
pulls a blob's chunks from the nodes that advertise it. `file.read` streams a blob this
node holds as base64 frames, for callers that want the bytes through the bus (the UI).

Trust: reading and listing are for members; putting a file on someone's box is for
trusted members; what a node advertises, fetches or unpins is its own business (self).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

from hearthnet.blobs.chunker import manifest_from_dict
from hearthnet.blobs.store import BlobStore
from hearthnet.blobs.transfer import Source, TransferManager
from hearthnet.bus.capability import CallContext, CapabilityDescriptor
from hearthnet.errors import HearthNetError
from hearthnet.events.types import Event
from hearthnet.bus.capability import Capabilities
from hearthnet.services.file.view import FileView

_CID = {"type": "string", "pattern": "^blake3:[0-9a-f]{64}$"}
_NODE = {"type": "string", "pattern": "^ed25519:[A-Za-z0-9_-]{43}$"}
CID_REQUEST = {"type": "object", "additionalProperties": False, "required": ["cid"], "properties": {"cid": _CID}}
READ_FRAME = {"type": "object"}
LIST_REQUEST = {"type": "object", "additionalProperties": False, "properties": {
    "query": {"type": "string", "maxLength": 200}, "local_only": {"type": "boolean"}, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}}
PUT_REQUEST = {"type": "object", "additionalProperties": False, "required": ["manifest"], "properties": {
    "manifest": {"type": "object"}, "pin": {"type": "boolean"}, "advertise": {"type": "boolean"}}}
FETCH_REQUEST = {"type": "object", "additionalProperties": False, "required": ["cid"], "properties": {
    "cid": _CID, "sources": {"type": "array", "items": _NODE, "maxItems": 64}, "pin": {"type": "boolean"}}}
UNARY_READ_MAX = 768 * 1024  # a whole file in one JSON answer stays under the 1 MiB body limit once base64'd

AppendEvent = Callable[[str, dict[str, Any]], Event]
SourcesFor = Callable[[str, list[str] | None], list[Source]]


class FileService:
    name = "file"

    def __init__(self, store: BlobStore, view: FileView, transfer: TransferManager, append_event: AppendEvent, node_id: str,
                 sources_for: SourcesFor, hidden: Callable[[str, str], bool] | None = None) -> None:
        self.store, self.view, self.transfer = store, view, transfer
        self.append_event, self.node_id, self.sources_for = append_event, node_id, sources_for
        self.hidden = hidden or (lambda kind, target: False)  # moderation: hidden adverts leave the listing

    def capabilities(self) -> Capabilities:
        return [
            (CapabilityDescriptor("file.read", (1, 0), CID_REQUEST, {"type": "object"}, READ_FRAME, max_concurrent=8, timeout_seconds=600,
                                  idempotent=True), self._read, None),
            (CapabilityDescriptor("file.list", (1, 0), LIST_REQUEST, {"type": "object", "required": ["files"]}, max_concurrent=16,
                                  timeout_seconds=30, idempotent=True), self._list, None),
            (CapabilityDescriptor("file.advertise", (1, 0), CID_REQUEST, {"type": "object", "required": ["cid"]}, max_concurrent=4,
                                  trust_required="self", timeout_seconds=30), self._advertise, None),
            (CapabilityDescriptor("file.put", (1, 0), PUT_REQUEST, {"type": "object", "required": ["cid"]}, max_concurrent=4,
                                  trust_required="trusted", timeout_seconds=120), self._put, None),
            (CapabilityDescriptor("file.fetch", (1, 0), FETCH_REQUEST, {"type": "object", "required": ["cid"]}, {"type": "object"},
                                  max_concurrent=4, trust_required="self", timeout_seconds=3600), self._fetch, None),
            (CapabilityDescriptor("file.unpin", (1, 0), CID_REQUEST, {"type": "object", "required": ["cid"]}, max_concurrent=4,
                                  trust_required="self", timeout_seconds=30), self._unpin, None),
        ]

    # --- reading ------------------------------------------------------------------------
    def _read(self, body: dict[str, Any], ctx: CallContext) -> Any:
        return self._read_stream(body["cid"]) if ctx.stream else self._read_unary(body["cid"])

    def _describe(self, cid: str) -> dict[str, Any]:
        if not self.store.has_blob(cid):
            raise HearthNetError("not_found", f"no file {cid} on this node (file.fetch it first, or ask a node that advertises it)")
        m = self.store.manifest(cid)
        return {"cid": cid, "size_bytes": m.size_bytes, "chunks": len(m.chunks), "filename": m.filename, "mime_type": m.mime_type}

    async def _read_unary(self, cid: str) -> dict[str, Any]:
        head = self._describe(cid)
        if head["size_bytes"] > UNARY_READ_MAX:
            raise HearthNetError("payload_too_large", f"{cid} is {head['size_bytes']} bytes; read it as a stream (or fetch it)", limit=UNARY_READ_MAX)
        data = b"".join([part async for _, part in self.store.stream(cid)])
        return {**head, "data_b64": base64.b64encode(data).decode()}

    async def _read_stream(self, cid: str) -> AsyncIterator[dict[str, Any]]:
        head = self._describe(cid)
        yield {"event": "manifest", "data": head}
        async for ref, part in self.store.stream(cid):
            yield {"event": "chunk", "data": {"index": ref.index, "cid": ref.cid, "data_b64": base64.b64encode(part).decode()}}
        yield {"event": "done", "data": {"cid": cid, "size_bytes": head["size_bytes"]}}

    async def _list(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        limit = body.get("limit", 200)
        local = {b.cid: b for b in self.store.blobs()}
        rows = []
        for f in self.view.query(body.get("query"), limit=10_000):
            b = local.pop(f["cid"], None)
            if self.hidden("file", f["cid"]) and b is None:
                continue  # hidden from the mesh listing; a copy this node holds is still its own to see
            rows.append({**f, "local": b is not None, "pinned": bool(b and b.pinned)})
        needle = (body.get("query") or "").casefold()
        for b in local.values():  # here but not advertised (cached fetches, RAG documents)
            if not needle or needle in (b.filename or "").casefold():
                rows.append({**b.as_dict(), "advertised_at": None, "sources": [], "local": True})
        if body.get("local_only"):
            rows = [r for r in rows if r["local"]]
        return {"files": rows[:limit]}

    # --- changing what this node holds and offers ---------------------------------------------
    async def _advertise(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return self.advertise(body["cid"])

    def advertise(self, cid: str) -> dict[str, Any]:
        head = self._describe(cid)
        if self.node_id in self.view.sources(cid):
            return {"cid": cid, "event_id": None, "already": True}
        ev = self.append_event("file.cid.advertised", {"cid": cid, "size_bytes": head["size_bytes"], "filename": _label(head["filename"]),
                                                       "mime_type": (head["mime_type"] or None) and head["mime_type"][:127]})
        return {"cid": cid, "event_id": ev.event_id, "already": False}

    async def _put(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        m = manifest_from_dict(body["manifest"])
        with self.store.in_flight([c.cid for c in m.chunks]):
            self.store.add_manifest(m, pin=body.get("pin", True))
        out: dict[str, Any] = {"cid": m.cid, "size_bytes": m.size_bytes, "chunks": len(m.chunks), "event_id": None}
        if body.get("advertise", True):
            out["event_id"] = self.advertise(m.cid)["event_id"]
        return out

    async def _fetch(self, body: dict[str, Any], ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        cid = body["cid"]
        sources = self.sources_for(cid, body.get("sources"))
        updates: list[tuple[int, int, int]] = []

        # Progress is reported every few chunks: a frame per 256 KiB chunk would cost more than the chunk.
        def progress(done: int, total: int, nbytes: int) -> None:
            updates.append((done, total, nbytes))

        task = asyncio.ensure_future(self.transfer.fetch(cid, sources, pin=body.get("pin", False), progress=progress))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.25)
                if updates:
                    done, total, nbytes = updates[-1]
                    updates.clear()
                    yield {"event": "progress", "data": {"done": done, "total": total, "bytes": nbytes}}
            report = task.result()
        finally:
            if not task.done():
                task.cancel()
        await asyncio.to_thread(self.store.gc)  # a large fetch may have pushed the disk past the threshold (cheap when not)
        yield {"event": "done", "data": report.as_dict()}

    async def _unpin(self, body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        cid = body["cid"]
        if self.store.info(cid) is None and self.node_id not in self.view.sources(cid):
            raise HearthNetError("not_found", f"no file {cid} on this node")
        was = self.store.unpin(cid)
        event_id = None
        if self.node_id in self.view.sources(cid):
            event_id = self.append_event("file.cid.unpinned", {"cid": cid}).event_id  # others stop asking us for it
        return {"cid": cid, "unpinned": was, "event_id": event_id}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def _label(name: str | None) -> str | None:
    """A filename as a label: its last path part, at most 255 characters. Never used as a path."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:255] or None


__all__ = ["FileService"]
