"""The event log and the data dir as a whole: log, export, erase."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.


import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

import hearthnet
from hearthnet import clock
from hearthnet import constants as C
from hearthnet.cli.app import JsonOpt, command, emit_json, home, make_console, table
from hearthnet.errors import HearthNetError
from hearthnet.events.replay import ActivityView, ReplayEngine
from hearthnet.events.types import EVENT_TYPES, Event
from hearthnet.identity.keys import short_of
from hearthnet.storage import atomic_file, connect, translate_os_errors

console = make_console()


def _row(ev: Event, status: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "lamport": ev.lamport,
        "wall_clock": ev.wall_clock,
        "author": ev.author,
        "seq": ev.seq,
        "event_type": ev.event_type,
        "event_id": ev.event_id,
        "hash": ev.hash,
        "data": ev.data,
        "envelope": ev.envelope(),
    }
    if status is not None:
        d["status"] = status
    return d


@command("log")
def log_cmd(
    json_out: JsonOpt = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show at most N events.")] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type", help="Only this event type (repeatable).")] = None,
    since: Annotated[int, typer.Option("--since", min=0, help="Only events with a Lamport time above this.")] = 0,
    all_: Annotated[bool, typer.Option("--all", help="Include parked, void and forked events, with their status.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Re-verify every stored event (hash, columns, signature, chain).")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Per-author activity instead of events.")] = False,
) -> None:
    """Replay the community event log as a table or JSON."""
    for t in event_type or []:
        if t not in EVENT_TYPES:
            raise HearthNetError("bad_request", f"unknown event type {t!r} (one of: {', '.join(EVENT_TYPES)})")
    h = home()
    with h.open_log() as log:
        if verify:
            _verify(log, json_out)
            return
        if summary:
            _summary(log, json_out)
            return
        if all_:
            rows = ((ev, st) for ev, st in log.rows_with_status() if ev.lamport > since and (not event_type or ev.event_type in event_type))
        else:
            rows = ((ev, None) for ev in log.replay(since_lamport=since, event_types=event_type))
        if json_out:
            _stream_json(rows, limit)
            return
        t = table(*("lamport", "wall clock", "author", "seq", "type", "event id") + (("status",) if all_ else ()))
        n = 0
        for ev, st in rows:
            if limit is not None and n >= limit:
                break
            t.add_row(str(ev.lamport), ev.wall_clock, short_of(ev.author), str(ev.seq), ev.event_type, ev.event_id, *((st,) if st else ()))
            n += 1
        console.print(t)
        counts = log.status_counts()
        console.print(f"{n} shown; log holds {counts['valid']} valid, {counts['parked']} parked, {counts['void']} void, {counts['forked']} forked; lamport head {log.head()}")


def _stream_json(rows: Any, limit: int | None) -> None:
    out = sys.stdout
    out.write("[")
    n = 0
    for ev, st in rows:
        if limit is not None and n >= limit:
            break
        out.write(("," if n else "") + "\n  " + json.dumps(_row(ev, st), ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")


def _verify(log: Any, json_out: bool) -> None:
    t0 = time.perf_counter()
    rep = log.verify_all()
    dt = time.perf_counter() - t0
    ok_db, msg = log.integrity_check()
    if not ok_db:
        rep.problems.append(("(database)", f"integrity_check: {msg}"))
    if json_out:
        emit_json({"ok": rep.ok, "checked": rep.checked, "seconds": round(dt, 3), "problems": [{"event_id": e, "reason": r} for e, r in rep.problems]})
    else:
        for e, r in rep.problems[:20]:
            print(f"  {e}: {r}")
        print(f"verified {rep.checked} events in {dt:.2f}s: {'ok' if rep.ok else f'{len(rep.problems)} problem(s)'}")
    if not rep.ok:
        raise HearthNetError("db_corrupt", f"{len(rep.problems)} stored event(s) failed verification")


def _summary(log: Any, json_out: bool) -> None:
    engine = ReplayEngine(log)
    view = ActivityView()
    engine.register(view)
    engine.catch_up()
    mem = log.membership
    if json_out:
        emit_json({"community": mem.name, "events": engine.applied, "types": dict(view.types), "authors": view.authors})
        return
    t = table(*("author", "level", "events", "last lamport", "last seen"))
    for author, a in sorted(view.authors.items(), key=lambda kv: -kv[1]["last_lamport"]):
        t.add_row(short_of(author), mem.level_of(author), str(a["events"]), str(a["last_lamport"]), a["last_wall_clock"])
    console.print(t)
    console.print(f"{engine.applied} valid events in {mem.name}")


# --- export / erase --------------------------------------------------------------


@command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="Archive to write (.tar.gz).")],
    with_keys: Annotated[bool, typer.Option("--with-keys", help="Include the private keys (the archive is then 0600).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing archive.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a consistent backup of this node's data dir: config, event log, snapshots (keys only with --with-keys).

    Restore by unpacking it into an empty data dir: tar -xzf ARCHIVE -C DIR.
    """
    h = home()
    out = out.expanduser().absolute()
    if out.exists() and not force:
        raise HearthNetError("already_exists", f"{out} exists; pass --force to overwrite")
    if not h.data_dir.is_dir():
        raise HearthNetError("not_found", f"data dir {h.data_dir} does not exist: nothing to export")
    counts: dict[str, int] = {}
    with atomic_file(out, mode=0o600 if with_keys else 0o644) as raw, translate_os_errors(f"cannot write {out}"):
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            counts = _write_archive(tar, h, with_keys)
    info = {"archive": str(out), "with_keys": with_keys, **counts}
    if json_out:
        emit_json(info)
    else:
        print(f"exported {counts.get('events', 0)} events to {out}{' (with private keys: keep it safe)' if with_keys else ''}")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = int(time.time())
    tar.addfile(ti, io.BytesIO(data))


def _write_archive(tar: tarfile.TarFile, h: Any, with_keys: bool) -> dict[str, int]:
    counts = {"events": 0}
    data_dir: Path = h.data_dir
    if h.config_path.exists():
        tar.add(h.config_path, arcname=C.CONFIG_FILE_NAME)
    if (data_dir / C.COMMUNITY_FILE).exists():
        tar.add(data_dir / C.COMMUNITY_FILE, arcname=C.COMMUNITY_FILE)
    if with_keys and h.config.keys_dir.is_dir():
        tar.add(h.config.keys_dir, arcname=str(h.config.keys_dir.relative_to(data_dir)) if h.config.keys_dir.is_relative_to(data_dir) else "keys")
    cid = h.community_id
    if cid and h.config.event_db_path(cid).exists():
        rel = h.config.community_dir(cid).relative_to(data_dir) if h.config.community_dir(cid).is_relative_to(data_dir) else Path("communities") / cid
        with tempfile.TemporaryDirectory() as td:
            # SQLite's online backup: a consistent copy even while a node writes.
            copy = Path(td) / C.EVENT_DB_FILE
            src = connect(h.config.event_db_path(cid))
            dst = connect(copy)
            try:
                src.backup(dst)
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
                src.close()
            tar.add(copy, arcname=str(rel / C.EVENT_DB_FILE))
        snaps = h.config.snapshots_dir(cid)
        if snaps.is_dir():
            tar.add(snaps, arcname=str(rel / "snapshots"))
        with h.open_log() as log:
            lines = []
            for ev in log.replay(statuses=(0, 1, 2, 3)):
                lines.append(json.dumps(ev.envelope(), ensure_ascii=False))
            counts["events"] = len(lines)
        _add_bytes(tar, "events.jsonl", ("\n".join(lines) + "\n").encode("utf-8") if lines else b"")
    meta = {
        "format": "hearthnet-export/1",
        "hearthnet_version": hearthnet.__version__,
        "exported_at": clock.iso(),
        "community_id": cid,
        "events": counts["events"],
        "with_keys": with_keys,
    }
    _add_bytes(tar, "export.json", json.dumps(meta, indent=2).encode("utf-8"))
    return counts


@command("erase")
def erase_cmd(
    yes: Annotated[bool, typer.Option("--yes", help="Really erase: there is no undo.")] = False,
    keep_keys: Annotated[bool, typer.Option("--keep-keys", help="Keep the node (and root) keys.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete this node's data: config, event log, snapshots, blobs, corpora, logs (and keys unless --keep-keys)."""
    h = home()
    d: Path = h.data_dir
    if not yes:
        raise HearthNetError("aborted", f"erase deletes {d} and cannot be undone; pass --yes")
    if not d.exists():
        if json_out:
            emit_json({"erased": [], "data_dir": str(d)})
        else:
            print(f"nothing to erase at {d}")
        return
    # Only what HearthNet created is removed, so a mistaken --data-dir cannot wipe a home directory.
    if not (h.key_path.exists() or h.config_path.exists() or (d / C.CONFIG_FILE_NAME).exists()):
        raise HearthNetError("not_found", f"{d} does not look like a HearthNet data dir (no key, no config); not erasing")
    cfg = h.config
    targets = [
        d / C.CONFIG_FILE_NAME,
        d / C.COMMUNITY_FILE,
        cfg.path(cfg.community.state_dir),
        cfg.path(cfg.file.blobs_dir),
        cfg.path(cfg.rag.corpora_dir),
        cfg.path(cfg.observability.log_dir),
    ]
    if not keep_keys:
        targets.append(cfg.keys_dir)
    erased = []
    with translate_os_errors(f"cannot erase {d}"):
        for p in targets:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
                erased.append(str(p))
            elif p.exists() or p.is_symlink():
                p.unlink()
                erased.append(str(p))
        if not keep_keys and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    if json_out:
        emit_json({"erased": erased, "data_dir": str(d), "kept_keys": keep_keys})
    else:
        print(f"erased {len(erased)} item(s) under {d}{' (keys kept)' if keep_keys else ''}")
