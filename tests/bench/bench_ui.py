"""The web UI: first token in a real browser vs the same call's first frame on the bus, and the
phone page's weight.

A `hearthnet run` process (its embedded SmolLM2, the UI on a free loopback port) and Debian's
chromium driven by Playwright. The same greedy question is asked

- on the bus: a signed `llm.chat` stream to the node (as `hearthnet call --stream` does), from
  sending the request to its first token frame (the baseline);
- in the browser, on the phone page and in the Gradio Ask tab: from the click to the first text
  of the answer on the screen (timed inside the page, by a MutationObserver).

Each is the best of several asks after a warm-up. Page weight: every byte the browser received
for the first view of /mobile/ (documents, scripts, styles, API answers), against the Gradio
page's first view in the same run.

    python tests/bench/bench_ui.py [-n 5] [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchlib import args as parse_args
from benchlib import emit, free_port, tmpdir

QUESTION = "Name one fruit."
ENV = {"HEARTHNET_DISCOVERY__MDNS_ENABLED": "false", "HEARTHNET_DISCOVERY__UDP_ENABLED": "false", "HEARTHNET_UI__ENABLED": "true"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Click, then resolve with the ms until the answer's text first shows something new. `text` is
# the element holding the words: Gradio's status tracker ("processing | 0.2s") shares the
# component's box and must not count as an answer.
FIRST_TEXT_JS = """async ([box, text, button]) => {
  const root = document.querySelector(box);
  const words = () => ((text ? root.querySelector(text) : root) || {textContent: ""}).textContent.trim();
  const before = words();
  const start = performance.now();
  const seen = new Promise((resolve) => {
    const obs = new MutationObserver(() => {
      const now = words();
      if (now && now !== before) { obs.disconnect(); resolve(performance.now() - start); }
    });
    obs.observe(root, {childList: true, subtree: true, characterData: true});
  });
  document.querySelector(button).click();
  return await seen;
}"""
DONE_JS = "(meta) => (document.querySelector(meta) || {innerText: ''}).innerText.includes('answered by')"
CASES = [  # (case, path, question box, answer box, its words, button, meta)
    ("phone", "mobile/", "#question", "#answer", "", "#ask-form button[type=submit]", "#answer-meta"),
    ("gradio", "", "#hn-question textarea", "#hn-answer", "", "#hn-ask", "#hn-answer-meta"),
]


def start(data: Path) -> tuple[subprocess.Popen, dict]:
    hn = [sys.executable, "-m", "hearthnet", "--data-dir", str(data)]
    subprocess.run(hn + ["init", "--create-community", "Benchdorf"], check=True, capture_output=True)
    env = {**os.environ, **ENV, "HEARTHNET_UI__PORT": str(free_port())}
    proc = subprocess.Popen(hn + ["run", "--host", "127.0.0.1", "--port", str(free_port())], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_file = data / "run" / "node.json"
    deadline = time.monotonic() + 120
    while not run_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the node did not start")
        time.sleep(0.1)
    return proc, json.loads(run_file.read_text())


async def bus_first_frame(data: Path, n: int) -> float:
    """ms from sending a signed llm.chat stream request to its first token frame (best of n)."""
    from hearthnet.home import Home
    from hearthnet.transport.local import with_node

    from hearthnet.ui.calls import ASK_MAX_TOKENS

    body = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": ASK_MAX_TOKENS}  # what the UI's ask sends

    async def asks(c, u) -> float:  # one client, one connection: the baseline carries no handshake
        best = float("inf")
        for i in range(n + 1):
            t0 = time.perf_counter()
            took = float("inf")
            async for frame in c.stream_remote(u, "llm.chat", "1.0", body, timeout=120, trace_id="", session_id=None):
                if took == float("inf") and frame.get("event") == "token":
                    took = (time.perf_counter() - t0) * 1000
            if i:  # the first ask warms the model
                best = min(best, took)
        return best

    return await with_node(Home.open(data), None, asks)


async def browser_figures(ui_url: str, n: int) -> dict[str, float]:
    from playwright.async_api import async_playwright

    out: dict[str, float] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for case, path, question, box, words, button, meta in CASES:
                ctx = await browser.new_context(viewport={"width": 390, "height": 844} if case == "phone" else {"width": 1200, "height": 900})
                sizes: list[int] = []

                async def count(resp, sizes=sizes) -> None:  # type: ignore[no-untyped-def]
                    try:
                        sizes.append(len(await resp.body()))
                    except Exception:  # a redirect or an open stream has no body to count
                        pass

                ctx.on("response", lambda r, count=count: asyncio.ensure_future(count(r)))
                page = await ctx.new_page()
                await page.goto(ui_url + path, wait_until="networkidle")
                await page.wait_for_timeout(300)
                out[f"{case}_bytes"] = float(sum(sizes))
                best = float("inf")
                for i in range(n + 1):
                    await page.fill(question, QUESTION)
                    took = await page.evaluate(FIRST_TEXT_JS, [box, words, button])
                    await page.wait_for_function(DONE_JS, arg=meta, timeout=120000)
                    await page.wait_for_timeout(200)  # the bus records the call as its stream ends
                    if i:  # the first ask warms the model
                        best = min(best, took)
                out[f"{case}_first_ms"] = best
                await ctx.close()
        finally:
            await browser.close()
    return out


def main() -> None:
    a = parse_args(5, 1)
    if CHROMIUM is None:
        raise SystemExit("needs Debian's chromium (README command 2 installs it)")
    with tmpdir() as d:
        data = Path(d) / "node"
        proc, run = start(data)
        try:
            bus = asyncio.run(bus_first_frame(data, a.n))
            ui = asyncio.run(browser_figures(run["ui_url"], a.n))
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    goal = "<= 1.2x the bus's first frame"
    emit("ui", "phone page: first token on screen", "first_token_ms", ui["phone_first_ms"], "ms", "bus first token frame", bus, goal)
    emit("ui", "gradio ask: first token on screen", "first_token_ms", ui["gradio_first_ms"], "ms", "bus first token frame", bus, goal)
    emit("ui", "phone page first view", "page_weight", ui["phone_bytes"] / 1000, "KB", "gradio page first view", ui["gradio_bytes"] / 1000,
         "<= 100 KB")


if __name__ == "__main__":
    main()
