"""Fixtures for every test (unit and integration): isolation and leak checks."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

# Test helpers (eventgen, gen_doc_tables) live in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own data dir or HEARTHNET_* settings."""
    for k in list(os.environ):
        if k.startswith("HEARTHNET_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # Tests never touch the host's network: multicast discovery runs only inside the
    # network namespaces of integration/netns, which set these back on per node.
    monkeypatch.setenv("HEARTHNET_DISCOVERY__MDNS_ENABLED", "false")
    monkeypatch.setenv("HEARTHNET_DISCOVERY__UDP_ENABLED", "false")
    # Many nodes run side by side in tests: each gateway takes a free port, not 7860.
    monkeypatch.setenv("HEARTHNET_UI__PORT", "0")
    # The web UI (Gradio) is for people: tests of it turn it on (integration/ui).
    monkeypatch.setenv("HEARTHNET_UI__ENABLED", "false")


@pytest.fixture(autouse=True)
def _no_thread_leaks():
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"test leaked threads: {leaked}"
