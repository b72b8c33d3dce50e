"""Mesh: a live picture of the nodes this one can route to (this node in the middle, each peer
around it with its profile; a quarantined one drawn red and dashed; each line as thick as the
calls that flowed along it lately, failed ones in red), then the same as tables: what each node
offers, and the latest calls (the bus's trace). Refreshed by the page's timer."""

from __future__ import annotations

import html
import math
from typing import Any

import gradio as gr

from hearthnet.ui import calls


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


RECENT_CALLS = 200
SIZE, RADIUS = 520, 190


def _topology(node: calls.UiNode, mesh_rows: list[list[Any]]) -> str:
    """An inline SVG (no script, nothing fetched) of `_mesh_rows`' nodes and the calls between them lately."""
    rows = {r[0]: r for r in mesh_rows}
    me = calls.short(node.node_id)
    others = sorted(n for n in rows if n != me)
    cx = cy = SIZE / 2
    at = {me: (cx, cy)}
    for i, n in enumerate(others):
        a = 2 * math.pi * i / max(len(others), 1) - math.pi / 2
        at[n] = (cx + RADIUS * math.cos(a), cy + RADIUS * math.sin(a))
    flows: dict[tuple[str, str], list[int]] = {}  # (a, b) -> [ok, failed]
    for t in node.bus.trace.recent(RECENT_CALLS):
        a, b = calls.short(t.from_node), calls.short(t.to_node)
        if a != b and a in at and b in at:
            f = flows.setdefault((min(a, b), max(a, b)), [0, 0])
            f[0 if t.result == "ok" else 1] += 1
    parts = [f'<svg viewBox="0 0 {SIZE} {SIZE}" width="100%" style="max-width:{SIZE}px" role="img" aria-label="mesh topology">']
    for n in others:  # every node this one knows is a line to it, calls or not
        (x1, y1), (x2, y2) = at[me], at[n]
        ok, bad = flows.get((min(me, n), max(me, n)), [0, 0])
        width = 1.5 + min(8.0, math.log2(1 + ok + bad) * 1.5)
        colour = "#b00020" if bad > ok else "#b5542b" if ok or bad else "#c9b9a6"
        parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{colour}" stroke-width="{width:.1f}"/>')
        if ok or bad:
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            label = f"{ok} ok" + (f", {bad} failed" if bad else "")
            parts.append(f'<text x="{mx:.0f}" y="{my - 6:.0f}" font-size="12" text-anchor="middle" fill="currentColor">{label}</text>')
    for n, (x, y) in at.items():
        r = rows.get(n)
        quarantined = bool(r and r[4] != "—")
        fill = "#b5542b" if n == me else "#fff8ef"
        stroke = "#b00020" if quarantined else "#7a5a44"
        dash = ' stroke-dasharray="5 4"' if quarantined else ""
        name = "this node" if n == me else (r[1] if r and r[1] else n[8:16])
        sub = (r[2] if r and r[2] else "") + (" · quarantined" if quarantined else "")
        parts.append(f'<g><title>{html.escape(n)}: {html.escape(r[3] if r else "")}</title>'
                     f'<circle cx="{x:.0f}" cy="{y:.0f}" r="34" fill="{fill}" stroke="{stroke}" stroke-width="3"{dash}/>'
                     f'<text x="{x:.0f}" y="{y + 52:.0f}" font-size="14" font-weight="600" text-anchor="middle" fill="currentColor">'
                     f'{html.escape(name)}</text>'
                     f'<text x="{x:.0f}" y="{y + 68:.0f}" font-size="12" text-anchor="middle" fill="currentColor">{html.escape(sub)}</text></g>')
    if not others:
        parts.append(f'<text x="{cx:.0f}" y="{cy + 90:.0f}" font-size="14" text-anchor="middle" fill="currentColor">'
                     "no other node seen yet</text>")
    parts.append("</svg>")
    return f'<div id="hn-topology" data-nodes="{len(at)}">' + "".join(parts) + "</div>"


def _trace_rows(node: calls.UiNode) -> list[list[Any]]:
    return [[t.ts[11:19], t.capability, calls.short(t.from_node), calls.short(t.to_node), t.result, round(t.ms)]
            for t in reversed(node.bus.trace.recent(20))]


def build(node: calls.UiNode, timer: Any) -> None:
    with gr.Tab("Mesh", id="mesh"):
        gr.Markdown("Nodes this one can route to and the calls between them lately. Quarantined (red, dashed): failing, skipped for a while.")
        picture = gr.HTML(lambda: _topology(node, _mesh_rows(node)), elem_id="hn-topology-box")
        nodes = gr.Dataframe(headers=["node", "name", "profile", "offers", "quarantined"], value=lambda: _mesh_rows(node),
                             interactive=False, wrap=True, column_widths=["17%", "13%", "10%", "45%", "15%"], elem_id="hn-mesh")
        calls_table = gr.Dataframe(headers=["time", "capability", "from", "to", "result", "ms"], value=lambda: _trace_rows(node),
                                   interactive=False, elem_id="hn-trace")
        def tick():  # type: ignore[no-untyped-def]
            rows = _mesh_rows(node)  # once per tick, for the picture and the table
            return _topology(node, rows), rows, _trace_rows(node)

        timer.tick(tick, None, [picture, nodes, calls_table])
