"""Invites and trust: invite create|redeem, member promote|demote|revoke (through the running node)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from hearthnet.cli.app import JsonOpt, app, command, emit_json, home, make_console
from hearthnet.cli.commands_mesh import NodeOpt, call_node, member_app
from hearthnet.errors import HearthNetError
from hearthnet.identity.keys import parse_node_id, short_of
from hearthnet.storage import atomic_write_bytes, atomic_write_text, read_text

console = make_console()
invite_app = typer.Typer(help="Invites: signed, expiring, bound to the invitee's node id.", no_args_is_help=True)
app.add_typer(invite_app, name="invite")
NodeIdArg = Annotated[str, typer.Argument(metavar="NODE_ID", help="Full node id (hearthnet id on that box).")]


@command("create", group=invite_app)
def create_cmd(
    node_id: NodeIdArg,
    level: Annotated[str, typer.Option("--level", help="member, trusted or anchor (at most this node's own level).")] = "member",
    ttl: Annotated[int, typer.Option("--ttl", help="Seconds until the invite expires (60 .. 30 days).")] = 86400,
    multi_use: Annotated[bool, typer.Option("--multi-use", help="May be redeemed more than once (by the same node).")] = False,
    endpoint: Annotated[list[str] | None, typer.Option("--endpoint", help="URL where it is redeemed (default: this node's address); repeatable.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the invite text to this file.")] = None,
    qr: Annotated[Path | None, typer.Option("--qr", help="Also write it as a QR code PNG.")] = None,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Issue an invite for one node id; prints hearthnet://v1/… for that box's `hearthnet invite redeem`."""
    parse_node_id(node_id)
    if level not in ("member", "trusted", "anchor"):
        raise HearthNetError("bad_request", f"level must be member, trusted or anchor, not {level!r}")
    body: dict[str, Any] = {"node_id": node_id, "level": level, "ttl_seconds": ttl, "single_use": not multi_use}
    if endpoint:
        body["endpoints"] = endpoint
    res = call_node("community.invite", body, node)
    from hearthnet.identity.invite import qr_png

    if out is not None:
        atomic_write_text(out, res["invite"] + "\n", mode=0o600)
    if qr is not None:
        atomic_write_bytes(qr, qr_png(res["invite"]), mode=0o600)
    if json_out:
        emit_json(res)
    else:
        print(res["invite"])


@command("redeem", group=invite_app)
def redeem_cmd(
    invite: Annotated[str, typer.Argument(help="The hearthnet://v1/… text, or a file holding it.")],
    json_out: JsonOpt = False,
) -> None:
    """Join the community an invite is for: check it, verify the community, be admitted by the issuing node, sync."""
    from hearthnet.community.membership import redeem_invite

    text = invite
    if not invite.startswith("hearthnet://"):
        p = Path(invite)
        if not p.is_file():
            raise HearthNetError("bad_request", "give the hearthnet://v1/… text or a file that holds it")
        text = read_text(p, "invite").strip()
    res = asyncio.run(redeem_invite(home(), text))
    if json_out:
        emit_json(res)
    else:
        print(f"{'already in' if res['already'] else 'joined'} {res['name']} ({res['community_id']}) via {res['url']}: "
              f"{res['events']} events, this node is {res['level']}")


def _change(name: str, body: dict[str, Any], json_out: bool, node: str | None, verb: str) -> None:
    parse_node_id(body["node_id"])
    res = call_node(name, body, node)
    if json_out:
        emit_json(res)
    elif res["effective"]:
        print(f"{short_of(body['node_id'])} {verb} (event {res['event_id']})")
    else:
        print(f"signed: {res['signatures']} of {res['needed']} signatures so far; takes effect when other trusted members sign the same change")


@command("promote", group=member_app)
def promote_cmd(node_id: NodeIdArg, level: Annotated[str, typer.Argument(help="trusted or anchor.")], json_out: JsonOpt = False,
                node: NodeOpt = None) -> None:
    """Sign a promotion (effective once the policy's number of trusted signers signed it)."""
    _change("community.promote", {"node_id": node_id, "level": level}, json_out, node, f"is now {level}")


@command("demote", group=member_app)
def demote_cmd(node_id: NodeIdArg, level: Annotated[str, typer.Argument(help="member or trusted.")], json_out: JsonOpt = False,
               node: NodeOpt = None) -> None:
    """Sign a demotion (effective once the policy's number of trusted signers signed it)."""
    _change("community.demote", {"node_id": node_id, "level": level}, json_out, node, f"is now {level}")


@command("revoke", group=member_app)
def revoke_cmd(node_id: NodeIdArg, reason: Annotated[str, typer.Option("--reason", help="Why (kept in the log).")] = "",
               json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """Sign a revocation: once effective and synced, the node's new calls and events are refused everywhere."""
    _change("community.revoke", {"node_id": node_id, "reason": reason}, json_out, node, "is revoked")
