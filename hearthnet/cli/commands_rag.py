"""RAG corpora: list, ingest, query, reindex (through the running node's bus)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

import base64
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

from hearthnet import constants as C
from hearthnet.cli.app import JsonOpt, app, command, emit_json, home, make_console, progress, table
from hearthnet.cli.commands_mesh import NodeOpt, _with_client
from hearthnet.errors import HearthNetError
from hearthnet.provision import corpora
from hearthnet.transport.client import TransportClient

console = make_console()
rag_app = typer.Typer(help="Document corpora for retrieval-augmented answers.", no_args_is_help=True)
app.add_typer(rag_app, name="rag")
SUFFIXES = (".pdf", ".md", ".markdown", ".txt")


def _call(c: TransportClient, u: str, name: str, body: dict[str, Any], timeout: float = 120, route: bool = True) -> Any:
    return c.call_remote(u, name, "1.0", body, timeout=timeout, trace_id="", session_id=None, route=route)


@command("list", group=rag_app)
def list_cmd(json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """Corpora on the node: documents, chunks, size, language, embedding model."""
    rows = _with_client(home(), node, lambda c, u: _call(c, u, "rag.list_corpora", {}, route=False))["corpora"]
    if json_out:
        emit_json(rows)
        return
    t = table("corpus", "documents", "chunks", "tokens", "size", "language", "model")
    for r in rows:
        t.add_row(r["corpus"], str(r.get("documents", "?")), str(r.get("chunks", "?")), str(r.get("tokens", "?")),
                  f"{r.get('size_bytes', 0) / 1e6:.1f} MB", r.get("language") or "-", (r.get("model") or "?") + (f" ({r['error']})" if r.get("error") else ""))
    console.print(t)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if path.is_file():
        return [path]
    raise HearthNetError("not_found", f"{path}: no such file or directory")


def _warm_embedder(node: str | None) -> None:
    """Seeding runs right after a box starts, when the embedder is not loaded yet. On a slow box
    (a Pi, an emulated VM) loading torch and the model takes longer than one call's deadline:
    ask the mesh for one embedding first, patiently (the load goes on between attempts)."""

    async def go(c: TransportClient, u: str) -> None:
        deadline = time.monotonic() + C.EMBED_WARMUP_SECONDS
        while True:
            try:
                await c.call_remote(u, "embed.text", "1.0", {"texts": ["warm-up"]}, timeout=C.EMBED_WARMUP_SECONDS, trace_id="", session_id=None)
                return
            except HearthNetError as exc:
                if exc.code != "timeout" or time.monotonic() >= deadline:
                    raise

    _with_client(home(), node, go)


def _ingest(docs: list[tuple[Path, str]], corpus: str, language: str, quiet: bool, node: str | None) -> list[dict[str, Any]]:
    """Ingest (file, title) pairs into this node's corpus, one progress bar each; all sizes are checked first."""
    config = home().config
    limit = config.transport.max_body_bytes * 3 // 4  # base64 grows by a third
    for f, _ in docs:
        if f.stat().st_size > limit:
            raise HearthNetError("payload_too_large", f"{f} is {f.stat().st_size} bytes; this node takes documents up to {limit}", limit=limit)

    async def go(c: TransportClient, u: str) -> list[dict[str, Any]]:
        results = []
        with progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), quiet=quiet) as bar:
            for f, title in docs:
                task = bar.add_task(f.name[:40], total=None)
                body = {"corpus": corpus, "data_b64": base64.b64encode(f.read_bytes()).decode(), "filename": f.name, "title": title,
                        "language": language}
                # Into this node's corpus (route=False); its bus routes the embedding to whoever has the model.
                async for frame in c.stream_remote(u, "rag.ingest", "1.0", body, timeout=config.rag.ingest_timeout_seconds, trace_id="",
                                                session_id=None, route=False):
                    data = frame["data"]
                    if frame["event"] == "progress":
                        bar.update(task, total=data["total"], completed=data["done"])
                    elif frame["event"] == "error":
                        raise HearthNetError.from_wire(data, context=str(f))
                    elif frame["event"] == "done":
                        bar.update(task, total=max(data["chunks_indexed"], 1), completed=max(data["chunks_indexed"], 1),
                                   description=f"{f.name[:40]} {'added' if data['added'] else 'already there'}")
                        results.append({"file": str(f), **data})
        return results

    return _with_client(home(), node, go)


@command("ingest", group=rag_app)
def ingest_cmd(
    path: Annotated[Path, typer.Argument(help="A PDF, Markdown or text file, or a directory of them.")],
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus name (created on first use).")],
    title: Annotated[str | None, typer.Option("--title", help="Title (single file only; default: the file name).")] = None,
    language: Annotated[str, typer.Option("--language", help="Language tag of the documents, e.g. en, de.")] = "und",
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Add documents to a corpus: stored as blobs, chunked, embedded through the mesh. Re-ingesting changes nothing."""
    files = _files(path)
    if not files:
        raise HearthNetError("not_found", f"{path}: no .pdf, .md or .txt files")
    if title and len(files) > 1:
        raise HearthNetError("bad_request", "--title names one document; give a file, not a directory")
    results = _ingest([(f, title or f.stem) for f in files], corpus, language, json_out, node)
    if json_out:
        emit_json(results)
        return
    added = [r for r in results if r["added"]]
    console.print(f"{len(added)} added, {len(results) - len(added)} already in {corpus}; "
                  f"{sum(r['chunks_indexed'] for r in added)} chunks")


@command("query", group=rag_app)
def query_cmd(
    corpus: Annotated[str, typer.Argument(help="Corpus name.")],
    question: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many chunks.")] = C.RAG_DEFAULT_K,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, dense or keyword.")] = "hybrid",
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """The best chunks of a corpus for a question (routed to a node that holds the corpus)."""
    out = _with_client(home(), node, lambda c, u: _call(c, u, "rag.query", {"corpus": corpus, "query": question, "k": k, "mode": mode}))
    if json_out:
        emit_json(out)
        return
    for n, h in enumerate(out["hits"], 1):
        where = f"p.{h['page']}" if h.get("page") else (h.get("section") or "")
        console.print(f"[{n}] {h['title']} {where}  score {h['score']:.4f}")
        console.print("    " + h["text"][:300].replace("\n", " "))


@command("reindex", group=rag_app)
def reindex_cmd(corpus: Annotated[str, typer.Argument(help="Corpus name.")], json_out: JsonOpt = False, node: NodeOpt = None) -> None:
    """Rebuild a corpus from its stored documents (after changing the embedding model or chunking); the old one stays until the new one is whole."""
    out = _with_client(home(), node, lambda c, u: _call(c, u, "rag.reindex", {"corpus": corpus}, timeout=3600, route=False))
    if json_out:
        emit_json(out)
        return
    console.print(f"{out['corpus']}: {out['documents']} documents, {out['chunks']} chunks with {out['model']}")


def seed_plan(p: corpora.Plan, root: Path, quiet: bool, node: str | None) -> list[dict[str, Any]]:
    """Ingest what a plan lists into the node's corpora; a report per corpus (added, already there, skipped)."""
    todo = corpora.collect(p, root)
    if any(sc.files for sc in todo):
        _warm_embedder(node)
    report = []
    for sc in todo:
        done = _ingest([(f, f.stem) for f in sc.files], sc.corpus, sc.language, quiet, node) if sc.files else []
        report.append({"corpus": sc.corpus, "added": sum(1 for r in done if r["added"]), "already": sum(1 for r in done if not r["added"]),
                       "chunks": sum(r["chunks_indexed"] for r in done if r["added"]),
                       "skipped": [{"file": str(f), "reason": why} for f, why in sc.skipped]})
    return report


@command("seed", group=rag_app)
def seed_cmd(
    plan: Annotated[Path, typer.Option("--plan", help="corpora.json from render-profile.")],
    root: Annotated[Path | None, typer.Option("--root", help="Where relative source paths start (default: the plan's directory; "
                                                           "for a site's presets, the site file's directory).")] = None,
    only: Annotated[list[str] | None, typer.Option("--corpus", help="Seed only this corpus of the plan; repeat for several (e.g. the box's own plan's names with a bundle's plan).")] = None,
    json_out: JsonOpt = False,
    node: NodeOpt = None,
) -> None:
    """Ingest every document the plan lists into its corpus. Idempotent: documents already in a corpus are skipped."""
    p = corpora.load_plan(plan)
    if only is not None:
        unknown = sorted(set(only) - {c.corpus for c in p.corpora})
        if unknown:
            raise HearthNetError("not_found", f"{plan} has no corpus {', '.join(unknown)} (it has: {', '.join(c.corpus for c in p.corpora) or 'none'})")
        p = p.model_copy(update={"corpora": [c for c in p.corpora if c.corpus in only]})
    report = seed_plan(p, root if root is not None else plan.resolve().parent, json_out, node)
    if json_out:
        emit_json(report)
        return
    for r in report:
        console.print(f"{r['corpus']}: {r['added']} added ({r['chunks']} chunks), {r['already']} already there"
                      + (f", {len(r['skipped'])} skipped" if r["skipped"] else ""))
        for s in r["skipped"]:
            console.print(f"  skipped {s['file']}: {s['reason']}")
