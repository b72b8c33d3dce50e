"""Status: emergency mode, the probes, what works here now and what is withdrawn while offline."""

from __future__ import annotations

from typing import Any

import gradio as gr

from hearthnet.ui import calls


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


def build(node: calls.UiNode, timer: Any) -> None:
    with gr.Tab("Status", id="status"):
        md = gr.Markdown(lambda: _status_md(node), elem_id="hn-status")
        timer.tick(lambda: _status_md(node), None, md)
