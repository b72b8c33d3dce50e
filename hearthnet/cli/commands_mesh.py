"""The mesh: run, status, caps, call, trace, member add, join."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from hearthnet import constants as C
from hearthnet.bus.capability import parse_name_at_version
from hearthnet.cli.app import JsonOpt, app, command, emit_json, home, make_console, node_label, table
from hearthnet.errors import HearthNetError
from hearthnet.home import Home
from hearthnet.identity.canonical import parse_json
from hearthnet.identity.keys import short_of
from hearthnet.transport.client import TransportClient
from hearthnet.transport.local import run_with_node

console = make_console()
NodeOpt = Annotated[str | None, typer.Option("--node", help="URL of the node to talk to (default: the running node of the data dir).")]
T = TypeVar("T")

member_app = typer.Typer(help="Community membership.", no_args_is_help=True)
app.add_typer(member_app, name="member")


def _with_client(h: Home, node: str | None, fn: Callable[[TransportClient, str], Awaitable[T]]) -> T:
    """Run fn(client, url) against the node, signed with this data dir's node key."""
    return run_with_node(h, node, fn)


def call_node(name: str, body: dict[str, Any], node: str | None, timeout: float = 30) -> Any:
    """One unary capability call served by the node itself (its operator's own business: self-trust capabilities)."""
    return run_with_node(home(), node, lambda c, u: c.call_remote(u, name, "1.0", body, timeout=timeout, trace_id="", session_id=None))


@command("run")
def run_cmd(
    host: Annotated[str | None, typer.Option("--host", help="Listen address (default: transport.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Listen port (default: transport.port; 0 = any free).")] = None,
    seed: Annotated[list[str] | None, typer.Option("--seed", metavar="PRESET", help="Once the node is up, seed this corpus preset "
                                                   "into it (e.g. hearthnet_docs), as `rag seed` would; repeatable, idempotent.")] = None,
) -> None:
    """Run the node in the foreground (logs as JSON lines on stderr) until SIGTERM or Ctrl-C."""
    from hearthnet.node import Node
    from hearthnet.observability import logging as hlog

    h = home()
    plan = None
    if seed:
        from hearthnet.provision import corpora

        plan = corpora.Plan.model_validate(corpora.plan_doc(seed))  # an unknown preset is refused before the node starts
    hlog.configure(h.config.observability.log_level, h.config.path(h.config.observability.log_dir))
    if h.community_id is None and h.config.ui.enabled:
        from hearthnet.node import first_run

        # No community yet: the UI serves the first-run screen until someone creates or joins one here.
        if not asyncio.run(first_run(h)):
            return
        h = home()
    node = Node(h, host=host, port=port)
    if plan is not None:
        threading.Thread(target=_seed_when_up, args=(node, plan), name="seed", daemon=True).start()
    asyncio.run(node.serve())


def _seed_when_up(node: Any, plan: Any) -> None:
    """Seed the plan's corpora through the node's own API once it serves (a thread beside its loop)."""
    from hearthnet.cli.commands_rag import seed_plan

    while not node.ready or node.home.read_run_file() is None:  # the CLI's client finds the node by its run file
        time.sleep(0.2)
    try:
        report = seed_plan(plan, Path.cwd(), True, None)
    except HearthNetError as exc:
        node.logger.warning("seeding failed", extra={"code": exc.code, "reason": exc.message})
        return
    for r in report:
        node.logger.info("corpus seeded", extra={"corpus": r["corpus"], "added": r["added"], "already": r["already"], "chunks": r["chunks"]})


@command("ready")
def ready_cmd(
    wait: Annotated[float, typer.Option("--wait", min=0, max=86400, help="Keep asking for up to this many seconds (a node that is starting or not up yet).")] = 0,
    node: NodeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Exit 0 when the node answers /ready; with --wait, keep asking until it does or the time is up (for provisioners)."""
    import time

    h = home()
    deadline = time.monotonic() + wait
    while True:
        try:
            got = _with_client(h, node, lambda c, u: c.get(u, "/ready"))
            break
        except HearthNetError as exc:
            # Not up yet (no run file, not answering) or starting: ask again; anything else is an answer.
            if exc.code not in ("no_node", "unhealthy", "partition") or time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    if json_out:
        emit_json(got)
    else:
        print(f"ready ({got['capabilities']} capabilities)")


@command("status")
def status_cmd(node: NodeOpt = None, json_out: JsonOpt = False) -> None:
    """Show the running node: identity, log, peers, clock."""
    h = home()
    st = _with_client(h, node, lambda c, u: c.get(u, "/status"))
    if json_out:
        emit_json(st)
        return
    print(f"node       {node_label(st['short_id'], st['display_name'], st['profile'])}  {st['url']}")
    print(f"community  {st['community']}  level {st['level']}")
    print(f"log        head {st['log']['head']}: {st['log']['valid']} valid, {st['log']['parked']} parked")
    print(f"clock      {st['time']}" + (f"  WARNING: {st['clock_warning']}" if st.get("clock_warning") else ""))
    em = st.get("emergency") or {}
    probes = ", ".join(f"{k} {'ok' if v else 'no answer'}" for k, v in (em.get("probe_results") or {}).items())
    print(f"internet   {em.get('mode', '?')} since {em.get('since', '?')}" + (f"  ({probes})" if probes else "  (no probe targets)"))
    print(f"local      {_families(st['capabilities_local'])}  (hearthnet caps lists each)")
    t = table(*("peer", "url", "source", "verified", "age s", "capabilities"))
    for p in st["peers"]:
        t.add_row(short_of(p["node_id"]) if p["node_id"] else "?", p["url"], p["source"], "yes" if p["verified"] else "no",
                  str(p["age_seconds"]), _families(p["capabilities"]))
    console.print(t)


def _families(names: list[str]) -> str:
    """`llm.chat@1.0, llm.complete@1.0, rag.query@1.0` -> `3 in llm, rag`: one short line per node."""
    fams = sorted({n.split(".", 1)[0] for n in names})
    return f"{len(names)} in {', '.join(fams)}" if names else "none"


@command("caps")
def caps_cmd(
    node: NodeOpt = None,
    json_out: JsonOpt = False,
    local_only: Annotated[bool, typer.Option("--local", help="Only this node's capabilities.")] = False,
    remote_only: Annotated[bool, typer.Option("--remote", help="Only peers' capabilities.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Only this capability.")] = None,
) -> None:
    """List the capabilities the node can route to, local and remote."""
    h = home()
    rows = _with_client(h, node, lambda c, u: c.get(u, "/caps"))["capabilities"]
    rows = [r for r in rows if (not local_only or r["local"]) and (not remote_only or not r["local"]) and (not name or r["name"] == name)]
    if json_out:
        emit_json(rows)
        return
    t = table(*("capability", "node", "where", "load", "success", "p50 ms", "trust"))
    for r in rows:
        t.add_row(f"{r['name']}@{r['version']}", short_of(r["node_id"]), "local" if r["local"] else r["url"] or "?",
                  f"{r['in_flight']}/{r['max_concurrent']}", f"{r['success_rate']:.2f}" + (" Q" if r["quarantined"] else ""),
                  "-" if r["p50_ms"] is None else f"{r['p50_ms']:.1f}", r.get("trust_required") or "")
    console.print(t)


@command("call")
def call_cmd(
    name_at_version: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="For example echo.ping@1.0")],
    body: Annotated[str, typer.Option("--body", help="Request body as JSON.")] = "{}",
    stream: Annotated[bool, typer.Option("--stream", help="Stream frames as JSON lines.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="Deadline in seconds.")] = C.RPC_DEFAULT_TIMEOUT_SECONDS,
    node: NodeOpt = None,
) -> None:
    """Call a capability through the node's bus (routed to the best node)."""
    name, version = parse_name_at_version(name_at_version)
    payload = parse_json(body, what="--body")
    if not isinstance(payload, dict):
        raise HearthNetError("bad_request", "--body must be a JSON object")
    h = home()
    ver = f"{version[0]}.{version[1]}"

    async def unary(c: TransportClient, u: str) -> Any:
        return await c.call_remote(u, name, ver, payload, timeout=timeout, trace_id="", session_id=None, route=True)

    async def streamed(c: TransportClient, u: str) -> dict[str, Any] | None:
        async for frame in c.stream_remote(u, name, ver, payload, timeout=timeout, trace_id="", session_id=None, route=True):
            sys.stdout.write(json.dumps(frame, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            if frame["event"] == "error":
                return frame["data"]
        return None

    if stream:
        # The stream's own error frame is raised here, after talking to the node, so it is
        # not mistaken for the node being unreachable.
        err = _with_client(h, node, streamed)
        if err is not None:
            raise HearthNetError.from_wire(err, "stream failed")
    else:
        emit_json(_with_client(h, node, unary))


@command("trace")
def trace_cmd(
    n: Annotated[int, typer.Option("-n", min=1, max=10000, help="How many recent calls.")] = 20,
    capability: Annotated[str | None, typer.Option("--capability", help="Only this capability.")] = None,
    node: NodeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Recent bus calls on the node (routed and served)."""
    h = home()
    q = f"/trace/recent?n={n}" + (f"&capability={capability}" if capability else "")
    traces = _with_client(h, node, lambda c, u: c.get(u, q))["traces"]
    if json_out:
        emit_json(traces)
        return
    t = table(*("time", "capability", "from", "to", "result", "ms", "tries", "tokens in/out"))
    for r in traces:
        tokens = "" if r.get("tokens_out") is None else f"{r.get('tokens_in') or 0}/{r['tokens_out']}"
        t.add_row(r["ts"], r["capability"], short_of(r["from_node"]), "local" if r["is_local"] and r["from_node"] == r["to_node"] else short_of(r["to_node"]),
                  r["result"], f"{r['ms']:.1f}", str(r["attempts"]), tokens)
    console.print(t)


@command("add", group=member_app)
def member_add_cmd(
    node_id: Annotated[str, typer.Argument(metavar="NODE_ID", help="Full node id of the new member (hearthnet id on that box).")],
    level: Annotated[str, typer.Option("--level", help="member or trusted.")] = "member",
    name: Annotated[str, typer.Option("--name", help="Display name for the member list.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Add a node to the community (needs the community root key: run on the anchor)."""
    from hearthnet.community.membership import add_member

    res = add_member(home(), node_id, level, name)
    if json_out:
        emit_json(res)
    elif res["already_member"]:
        print(f"{short_of(node_id)} is already a member ({res['level']})")
    else:
        print(f"added {short_of(node_id)} as {level} (event {res['event_id']}); on that box run: hearthnet join URL-OF-THIS-NODE")


@command("list", group=member_app)
def member_list_cmd(json_out: JsonOpt = False) -> None:
    """List members and revocations from the local log."""
    h = home()
    with h.open_log() as log:
        rows = log.membership.rows()
    if json_out:
        emit_json(rows)
        return
    t = table(*("member", "level", "name", "added", "revoked"))
    for r in rows:
        t.add_row(short_of(r["node_id"]), r["level"], r["display_name"], r["added_at"], "yes" if r["revoked"] else "")
    console.print(t)


@command("join")
def join_cmd(
    url: Annotated[str, typer.Argument(help="URL of a member node, e.g. https://10.0.0.2:7080")],
    json_out: JsonOpt = False,
) -> None:
    """Join a community from a member node: verify its manifest, sync the log."""
    from hearthnet.community.membership import join

    res = asyncio.run(join(home(), url))
    if json_out:
        emit_json(res.__dict__)
    else:
        print(f"{'synced with' if res.already_joined else 'joined'} {res.name} ({res.community_id}): {res.events} events, this node is {res.level}")
