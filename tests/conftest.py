"""Shared fixtures. Every fixture that starts something also stops it, even on failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventgen import Chain, seeded_key

from hearthnet.events.log import EventLog
from hearthnet.identity import keys
from hearthnet.events.community import genesis_data


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
