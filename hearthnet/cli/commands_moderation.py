"""Moderation: hide and unhide posts and file adverts (trusted members), list what is hidden."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

from typing import Annotated, Any

import typer

from hearthnet.cli.app import JsonOpt, app, command, emit_json, make_console, table
from hearthnet.cli.commands_mesh import NodeOpt, call_node
from hearthnet.errors import HearthNetError

console = make_console()
mod_app = typer.Typer(help="Hide posts and file adverts from the listings (trusted members); the log keeps them.", no_args_is_help=True)
app.add_typer(mod_app, name="moderate")
KINDS = {"post": "market.post", "file": "file"}

KindArg = Annotated[str, typer.Argument(help="post or file.")]
TargetArg = Annotated[str, typer.Argument(help="The post id or the file's CID.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the signed event, shown to members).")]


def _act(name: str, kind: str, target: str, reason: str, node: str | None) -> dict[str, Any]:
    if kind not in KINDS:
        raise HearthNetError("bad_request", f"kind must be post or file, not {kind!r}")
    return call_node(name, {"kind": KINDS[kind], "target": target, "reason": reason}, node)


@command("hide", group=mod_app)
def hide_cmd(kind: KindArg, target: TargetArg, reason: ReasonOpt, json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """Hide a post or a file advert from every node's listings (this node must be trusted or anchor)."""
    out = _act("moderation.hide", kind, target, reason, node)
    emit_json(out) if json_out else console.print(f"{target}: hidden" + ("" if out["event_id"] else " (already)"))


@command("unhide", group=mod_app)
def unhide_cmd(kind: KindArg, target: TargetArg, reason: ReasonOpt, json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """Show a hidden post or file advert again."""
    out = _act("moderation.unhide", kind, target, reason, node)
    emit_json(out) if json_out else console.print(f"{target}: shown" + ("" if out["event_id"] else " (was not hidden)"))


@command("list", group=mod_app)
def list_cmd(json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """What is hidden, by whom and why."""
    rows = call_node("moderation.list", {}, node)["hidden"]
    if json_out:
        emit_json(rows)
        return
    t = table("kind", "target", "reason", "by", "at")
    for r in rows:
        t.add_row(r["kind"], r["target"][:30], r["reason"], r["by"][:24], r["at"])
    console.print(t)
