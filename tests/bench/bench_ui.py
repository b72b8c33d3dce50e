"""The web UI: first token in a real browser vs the same call's first frame on the bus, and the
phone page's weight.

A `hearthnet run` process (its embedded SmolLM2, the UI on a free loopback port) and Debian's
chromium driven by Playwright. The same greedy question is asked

- on the bus: a signed `llm.chat` stream to the node (as `hearthnet call --stream` does), from
  sending the request to its first token frame (the baseline);
- in the browser, on the phone page and in the Gradio Ask tab: from the click to the first text
  of the answer on the screen (timed inside the page, by a MutationObserver).

The three are asked in turn, round by round, and each figure is the best of several rounds
after a warm-up one. Page weight: every byte the browser received
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


async def bus_first_ms(c, u) -> float:
    """ms from sending a signed llm.chat stream request to its first token frame, on one client
    and one connection (as `hearthnet call --stream` does): the baseline carries no handshake."""
    from hearthnet.ui.calls import ASK_MAX_TOKENS

    body = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": ASK_MAX_TOKENS}  # what the UI's ask sends
    t0 = time.perf_counter()
    took = float("inf")
    async for frame in c.stream_remote(u, "llm.chat", "1.0", body, timeout=120, trace_id="", session_id=None):
        if took == float("inf") and frame.get("event") == "token":
            took = (time.perf_counter() - t0) * 1000
    return took


async def browser_first_ms(page, case: tuple[str, ...]) -> float:
    _, _, question, box, words, button, meta = case
    await page.fill(question, QUESTION)
    took = await page.evaluate(FIRST_TEXT_JS, [box, words, button])
    await page.wait_for_function(DONE_JS, arg=meta, timeout=120000)
    await page.wait_for_timeout(200)  # the bus records the call as its stream ends
    return took


async def figures(data: Path, ui_url: str, n: int) -> dict[str, float]:
    """Round by round (the bus, the phone page, the Gradio tab), best of n after a warm-up round:
    a shared machine's load falls on all three alike."""
    from playwright.async_api import async_playwright

    from hearthnet.home import Home
    from hearthnet.transport.local import with_node

    async def run(c, u) -> dict[str, float]:
        out: dict[str, float] = {}
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                pages = {}
                for case in CASES:
                    name, path = case[0], case[1]
                    ctx = await browser.new_context(viewport={"width": 390, "height": 844} if name == "phone" else {"width": 1200, "height": 900})
                    sizes: list[int] = []

                    async def count(resp, sizes=sizes) -> None:  # type: ignore[no-untyped-def]
                        try:
                            sizes.append(len(await resp.body()))
                        except Exception:  # a redirect or an open stream has no body to count
                            pass

                    ctx.on("response", lambda r, count=count: asyncio.ensure_future(count(r)))
                    pages[name] = page = await ctx.new_page()
                    await page.goto(ui_url + path, wait_until="networkidle")
                    await page.wait_for_timeout(300)
                    out[f"{name}_bytes"] = float(sum(sizes))
                best = {"bus": float("inf")} | {case[0]: float("inf") for case in CASES}
                for i in range(n + 1):
                    took = {"bus": await bus_first_ms(c, u)}
                    for case in CASES:
                        took[case[0]] = await browser_first_ms(pages[case[0]], case)
                    if i:  # the first round warms the model and the pages
                        best = {k: min(v, took[k]) for k, v in best.items()}
            finally:
                await browser.close()
        return out | {f"{k}_first_ms": v for k, v in best.items()}

    return await with_node(Home.open(data), None, run)


def main() -> None:
    a = parse_args(5, 1)
    if CHROMIUM is None:
        raise SystemExit("needs Debian's chromium (README command 2 installs it)")
    with tmpdir() as d:
        data = Path(d) / "node"
        proc, run = start(data)
        try:
            ui = asyncio.run(figures(data, run["ui_url"], a.n))
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    goal = "<= 1.2x the bus's first frame"
    emit("ui", "phone page: first token on screen", "first_token_ms", ui["phone_first_ms"], "ms", "bus first token frame", ui["bus_first_ms"], goal)
    emit("ui", "gradio ask: first token on screen", "first_token_ms", ui["gradio_first_ms"], "ms", "bus first token frame", ui["bus_first_ms"], goal)
    emit("ui", "phone page first view", "page_weight", ui["phone_bytes"] / 1000, "KB", "gradio page first view", ui["gradio_bytes"] / 1000,
         "<= 100 KB")


if __name__ == "__main__":
    main()
