"""Mesh: the nodes this one can route to, what they offer, which are quarantined, and the calls
flowing (the bus's trace), refreshed by the page's timer."""

from __future__ import annotations

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


def _trace_rows(node: calls.UiNode) -> list[list[Any]]:
    return [[t.ts[11:19], t.capability, calls.short(t.from_node), calls.short(t.to_node), t.result, round(t.ms)]
            for t in reversed(node.bus.trace.recent(20))]


def build(node: calls.UiNode, timer: Any) -> None:
    with gr.Tab("Mesh", id="mesh"):
        gr.Markdown("Nodes this one can route to, what they offer, and the latest calls. Quarantined: failing, skipped for a while.")
        nodes = gr.Dataframe(headers=["node", "name", "profile", "offers", "quarantined"], value=lambda: _mesh_rows(node),
                             interactive=False, wrap=True, elem_id="hn-mesh")
        calls_table = gr.Dataframe(headers=["time", "capability", "from", "to", "result", "ms"], value=lambda: _trace_rows(node),
                                   interactive=False, elem_id="hn-trace")
        timer.tick(lambda: (_mesh_rows(node), _trace_rows(node)), None, [nodes, calls_table])
