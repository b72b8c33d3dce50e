"""Identity and health: version, id, init, doctor."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.


import platform
import sys
from typing import Annotated

import typer

import hearthnet
from hearthnet import constants as C
from hearthnet.cli.app import JsonOpt, command, emit_json, home, make_console, node_label, table
from hearthnet.errors import HearthNetError
from hearthnet.observability import doctor as doctor_mod
from hearthnet.storage import sqlite_module

console = make_console()


@command("version")
def version_cmd(json_out: JsonOpt = False) -> None:
    """Print the HearthNet version."""
    info = {
        "version": hearthnet.__version__,
        "contract_version": C.CONTRACT_VERSION,
        "python": platform.python_version(),
        "sqlite": sqlite_module().sqlite_version,
    }
    if json_out:
        emit_json(info)
    else:
        print(f"hearthnet {info['version']} (contract {info['contract_version']}, python {info['python']}, sqlite {info['sqlite']})")


@command("id")
def id_cmd(json_out: JsonOpt = False) -> None:
    """Show this node's id (full and short) and its community."""
    h = home()
    kp = h.identity()
    info: dict[str, object] = {
        "node_id": kp.node_id,
        "short_id": kp.short_id,
        "display_name": h.config.identity.display_name or kp.short_id,
        "community_id": h.community_id,
        "community_name": None,
        "level": "unknown",
        "holds_root_key": h.root_key_path.exists(),
        "data_dir": str(h.data_dir),
    }
    if h.community_id:
        with h.open_log() as log:
            info["community_name"] = log.membership.name
            info["level"] = log.membership.level_of(kp.node_id)
    if json_out:
        emit_json(info)
        return
    print(f"node       {node_label(info['short_id'], info['display_name'])}")
    print(f"node id    {info['node_id']}")
    if h.community_id:
        print(f"community  {info['community_name']}  {h.community_id}")
        print(f"level      {info['level']}{'  (holds the community root key)' if info['holds_root_key'] else ''}")
    else:
        print("community  none yet (hearthnet init --create-community NAME, or join one)")


@command("init")
def init_cmd(
    create_community: Annotated[
        str | None, typer.Option("--create-community", metavar="NAME", help="Create a new community with this node as its anchor.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name of this node.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create this node's identity, data directory and config (and optionally a community)."""
    h = home()
    res = h.init(create_community=create_community, display_name=name)
    if json_out:
        emit_json(
            {
                "node_id": res.node_id,
                "short_id": res.short_id,
                "created_identity": res.created_identity,
                "community_id": res.community_id,
                "created_community": res.created_community,
                "config": str(res.config_path),
                "data_dir": str(h.data_dir),
            }
        )
        return
    print(f"{'created' if res.created_identity else 'kept'} node identity {res.short_id}")
    print(f"data dir   {h.data_dir}")
    print(f"config     {res.config_path}")
    if res.created_community:
        print(f"created community {create_community.strip()!r} ({res.community_id}); this node is its anchor")
    elif res.community_id:
        print(f"community  {res.community_id}")


@command("doctor")
def doctor_cmd(
    check: Annotated[str | None, typer.Option("--check", help="Run only this check.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check keys, data dir, event log, disk and clock; say how to fix what is wrong."""
    h = home()
    results = [doctor_mod.run_one(check, h)] if check else doctor_mod.run_all(h)
    if json_out:
        print(doctor_mod.render_json(results))
    else:
        t = table("check", "", "detail")
        for r in results:
            t.add_row(r.name, "ok" if r.ok else "FAIL", r.detail + (f"\n  fix: {r.fix}" if r.fix and not r.ok else ""))
        console.print(t)
    if not all(r.ok for r in results):
        failed = ", ".join(r.name for r in results if not r.ok)
        sys.stdout.flush()
        raise HearthNetError("unhealthy", f"doctor: failing checks: {failed}")
