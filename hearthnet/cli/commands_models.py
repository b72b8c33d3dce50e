"""Model files: list the index, add a file to it, verify and fetch a box's pinned files, build offline bundles."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TextColumn

from hearthnet.cli.app import JsonOpt, app, command, emit_json, home, make_console, progress, table
from hearthnet.errors import HearthNetError
from hearthnet.provision import lock, models
from hearthnet.provision.actions import bundle, fetch
from hearthnet.provision.site import load_site, model_mirrors

console = make_console()
models_app = typer.Typer(help="Model files: the index, pinned files on this box, offline bundles.", no_args_is_help=True)
app.add_typer(models_app, name="models")

LockOpt = Annotated[Path | None, typer.Option("--lock", help="models.lock.json (default: the one beside the config file, as render-profile writes it).")]
IndexOpt = Annotated[Path | None, typer.Option("--index", help="Model index (default: the package's). A site's own index that does not exist yet starts as a copy of the package's.")]


def _models_dir() -> Path:
    cfg = home().config
    return cfg.path(cfg.models.dir)


def _lock_path(given: Path | None) -> Path:
    if given is not None:
        return given
    p = home().config_path.parent / "models.lock.json"
    if not p.is_file():
        raise HearthNetError("not_found", f"no --lock given and no {p} (render-profile writes it beside hearthnet.toml)")
    return p


@command("list", group=models_app)
def list_cmd(index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Every model of the index, and whether this box has its file."""
    d = _models_dir()
    rows = []
    for e in models.load_index(index).values():
        try:
            where = str(models.locate(e, [d]))
        except HearthNetError:
            where = None
        rows.append({"id": e.id, "kind": e.kind, "file": e.file, "size": e.size, "license": e.license, "quantisation": e.quantisation,
                     "context": e.context, "sha256": e.sha256, "local": where})
    if json_out:
        emit_json(rows)
        return
    t = table("id", "kind", "quant", "ctx", "size", "license", "on this box")
    for r in rows:
        t.add_row(r["id"], r["kind"], r["quantisation"], str(r["context"]), f"{r['size'] / 1e6:.0f} MB", r["license"], r["local"] or "no")
    console.print(t)


@command("add", group=models_app)
def add_cmd(
    file: Annotated[Path, typer.Argument(help="The model file (GGUF or safetensors).")],
    model_id: Annotated[str, typer.Option("--id", help="Index id, e.g. qwen2.5-7b-instruct-q4_k_m.")],
    family: Annotated[str, typer.Option("--family", help="Model family, e.g. qwen2.5.")],
    license_: Annotated[str, typer.Option("--license", help="SPDX licence identifier.")],
    quantisation: Annotated[str, typer.Option("--quantisation", help="e.g. Q4_K_M.")],
    context: Annotated[int, typer.Option("--context", min=1, help="Context length in tokens.")],
    provenance: Annotated[str, typer.Option("--provenance", help="Where the file came from (upstream repository or vendor).")],
    kind: Annotated[str, typer.Option("--kind", help="llm or embedding.")] = "llm",
    min_ram_gb: Annotated[float, typer.Option("--min-ram-gb", min=0)] = 0,
    min_vram_gb: Annotated[float, typer.Option("--min-vram-gb", min=0)] = 0,
    url: Annotated[str | None, typer.Option("--url", help="https URL it can be fetched from upstream.")] = None,
    index: IndexOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Hash a file and add it to the model index (the hash is computed, never typed). Mirrors serve it by its file name."""
    entry, added = models.add_model(file, index, id=model_id, family=family, kind=kind, license=license_, quantisation=quantisation,
                                    context=context, min_ram_gb=min_ram_gb, min_vram_gb=min_vram_gb, provenance=provenance, url=url)
    if json_out:
        emit_json({"added": added, "entry": entry})
        return
    console.print(f"{'added' if added else 'already in the index:'} {entry['id']}  sha256 {entry['sha256']}  {entry['size']} bytes")


@command("verify", group=models_app)
def verify_cmd(lock_file: LockOpt = None, json_out: JsonOpt = False) -> None:
    """Rehash every pinned file against the lock; missing, mismatched and extra files are reported separately."""
    rep = _verify(lock.load_lock(_lock_path(lock_file)), json_out)
    if json_out:
        emit_json(rep.as_dict())
    else:
        _show(rep)
    _verdict(rep)


def _verify(lk: lock.Lock, quiet: bool, hashed: lock.Hashed | None = None) -> lock.Report:
    with progress(quiet=quiet) as bar:
        task = bar.add_task("verifying", total=sum(m.size for m in lk.models))
        return lock.verify_lock(lk, _models_dir(), progress=lambda _id, n: bar.advance(task, n), hashed=hashed)


def _show(rep: lock.Report) -> None:
    for i in rep.ok:
        console.print(f"ok          {i}")
    for i in rep.missing:
        console.print(f"missing     {i}")
    for m in rep.mismatched:
        console.print(f"mismatched  {m['id']}: {m['path']}: {m['reason']}")
    for p in rep.extra:
        console.print(f"extra       {p}")


def _verdict(rep: lock.Report) -> None:
    if rep.mismatched:
        raise HearthNetError("db_corrupt", f"{len(rep.mismatched)} pinned file(s) do not match the lock")
    if rep.missing:
        raise HearthNetError("not_found", f"{len(rep.missing)} pinned file(s) missing: {', '.join(rep.missing)} (hearthnet models fetch)")
    if rep.extra:
        raise HearthNetError("conflict", f"{len(rep.extra)} file(s) in the models dir are not in the lock")


@command("fetch", group=models_app)
def fetch_cmd(
    lock_file: LockOpt = None,
    mirror: Annotated[list[str] | None, typer.Option("--mirror", help="A directory or http(s) URL holding model files by name; repeat to try several in order.")] = None,
    from_bundle: Annotated[Path | None, typer.Option("--bundle", help="An offline bundle: its models/ is tried before any mirror (each file verified as it is copied).")] = None,
    upstream: Annotated[bool, typer.Option("--upstream", help="Also try the upstream URLs of the index (the internet); off unless asked.")] = False,
    no_mesh: Annotated[bool, typer.Option("--no-mesh", help="Do not try the anchor's copies over the mesh (through this box's running node).")] = False,
    then_verify: Annotated[bool, typer.Option("--verify", help="Then rehash every pinned file, as `models verify` does (one call for provisioning).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Bring the pinned files this box lacks into its models dir: bundle, mirrors, the anchor over the mesh, then upstream;
    each verified before it is moved into place."""
    lk = lock.load_lock(_lock_path(lock_file))
    mirrors = list(mirror or [])
    if from_bundle is not None:
        # Not the whole bundle rehashed (its installer checked it, and an anchor's is gigabytes):
        # every file taken from it is hashed against the lock as it is copied, like any mirror's.
        if not (from_bundle / bundle.SUMS).is_file():
            raise HearthNetError("not_found", f"{from_bundle}: not a bundle (no {bundle.SUMS})")
        mirrors.insert(0, str(from_bundle.resolve() / "models"))
    with progress(quiet=json_out) as bar:
        tasks = {m.id: bar.add_task(m.id, total=m.size) for m in lk.models}
        res = fetch.fetch_sync(lk, _models_dir(), mirrors, upstream=upstream, progress=lambda i, n: bar.advance(tasks[i], n),
                              blobs=None if no_mesh else _mesh_reader())
    # A failed fetch is reported before any verify: what is missing says less than why it is.
    rep = _verify(lk, json_out, res.hashed) if then_verify and not res.failed else None
    if json_out:
        emit_json(res.as_dict() | ({"verify": rep.as_dict()} if rep is not None else {}))
    else:
        for i in res.present:
            console.print(f"present  {i}")
        for i, src in res.fetched.items():
            console.print(f"fetched  {i} from {src}")
        for i, why in res.failed.items():
            console.print(f"failed   {i}: " + "; ".join(why))
        if rep is not None:
            _show(rep)
    if res.failed:
        raise HearthNetError("not_found", f"no source had a verified copy of {', '.join(res.failed)}")
    if rep is not None:
        _verdict(rep)


def _mesh_reader():
    """A blob's bytes by CID: this box's running node fetches it from the nodes that advertise it
    (file.fetch: every chunk verified), then the bytes are read from the local blob store."""
    from hearthnet.blobs.store import BlobStore
    from hearthnet.transport.local import with_node

    h = home()

    async def read(cid: str):
        async def fetch(c, u):
            async for frame in c.stream_remote(u, "file.fetch", "1.0", {"cid": cid}, timeout=3600, trace_id="", session_id=None):
                if frame["event"] == "error":
                    raise HearthNetError.from_wire(frame["data"], context="over the mesh")

        await with_node(h, None, fetch)
        store = BlobStore(h.config.path(h.config.file.blobs_dir))
        try:
            async for _, data in store.stream(cid):
                yield data
        finally:
            store.close()

    return read


@command("publish", group=models_app)
def publish_cmd(lock_file: LockOpt = None, json_out: JsonOpt = False) -> None:
    """On the anchor: put every pinned model file this box has into its blob store, pinned and advertised,
    so other boxes' `models fetch` can get it over the mesh (by the CID the index names)."""
    from hearthnet.cli.commands_file import upload
    from hearthnet.cli.commands_mesh import _with_client

    lk = lock.load_lock(_lock_path(lock_file))
    out = []
    for m in lk.models:
        p = lock.local_path(m, _models_dir())
        if p is None:
            out.append({"id": m.id, "cid": None, "state": "missing here"})
            continue
        res = _with_client(home(), None, lambda c, u, p=p: upload(c, u, p, quiet=json_out))
        wanted = [s["cid"] for s in m.sources if s.get("kind") == "anchor"]
        out.append({"id": m.id, "cid": res["cid"], "state": "published" if not wanted or res["cid"] in wanted else "published (CID differs from the index)"})
    if json_out:
        emit_json(out)
        return
    for r in out:
        console.print(f"{r['state']:<10} {r['id']} {r['cid'] or ''}")


@command("bundle", group=models_app)
def bundle_cmd(
    out: Annotated[Path, typer.Option("--out", help="Bundle directory (replaced only when the new bundle is whole).")],
    lock_files: Annotated[list[Path] | None, typer.Option("--lock", help="models.lock.json of a box; repeat for several boxes.")] = None,
    plans: Annotated[list[Path] | None, typer.Option("--corpora", help="corpora.json of a box; its documents are copied in.")] = None,
    plan_root: Annotated[Path | None, typer.Option("--root", help="Where the plans' relative source paths start (default: each plan's directory).")] = None,
    wheel: Annotated[list[str] | None, typer.Option("--wheel", help="What to build wheels for (pip requirement or path); default: this project with its llm and embed extras.")] = None,
    no_wheels: Annotated[bool, typer.Option("--no-wheels", help="Models and corpora only.")] = False,
    no_deps: Annotated[bool, typer.Option("--no-deps", help="Wheels for the named requirements only, not their dependencies.")] = False,
    verify_only: Annotated[bool, typer.Option("--verify", help="Only check an existing bundle at --out against its SHA256SUMS.")] = False,
    site_file: Annotated[Path | None, typer.Option("--site", help="Bundle for every host of this site (their locks and corpus plans); instead of --lock/--corpora.")] = None,
    hardware_file: Annotated[Path | None, typer.Option("--hardware", help="With --site: facts for hosts without recorded ones.")] = None,
    mirror: Annotated[list[str] | None, typer.Option("--mirror", help="A directory holding model files by name (e.g. the site's mirror); repeat.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write an offline bundle: wheels (never an sdist), model files, corpora, locks, and a SHA256SUMS manifest verified before use.
    Models shipped inside a Python package travel in its wheel, not as files. Building may use the package index; applying never does."""
    import tempfile

    if verify_only:
        n = bundle.verify_bundle(out)
        emit_json({"path": str(out), "files": n, "ok": True}) if json_out else console.print(f"{out}: {n} files match SHA256SUMS")
        return
    if site_file is not None and (lock_files or plans):
        raise HearthNetError("bad_request", "give --site, or --lock/--corpora, not both")
    specs = [] if no_wheels else (wheel or [bundle.project_spec()])
    with tempfile.TemporaryDirectory(prefix="hearthnet-bundle-") as scratch, \
            progress(TextColumn("{task.description}"), quiet=json_out, transient=True) as bar:
        root = plan_root
        mirrors = [Path(m) for m in mirror or []]
        if site_file is not None:
            lock_files, plans = bundle.site_inputs(site_file, hardware_file, Path(scratch))
            root = root or site_file.resolve().parent  # a site's corpus sources are relative to the site file
            mirrors += model_mirrors(load_site(site_file), site_file)
        elif not lock_files:
            lock_files = [_lock_path(None)]
        models_dir = _models_dir() if not mirror else None
        task = bar.add_task("bundling")
        info = bundle.write_bundle(out, locks=lock_files, plans=list(plans or []), plan_root=root, wheels=specs, no_deps=no_deps,
                                   models_dir=models_dir, mirrors=mirrors,
                                   step=lambda s: bar.update(task, description=f"bundling: {s}"))
    if json_out:
        emit_json(info)
        return
    console.print(f"{info['path']}: {len(info['models'])} models, {len(info['corpora'])} corpora, {len(info['wheels'])} wheels, "
                  f"{info['bytes'] / 2**20:.0f} MiB in {info['seconds']:.0f} s; SHA256SUMS written")
