"""The UI in a real browser: Debian's chromium, headless, driven by Playwright (which cannot
download its own browsers here). Two in-process nodes on loopback with the UI on: ask on
one and see the tokens stream and the answering node; the phone page on a 390x844 screen;
a market post made on one node's phone page shows on the other's; the node goes offline
(its probe target stopped) and the page turns to the emergency theme by itself. No request
leaves loopback: the browser's request log and an audit hook on every socket.connect in the
nodes' process say so. A screenshot of each view is kept (HEARTHNET_ARTIFACTS, else the
test's tmp dir)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from hearthnet.identity import keys
from probe_servers import Http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMING = {"probe_interval_online": 0.3, "probe_interval_offline": 0.15, "probe_timeout_seconds": 0.3, "debounce_seconds": 0.8}
ARTIFACTS = os.environ.get("HEARTHNET_ARTIFACTS")  # read at import: the suite's autouse fixture clears HEARTHNET_* before a test
CONNECTS: list[object] = []
_AUDITING = [False]


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _AUDITING[0]:
        CONNECTS.append(args[1])


sys.addaudithook(_audit)  # hooks cannot be removed: it records only while a test here runs


def _outside(addresses: list[object]) -> list[object]:
    out = []
    for a in addresses:
        if isinstance(a, tuple) and a and isinstance(a[0], str):
            try:
                if not ipaddress.ip_address(a[0]).is_loopback:
                    out.append(a)
            except ValueError:
                out.append(a)  # a name: resolving it would already be a way out
    return out


@pytest.fixture
def browser_env(monkeypatch, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (README command 2 installs it)")
    pytest.importorskip("playwright")
    pytest.importorskip("gradio")
    monkeypatch.setenv("HEARTHNET_UI__ENABLED", "true")
    shots = Path(ARTIFACTS or tmp_path) / "ui-screens"
    shots.mkdir(parents=True, exist_ok=True)
    CONNECTS.clear()
    _AUDITING[0] = True
    yield shots
    _AUDITING[0] = False


async def _launch(p):
    return await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])  # root needs --no-sandbox


# Every distinct text of the answer until its meta line says who answered: recorded inside the
# page by a MutationObserver (polling from here misses tokens when the machine is busy).
WATCH_JS = """([answer, meta]) => { window.__states = new Promise((resolve) => {
  const states = [];
  const obs = new MutationObserver(() => {
    const t = document.querySelector(answer).textContent;
    if (t !== states[states.length - 1]) states.push(t);
    if (document.querySelector(meta).textContent.includes("answered by")) { obs.disconnect(); resolve(states); }
  });
  obs.observe(document.body, {childList: true, subtree: true, characterData: true});
}); }"""


async def _ask(page, answer: str, meta: str, button: str, seconds: float = 300) -> list[str]:
    """Click `button` and return the texts `answer` showed while the tokens arrived.

    A limit against a hang, not a speed check: on a 2-core machine also running VMs, the first
    answer (the model loading, then the tokens) once took longer than 120 s."""
    await page.evaluate(WATCH_JS, [answer, meta])
    await page.click(button)
    return await asyncio.wait_for(page.evaluate("window.__states"), seconds)


def test_the_ui_in_a_browser(mesh, browser_env):
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import async_playwright

    shots = browser_env
    uplink = Http()
    uplink.up()

    async def scenario(m):
        a, b = await m.create(2, extra={"ui": {"enabled": True, "port": 0}, "emergency": {"probe_targets": [uplink.url], **TIMING}})
        assert a.ui_url and b.ui_url and a.ui_url != b.ui_url
        origins = {a.ui_url.rstrip("/"), b.ui_url.rstrip("/")}
        requests: list[str] = []
        async with async_playwright() as p:
            browser = await _launch(p)
            try:
                ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
                ctx.on("request", lambda r: requests.append(r.url))
                page = await ctx.new_page()
                await page.goto(a.ui_url, wait_until="networkidle")
                assert await page.title() == "HearthNet"
                await page.screenshot(path=str(shots / "ask-empty.png"), full_page=True)

                # Ask: the tokens stream into the page and the answering node is named.
                await page.fill("#hn-question textarea", "Count from 1 to 30, separated by commas.")
                states = await _ask(page, "#hn-answer", "#hn-answer-meta", "#hn-ask")
                assert len([s for s in states if s.strip()]) >= 3, states  # several partial answers, not one block
                meta = await page.inner_text("#hn-answer-meta")
                assert f"answered by {a.node_id[:16]}" in meta and not await page.inner_text("#hn-answer-error"), (meta, await page.inner_text("#hn-answer-error"))
                await page.screenshot(path=str(shots / "ask.png"), full_page=True)
                # An empty question: one error line from the adapter, the last answer's words gone.
                await page.fill("#hn-question textarea", "")
                await page.click("#hn-ask")
                await page.wait_for_function("() => document.getElementById('hn-answer-error').textContent.length > 0", timeout=10000)
                err = await page.inner_text("#hn-answer-error")
                assert err.startswith("error[bad_request]") and "\n" not in err.strip() and not await page.inner_text("#hn-answer"), err
                for tab in ("Mesh", "Status"):
                    await page.get_by_role("tab", name=tab).click()
                    await page.wait_for_timeout(500)
                    await page.screenshot(path=str(shots / f"{tab.lower()}.png"), full_page=True)
                await page.get_by_role("tab", name="Mesh").click()
                await page.wait_for_selector(f"#hn-mesh :text('{b.node_id[:16]}')", timeout=15000)  # the other node, live
                await page.wait_for_selector("#hn-topology[data-nodes='2'] svg circle >> nth=1", timeout=15000)  # and in the picture
                assert "node-1" in await page.inner_text("#hn-topology")
                await page.screenshot(path=str(shots / "mesh.png"), full_page=True)

                # Chat: a message from a's UI arrives in b's, unread, and reads as read back on a.
                await page.get_by_role("tab", name="Chat").click()
                await page.wait_for_selector("#hn-chat-log :text('Choose someone')", timeout=20000)
                await page.locator("#hn-chat-peer input").click()
                await page.get_by_role("option", name="node-1", exact=False).click()
                await page.fill("#hn-chat-text textarea", "The well key is at the bakery.")
                await page.click("#hn-chat-send")
                await _wait_text(page, "#hn-chat-log", "The well key is at the bakery.")
                assert "error[" not in await page.inner_text("#hn-chat-line")
                page_b = await ctx.new_page()
                await page_b.goto(b.ui_url, wait_until="networkidle")
                await page_b.get_by_role("tab", name="Chat").click()
                deadline = time.monotonic() + 30
                while True:  # sync brings it; the unread count shows in the list
                    await page_b.locator("#hn-chat-peer input").click()
                    if await page_b.get_by_role("option", name="1 new", exact=False).count():
                        break
                    assert time.monotonic() < deadline, "the message did not reach the other node's UI"
                    await page_b.keyboard.press("Escape")
                    await m.link()
                    await page_b.click("#hn-chat-refresh")
                    await page_b.wait_for_timeout(300)
                await page_b.get_by_role("option", name="1 new", exact=False).click()
                await _wait_text(page_b, "#hn-chat-log", "The well key is at the bakery.")
                await page_b.screenshot(path=str(shots / "chat.png"), full_page=True)

                # Market: a post from a's UI shows in b's.
                await page.get_by_role("tab", name="Market").click()
                await page.get_by_text("Post something").click()
                await page.fill("#hn-post-title textarea, #hn-post-title input", "Bicycle pump to lend")
                await page.click("#hn-post")
                await _wait_text(page, "#hn-market", "Bicycle pump to lend")
                await page_b.get_by_role("tab", name="Market").click()
                deadline = time.monotonic() + 30
                while not await _has(page_b, "#hn-market", "Bicycle pump to lend"):
                    assert time.monotonic() < deadline, "the post did not reach the other node's UI"
                    await m.link()
                    await page_b.click("#hn-market-show")
                    await page_b.wait_for_timeout(300)
                await page_b.screenshot(path=str(shots / "market.png"), full_page=True)

                # Files: a file shared from a's browser is downloaded, byte for byte, in b's.
                shared = shots / "harvest-notes.txt"
                shared.write_bytes(b"Potatoes: 40 kg. Beans: 12 kg.\n" * 20000)  # ~620 KB: several chunks
                await page.get_by_role("tab", name="Files").click()
                await page.wait_for_selector("#hn-file-up input[type=file]", state="attached", timeout=20000)
                deadline = time.monotonic() + 90
                while True:  # a tab's components mount when it is first opened: a file set before they listen is lost, so set it again
                    try:  # once the file is taken the input is gone: set it only while it is there
                        if await page.locator("#hn-file-up input[type=file]").count():
                            await page.set_input_files("#hn-file-up input[type=file]", str(shared), timeout=10000)
                    except PlaywrightTimeout:
                        pass
                    try:
                        await page.wait_for_selector("#hn-file-up :text('harvest-notes.txt')", timeout=10000)
                        break
                    except PlaywrightTimeout:
                        assert time.monotonic() < deadline, await page.inner_text("#hn-file-up")
                await page.click("#hn-file-share")
                await _wait_text(page, "#hn-file-line", "shared", 60)
                line = await page.inner_text("#hn-file-line")
                cid = line.split("`")[1] if "`" in line else line.rsplit(" ", 1)[-1]
                assert cid.startswith("blake3:"), line
                await _wait_text(page, "#hn-files", "harvest-notes.txt")
                await page.screenshot(path=str(shots / "files.png"), full_page=True)
                await page_b.get_by_role("tab", name="Files").click()
                await page_b.fill("#hn-file-cid input, #hn-file-cid textarea", cid)
                deadline = time.monotonic() + 30
                while True:  # b learns of the advert by sync; until then the fetch finds no source
                    await page_b.click("#hn-file-get")
                    await page_b.wait_for_function("""() => { const t = document.querySelector('#hn-file-line').innerText;
                        return t.includes('downloaded') || t.includes('error['); }""", timeout=60000)
                    if "downloaded" in await page_b.inner_text("#hn-file-line"):
                        break
                    assert time.monotonic() < deadline, await page_b.inner_text("#hn-file-line")
                    await m.link()
                    await page_b.evaluate("document.querySelector('#hn-file-line').innerText = ''")
                async with page_b.expect_download() as dl:
                    await page_b.click("#hn-file-got a")
                got = await (await dl.value).path()
                assert Path(got).read_bytes() == shared.read_bytes()
                await page_b.screenshot(path=str(shots / "files-download.png"), full_page=True)

                # Community: the members, and an invite for a new box with its QR code.
                await page.get_by_role("tab", name="Community").click()
                await _wait_text(page, "#hn-members", "anchor")
                await page.get_by_text("Invite a box").click()
                newcomer = keys.generate().node_id
                await page.fill("#hn-invite-node input, #hn-invite-node textarea", newcomer)
                await page.click("#hn-invite-make")
                await page.wait_for_selector("#hn-invite-qr img", timeout=20000)
                text = await page.input_value("#hn-invite-text textarea")
                assert text.startswith("hearthnet://v1/"), text
                assert "error[" not in await page.inner_text("#hn-community-line")
                await page.screenshot(path=str(shots / "community.png"), full_page=True)

                # The phone page, on a phone-sized screen: no sideways scroll, big tap targets, a streamed answer.
                phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
                phone.on("request", lambda r: requests.append(r.url))
                mp = await phone.new_page()
                await mp.goto(a.ui_url + "mobile/", wait_until="networkidle")
                assert await mp.evaluate("document.documentElement.scrollWidth") <= 390
                small = await mp.evaluate("""[...document.querySelectorAll('button, input, select, textarea')]
                    .filter(e => e.offsetParent !== null).map(e => e.getBoundingClientRect())
                    .filter(r => r.height < 44 || r.width < 44).length""")
                assert small == 0
                await mp.fill("#question", "Count from 1 to 30, separated by commas.")
                states = await _ask(mp, "#answer", "#answer-meta", "#ask-form button[type=submit]")
                assert len([s for s in states if s.strip()]) >= 3, states
                assert not await mp.inner_text("#error"), await mp.inner_text("#error")
                assert await mp.evaluate("document.documentElement.scrollWidth") <= 390
                await mp.screenshot(path=str(shots / "phone-ask.png"), full_page=True)

                # A post made on a's phone page shows in b's.
                await mp.click("nav button[data-view=market]")
                await mp.fill("#title", "Spare seed potatoes")
                await mp.fill("#body", "20 kg, ask at the mill")
                await mp.click("#market-post button[type=submit]")
                await mp.wait_for_selector("#posts li:has-text('Spare seed potatoes')")
                other = await phone.new_page()
                await other.goto(b.ui_url + "mobile/", wait_until="networkidle")
                await other.click("nav button[data-view=market]")
                deadline = time.monotonic() + 30
                while not await _has(other, "#posts", "Spare seed potatoes"):
                    assert time.monotonic() < deadline, "the post did not reach the other node's page"
                    await m.link()
                    await other.click("#market-search button[type=submit]")
                    await other.wait_for_timeout(300)
                await other.screenshot(path=str(shots / "phone-market.png"), full_page=True)

                # Chat on a's phone page: a message to b, shown in the conversation with its state.
                await mp.click("nav button[data-view=chat]")
                await mp.wait_for_function("document.querySelectorAll('#peer option').length > 1", timeout=20000)
                await mp.select_option("#peer", b.node_id)
                await mp.wait_for_selector("#messages li", timeout=20000)  # the conversation from the Chat tab
                await mp.fill("#message", "Bread is ready at six.")
                await mp.click("#chat-form button[type=submit]")
                await mp.wait_for_selector("#messages li.mine:has-text('Bread is ready at six.')", timeout=20000)
                assert not (await mp.inner_text("#error")).strip()
                await mp.screenshot(path=str(shots / "phone-chat.png"), full_page=True)

                # Offline: the probe target goes away and the page turns by itself.
                await page.get_by_role("tab", name="Ask").click()
                uplink.down()
                await m.until(lambda: a.status()["emergency"]["mode"] == "offline", 15)
                await page.wait_for_selector("#hn-banner [data-mode=offline]", timeout=20000)
                bg = await page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert bg == "rgb(42, 13, 13)", bg
                await page.screenshot(path=str(shots / "emergency.png"), full_page=True)
            finally:
                await browser.close()
        assert {u.split("/", 3)[0] + "//" + u.split("/", 3)[2] for u in requests} <= origins, sorted(set(requests))[:20]

    try:
        mesh.run(scenario)
    finally:
        uplink.down()
    assert _outside(CONNECTS) == [], _outside(CONNECTS)[:10]
    assert {p.name for p in shots.iterdir()} >= {"ask.png", "chat.png", "market.png", "files.png", "community.png", "mesh.png", "status.png",
                                                 "phone-ask.png", "phone-market.png", "phone-chat.png", "emergency.png"}


async def _has(page, selector: str, text: str) -> bool:
    return text in await page.inner_text(selector)


async def _wait_text(page, selector: str, text: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await _has(page, selector, text):
        assert time.monotonic() < deadline, f"{text!r} did not show in {selector}: {await page.inner_text(selector)!r}"
        await page.wait_for_timeout(100)
