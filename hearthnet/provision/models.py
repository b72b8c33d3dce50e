"""The model index: which model files a box may load, pinned by sha256 and size.

`profiles/models/index.json` (JSON Schema beside it) lists every model with its
sources. A model from a Python package (the embedded SmolLM2 and MiniLM) is
found through the installed package, never by a hard-coded path, and is
verified before anything loads it. Nothing is downloaded here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from hearthnet.errors import HearthNetError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INDEX = REPO_ROOT / "profiles" / "models" / "index.json"
SCHEMA = REPO_ROOT / "profiles" / "models" / "index.schema.json"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    kind: str
    file: str
    sha256: str
    size: int
    context: int
    quantisation: str
    family: str
    license: str
    raw: dict[str, Any]

    @property
    def sources(self) -> list[dict[str, Any]]:
        return self.raw["sources"]


def load_index(path: Path | None = None) -> dict[str, ModelEntry]:
    """Entries by id, validated against the index schema. Raises config_invalid."""
    p = Path(path) if path else DEFAULT_INDEX
    try:
        doc = json.loads(p.read_text("utf-8"))
        schema = json.loads(SCHEMA.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise HearthNetError("config_invalid", f"model index {exc.filename} not found") from None
    except (OSError, ValueError) as exc:
        raise HearthNetError("config_invalid", f"model index {p}: {exc}") from None
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if err is not None:
        where = "/".join(str(x) for x in err.absolute_path)
        raise HearthNetError("config_invalid", f"model index {p}: at /{where}: {err.message}")
    out: dict[str, ModelEntry] = {}
    for m in doc["models"]:
        if m["id"] in out:
            raise HearthNetError("config_invalid", f"model index {p}: id {m['id']} appears twice")
        out[m["id"]] = ModelEntry(m["id"], m["kind"], m["file"], m["sha256"], m["size"], m["context"], m["quantisation"], m["family"], m["license"], m)
    return out


def package_path(package: str, rel: str) -> Path | None:
    """A file shipped inside an installed package, found through the package itself."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / rel
        if p.is_file():
            return p
    return None


def locate(entry: ModelEntry, mirror_dirs: list[Path] | None = None) -> Path:
    """The local file of a model from its sources (installed package, mirror dirs).
    Raises not_found; never downloads."""
    tried = []
    for src in entry.sources:
        if src["kind"] == "package":
            p = package_path(src["package"], src["path"])
            tried.append(f"package {src['package']}")
            if p is not None:
                return p
        elif src["kind"] == "mirror":
            for d in mirror_dirs or []:
                p = Path(d) / src["path"]
                tried.append(str(p))
                if p.is_file():
                    return p
    raise HearthNetError("not_found", f"model {entry.id}: no local file (looked in {', '.join(tried) or 'no local source'})", model=entry.id)


_verified: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(entry: ModelEntry, path: Path) -> Path:
    """Check size and sha256 against the index (cached per path, size and mtime). Raises db_corrupt."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        known = _verified.get(key)
    if known is None:
        if st.st_size != entry.size:
            raise HearthNetError("db_corrupt", f"model {entry.id}: {path} is {st.st_size} bytes, the index pins {entry.size}", model=entry.id)
        known = sha256_file(path)
        with _lock:
            _verified[key] = known
    if known != entry.sha256:
        raise HearthNetError("db_corrupt", f"model {entry.id}: {path} does not match its pinned sha256; refusing to load it", model=entry.id)
    return path


def verified_path(model_id: str, index: Path | None = None) -> tuple[ModelEntry, Path]:
    entry = find(model_id, index)
    return entry, verify(entry, locate(entry))


def find(model_id: str, index: Path | None = None) -> ModelEntry:
    entries = _cached_index(str(index) if index else "")
    if model_id not in entries:
        raise HearthNetError("not_found", f"no model {model_id!r} in the model index (have: {', '.join(sorted(entries))})")
    return entries[model_id]


@lru_cache(maxsize=8)
def _cached_index(path: str) -> dict[str, ModelEntry]:
    return load_index(Path(path) if path else None)


__all__ = ["DEFAULT_INDEX", "ModelEntry", "find", "load_index", "locate", "package_path", "sha256_file", "verified_path", "verify"]
