"""Files: share a file from this browser (stored and pinned on this node, advertised to the
mesh), list what the mesh offers, and download any of it by CID (fetched from every node that
has it, each chunk checked)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from hearthnet.errors import HearthNetError
from hearthnet.ui import calls

HEADERS = ["name", "size", "offered by", "on this node", "cid"]


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _rows(node: calls.UiNode, files: list[dict[str, Any]]) -> list[list[Any]]:
    known = calls.names(node)
    rows = []
    for f in files:
        by = ", ".join(known.get(s) or calls.short(s) for s in f.get("sources", [])[:3]) or "-"
        here = "pinned" if f.get("pinned") else ("yes" if f.get("local") else "")
        rows.append([f.get("filename") or "(no name)", _size(int(f["size_bytes"])), by, here, f["cid"]])
    return rows


def _tracker(progress: gr.Progress, what: str) -> calls.Progress:
    def step(done: int, total: int) -> None:
        progress((done, total or None), desc=what, unit="bytes")

    return step


def build(node: calls.UiNode, downloads: Path) -> None:
    with gr.Tab("Files", id="files") as tab:
        with gr.Row(equal_height=True):
            upload = gr.File(label="Share a file with the mesh (stored and kept on this node, offered to every member by its CID)",
                             file_count="single", elem_id="hn-file-up", scale=3)
            share = gr.Button("Share", variant="primary", elem_id="hn-file-share", scale=1, min_width=120)
        with gr.Row(equal_height=True):
            query = gr.Textbox(label="Search by name", elem_id="hn-file-q", scale=3)
            show = gr.Button("Show", elem_id="hn-file-show", scale=1, min_width=120)
        listing = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, column_widths=["22%", "10%", "14%", "12%", "42%"],
                               elem_id="hn-files")
        with gr.Row(equal_height=True):
            cid = gr.Textbox(label="CID to download (or pick a row above)", placeholder="blake3:…", elem_id="hn-file-cid", scale=3)
            get = gr.Button("Download", elem_id="hn-file-get", scale=1, min_width=120)
        got = gr.File(label="Downloaded", interactive=False, elem_id="hn-file-got")
        line = gr.Markdown(elem_id="hn-file-line")

        async def list_files(q: str):  # type: ignore[no-untyped-def]
            try:
                found = await calls.files(node, q)
            except HearthNetError as exc:
                return gr.update(), exc.one_line()
            return _rows(node, found), f"{len(found)} file{'s' if len(found) != 1 else ''}"

        async def share_it(path: str | None, q: str, progress: gr.Progress = gr.Progress()):  # type: ignore[no-untyped-def]  # noqa: B008
            if not path:
                return gr.update(), "choose a file first", gr.update()
            name = Path(path).name
            try:
                out = await calls.file_share(node, Path(path), name, _tracker(progress, f"sharing {name}"))
            except HearthNetError as exc:
                return gr.update(), exc.one_line(), gr.update()
            rows, _ = await list_files(q)
            return rows, f"shared **{name}** as `{out['cid']}`", None

        async def download(c: str, progress: gr.Progress = gr.Progress()):  # type: ignore[no-untyped-def]  # noqa: B008
            try:
                into = Path(tempfile.mkdtemp(dir=downloads))  # its own folder: two downloads of one name never meet
                path = await calls.file_download(node, c, into, _tracker(progress, "downloading"))
            except HearthNetError as exc:
                return None, exc.one_line()
            return str(path), f"downloaded **{path.name}** ({_size(path.stat().st_size)}), every chunk checked"

        def pick(rows: Any, evt: gr.SelectData):  # type: ignore[no-untyped-def]
            row = evt.row_value if evt.row_value else None
            return row[-1] if row else gr.update()

        show.click(list_files, [query], [listing, line])
        query.submit(list_files, [query], [listing, line])
        share.click(share_it, [upload, query], [listing, line, upload])
        get.click(download, [cid], [got, line])
        cid.submit(download, [cid], [got, line])
        listing.select(pick, [listing], cid)
        tab.select(list_files, [query], [listing, line])
