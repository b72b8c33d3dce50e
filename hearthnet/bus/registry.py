"""The registry of capabilities the bus can route to: local ones (with handlers)
and remote ones learnt from verified peer manifests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hearthnet.bus.capability import CapabilityDescriptor, CapabilityEntry, Handler, ParamsPredicate, Version, compatible, default_params_match
from hearthnet.errors import HearthNetError


@dataclass(frozen=True)
class RegistryEvent:
    kind: str  # added | removed | updated
    entry: CapabilityEntry


class Registry:
    def __init__(self, our_node_id: str) -> None:
        self.our_node_id = our_node_id
        self._entries: dict[tuple[str, str, Version], CapabilityEntry] = {}
        self._lock = threading.RLock()
        self._listeners: list[Callable[[RegistryEvent], None]] = []

    def add_listener(self, fn: Callable[[RegistryEvent], None]) -> None:
        self._listeners.append(fn)

    def _emit(self, kind: str, entry: CapabilityEntry) -> None:
        for fn in list(self._listeners):
            fn(RegistryEvent(kind, entry))

    def register_local(self, descriptor: CapabilityDescriptor, handler: Handler, params_ok: ParamsPredicate | None = None) -> CapabilityEntry:
        key = (self.our_node_id, descriptor.name, descriptor.version)
        with self._lock:
            if key in self._entries:
                raise HearthNetError("already_exists", f"{descriptor.name}@{descriptor.version_str} is registered already")
            entry = CapabilityEntry(
                self.our_node_id, descriptor.name, descriptor.version, descriptor.spec(), True, descriptor, handler, params_ok
            )
            self._entries[key] = entry
        self._emit("added", entry)
        return entry

    def deregister_local(self, name: str, version: Version | None = None) -> bool:
        """Withdraw one of this node's capabilities; with no version, every version of that name."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == self.our_node_id and k[1] == name and version in (None, k[2])]
            gone = [self._entries.pop(k) for k in keys]
        for entry in gone:
            self._emit("removed", entry)
        return bool(gone)

    def update_peer(self, node_id: str, url: str, specs: list[dict[str, Any]]) -> tuple[int, int]:
        """Replace a peer's entries with those of its (verified) manifest. Returns (added, removed)."""
        from hearthnet.bus.capability import parse_version

        fresh: dict[tuple[str, str, Version], dict[str, Any]] = {}
        for s in specs:
            try:
                fresh[(node_id, s["name"], parse_version(s["version"]))] = s
            except (KeyError, HearthNetError):
                continue
        added, removed = [], []
        with self._lock:
            for key in [k for k in self._entries if k[0] == node_id and k not in fresh]:
                removed.append(self._entries.pop(key))
            for key, spec in fresh.items():
                cur = self._entries.get(key)
                if cur is None:
                    cur = self._entries[key] = CapabilityEntry(node_id, key[1], key[2], spec, False, url=url)
                    added.append(cur)
                else:
                    cur.spec, cur.url = spec, url
        for e in added:
            self._emit("added", e)
        for e in removed:
            self._emit("removed", e)
        return len(added), len(removed)

    def remove_peer(self, node_id: str) -> int:
        with self._lock:
            gone = [self._entries.pop(k) for k in [k for k in self._entries if k[0] == node_id]]
        for e in gone:
            self._emit("removed", e)
        return len(gone)

    def find(
        self,
        name: str,
        version_req: Version,
        params_filter: Callable[[dict[str, Any]], bool] | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[CapabilityEntry]:
        """Compatible entries. `params` (what the caller needs, e.g. {"model": ...}) is judged
        by the entry's own predicate when it registered one, else by default_params_match."""
        with self._lock:
            out = [e for e in self._entries.values() if e.name == name and compatible(e.version, version_req)]
        if params:
            out = [e for e in out if (e.params_ok or default_params_match)(params, e.params)]
        if params_filter is not None:
            out = [e for e in out if params_filter(e.params)]
        return out

    def names(self) -> set[str]:
        with self._lock:
            return {e.name for e in self._entries.values()}

    def entry(self, node_id: str, name: str, version: Version) -> CapabilityEntry | None:
        return self._entries.get((node_id, name, version))

    def local(self, name: str, version_req: Version) -> CapabilityEntry | None:
        """The best local entry for a request (highest compatible minor)."""
        with self._lock:
            cands = [e for e in self._entries.values() if e.is_local and e.name == name and compatible(e.version, version_req)]
        return max(cands, key=lambda e: e.version) if cands else None

    def all_local(self) -> list[CapabilityEntry]:
        with self._lock:
            return [e for e in self._entries.values() if e.is_local]

    def all(self) -> list[CapabilityEntry]:
        with self._lock:
            return list(self._entries.values())


__all__ = ["Registry", "RegistryEvent"]
