"""Node-local API keys for the gateway.

`DATA_DIR/apikeys.json` (0600) holds, per key, an id, a name, the SHA-256 of the key and
its creation and revocation times; the key itself is shown once, at creation, and never
stored. Keys are 32 random bytes, so a plain hash is enough (no slow KDF needed against
guessing). The running node re-reads the file when it changes, so `hearthnet apikey
create|revoke` take effect at once without a restart.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hearthnet import clock
from hearthnet.errors import HearthNetError
from hearthnet.storage import atomic_write_text

PREFIX = "hn_"
FILE = "apikeys.json"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at, "revoked_at": self.revoked_at}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, ApiKey] = {}

    def _read(self) -> list[ApiKey]:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
            return [ApiKey(**k) for k in doc["keys"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HearthNetError("db_corrupt", f"{self.path}: not an API key file ({type(exc).__name__}); move it away to start over") from None

    def _write(self, keys: list[ApiKey]) -> None:
        atomic_write_text(self.path, json.dumps({"version": 1, "keys": [asdict(k) for k in keys]}, indent=2) + "\n", mode=0o600)

    def list(self) -> list[ApiKey]:
        return self._read()

    def create(self, name: str) -> tuple[ApiKey, str]:
        name = name.strip()
        if not name or len(name) > 64:
            raise HearthNetError("bad_request", "a key name is 1-64 characters")
        with self._lock:
            keys = self._read()
            if any(k.name == name and k.active for k in keys):
                raise HearthNetError("already_exists", f"an active key named {name!r} exists; revoke it or choose another name")
            secret = PREFIX + secrets.token_urlsafe(32)
            key = ApiKey("key_" + secrets.token_hex(4), name, _digest(secret), clock.iso())
            self._write([*keys, key])
        return key, secret

    def revoke(self, id_or_name: str) -> ApiKey:
        with self._lock:
            keys = self._read()
            hits = [k for k in keys if k.active and id_or_name in (k.id, k.name)]
            if not hits:
                raise HearthNetError("not_found", f"no active key {id_or_name!r}")
            done = ApiKey(hits[0].id, hits[0].name, hits[0].sha256, hits[0].created_at, clock.iso())
            self._write([done if k.id == done.id else k for k in keys])
        return done

    def check(self, secret: str) -> ApiKey:
        """The active key this secret is, or `unauthorized`."""
        with self._lock:
            try:
                st = self.path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp != self._stamp:  # created or revoked since: reload
                self._by_hash = {k.sha256: k for k in self._read() if k.active}
                self._stamp = stamp
            key = self._by_hash.get(_digest(secret)) if secret.startswith(PREFIX) else None
        if key is None:
            raise HearthNetError("unauthorized", "unknown or revoked API key")
        return key


__all__ = ["ApiKey", "ApiKeyStore"]
