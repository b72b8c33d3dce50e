"""The expected-state record a provisioner leaves on a box: DATA_DIR/state.json.

One section per phase (install, render, models, community, service, corpora), each
overwritten when its phase runs, never appended, so the file says what the last run
found. Ansible's roles and the NixOS module both write it through `hearthnet state
record`, so the two paths leave the same record (format: docs/provisioning.md,
"The state record"). Every section is read off the box itself — hashes of the
files there, the unit as systemd reports it, membership from the event log — not
copied from what the provisioner meant to do.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearthnet import __version__
from hearthnet.errors import HearthNetError
from hearthnet.home import Home
from hearthnet.provision.lock import load_lock, local_path
from hearthnet.storage import atomic_write_text, sha256_of

FILE = "state.json"
PHASES = ("install", "render", "models", "community", "service", "corpora")
APPLIERS = ("ansible", "nixos", "manual")
UNIT = "hearthnet.service"


def _files(root: Path, names: list[str] | None = None) -> dict[str, str]:
    paths = [root / n for n in names] if names is not None else sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): sha256_of(p) for p in paths}


def install(home: Home, *, bundle: Path | None, exec_path: str | None, extras: list[str]) -> dict[str, Any]:
    """The wheels the box installed from (each hashed as it is on the box) and how it runs."""
    if bundle is None:
        raise HearthNetError("bad_request", "the install phase needs --bundle DIR (the bundle the box installed from)")
    wheels = bundle / "wheels"
    if not wheels.is_dir():
        raise HearthNetError("not_found", f"{bundle}: not a bundle with wheels (no {wheels})")
    return {"exec": exec_path, "extras": sorted(extras), "artifacts": {f"wheels/{k}": v for k, v in _files(wheels).items()}}


def render(home: Home, *, render_dir: Path) -> dict[str, Any]:
    from hearthnet.provision.render import FILES

    if not (render_dir / "receipt.json").is_file():
        raise HearthNetError("not_found", f"{render_dir}: no rendered files (render-profile writes receipt.json there)")
    receipt = json.loads((render_dir / "receipt.json").read_text())
    return {"dir": str(render_dir), "profile": receipt.get("profile"), "host": receipt.get("host"), "files": _files(render_dir, list(FILES))}


def models(home: Home, *, render_dir: Path) -> dict[str, Any]:
    lk = load_lock(render_dir / "models.lock.json")
    models_dir = home.config.path(home.config.models.dir)
    out = {}
    for m in lk.models:
        p = local_path(m, models_dir)
        out[m.id] = {"file": m.file, "sha256": sha256_of(p) if p is not None else None}
    return {"models": out}


def community(home: Home) -> dict[str, Any]:
    node_id = home.identity().node_id
    if home.community_id is None:
        return {"node_id": node_id, "community_id": None, "member": False, "level": None}
    with home.open_log() as log:
        st = log.membership
        return {"node_id": node_id, "community_id": home.community_id, "name": st.name, "member": st.is_member(node_id), "level": st.level_of(node_id)}


def service(home: Home, *, systemctl: Callable[[str], str] | None = None) -> dict[str, Any]:
    def ask(verb: str) -> str:
        p = subprocess.run(["systemctl", verb, UNIT], capture_output=True, text=True, timeout=30)
        return p.stdout.strip() or "unknown"

    ask_ = systemctl or ask
    return {"unit": UNIT, "enabled": ask_("is-enabled") == "enabled", "active": ask_("is-active") == "active"}


def corpora(home: Home, *, render_dir: Path) -> dict[str, Any]:
    from hearthnet.provision.corpora import load_plan

    plan = load_plan(render_dir / "corpora.json")
    return {"corpora": sorted(c.corpus for c in plan.corpora if c.sources)}


def record(home: Home, phase: str, applied_by: str, section: dict[str, Any], profile: str | None = None) -> bool:
    """Put one phase's section into DATA_DIR/state.json; True when the file changed."""
    if phase not in PHASES:
        raise HearthNetError("bad_request", f"phase {phase!r}: one of {', '.join(PHASES)}")
    if applied_by not in APPLIERS:
        raise HearthNetError("bad_request", f"--applied-by {applied_by!r}: one of {', '.join(APPLIERS)}")
    path = home.data_dir / FILE
    old: dict[str, Any] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}  # a damaged record is replaced, not trusted
        if not isinstance(old, dict) or old.get("version") != 1:
            old = {}
    new = {**old, "version": 1, "applied_by": applied_by, "hearthnet_version": __version__,
           "phases": {**(old.get("phases") or {}), phase: section}}
    if profile is not None:
        new["profile"] = profile
    text = json.dumps(new, indent=2, sort_keys=True) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    atomic_write_text(path, text, mode=0o644)
    return True


__all__ = ["APPLIERS", "FILE", "PHASES", "community", "corpora", "install", "models", "record", "render", "service"]
