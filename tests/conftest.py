"""Shared fixtures. Every fixture that starts something also stops it, even on failure."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from eventgen import Chain, seeded_key  # noqa: E402

from hearthnet.events.log import EventLog  # noqa: E402
from hearthnet.identity import keys  # noqa: E402
from hearthnet.identity.community import genesis_data  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own data dir or HEARTHNET_* settings."""
    for k in list(os.environ):
        if k.startswith("HEARTHNET_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture(autouse=True)
def _no_thread_leaks():
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
def root_kp() -> keys.KeyPair:
    return keys.generate()


@pytest.fixture
def community(tmp_path: Path, root_kp: keys.KeyPair):
    """(log, root key, anchor key): a fresh community whose anchor is a member."""
    anchor = keys.generate()
    cid, data = genesis_data("Testdorf", root_kp.node_id)
    log = EventLog(tmp_path / "community" / "events.db", cid)
    log.append_local("community.created", data, root_kp)
    log.append_local("community.member.joined", {"node_id": anchor.node_id, "level": "anchor", "display_name": "a"}, root_kp)
    try:
        yield log, root_kp, anchor
    finally:
        log.close()


@pytest.fixture
def chain() -> Chain:
    return Chain(seeded_key("root"))


@pytest.fixture
def empty_log_for(tmp_path: Path):
    """Factory: an empty EventLog for a community id (closed after the test)."""
    opened: list[EventLog] = []

    def make(community_id: str, name: str = "events.db", **kw) -> EventLog:
        log = EventLog(tmp_path / f"logs-{len(opened)}" / name, community_id, **kw)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()
