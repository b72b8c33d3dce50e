"""Files on the mesh: put, get, list, unpin (through the running node)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

import base64
import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from hearthnet.blobs.chunker import check_cid, local_name, verify_chunk
from hearthnet.cli.app import JsonOpt, app, command, emit_json, home, make_console, progress, table
from hearthnet.cli.commands_mesh import NodeOpt, _with_client, call_node
from hearthnet.errors import HearthNetError
from hearthnet.storage import atomic_file, translate_os_errors
from hearthnet.transport.blob_upload import upload_file
from hearthnet.transport.client import TransportClient

console = make_console()
file_app = typer.Typer(help="Files shared on the mesh: stored as content-addressed blobs, fetched from every node that has them.",
                       no_args_is_help=True)
app.add_typer(file_app, name="file")


@command("put", group=file_app)
def put_cmd(
    path: Annotated[Path, typer.Argument(help="The file to share.")],
    no_advertise: Annotated[bool, typer.Option("--no-advertise", help="Store and pin it, but do not tell the mesh.")] = False,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Store a file on the node (pinned) and advertise it; prints its CID."""
    if not path.is_file():
        raise HearthNetError("not_found", f"{path}: no such file")
    out = _with_client(home(), node, lambda c, u: upload(c, u, path, advertise=not no_advertise, quiet=json_out))
    if json_out:
        emit_json({**out, "filename": path.name})
        return
    print(out["cid"])


async def upload(c: TransportClient, u: str, path: Path, *, advertise: bool = True, quiet: bool = False) -> dict[str, Any]:
    """upload_file with a progress bar. Returns file.put's answer."""
    with progress(quiet=quiet) as bar:
        task = bar.add_task(path.name[:40], total=path.stat().st_size)
        return await upload_file(c, u, path, advertise=advertise, on_bytes=lambda n: bar.advance(task, n))


def _target(out: Path, label: str | None, cid: str) -> Path:
    """Where `get` writes: --out itself, or inside it when it is a directory (named after the label)."""
    return out / local_name(label, cid) if out.is_dir() else out


@command("get", group=file_app)
def get_cmd(
    cid: Annotated[str, typer.Argument(help="The file's CID (blake3:...).")],
    out: Annotated[Path, typer.Option("--out", help="File to write, or a directory to write it into.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    pin: Annotated[bool, typer.Option("--pin", help="Keep it on the node (pinned) after fetching.")] = False,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Fetch a file through the node (from every node that advertises it) and write it to --out."""
    check_cid(cid)
    if out.exists() and not out.is_dir() and not force:
        raise HearthNetError("already_exists", f"{out} exists; add --force to replace it")
    if not out.is_dir() and not out.parent.is_dir():
        raise HearthNetError("not_found", f"{out.parent}: no such directory")

    async def go(c: TransportClient, u: str) -> dict[str, Any]:
        report: dict[str, Any] = {}
        with progress(quiet=json_out) as bar:
            task = bar.add_task(f"fetch {cid[7:19]}", total=None)
            async for frame in c.stream_remote(u, "file.fetch", "1.0", {"cid": cid, "pin": pin}, timeout=3600, trace_id="", session_id=None):
                d = frame["data"]
                if frame["event"] == "error":
                    raise HearthNetError.from_wire(d)
                if frame["event"] == "progress":
                    bar.update(task, total=None, completed=d["bytes"], description=f"fetch {cid[7:19]} {d['done']}/{d['total']} chunks")
                elif frame["event"] == "done":
                    report = d
                    bar.update(task, total=d["size_bytes"], completed=d["size_bytes"])
            return {"report": report, **await _read_to(c, u, cid, out, force, bar)}

    result = _with_client(home(), node, go)
    if json_out:
        emit_json(result)
        return
    r = result["report"]
    console.print(f"{result['path']}: {result['size_bytes']} bytes, {r.get('fetched', 0)} chunks fetched"
                  f" ({r.get('already_had', 0)} already here) from {len(r.get('by_source', {}))} source(s)")
    for b in r.get("bad_sources", []):
        console.print(f"  bad source {b['node_id'][:24]}: {b['code']}: {b['message']}")


async def _read_to(c: TransportClient, u: str, cid: str, out: Path, force: bool, bar: Progress) -> dict[str, Any]:
    """Stream the blob from the node into a temp file beside the target, check every chunk, then rename."""
    target: Path | None = None
    size = 0
    with contextlib.ExitStack() as stack:  # the file is written through storage.atomic_file, opened once the manifest names it
        fh = None
        async for frame in c.stream_remote(u, "file.read", "1.0", {"cid": cid}, timeout=3600, trace_id="", session_id=None):
            d = frame["data"]
            if frame["event"] == "error":
                raise HearthNetError.from_wire(d)
            if frame["event"] == "manifest":
                target = _target(out, d.get("filename"), cid)
                if target.exists() and not force:
                    raise HearthNetError("already_exists", f"{target} exists; add --force to replace it")
                fh = stack.enter_context(atomic_file(target))
                task = bar.add_task(f"write {target.name[:30]}", total=d["size_bytes"])
            elif frame["event"] == "chunk" and fh is not None:
                data = base64.b64decode(d["data_b64"])
                verify_chunk(data, d["cid"])
                with translate_os_errors(f"cannot write {target}"):
                    fh.write(data)
                size += len(data)
                bar.advance(task, len(data))
        if target is None:
            raise HearthNetError("internal", "the node ended file.read without a manifest")
    return {"path": str(target), "size_bytes": size, "cid": cid}


@command("list", group=file_app)
def list_cmd(
    query: Annotated[str | None, typer.Argument(help="Only files whose name contains this.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Only files held by the node.")] = False,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Files advertised on the mesh and held by the node."""
    body: dict[str, Any] = {"local_only": local}
    if query:
        body["query"] = query
    rows = call_node("file.list", body, node)["files"]
    if json_out:
        emit_json(rows)
        return
    t = table("cid", "name", "size", "sources", "here")
    for r in rows:
        t.add_row(r["cid"][:23], r.get("filename") or "-", f"{r['size_bytes'] / 1e6:.2f} MB", str(len(r.get("sources", []))),
                  "pinned" if r.get("pinned") else ("yes" if r.get("local") else ""))
    console.print(t)


@command("unpin", group=file_app)
def unpin_cmd(cid: Annotated[str, typer.Argument(help="The file's CID.")], json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """Stop keeping a file: it is no longer advertised, and the space is reclaimed when the disk fills."""
    check_cid(cid)
    out = call_node("file.unpin", {"cid": cid}, node)
    if json_out:
        emit_json(out)
        return
    console.print(f"{cid}: {'unpinned' if out['unpinned'] else 'was not pinned'}{', no longer advertised' if out['event_id'] else ''}")
