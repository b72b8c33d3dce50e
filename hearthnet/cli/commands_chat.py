"""Private messages through the running node: send, history (and mark read)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

from typing import Annotated, Any

import typer

from hearthnet.cli.app import JsonOpt, app, command, emit_json, make_console
from hearthnet.cli.commands_mesh import NodeOpt, call_node
from hearthnet.identity.keys import parse_node_id

console = make_console()
chat_app = typer.Typer(help="Private messages between boxes, encrypted end to end, delivered when the other box is on.", no_args_is_help=True)
app.add_typer(chat_app, name="chat")


@command("send", group=chat_app)
def send_cmd(
    to: Annotated[str, typer.Argument(help="The recipient's full node id (hearthnet member list).")],
    body: Annotated[str, typer.Argument(help="The message.")],
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Send a message; prints how it left: direct, forwarded (a peer carries it) or queued (sent when the recipient returns)."""
    parse_node_id(to)
    out = call_node("chat.send", {"to": to, "body": body}, node, timeout=60)
    emit_json(out) if json_out else console.print(f"{out['msg_id']}: {out['delivery']}")


@command("history", group=chat_app)
def history_cmd(
    peer: Annotated[str | None, typer.Argument(help="Only the conversation with this node id.")] = None,
    mark_read: Annotated[bool, typer.Option("--mark-read", help="Mark this peer's messages as read (sends read receipts).")] = False,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Messages this node sent and received, oldest first, with delivery and read state; unread counts per peer."""
    body: dict[str, Any] = {}
    if peer:
        parse_node_id(peer)
        body["peer"] = peer
    out = call_node("chat.history", body, node)
    if mark_read and peer:
        out["marked"] = call_node("chat.read", {"peer": peer}, node)["marked"]
    if json_out:
        emit_json(out)
        return
    for m in out["messages"]:
        state = "read" if m["read_at"] else ("delivered" if m["delivered_at"] else "waiting")
        who = "me" if m["mine"] else m["from"][:20]
        console.print(f"{m['sent_at']}  {who:>20}  {m['body'] if m['body'] is not None else '(cannot be opened)'}  [{state}]")
    for p, n in out["unread"].items():
        console.print(f"{n} unread from {p}")
