"""The one renderer: effective profile -> the files of one box.

    hearthnet.toml      the node config (validated through the real config loader)
    models.lock.json    pinned model files: id, file, sha256, size, sources
    corpora.json        the corpus seeding plan for this box
    bootstrap.json      create the community (anchor) or redeem this host's invite
    hearthnet.service   systemd unit: prod with the hardening baseline, dev as a user unit
    receipt.json        tool version, mode, and the sha256 of every input and output
                        (a --settings file is an input: its keys are merged over the config)
    models.index.json   the site's own model index, when it has one (the config points at it)

Pure: the same inputs give the same bytes (no timestamps, sorted keys, only the rounded
hardware subset). Atomic: everything is rendered and validated in a temporary directory
beside the target, then swapped in; on any error the previous output is untouched.
The CLI, the Ansible role and the NixOS module all call this.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import tomlkit

from hearthnet import __version__, config
from hearthnet.errors import HearthNetError
from hearthnet.provision import corpora, models
from hearthnet.provision.effective import Effective, effective
from hearthnet.provision.hardware import HardwareFacts, load_facts, render_facts
from hearthnet.provision.hardware import detect as detect_hardware
from hearthnet.provision.profiles import NAMES, PROFILES_DIR, load_profile
from hearthnet.provision.site import Site, model_index

TEMPLATES = Path(__file__).resolve().parent / "templates"
FILES = ("hearthnet.toml", "models.lock.json", "corpora.json", "bootstrap.json", "hearthnet.service", "receipt.json")
INDEX_FILE = "models.index.json"  # only when the site has its own model index
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                          autoescape=False)
# JSON strings and arrays of strings are valid TOML: one quoting rule for every value that comes from a manifest.
_ENV.filters["q"] = lambda v: json.dumps(v, ensure_ascii=False)


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _disabled(eff: Effective) -> list[str]:
    v = eff.values
    off = []
    if v["llm"] is None and not v["llm.internet"]:
        off += ["llm.chat", "llm.complete"]
    if not v["services.embedding"]:
        off.append("embed.text")
    if not v["services.rag"]:
        off += ["rag.ingest", "rag.list_corpora", "rag.query", "rag.reindex"]
    return off


_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_PATH_RE = re.compile(r"/[A-Za-z0-9._+@/-]*")  # a path a unit file can hold unquoted: no spaces, no %, no newlines


@dataclass(frozen=True)
class Install:
    """How the box runs what is rendered: the executable, the system user (None: systemd's
    DynamicUser) and the directory the rendered files live in there (the unit's --config).
    The Ansible roles pass a venv's executable and a static user, the NixOS module a store
    path; all three go into the receipt."""

    exec: str = "/usr/bin/hearthnet"
    user: str | None = None
    config_dir: str = "/etc/hearthnet"

    def __post_init__(self) -> None:
        for what, value in (("--exec", self.exec), ("--config-dir", self.config_dir)):
            if not _PATH_RE.fullmatch(value) or "/../" in f"{value}/":
                raise HearthNetError("bad_request", f"{what} {value!r}: an absolute path without spaces, '%' or '..' is needed (it goes into a systemd unit)")
        if self.user is not None and (not _USER_RE.fullmatch(self.user) or self.user == "root"):
            raise HearthNetError("bad_request", f"--user {self.user!r}: a system user name other than root (lowercase letters, digits, _ and -)")

    def as_dict(self) -> dict[str, Any]:
        return {"exec": self.exec, "user": self.user, "config_dir": self.config_dir}


def load_settings(path: Path) -> dict[str, Any]:
    """A --settings file: config tables merged over the rendered config (the NixOS module's
    `settings`, an Ansible host's `hearthnet_settings`). TOML, or JSON when the name ends in
    .json (what a provisioner without a TOML writer hands over). Its errors name the file."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise HearthNetError("config_invalid", f"cannot read settings file {path}: {exc.strerror}", file=str(path)) from None
        except ValueError as exc:
            raise HearthNetError("config_invalid", f"{path}: not valid JSON: {exc}", file=str(path)) from None
        if not isinstance(data, dict):
            raise HearthNetError("config_invalid", f"{path}: a JSON object of config sections is needed", file=str(path))
    else:
        data = config.read_file(path, required=True)
    unknown = sorted(set(data) - set(config.SECTIONS))
    if unknown:
        raise HearthNetError("config_invalid", f"{path}: unknown config section(s) {', '.join(unknown)} (have: {', '.join(config.SECTIONS)})",
                             file=str(path))
    config.check_table(data, path)
    return data


def _merge(table: Any, over: dict[str, Any]) -> None:
    """Merge `over` into a tomlkit table in place: tables merge key by key, anything else replaces."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(table.get(k), dict):
            _merge(table[k], v)
        else:
            table[k] = v


def with_settings(toml_text: str, settings: dict[str, Any] | None) -> str:
    """The rendered config with the settings merged over it (comments and order kept)."""
    if not settings:
        return toml_text
    doc = tomlkit.parse(toml_text)
    _merge(doc, settings)
    return tomlkit.dumps(doc)


def render_files(eff: Effective, *, site: Site | None = None, inputs: dict[str, bytes] | None = None, index: Path | None = None,
                 install: Install = Install(), settings: dict[str, Any] | None = None) -> dict[str, bytes]:
    """Every output file's bytes. `inputs` (name -> bytes) are hashed into the receipt."""
    v = eff.values
    backends = ([v["llm"]] if v["llm"] else []) + list(v["llm.internet"])
    anchor = eff.profile == "anchor"
    ctx = {
        "version": __version__, "host": eff.host, "profile": eff.profile, "mode": eff.mode,
        "display_name": eff.host or eff.profile, "listen": "127.0.0.1" if eff.mode == "dev" else "0.0.0.0", "port": 7080,
        "discovery": v["discovery"], "static_peers": [] if anchor or site is None else list(site.bootstrap),
        "disabled": _disabled(eff), "backends": backends, "embedding_model": v.get("embedding.model", "all-minilm-l6-v2"),
        "rag": v["services.rag"], "limits": v["limits"], "probes": v["emergency.probes"], "ui": v["services.ui"],
        "system_services": v["system_services"], "install": install,
        "model_index": f"{install.config_dir}/{INDEX_FILE}" if index is not None else None,
    }
    out: dict[str, bytes] = {
        "hearthnet.toml": with_settings(_ENV.get_template("hearthnet.toml.j2").render(ctx), settings).encode(),
        "hearthnet.service": _ENV.get_template("hearthnet.service.j2").render(ctx).encode(),
    }
    lock = []
    for mid in v["models.pinned"]:
        e = models.find(mid, index)
        lock.append({"id": e.id, "kind": e.kind, "file": e.file, "sha256": e.sha256, "size": e.size, "sources": e.sources})
    out["models.lock.json"] = _json({"version": 1, "models": lock})
    if index is not None:
        out[INDEX_FILE] = Path(index).read_bytes()  # the box resolves the pinned ids through the same index
    out["corpora.json"] = _json(corpora.plan_doc(v["corpora"], site.corpora if site is not None else None))
    if anchor:
        # The hosts whose node ids the site knows get an invite each (invites/<host>.txt); the others wait.
        hosts = {h: v.node_id for h, v in sorted(site.hosts.items()) if v.profile != "anchor"} if site else {}
        boot: dict[str, Any] = {"version": 1, "action": "create_community", "name": site.community.name if site else "HearthNet",
                                "policy": site.community.policy.model_dump() if site else None, "invites": "invites", "hosts": hosts}
    else:
        boot = {"version": 1, "action": "redeem_invite", "bootstrap": list(site.bootstrap) if site else [],
                "invite": f"invites/{eff.host or eff.profile}.txt"}
    out["bootstrap.json"] = _json(boot)
    receipt = {
        "version": 1, "tool": f"hearthnet {__version__}", "profile": eff.profile, "host": eff.host, "mode": eff.mode, "hardware": eff.hardware,
        "install": install.as_dict(),
        "inputs": {k: _sha(b) for k, b in sorted((inputs or {}).items())},
        "outputs": {k: _sha(out[k]) for k in sorted(out)},
    }
    out["receipt.json"] = _json(receipt)
    return out


def _validate(tmp: Path) -> None:
    """The rendered config must load through the real loader, as the node will load it."""
    data_dir = tmp / ".validate"
    try:
        config.load(data_dir, tmp / "hearthnet.toml")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def diff(out_dir: Path, files: dict[str, bytes]) -> str:
    """A unified diff of what rendering would change in out_dir ('' when nothing)."""
    parts = []
    names = sorted(set(files) | ({p.name for p in out_dir.iterdir() if p.is_file()} if out_dir.is_dir() else set()))
    for name in names:
        old_p = out_dir / name
        old = old_p.read_bytes().decode("utf-8", "replace") if old_p.is_file() else ""
        new = files.get(name, b"").decode("utf-8", "replace")
        if old != new:
            parts += difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{name}", f"b/{name}")
    return "".join(parts)


def write(out_dir: Path, files: dict[str, bytes]) -> bool:
    """Render into a temporary sibling directory, validate, swap. False when nothing changed."""
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not diff(out_dir, files):
        return False
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    old = out_dir.with_name(f".{out_dir.name}.old")
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        _validate(tmp)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)  # put the previous output back
        raise HearthNetError("storage_error", f"cannot write {out_dir}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return True


class Facts:
    """Where a host's hardware facts come from: --hardware, else the host's recorded file, else detection (once)."""

    def __init__(self, hardware_file: Path | None = None, detect: bool = False) -> None:
        self.hardware_file, self.detect, self._detected = hardware_file, detect, None

    def __call__(self, recorded: Path | None = None) -> HardwareFacts:
        path = self.hardware_file or recorded
        if path is not None and not self.detect:
            return load_facts(path)
        self._detected = self._detected or detect_hardware()
        return self._detected


def _inputs(profile: str, facts: HardwareFacts, site_file: Path | None, index: Path | None = None,
            settings_file: Path | None = None) -> dict[str, bytes]:
    p = PROFILES_DIR / f"{profile}.yaml" if profile in NAMES else Path(profile)
    got = {"profile": p.read_bytes(), "hardware": json.dumps(render_facts(facts), sort_keys=True).encode(),
           "model_index": (index or models.DEFAULT_INDEX).read_bytes()}
    if site_file is not None:
        got["site"] = Path(site_file).read_bytes()
    if settings_file is not None:
        got["settings"] = Path(settings_file).read_bytes()
    return got


def profile_files(profile: str, facts: HardwareFacts, install: Install = Install(), settings_file: Path | None = None) -> dict[str, bytes]:
    """One box from a profile alone (no site)."""
    settings = load_settings(settings_file) if settings_file is not None else None
    return render_files(effective(load_profile(profile), facts), inputs=_inputs(profile, facts, None, settings_file=settings_file), install=install,
                        settings=settings)


def site_files(site: Site, site_file: Path, names: list[str], facts: Facts, site_bytes: bytes | None = None,
               install: Install = Install(), settings_file: Path | None = None) -> dict[str, dict[str, bytes]]:
    """host -> files, for the named hosts of a site (every one rendered before any is written)."""
    settings = load_settings(settings_file) if settings_file is not None else None
    out = {}
    index = model_index(site, site_file)
    if index is not None:
        models.load_index(index)  # valid before anything is rendered from it (config_invalid names the file)
    for name in names:
        h = site.hosts.get(name)
        if h is None:
            raise HearthNetError("not_found", f"no host {name!r} in {site_file} (have: {', '.join(site.hosts)})")
        f = facts(Path(site_file).parent / h.hardware if h.hardware else None)
        inputs = _inputs(h.profile, f, site_file, index, settings_file)
        if site_bytes is not None:
            inputs["site"] = site_bytes  # the edited manifest, before it is written
        out[name] = render_files(effective(h.profile, f, site=site, host=name, index=index), site=site, inputs=inputs, index=index, install=install,
                                 settings=settings)
    return out


__all__ = ["FILES", "INDEX_FILE", "Facts", "Install", "diff", "load_settings", "profile_files", "render_files", "site_files", "with_settings", "write"]
