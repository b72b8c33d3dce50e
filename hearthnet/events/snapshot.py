"""Signed snapshots of the materialised views, so a restart need not replay everything.

A snapshot records the views' state, the log position it covers, the highest
row id it had seen and the log's status epoch. Restoring checks all three: if a
valid event arrived later but sorts before the position (out-of-order
arrival), or statuses changed since (revocation, fork), the snapshot is stale and
the engine rebuilds from the log instead. Files are written atomically and
signed by the node, so a tampered file is ignored, not trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.events.log import EventLog
from hearthnet.events.replay import ReplayEngine
from hearthnet.identity.canonical import parse_json
from hearthnet.identity.envelope import Signed, open_signed, seal
from hearthnet.identity.keys import KeyPair
from hearthnet.storage import atomic_write_text, translate_os_errors

_NAME = re.compile(r"^snapshot-(\d{12})-(\d{12})\.json$")


@dataclass(frozen=True, slots=True)
class Snapshot:
    schema_version: int
    community_id: str
    lamport: int
    position: tuple[int, str, str]
    covers_rowid: int
    status_epoch: int
    wall_clock: str
    state: dict[str, Any]
    signer: str
    envelope: Signed


def build_snapshot(log: EventLog, engine: ReplayEngine, kp: KeyPair) -> Signed:
    """Sign the engine's current state. Call after `engine.catch_up()`."""
    with engine._lock:
        body = {
            "schema_version": C.SNAPSHOT_SCHEMA_VERSION,
            "community_id": log.community_id,
            "lamport": engine.position[0],
            "position": list(engine.position),
            "covers_rowid": log.max_rowid(),
            "status_epoch": log.status_epoch,
            "wall_clock": clock.iso(),
            "state": engine.snapshot_state(),
            "signer": kp.node_id,
        }
    return seal(body, kp, C.SIGN_DOMAIN_SNAPSHOT)


def parse_snapshot(envelope: Any, *, community_id: str, trusted_signers: set[str]) -> Snapshot:
    obj, env = open_signed(envelope, C.SIGN_DOMAIN_SNAPSHOT, "signer", max_bytes=1 << 30, what="snapshot")
    if obj.get("signer") not in trusted_signers:
        raise HearthNetError("forbidden", "snapshot signed by a key this node does not trust")
    if obj.get("community_id") != community_id:
        raise HearthNetError("wrong_community", "snapshot belongs to another community")
    try:
        return Snapshot(
            obj["schema_version"], obj["community_id"], obj["lamport"], tuple(obj["position"]), obj["covers_rowid"],
            obj["status_epoch"], obj["wall_clock"], obj["state"], obj["signer"], env,
        )
    except (KeyError, TypeError) as exc:
        raise HearthNetError("bad_request", f"snapshot is missing {exc}") from None


class SnapshotStore:
    def __init__(self, dir_path: Path, community_id: str) -> None:
        self.dir = Path(dir_path)
        self.community_id = community_id

    def _files(self) -> list[tuple[int, int, Path]]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.iterdir():
            m = _NAME.match(p.name)
            if m:
                out.append((int(m.group(1)), int(m.group(2)), p))
        return sorted(out)

    def write(self, signed: Signed) -> Path:
        obj = parse_json(signed.payload, what="snapshot")
        path = self.dir / f"snapshot-{obj['lamport']:012d}-{obj['covers_rowid']:012d}.json"
        atomic_write_text(path, json.dumps(signed.as_dict(), ensure_ascii=False), mode=0o600)
        return path

    def list(self) -> list[int]:
        return [lamport for lamport, _, _ in self._files()]

    def latest(self, trusted_signers: set[str]) -> Snapshot | None:
        """The newest snapshot that parses and verifies; broken files are skipped."""
        for _, _, path in reversed(self._files()):
            try:
                return parse_snapshot(parse_json(path.read_bytes(), what=str(path)), community_id=self.community_id, trusted_signers=trusted_signers)
            except (HearthNetError, OSError):
                continue
        return None

    def prune(self, keep_last_n: int = C.SNAPSHOTS_KEEP) -> int:
        files = self._files()
        doomed = files[: max(0, len(files) - keep_last_n)]
        with translate_os_errors("cannot prune snapshots"):
            for _, _, p in doomed:
                p.unlink(missing_ok=True)
        return len(doomed)


def restore_from_snapshot(snap: Snapshot, engine: ReplayEngine, log: EventLog) -> bool:
    """Restore the engine from `snap` and catch up. False (and a full rebuild) when stale."""
    stale = snap.status_epoch != log.status_epoch or log.valid_inserted_before(snap.covers_rowid, snap.position)
    if stale:
        engine.rebuild_all()
        return False
    try:
        engine.restore_state(snap.state)
    except (KeyError, TypeError, ValueError):
        engine.rebuild_all()
        return False
    engine.catch_up()
    return True


__all__ = ["Snapshot", "SnapshotStore", "build_snapshot", "parse_snapshot", "restore_from_snapshot"]
