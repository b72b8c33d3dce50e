"""The model index: which model files a box may load, pinned by sha256 and size.

`profiles/models/index.json` (JSON Schema beside it) lists every model with its
sources. A model from a Python package (the embedded SmolLM2 and MiniLM) is
found through the installed package, never by a hard-coded path, and is
verified before anything loads it. Nothing is downloaded here.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from hearthnet.errors import HearthNetError
from hearthnet.storage import package_dir, read_text, sha256_of

DEFAULT_INDEX = package_dir("hearthnet.profiles") / "models" / "index.json"
SCHEMA = package_dir("hearthnet.profiles") / "models" / "index.schema.json"


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
        doc = json.loads(read_text(p, "model index"))
        schema = json.loads(SCHEMA.read_text("utf-8"))
    except ValueError as exc:
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


def find_local(sources: list[dict[str, Any]], file: str, dirs: list[Path] | None = None, tried: list[str] | None = None) -> Path | None:
    """The one model locator: the file in its installed package, else `<dir>/<file>` in the node's
    models dir (where `hearthnet models fetch` puts files); None when the box has neither. Never downloads."""
    for src in sources:
        if src.get("kind") == "package":
            p = package_path(src["package"], src["path"])
            if tried is not None:
                tried.append(f"package {src['package']}")
            if p is not None:
                return p
    for d in dirs or []:
        p = Path(d) / file
        if tried is not None:
            tried.append(str(p))
        if p.is_file():
            return p
    return None


def locate(entry: ModelEntry, dirs: list[Path] | None = None) -> Path:
    """find_local for an index entry, or not_found naming where it looked."""
    tried: list[str] = []
    p = find_local(entry.sources, entry.file, dirs, tried)
    if p is None:
        raise HearthNetError("not_found", f"model {entry.id}: no local file (looked in {', '.join(tried) or 'no local source'})", model=entry.id)
    return p


_verified: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def verify(entry: ModelEntry, path: Path) -> Path:
    """Check size and sha256 against the index (cached per path, size and mtime). Raises db_corrupt."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        known = _verified.get(key)
    if known is None:
        if st.st_size != entry.size:
            raise HearthNetError("db_corrupt", f"model {entry.id}: {path} is {st.st_size} bytes, the index pins {entry.size}", model=entry.id)
        known = sha256_of(path)
        with _lock:
            _verified[key] = known
    if known != entry.sha256:
        raise HearthNetError("db_corrupt", f"model {entry.id}: {path} does not match its pinned sha256; refusing to load it", model=entry.id)
    return path


def verified_path(model_id: str, index: Path | None = None, dirs: list[Path] | None = None) -> tuple[ModelEntry, Path]:
    entry = find(model_id, index)
    return entry, verify(entry, locate(entry, dirs))


def find(model_id: str, index: Path | None = None) -> ModelEntry:
    entries = _cached_index(str(index) if index else "")
    if model_id not in entries:
        raise HearthNetError("not_found", f"no model {model_id!r} in the model index (have: {', '.join(sorted(entries))})")
    return entries[model_id]


def add_model(file: Path, index: Path | None = None, **fields: Any) -> tuple[dict[str, Any], bool]:
    """Hash `file` and add its entry to the index (validated, written atomically).

    fields: id, family, kind, license, quantisation, context, min_ram_gb, min_vram_gb,
    provenance (where the file came from), url (upstream, optional), version, format, notes.
    The hash is always computed here, never typed in. Adding the same file under the
    same id again changes nothing (returns False); another file under a taken id is
    already_exists.
    """
    from hearthnet.storage import atomic_write_text

    p = Path(index) if index else DEFAULT_INDEX
    file = Path(file)
    if not file.is_file():
        raise HearthNetError("not_found", f"{file}: no such file")
    # A site's own index starts as the package's: its entries plus the site's.
    base = p if p.exists() or index is None else DEFAULT_INDEX
    load_index(base)  # the index must be valid before we touch it
    doc = json.loads(read_text(base, "model index"))
    size, digest = file.stat().st_size, sha256_of(file)
    fmt = fields.get("format") or ("gguf" if file.suffix.lower() == ".gguf" else "safetensors")
    from hearthnet.blobs.chunker import manifest_of_file

    # The blob CID `hearthnet file put FILE` (or `models publish`) gives it on the anchor: fetchable over the mesh.
    sources: list[dict[str, Any]] = [{"kind": "mirror", "path": file.name}, {"kind": "anchor", "cid": manifest_of_file(file, filename=file.name).cid}]
    if fields.get("url"):
        sources.append({"kind": "upstream", "url": fields["url"]})
    entry = {
        "id": fields["id"], "version": fields.get("version") or "1", "family": fields["family"], "kind": fields.get("kind") or "llm",
        "format": fmt, "file": file.name, "sha256": digest, "size": size, "license": fields["license"],
        "quantisation": fields["quantisation"], "context": fields["context"], "min_ram_gb": fields.get("min_ram_gb", 0),
        "min_vram_gb": fields.get("min_vram_gb", 0), "sources": sources,
        "provenance": {"upstream": fields["provenance"], "notes": fields.get("notes") or f"added with hearthnet models add from {file.name}"},
    }
    for old in doc["models"]:
        if old["id"] == entry["id"]:
            if old["sha256"] == digest and old["size"] == size:
                return old, False
            raise HearthNetError("already_exists", f"model {entry['id']} is already in {p} with another file (sha256 {old['sha256'][:12]}…)")
    new = {**doc, "models": [*doc["models"], entry]}
    errors = list(jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text("utf-8"))).iter_errors(new))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        raise HearthNetError("bad_request", f"model {entry['id']}: {'/'.join(str(x) for x in err.absolute_path)}: {err.message}")
    atomic_write_text(p, json.dumps(new, indent=2, ensure_ascii=False) + "\n")
    _cached_index.cache_clear()
    return entry, True


@lru_cache(maxsize=8)
def _cached_index(path: str) -> dict[str, ModelEntry]:
    return load_index(Path(path) if path else None)


__all__ = ["DEFAULT_INDEX", "add_model", "ModelEntry", "find", "find_local", "load_index", "locate", "package_path", "verified_path", "verify"]
