"""Chat: conversations with other members (sealed end to end by the chat service), unread
counts, and where each message is: sent, delivered, read."""

from __future__ import annotations

from typing import Any

import gradio as gr

from hearthnet.errors import HearthNetError
from hearthnet.ui import calls


def _people(node: calls.UiNode, unread: dict[str, int]) -> list[tuple[str, str]]:
    """Every other current member node (not the community's root key, which is no node), named as
    the mesh knows it, with the unread count of their conversation."""
    names = {p["node_id"]: p.get("display_name") for p in node.status()["peers"]}
    out = []
    for m in node.members():
        if m["node_id"] == node.node_id or m["revoked"] or m.get("root"):
            continue
        n = unread.get(m["node_id"], 0)
        name = m["display_name"] or names.get(m["node_id"]) or calls.short(m["node_id"])
        out.append((f"{name} ({m['level']})" + (f" · {n} new" if n else ""), m["node_id"]))
    return out


def _transcript(node: calls.UiNode, msgs: list[dict[str, Any]]) -> str:
    if not msgs:
        return "_No messages yet._"
    known = calls.names(node)
    lines = []
    for m in msgs:
        who = "you" if m["mine"] else known.get(m["from"]) or calls.short(m["from"])
        text = m.get("body") if m.get("body") is not None else f"({m.get('error', 'cannot be opened')})"
        lines.append(f"**{who}** · {m['sent_at'][11:16]} · _{calls.delivery(m)}_  \n{text}")
    return "\n\n".join(lines)


def build(node: calls.UiNode) -> None:
    with gr.Tab("Chat", id="chat") as tab:
        with gr.Row(equal_height=True):
            peer = gr.Dropdown(label="Conversation with", choices=[], elem_id="hn-chat-peer", scale=4)
            refresh = gr.Button("Refresh", elem_id="hn-chat-refresh", scale=0, min_width=120)
        log = gr.Markdown(elem_id="hn-chat-log")
        with gr.Row(equal_height=True):
            text = gr.Textbox(label="Message", lines=2, elem_id="hn-chat-text", scale=4)
            send = gr.Button("Send", variant="primary", elem_id="hn-chat-send", scale=0, min_width=120)
        line = gr.Markdown(elem_id="hn-chat-line")

        async def show(who: str | None):  # type: ignore[no-untyped-def]
            try:
                if who:
                    await calls.chat_read(node, who)  # opening a conversation reads it
                hist = await calls.chat_history(node, who)
            except HearthNetError as exc:
                return gr.update(), gr.update(), exc.one_line()
            dd = gr.Dropdown(choices=_people(node, hist["unread"]), value=who)
            return dd, (_transcript(node, hist["messages"]) if who else "Choose someone to talk to."), ""

        async def send_it(who: str | None, body: str):  # type: ignore[no-untyped-def]
            if not who:
                return gr.update(), gr.update(), "choose someone to talk to first", gr.update()
            try:
                out = await calls.chat_send(node, who, body)
            except HearthNetError as exc:
                return gr.update(), gr.update(), exc.one_line(), gr.update()
            dd, transcript, _ = await show(who)
            return dd, transcript, f"sent ({out['delivery']})", ""

        tab.select(show, [peer], [peer, log, line])
        peer.input(show, [peer], [peer, log, line])
        refresh.click(show, [peer], [peer, log, line])
        send.click(send_it, [peer, text], [peer, log, line, text])
        text.submit(send_it, [peer, text], [peer, log, line, text])
