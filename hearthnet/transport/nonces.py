"""Nonces already seen, on disk, so a replay is refused even after a restart."""

from __future__ import annotations

import threading
from pathlib import Path

from hearthnet import clock
from hearthnet.errors import HearthNetError
from hearthnet.storage import Error as SqliteError
from hearthnet.storage import IntegrityError, connect


class NonceStore:
    def __init__(self, path: Path, keep_seconds: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, node TEXT NOT NULL, seen REAL NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS nonces_seen ON nonces(seen)")
        self.keep = keep_seconds
        self._lock = threading.Lock()
        self._inserts = 0

    def use(self, node_id: str, nonce: str) -> None:
        """Record a nonce; raise `replay` if this node used it before."""
        key = f"{node_id}|{nonce}"
        with self._lock:
            try:
                self._db.execute("INSERT INTO nonces VALUES (?, ?, ?)", (key, node_id, clock.now()))
            except IntegrityError:
                raise HearthNetError("replay", "this request (nonce) was already used") from None
            except SqliteError as exc:
                raise HearthNetError("storage_error", f"nonce store: {exc}") from None
            self._inserts += 1
            if self._inserts % 1000 == 0:
                self._db.execute("DELETE FROM nonces WHERE seen < ?", (clock.now() - self.keep,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


__all__ = ["NonceStore"]
