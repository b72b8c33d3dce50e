"""The marketplace through the running node: post, list and search, update and end this node's own posts."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

from typing import Annotated, Any

import typer

from hearthnet.cli.app import JsonOpt, app, command, emit_json, home, make_console, table
from hearthnet.cli.commands_mesh import NodeOpt, call_node
from hearthnet.services.marketplace.service import CATEGORIES

console = make_console()
market_app = typer.Typer(help="Offers, requests, notices and emergencies, signed and replicated to every box.", no_args_is_help=True)
app.add_typer(market_app, name="market")

PostIdArg = Annotated[str, typer.Argument(help="The post's id (hearthnet market list --mine).")]
BodyOpt = Annotated[str | None, typer.Option("--body", help="Details (plain text).")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (lowercase letters, digits, - and _); repeatable.")]
TtlOpt = Annotated[int | None, typer.Option("--ttl", min=60, help="Seconds until the post expires (default and maximum: market config).")]


def _fields(title: str | None, body: str | None, tags: list[str] | None, ttl: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"title": title, "body": body, "tags": tags, "ttl_seconds": ttl}
    return {k: v for k, v in out.items() if v is not None}


def _check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise typer.BadParameter(f"{category!r} is not one of {', '.join(CATEGORIES)}", param_hint="CATEGORY")
    return category


@command("post", group=market_app)
def post_cmd(
    category: Annotated[str, typer.Argument(help=f"One of {', '.join(CATEGORIES)}.", callback=_check_category)],
    title: Annotated[str, typer.Argument(help="A short title.")],
    body: BodyOpt = None,
    tag: TagOpt = None,
    ttl: TtlOpt = None,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Post to the marketplace as this node; prints the post id and when it expires."""
    out = call_node("market.post", {"category": category, **_fields(title, body, tag, ttl)}, node)
    emit_json(out) if json_out else console.print(f"{out['post_id']}  expires {out['expires_at']}")


@command("list", group=market_app)
def list_cmd(
    category: Annotated[str | None, typer.Option("--category", help=f"Only this category ({', '.join(CATEGORIES)}).")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only posts with this tag.")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Full-text search in titles, bodies and tags.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only this node's own posts.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Include expired posts.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="At most this many posts.")] = 50,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Current posts, newest first (best match first with --search); hidden posts are left out."""
    if category is not None:
        _check_category(category)
    req: dict[str, Any] = {"category": category, "tag": tag, "query": search, "include_expired": all_ or None, "limit": limit}
    if mine:
        req["author"] = home().identity().node_id
    posts = call_node("market.list", {k: v for k, v in req.items() if v is not None}, node)["posts"]
    if json_out:
        emit_json(posts)
        return
    t = table("post id", "category", "title", "tags", "author", "expires")
    for p in posts:
        t.add_row(p["post_id"], p["category"], p["title"], " ".join(p["tags"]), p["author"][:20],
                  p["expires_at"] if p["live"] else f"ended ({p['expired'] or 'ttl'})")
    console.print(t)


@command("update", group=market_app)
def update_cmd(
    post_id: PostIdArg,
    title: Annotated[str | None, typer.Option("--title", help="A new title.")] = None,
    body: BodyOpt = None,
    tag: TagOpt = None,
    ttl: Annotated[int | None, typer.Option("--ttl", min=60, help="Expire this many seconds from now instead.")] = None,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Edit one of this node's own posts (only what is given changes; --tag replaces all tags)."""
    fields = _fields(title, body, tag, ttl)
    if not fields:
        raise typer.BadParameter("nothing to change: give --title, --body, --tag or --ttl")
    out = call_node("market.update", {"post_id": post_id, **fields}, node)
    emit_json(out) if json_out else console.print(f"{out['post_id']}: updated, expires {out['expires_at']}")


@command("expire", group=market_app)
def expire_cmd(post_id: PostIdArg, json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """End one of this node's own posts now (it stays in the log, and in `list --all`)."""
    out = call_node("market.expire", {"post_id": post_id}, node)
    emit_json(out) if json_out else console.print(f"{out['post_id']}: ended")
