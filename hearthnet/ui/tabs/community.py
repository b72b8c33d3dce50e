"""Community: who is a member at which level, an invite for a new box (text and QR code to scan
on it), and for trusted members and anchors: changing levels, revoking, and moderation."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from hearthnet.errors import HearthNetError
from hearthnet.identity.invite import qr_png
from hearthnet.storage import atomic_write_bytes
from hearthnet.ui import calls

LEVELS = ["member", "trusted", "anchor"]
HEADERS = ["name", "level", "since", "node id"]
TTLS = [("1 hour", 3600), ("1 day", 86400), ("1 week", 7 * 86400)]


def _member_rows(node: calls.UiNode) -> list[list[Any]]:
    known = calls.names(node)
    rows = []
    for m in node.members():
        if m.get("root"):
            continue  # the community's root key signs its creation; it is no box to talk to
        level = "revoked" if m["revoked"] else m["level"]
        name = "you" if m["node_id"] == node.node_id else (m["display_name"] or known.get(m["node_id"]) or "")
        rows.append([name, level, (m.get("added_at") or "")[:10], m["node_id"]])
    return rows


def _choices(node: calls.UiNode) -> list[tuple[str, str]]:
    return [(f"{r[0] or calls.short(r[3])} ({r[1]})", r[3]) for r in _member_rows(node) if r[3] != node.node_id and r[1] != "revoked"]


def _hidden_rows(node: calls.UiNode, hidden: list[dict[str, Any]]) -> list[list[Any]]:
    known = calls.names(node)
    return [[h.get("kind", ""), h.get("target", ""), h.get("reason", ""), known.get(h.get("by", "")) or calls.short(h.get("by"))]
            for h in hidden]


def build(node: calls.UiNode, scratch: Path) -> None:
    with gr.Tab("Community", id="community") as tab:
        members = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="hn-members")
        line = gr.Markdown(elem_id="hn-community-line")
        with gr.Accordion("Invite a box", open=False):
            gr.Markdown("On the new box run `hearthnet init` and `hearthnet id`, then paste its node id here. "
                        "The invite works only for that node id; scan the QR code on the new box or copy the text.")
            with gr.Row(equal_height=True):
                who = gr.Textbox(label="Its node id", placeholder="ed25519:…", elem_id="hn-invite-node", scale=3)
                level = gr.Dropdown(LEVELS, value="member", label="Level", elem_id="hn-invite-level", scale=1)
                ttl = gr.Dropdown(TTLS, value=86400, label="Valid for", elem_id="hn-invite-ttl", scale=1)
            make = gr.Button("Create invite", variant="primary", elem_id="hn-invite-make")
            with gr.Row():
                text = gr.Textbox(label="Invite", interactive=False, lines=3, buttons=["copy"], elem_id="hn-invite-text", scale=3)
                qr = gr.Image(label="QR code", type="filepath", interactive=False, elem_id="hn-invite-qr", scale=2, height=260)
        with gr.Accordion("Levels and revocation (trusted members and anchors)", open=False):
            with gr.Row(equal_height=True):
                target = gr.Dropdown(label="Member", choices=[], elem_id="hn-member-pick", scale=3)
                new_level = gr.Dropdown(LEVELS, value="trusted", label="New level", elem_id="hn-member-level", scale=1)
            reason = gr.Textbox(label="Reason (for a revocation)", elem_id="hn-member-reason")
            with gr.Row():
                promote = gr.Button("Promote", elem_id="hn-member-promote")
                demote = gr.Button("Demote", elem_id="hn-member-demote")
                revoke = gr.Button("Revoke", variant="stop", elem_id="hn-member-revoke")
        with gr.Accordion("Moderation (trusted members and anchors)", open=False):
            with gr.Row(equal_height=True):
                kind = gr.Dropdown([("market post", "market.post"), ("file", "file")], value="market.post", label="What", scale=1,
                                   elem_id="hn-mod-kind")
                item = gr.Textbox(label="Post id or file CID", elem_id="hn-mod-target", scale=3)
            why = gr.Textbox(label="Why", elem_id="hn-mod-reason")
            with gr.Row():
                hide = gr.Button("Hide", variant="stop", elem_id="hn-mod-hide")
                unhide = gr.Button("Unhide", elem_id="hn-mod-unhide")
            hidden = gr.Dataframe(headers=["what", "target", "reason", "by"], interactive=False, wrap=True, elem_id="hn-hidden")

        async def refresh():  # type: ignore[no-untyped-def]
            try:
                hid = _hidden_rows(node, await calls.moderation(node))
            except HearthNetError as exc:
                return _member_rows(node), gr.Dropdown(choices=_choices(node), value=None), gr.update(), exc.one_line()
            return _member_rows(node), gr.Dropdown(choices=_choices(node), value=None), hid, ""

        async def invite(node_id: str, lvl: str, seconds: int):  # type: ignore[no-untyped-def]
            try:
                out = await calls.invite(node, node_id, lvl, int(seconds))
                png = Path(tempfile.mkdtemp(dir=scratch)) / "invite.png"
                atomic_write_bytes(png, qr_png(out["invite"]), mode=0o600)
            except HearthNetError as exc:
                return "", None, exc.one_line()
            return out["invite"], str(png), f"invite `{out['invite_id']}` for `{calls.short(node_id.strip())}` as {lvl}"

        def change(action: str):  # type: ignore[no-untyped-def]
            async def run(node_id: str | None, lvl: str, why_text: str):  # type: ignore[no-untyped-def]
                if not node_id:
                    return gr.update(), gr.update(), "choose a member first"
                try:
                    out = await calls.member_change(node, action, node_id, lvl, why_text)
                except HearthNetError as exc:
                    return gr.update(), gr.update(), exc.one_line()
                done = "done" if out.get("effective") else f"signed; it takes effect with {out.get('needed')} signatures"
                return _member_rows(node), gr.Dropdown(choices=_choices(node), value=None), f"{action}: {done}"
            return run

        def moderate(do_hide: bool):  # type: ignore[no-untyped-def]
            async def run(k: str, t: str, r: str):  # type: ignore[no-untyped-def]
                try:
                    await calls.moderate(node, do_hide, k, t, r)
                    hid = _hidden_rows(node, await calls.moderation(node))
                except HearthNetError as exc:
                    return gr.update(), exc.one_line()
                return hid, "hidden" if do_hide else "shown again"
            return run

        outs = [members, target, hidden, line]
        tab.select(refresh, None, outs)
        make.click(invite, [who, level, ttl], [text, qr, line])
        for button, action in ((promote, "promote"), (demote, "demote"), (revoke, "revoke")):
            button.click(change(action), [target, new_level, reason], [members, target, line])
        hide.click(moderate(True), [kind, item, why], [hidden, line])
        unhide.click(moderate(False), [kind, item, why], [hidden, line])
