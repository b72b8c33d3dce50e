"""The Gradio app: Ask, Mesh and Status tabs, with a banner that turns the page into the
emergency theme by itself when the node goes offline. Imported only when the UI is on.

Nothing here reaches the internet: analytics and the version check are off, there is no
share link, no server-side rendering, the theme is an object with system fonts (a theme
named by string, or a Google font, would be fetched from a hub), and no component that
loads from a CDN is used.
"""

from __future__ import annotations

import os
from typing import Any

from hearthnet.ui import calls

# Before gradio is imported: it reads these at import time.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_TELEMETRY_ENABLED", "False")

import gradio as gr  # noqa: E402 - after the environment above

STATUS_EVERY_S = 5
FONTS = ["system-ui", "-apple-system", "Segoe UI", "sans-serif"]

CSS = """
.hn-banner { padding: 8px 12px; border-radius: 8px; margin-bottom: 4px; }
.hn-banner.online { background: #f3ece1; color: #2b2118; }
.hn-banner.degraded { background: #fff0c2; color: #3a2a00; }
.hn-banner.offline { background: #7a1010; color: #fff4e8; font-weight: 600; }
.hn-meta { color: #6d5f52; font-size: .9em; }
"""
# The emergency theme: while the banner says offline, the whole page turns (CSS :has(), so no
# reload and no second theme object: the banner's class is the switch).
CSS += """
body:has(.hn-banner.offline), body:has(.hn-banner.offline) .gradio-container, body:has(.hn-banner.offline) .main {
  --body-background-fill: #2a0d0d; --background-fill-primary: #3a1616; --background-fill-secondary: #2a0d0d;
  --body-text-color: #fff4e8; --body-text-color-subdued: #f0c9b4; --block-background-fill: #3a1616;
  --block-label-text-color: #f0c9b4; --block-title-text-color: #fff4e8; --input-background-fill: #4a1f1f;
  --button-primary-background-fill: #e0572b; --border-color-primary: #7a3a2a; --table-even-background-fill: #3a1616;
  --table-odd-background-fill: #2a0d0d; --block-label-background-fill: #5a2a20; --block-title-background-fill: #5a2a20;
  --code-background-fill: #5a2a20; --color-accent-soft: #5a2a20; background: #2a0d0d; color: #fff4e8;
}
body:has(.hn-banner.offline) .hn-meta { color: #f0c9b4; }
"""


def theme() -> Any:
    return gr.themes.Soft(primary_hue="orange", neutral_hue="stone", font=FONTS, font_mono=["ui-monospace", "monospace"])


def banner(node: calls.UiNode) -> str:
    s = node.status()
    mode = s["emergency"]["mode"]
    what = {"online": "online", "degraded": "internet unreliable", "offline": "OFFLINE: the mesh keeps working without the internet"}[mode]
    parts = [f"<b>{_esc(s['display_name'])}</b>", _esc(s["profile"] or ""), _esc(s["community"] or "no community yet"), what]
    return f'<div class="hn-banner {mode}" data-mode="{mode}">{" · ".join(p for p in parts if p)}</div>'


def _esc(text: str) -> str:
    import html

    return html.escape(str(text))


def _answer_md(ans: calls.Answer) -> tuple[str, str]:
    meta = ""
    if ans.done:
        who = f"answered by `{calls.short(ans.node)}`" if ans.node else "no node answered"
        meta = f"{who} in {ans.ms / 1000:.1f} s" + (f" · {ans.model}" if ans.model else "")
        if ans.citations:
            meta += "  \n" + "  \n".join(f"[{c['n']}] {c['title']}" + (f" — {c['section']}" if c.get("section") else "") for c in ans.citations)
        if ans.error:
            meta = f"**{ans.error}**  \n" + meta
    return ans.text, meta


def _ask_tab(node: calls.UiNode) -> None:
    with gr.Tab("Ask", id="ask"):
        question = gr.Textbox(label="Your question", lines=3, max_lines=8, elem_id="hn-question")
        with gr.Row():
            corpus = gr.Dropdown(label="Answer from", choices=[("the model alone", "")], value="", elem_id="hn-corpus", scale=3)
            go = gr.Button("Ask", variant="primary", elem_id="hn-ask", scale=1)
        answer = gr.Markdown(elem_id="hn-answer")
        meta = gr.Markdown(elem_id="hn-answer-meta", elem_classes=["hn-meta"])

        async def run(q: str, c: str):  # type: ignore[no-untyped-def]
            async for ans in calls.ask(node, q, c or None):
                yield _answer_md(ans)

        async def refresh_corpora():  # type: ignore[no-untyped-def]
            return gr.Dropdown(choices=[("the model alone", "")] + [(n, n) for n in await calls.corpora(node)])

        go.click(run, [question, corpus], [answer, meta])
        question.submit(run, [question, corpus], [answer, meta])
        corpus.focus(refresh_corpora, None, corpus)


def _families(names: list[str]) -> str:
    """llm.chat, llm.complete, rag.query -> "llm (2), rag": what a node offers, short enough to read."""
    counts: dict[str, int] = {}
    for n in set(names):
        fam = n.split(".", 1)[0]
        counts[fam] = counts.get(fam, 0) + 1
    return ", ".join(f"{f} ({c})" if c > 1 else f for f, c in sorted(counts.items()))


def _mesh_rows(node: calls.UiNode) -> list[list[Any]]:
    by_node: dict[str, dict[str, Any]] = {}
    for c in node.capability_table():
        row = by_node.setdefault(c["node_id"], {"caps": [], "quarantined": [], "local": c["local"]})
        row["caps"].append(c["name"])
        if c["quarantined"]:
            row["quarantined"].append(c["name"])
    peers = {p["node_id"]: p for p in node.status()["peers"]}
    out = []
    for nid, row in sorted(by_node.items(), key=lambda kv: (not kv[1]["local"], kv[0])):
        p = peers.get(nid, {})
        name = "this node" if row["local"] else (p.get("display_name") or "")
        out.append([calls.short(nid), name, p.get("profile") or ("" if not row["local"] else node.status()["profile"]),
                    _families(row["caps"]), ", ".join(sorted(set(row["quarantined"]))) or "—"])
    return out


def _trace_rows(node: calls.UiNode) -> list[list[Any]]:
    return [[t.ts[11:19], t.capability, calls.short(t.from_node), calls.short(t.to_node), t.result, round(t.ms)]
            for t in reversed(node.bus.trace.recent(20))]


def _mesh_tab(node: calls.UiNode, timer: Any) -> None:
    with gr.Tab("Mesh", id="mesh"):
        gr.Markdown("Nodes this one can route to, what they offer, and the latest calls. Quarantined: failing, skipped for a while.")
        nodes = gr.Dataframe(headers=["node", "name", "profile", "offers", "quarantined"], value=lambda: _mesh_rows(node),
                             interactive=False, wrap=True, elem_id="hn-mesh")
        calls_table = gr.Dataframe(headers=["time", "capability", "from", "to", "result", "ms"], value=lambda: _trace_rows(node),
                                   interactive=False, elem_id="hn-trace")
        timer.tick(lambda: (_mesh_rows(node), _trace_rows(node)), None, [nodes, calls_table])


def _status_md(node: calls.UiNode) -> str:
    s = node.status()
    em = s["emergency"]
    lines = [f"**Mode:** {em['mode']}" + (f" since {em['since']}" if em.get("since") else "")]
    if em.get("probe_results"):
        lines.append("**Probes:** " + ", ".join(f"{t} {'ok' if ok else 'failed'}" for t, ok in em["probe_results"].items()))
    else:
        lines.append("**Probes:** none configured (emergency.probe_targets): the node never calls the internet by itself")
    local = s["capabilities_local"]
    lines.append(f"**Works here now:** {', '.join(local) or 'nothing local'}")
    withdrawn = s.get("withdrawn") or []
    lines.append(f"**Withdrawn while offline:** {', '.join(withdrawn) or 'nothing'}")
    lines.append(f"**Peers:** {len(s['peers'])} · **log head:** {s['log'].get('head')}")
    return "  \n".join(lines)


def _status_tab(node: calls.UiNode, timer: Any) -> None:
    with gr.Tab("Status", id="status"):
        md = gr.Markdown(lambda: _status_md(node), elem_id="hn-status")
        timer.tick(lambda: _status_md(node), None, md)


def build_blocks(node: calls.UiNode) -> Any:
    with gr.Blocks(title="HearthNet", analytics_enabled=False) as blocks:
        timer = gr.Timer(STATUS_EVERY_S)
        top = gr.HTML(lambda: banner(node), elem_id="hn-banner")
        timer.tick(lambda: banner(node), None, top)
        with gr.Tabs():
            _ask_tab(node)
            _mesh_tab(node, timer)
            _status_tab(node, timer)
    return blocks


def mount(app: Any, node: calls.UiNode) -> Any:
    """The Gradio app at / of the listener's FastAPI app (its queue starts from the app's lifespan)."""
    return gr.mount_gradio_app(app, build_blocks(node), path="/", ssr_mode=False, theme=theme(), css=CSS, footer_links=[], pwa=False,
                               mcp_server=False, show_error=False, enable_monitoring=False)


__all__ = ["banner", "build_blocks", "mount"]
