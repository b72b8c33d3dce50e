"""The first-run screen in a real browser: `hearthnet run` on a data dir with no community (and
the UI on) serves only that page; creating a community there starts the node and the page turns
into the full UI by itself. A second box, also on its first-run page, shows its node id, is
refused a bad invite with one error line, and joins with a real invite from the first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from nodeprocs import HN, cli, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHROMIUM = shutil.which("chromium")


def _run(d: Path, ui_port: int, procs, peers: list[int] = ()) -> subprocess.Popen:
    env = {**os.environ, "HEARTHNET_UI__ENABLED": "true", "HEARTHNET_UI__PORT": str(ui_port),
           "HEARTHNET_DISCOVERY__MANIFEST_REFRESH_SECONDS": "0.5", "HEARTHNET_EVENTS__SYNC_INTERVAL_SECONDS": "0.5",
           "HEARTHNET_DISCOVERY__STATIC_PEERS": "[" + ",".join(f'"https://127.0.0.1:{p}"' for p in peers) + "]"}
    d.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([*HN, "--data-dir", str(d), "run", "--host", "127.0.0.1", "--port", str(free_port())], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(d.parent / f"{d.name}.log", "w"))
    procs.procs.append(p)  # stopped by the fixture, also when the test fails
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=2).status_code == 200:
                return p
        except httpx.HTTPError:
            pass
        assert p.poll() is None and time.monotonic() < deadline, (d.parent / f"{d.name}.log").read_text()
        time.sleep(0.2)


def test_first_run_creates_or_joins_then_turns_into_the_ui(tmp_path, procs):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (README command 2 installs it)")
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    a, b = tmp_path / "a", tmp_path / "b"
    ua, ub = free_port(), free_port()
    pa = _run(a, ua, procs)
    # Before anything is chosen: only the page; the rest of the listener says not_initialised.
    r = httpx.get(f"http://127.0.0.1:{ua}/mobile/api/status", timeout=5)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_initialised"
    assert not (a / "run" / "node.json").exists()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{ua}/")
            node_a = page.inner_text("#node-id")
            assert node_a.startswith("ed25519:")
            page.fill("#name", "Firstdorf")
            page.click("form[action='/first-run/create'] button")
            page.wait_for_selector("text=Created Firstdorf")
            # The page turns into the full UI by itself once the node serves.
            page.wait_for_selector("#hn-banner :text('Firstdorf')", timeout=90000)
            assert page.title() == "HearthNet"
            run = (a / "run" / "node.json").read_text()
            assert node_a in run and pa.poll() is None

            # A second box: its page shows the node id an inviter needs.
            _run(b, ub, procs, peers=[json.loads(run)["port"]])
            page_b = browser.new_page()
            page_b.goto(f"http://127.0.0.1:{ub}/")
            node_b = page_b.inner_text("#node-id")
            page_b.fill("#invite", "hearthnet://v1/not-an-invite")
            page_b.click("form[action='/first-run/redeem'] button")
            err = page_b.inner_text(".error")
            assert err.startswith("error[bad_request]") and "\n" not in err.strip(), err
            invite = cli(a, "invite", "create", node_b).stdout.strip()
            page_b.fill("#invite", invite)
            page_b.click("form[action='/first-run/redeem'] button")
            page_b.wait_for_selector("text=Joined Firstdorf")
            page_b.wait_for_selector("#hn-banner :text('Firstdorf')", timeout=90000)
            members = cli(a, "member", "list", "--json").stdout
            assert node_b in members
        finally:
            browser.close()


def test_a_community_made_by_another_process_turns_the_page_into_the_node(tmp_path, procs):
    """`hearthnet init --create-community` (or `join`, or a provisioner's `bootstrap`) in a terminal
    while the page is up: the node starts by itself, as after the page's own create."""
    a, ua = tmp_path / "a", free_port()
    pa = _run(a, ua, procs)
    assert not (a / "run" / "node.json").exists()
    cli(a, "init", "--create-community", "Elsewhere")
    deadline = time.monotonic() + 60
    while not (a / "run" / "node.json").exists():
        assert pa.poll() is None and time.monotonic() < deadline, (tmp_path / "a.log").read_text()
        time.sleep(0.2)
    status = json.loads(cli(a, "status", "--json").stdout)
    assert status["community"] == "Elsewhere" and pa.poll() is None
