"""A node's data directory: its config, keys and community log, opened together.

The CLI and the node runtime both go through `Home`, so "where is the key" and
"which log is ours" are answered in one place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearthnet import config as config_mod
from hearthnet import constants as C
from hearthnet.config import Config
from hearthnet.errors import HearthNetError
from hearthnet.identity import keys
from hearthnet.identity.keys import KeyPair
from hearthnet.storage import atomic_write_text, ensure_private_dir, translate_os_errors

if TYPE_CHECKING:
    from hearthnet.events.log import EventLog

# The event log's modules (its pydantic event types, membership) load only where a log is opened:
# most commands (`id`, `detect-hardware`, `render-profile`, `models`, `state`) never open one, and
# on a small box or under emulation their import is a good part of a command's start-up.


@dataclass(frozen=True, slots=True)
class InitResult:
    node_id: str
    short_id: str
    created_identity: bool
    community_id: str | None
    created_community: bool
    config_path: Path


class Home:
    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path or config_mod.resolve_config_path(config.data_dir)

    @classmethod
    def open(cls, data_dir: Path | str | None = None, config_path: Path | str | None = None) -> Home:
        cfg = config_mod.load(data_dir, config_path)
        return cls(cfg, config_mod.resolve_config_path(cfg.data_dir, config_path))

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def key_path(self) -> Path:
        return self.config.keys_dir / C.NODE_KEY_FILE

    @property
    def root_key_path(self) -> Path:
        return self.config.keys_dir / C.COMMUNITY_ROOT_KEY_FILE

    @property
    def community_id(self) -> str | None:
        """The config's `[community] community_id` when it pins one, else what init/join recorded in
        the data dir: membership is the node's own state, and a provisioned box's config is rendered
        (a re-render must not forget the community, nor the node rewrite a rendered file)."""
        if self.config.community.community_id:
            return self.config.community.community_id
        try:
            cid = json.loads((self.data_dir / C.COMMUNITY_FILE).read_text()).get("community_id")
        except (OSError, ValueError, AttributeError):
            return None
        return cid if isinstance(cid, str) and cid else None

    def remember_community(self, community_id: str) -> None:
        atomic_write_text(self.data_dir / C.COMMUNITY_FILE, json.dumps({"community_id": community_id}) + "\n", mode=0o600)

    def identity(self) -> KeyPair:
        return keys.load(self.key_path)

    def root_key(self) -> KeyPair | None:
        """The community root key, when this node holds it (the anchor that created the community)."""
        return keys.load(self.root_key_path) if self.root_key_path.exists() else None

    # --- the run file: how the CLI finds this data dir's running node ------------------------
    @property
    def run_file(self) -> Path:
        return self.data_dir / C.RUN_FILE

    def read_run_file(self) -> dict[str, Any] | None:
        """What the running node of this data dir wrote at start (url, port, pid, TLS fingerprint),
        or None when none runs (no file, or its pid is gone)."""
        try:
            info = json.loads(self.run_file.read_text())
            os.kill(int(info["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return info if isinstance(info, dict) else None

    def write_run_file(self, info: dict[str, Any]) -> None:
        atomic_write_text(self.run_file, json.dumps(info), mode=0o600)

    def remove_run_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.run_file.unlink()

    def open_log(self) -> EventLog:
        cid = self.community_id
        if not cid:
            raise HearthNetError("not_initialised", "this node has no community yet: `hearthnet init --create-community NAME` (or join one)")
        db = self.config.event_db_path(cid)
        if not db.exists():
            raise HearthNetError("not_found", f"event log {db} is missing (community {cid[:16]}…)")
        from hearthnet.events.log import EventLog

        ev = self.config.events
        return EventLog(db, cid, synchronous=ev.synchronous, max_payload_bytes=ev.max_payload_bytes, max_parked=ev.max_parked)

    # --- init ------------------------------------------------------------------
    def init(self, *, create_community: str | None = None, display_name: str | None = None, policy: Any = None) -> InitResult:
        """Create the data dir, node key and config; optionally a new community.

        Existing keys are kept. On any failure, whatever this call created is
        removed again and earlier state is untouched.
        """
        from hearthnet.events.community import community_name, genesis_data
        from hearthnet.events.log import EventLog

        # Inputs first: a bad name must not leave a data dir or a key behind.
        if create_community is not None:
            create_community = community_name(create_community)
        cfg = self.config
        if display_name is not None:
            cfg = config_mod.updated(cfg, "identity", display_name=display_name)
        with translate_os_errors(f"cannot create {self.data_dir}"):
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ensure_private_dir(self.config.keys_dir)
        if create_community and self.community_id:
            with self.open_log() as log:
                same = log.membership.name == create_community and self.root_key_path.exists()
            if not same:
                raise HearthNetError("already_exists", f"this node already belongs to community {self.community_id}")
            create_community = None  # re-running the same init is a no-op
        if create_community and self.root_key_path.exists():
            raise HearthNetError("already_exists", f"{self.root_key_path} exists already; refusing to overwrite a root key")
        kp, created = keys.load_or_generate(self.key_path)
        changes: dict[str, dict[str, object]] = {}
        if display_name is not None:
            changes["identity"] = {"display_name": display_name}
        cid, made = None, False
        cleanup: list[Path] = []
        try:
            if create_community:
                root = keys.generate()
                cid, data = genesis_data(create_community, root.node_id, policy)  # policy: PolicyData, default when None
                keys.save(root, self.root_key_path)
                cleanup.append(self.root_key_path)
                cdir = self.config.community_dir(cid)
                cleanup.append(cdir)
                ev = cfg.events
                with EventLog(cfg.event_db_path(cid), cid, synchronous=ev.synchronous) as log:
                    log.append_local("community.created", data, root)
                    log.append_local(
                        "community.member.joined",
                        {"node_id": kp.node_id, "level": "anchor", "display_name": cfg.identity.display_name},
                        root,
                    )
                cleanup.append(self.data_dir / C.COMMUNITY_FILE)
                self.remember_community(cid)
                made = True
            if changes or not self.config_path.exists():
                cfg = config_mod.set_keys(self.config_path, self.data_dir, changes)
        except BaseException:
            for p in cleanup:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            if created:
                self.key_path.unlink(missing_ok=True)
            raise
        self.config = cfg
        return InitResult(kp.node_id, kp.short_id, created, cid or self.community_id, made, self.config_path)


__all__ = ["Home", "InitResult"]
