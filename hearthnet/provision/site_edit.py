"""`hearthnet site set HOST KEY VALUE`: change one part of the intent and re-render.

The site manifest is edited with ruamel.yaml's round trip, so the volunteer's comments
and layout stay. The edited text is validated as a whole and every host is rendered (and
so validated) before anything is written; if any of that fails, the manifest and the
rendered output both stay as they were.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from ruamel.yaml import YAML

from hearthnet.errors import HearthNetError
from hearthnet.provision.profiles import validate
from hearthnet.provision.site import Site
from hearthnet.storage import atomic_write_text, read_text

T = TypeVar("T")


def parse_value(text: str) -> Any:
    """A value as YAML: `ollama`, `true`, `3`, `{backend: ollama, model: "qwen2.5:7b"}`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HearthNetError("bad_request", f"value {text!r} is not YAML: {getattr(exc, 'problem', exc)}") from None


def edited(path: Path, host: str, key: str, value: Any) -> tuple[str, Site]:
    """The new manifest text (comments kept) and its validated Site. Nothing is written."""
    rt = YAML()  # round trip: comments, order and quoting survive
    rt.preserve_quotes = True
    rt.width = 4096
    doc = rt.load(read_text(path))
    hosts = doc.get("hosts") if hasattr(doc, "get") else None
    if not hosts or host not in hosts:
        raise HearthNetError("not_found", f"no host {host!r} in {path} (have: {', '.join(hosts or [])})")
    parts = key.split(".")
    if not all(parts):
        raise HearthNetError("bad_request", f"key {key!r}: use names joined by dots, like profile or llm.model")
    node = hosts[host]
    for p in parts[:-1]:
        if node.get(p) is None:
            node[p] = {}
        node = node[p]
        if not hasattr(node, "__setitem__"):
            raise HearthNetError("bad_request", f"hosts.{host}.{key}: {p} is not a table")
    node[parts[-1]] = value
    buf = io.StringIO()
    rt.dump(doc, buf)
    text = buf.getvalue()
    return text, validate(Site, yaml.safe_load(text), Path(path))


def set_and_render(path: Path, host: str, key: str, value: Any, render_all: Callable[[Site, str], Callable[[], T]]) -> tuple[bool, T]:
    """Edit, validate, render every host (`render_all(site, new_text)` renders and validates, returning
    the writer), then write the manifest (only when its text changed) and swap the outputs.
    Returns whether the manifest changed, and what the writer returned."""
    text, site = edited(path, host, key, value)
    write_outputs = render_all(site, text)  # raises before anything is written
    changed = text != read_text(path)
    if changed:
        atomic_write_text(Path(path), text)
    return changed, write_outputs()


__all__ = ["edited", "parse_value", "set_and_render"]
