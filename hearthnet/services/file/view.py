"""Who offers which file, rebuilt by replaying file.cid.advertised / file.cid.unpinned.

A file is known by its blob CID; its label (filename, size, type) comes from the first
advert, later adverts only add sources. An `unpinned` event from a node removes that
node as a source; a file nobody offers any more leaves the listing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from hearthnet.events.types import Event


@dataclass
class FileEntry:
    cid: str
    filename: str | None
    size_bytes: int
    mime_type: str | None
    first_seen: str
    lamport: int
    sources: dict[str, str] = field(default_factory=dict)  # node id -> when it advertised

    def public(self) -> dict[str, Any]:
        return {"cid": self.cid, "filename": self.filename, "size_bytes": self.size_bytes, "mime_type": self.mime_type,
                "advertised_at": self.first_seen, "sources": sorted(self.sources)}


class FileView:
    name = "files"
    event_types = frozenset({"file.cid.advertised", "file.cid.unpinned"})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.files: dict[str, FileEntry] = {}

    def apply(self, ev: Event) -> None:
        d = ev.data  # checked against the file.* schemas when the event entered the log
        with self._lock:
            f = self.files.get(d["cid"])
            if ev.event_type == "file.cid.advertised":
                if f is None:
                    f = self.files[d["cid"]] = FileEntry(d["cid"], d.get("filename"), d["size_bytes"], d.get("mime_type"), ev.wall_clock, ev.lamport)
                f.sources[ev.author] = ev.wall_clock
            elif f is not None:
                f.sources.pop(ev.author, None)

    def sources(self, cid: str) -> list[str]:
        with self._lock:
            f = self.files.get(cid)
            return sorted(f.sources) if f else []

    def get(self, cid: str) -> FileEntry | None:
        with self._lock:
            return self.files.get(cid)

    def query(self, text: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        needle = (text or "").casefold()
        with self._lock:
            rows = [f for f in self.files.values() if f.sources and (not needle or needle in (f.filename or "").casefold())]
        rows.sort(key=lambda f: (-f.lamport, f.cid))
        return [f.public() for f in rows[:limit]]

    def snapshot_state(self) -> dict[str, Any]:
        with self._lock:
            return {"files": [{**f.public(), "lamport": f.lamport, "sources": f.sources} for f in self.files.values()]}

    def restore_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.files = {}
            for r in state.get("files", []):
                self.files[r["cid"]] = FileEntry(r["cid"], r["filename"], r["size_bytes"], r["mime_type"], r["advertised_at"], r["lamport"],
                                                 dict(r["sources"]))


__all__ = ["FileEntry", "FileView"]
