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


NIX_STORE = "/nix/store/"


def install(home: Home, *, bundle: Path | None, exec_path: str | None, extras: list[str]) -> dict[str, Any]:
    """The wheels the box installed from (each hashed as it is on the box) and how it runs.
    A NixOS box installs no bundle: its package is the store path the executable lives in
    (the path names the hash of everything it was built from)."""
    if bundle is None and exec_path is not None and exec_path.startswith(NIX_STORE):
        store_path = NIX_STORE + exec_path[len(NIX_STORE):].split("/", 1)[0]
        return {"exec": exec_path, "extras": sorted(extras), "artifacts": {}, "store_path": store_path}
    if bundle is None:
        raise HearthNetError("bad_request", "the install phase needs --bundle DIR (the bundle the box installed from), or an --exec in /nix/store")
    wheels = bundle / "wheels"
    if not wheels.is_dir():
        raise HearthNetError("not_found", f"{bundle}: not a bundle with wheels (no {wheels})")
    return {"exec": exec_path, "extras": sorted(extras), "artifacts": {f"wheels/{k}": v for k, v in _files(wheels).items()}}


def render(home: Home, *, render_dir: Path) -> dict[str, Any]:
    from hearthnet.provision.render import FILES, INDEX_FILE

    if not (render_dir / "receipt.json").is_file():
        raise HearthNetError("not_found", f"{render_dir}: no rendered files (render-profile writes receipt.json there)")
    receipt = json.loads((render_dir / "receipt.json").read_text())
    names = list(FILES) + ([INDEX_FILE] if (render_dir / INDEX_FILE).is_file() else [])
    return {"dir": str(render_dir), "profile": receipt.get("profile"), "host": receipt.get("host"), "files": _files(render_dir, names)}


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


def readers(home: Home, *, render_dir: Path, bundle: Path | None = None, exec_path: str | None = None, extras: list[str] | None = None,
            systemctl: Callable[[str], str] | None = None) -> dict[str, Callable[[], dict[str, Any]]]:
    """phase -> how to read its section off this box now (what `record` writes and `check` compares)."""
    return {
        "install": lambda: install(home, bundle=bundle, exec_path=exec_path, extras=list(extras or [])),
        "render": lambda: render(home, render_dir=render_dir),
        "models": lambda: models(home, render_dir=render_dir),
        "community": lambda: community(home),
        "service": lambda: service(home, systemctl=systemctl),
        "corpora": lambda: corpora(home, render_dir=render_dir),
    }


def _recorded(home: Home) -> dict[str, Any]:
    path = home.data_dir / FILE
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a damaged record is replaced, not trusted
    return old if isinstance(old, dict) and old.get("version") == 1 else {}


def record(home: Home, sections: dict[str, dict[str, Any]], applied_by: str, profile: str | None = None, inputs: str | None = None) -> bool:
    """Put phases' sections into DATA_DIR/state.json (and, at the end of a whole run, the
    provisioner's fingerprint of its inputs); True when the file changed."""
    for phase in sections:
        if phase not in PHASES:
            raise HearthNetError("bad_request", f"phase {phase!r}: one of {', '.join(PHASES)}")
    if applied_by not in APPLIERS:
        raise HearthNetError("bad_request", f"--applied-by {applied_by!r}: one of {', '.join(APPLIERS)}")
    path = home.data_dir / FILE
    old = _recorded(home)
    new = {**old, "version": 1, "applied_by": applied_by, "hearthnet_version": __version__,
           "phases": {**(old.get("phases") or {}), **sections}}
    if profile is not None:
        new["profile"] = profile
    if inputs is not None:
        new["inputs"] = inputs
    text = json.dumps(new, indent=2, sort_keys=True) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    atomic_write_text(path, text, mode=0o644)
    return True


def _bundle_wheels(bundle: Path) -> dict[str, str]:
    """The wheels SHA256SUMS lists (checked with sha256sum -c when they were installed)."""
    try:
        lines = (bundle / "SHA256SUMS").read_text("utf-8").splitlines()
    except OSError:
        return {}
    pairs = (line.partition("  ")[::2] for line in lines)
    return {name: digest for digest, name in pairs if name.startswith("wheels/")}


def check(home: Home, *, inputs: str, render_dir: Path, bundle: Path, hardware_file: Path | None = None,
          unit_file: Path | None = None, systemctl: Callable[[str], str] | None = None,
          detect: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Does the record of the last whole run still hold? True when the provisioner's inputs are
    the ones recorded then, and every phase read off the box now equals its recorded section
    (the unit enabled and active, a member): a provisioner may then skip its run for this box.
    Anything missing or unreadable is a difference, never an error."""
    rec = _recorded(home)
    phases = rec.get("phases") or {}
    differs = [f"no record of phase {p}" for p in PHASES if p not in phases]
    if rec.get("inputs") != inputs:
        differs.append("the provisioner's inputs differ from the last whole run's (bundle, site, playbook or variables)")
    if not differs:
        live = readers(home, render_dir=render_dir, systemctl=systemctl)
        del live["install"]  # the installed wheels are compared with the bundle's manifest below, not rehashed
        for phase, read in live.items():
            try:
                if read() != phases[phase]:
                    differs.append(f"{phase}: the box differs from the record")
            except (HearthNetError, OSError, ValueError) as exc:
                differs.append(f"{phase}: {exc}")
        if not (phases["service"].get("enabled") and phases["service"].get("active")):
            differs.append("service: the unit was not enabled and active")
        if not phases["community"].get("member"):
            differs.append("community: not a member")
        if _bundle_wheels(bundle) != phases["install"].get("artifacts"):
            differs.append("install: the bundle's wheels differ from the ones installed")
        if hardware_file is not None:
            try:
                if json.loads(hardware_file.read_text()) != (detect or _stable_facts)():
                    differs.append(f"hardware: the box's stable facts differ from {hardware_file}")
            except (OSError, ValueError) as exc:
                differs.append(f"hardware: {exc}")
        if unit_file is not None:
            try:
                if unit_file.read_bytes() != (render_dir / "hearthnet.service").read_bytes():
                    differs.append(f"unit: {unit_file} differs from the rendered unit")
            except OSError as exc:
                differs.append(f"unit: {exc.strerror or exc}")
    try:
        node_id: str | None = home.identity().node_id
    except HearthNetError as exc:
        node_id = None
        differs.append(f"identity: {exc}")
    return {"converged": not differs, "differs": differs, "node_id": node_id, "render_files": (phases.get("render") or {}).get("files")}


def _stable_facts() -> dict[str, Any]:
    from hearthnet.provision import hardware

    return hardware.stable(hardware.detect()).model_dump(mode="json")


__all__ = ["APPLIERS", "FILE", "PHASES", "check", "readers", "community", "corpora", "install", "models", "record", "render", "service"]
