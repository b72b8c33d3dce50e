"""models.lock.json on a box: what it pins, and verifying what is there (fetching what is not: provision.actions.fetch).

A lock entry pins one file (id, file, sha256, size, sources). A box keeps fetched files
in its models dir (`[models] dir`, DATA_DIR/models) by file name; packaged models stay in
their Python package. Verification rehashes every pinned file and reports missing,
mismatched and extra files separately. Fetch tries the sources in a fixed order —
mirrors (directories or http(s) URLs), then upstream URLs only when the caller allows the
internet — streams into a temporary file beside the target while hashing, and moves the
file into place only when size and sha256 match: a box never holds a half-fetched or
wrong model under its real name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hearthnet.errors import HearthNetError
from hearthnet.provision.models import find_local
from hearthnet.provision.profiles import load_yaml, validate
from hearthnet.storage import atomic_file, sha256_of, translate_os_errors

PARTIAL = ".partial-"
Progress = Callable[[str, int], None]  # (model id, bytes just done)


class LockedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: str
    file: str = Field(pattern=r"^[^/\\]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1)
    sources: list[dict[str, Any]] = Field(min_length=1)


class Lock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(1, ge=1, le=1)
    models: list[LockedModel]


def load_lock(path: Path) -> Lock:
    return validate(Lock, load_yaml(path), Path(path))  # JSON is YAML: one loader, one error style


def local_path(m: LockedModel, models_dir: Path) -> Path | None:
    """Where the box has this file: its package, else the models dir; None when it has neither."""
    return find_local(m.sources, m.file, [models_dir])


@dataclass
class Report:
    ok: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    bytes_hashed: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.mismatched or self.extra)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "missing": self.missing, "mismatched": self.mismatched, "extra": self.extra, "bytes_hashed": self.bytes_hashed}


# str(path) -> (size, mtime_ns, sha256) of a file hashed moments ago (by fetch, in the same call).
Hashed = dict[str, tuple[int, int, str]]


def stat_key(p: Path) -> tuple[int, int]:
    st = p.stat()
    return st.st_size, st.st_mtime_ns


def verify_lock(lock: Lock, models_dir: Path, progress: Progress | None = None, workers: int | None = None,
                hashed: Hashed | None = None) -> Report:
    """Rehash every pinned file (several at once) against the lock. A file in `hashed` whose size and
    mtime are unchanged is judged by that digest: `models fetch --verify` reads each model once, not twice."""
    rep = Report()
    todo: list[tuple[LockedModel, Path]] = []
    for m in lock.models:
        p = local_path(m, models_dir)
        if p is None:
            rep.missing.append(m.id)
        elif p.stat().st_size != m.size:
            rep.mismatched.append({"id": m.id, "path": str(p), "reason": f"{p.stat().st_size} bytes, the lock pins {m.size}"})
        elif (known := (hashed or {}).get(str(p))) is not None and known[:2] == stat_key(p):
            if known[2] == m.sha256:
                rep.ok.append(m.id)
            else:
                rep.mismatched.append({"id": m.id, "path": str(p), "reason": "sha256 differs from the lock"})
        else:
            todo.append((m, p))

    def one(item: tuple[LockedModel, Path]) -> tuple[LockedModel, Path, str]:
        m, p = item
        return m, p, sha256_of(p, (lambda n: progress(m.id, n)) if progress else None)

    with ThreadPoolExecutor(max_workers=workers or min(len(todo), os.cpu_count() or 1) or 1) as pool:
        for m, p, digest in pool.map(one, todo):
            rep.bytes_hashed += m.size
            if digest == m.sha256:
                rep.ok.append(m.id)
            else:
                rep.mismatched.append({"id": m.id, "path": str(p), "reason": "sha256 differs from the lock"})
    pinned = {m.file for m in lock.models}
    if models_dir.is_dir():
        rep.extra = sorted(str(p) for p in models_dir.iterdir() if p.is_file() and p.name not in pinned and not p.name.startswith(PARTIAL))
    return rep


def copy_verified(m: LockedModel, src: Path, dest_dir: Path) -> Path:
    """Copy one pinned file into dest_dir (bundles), verifying the copy, atomically."""
    h = hashlib.sha256()
    size = 0
    with atomic_file(dest_dir / m.file) as out, translate_os_errors(f"cannot copy {src}"), open(src, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            out.write(block)
            size += len(block)
        if size != m.size or h.hexdigest() != m.sha256:  # checked on the bytes written: the copy is what it claims
            raise HearthNetError("db_corrupt", f"model {m.id}: {src} does not match the lock; not bundled")
    return dest_dir / m.file


__all__ = ["PARTIAL", "Hashed", "Lock", "LockedModel", "Progress", "Report", "copy_verified", "load_lock", "local_path", "stat_key", "verify_lock"]
