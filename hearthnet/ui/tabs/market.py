"""Market: browse, filter and search the community's posts, post one, end one of your own."""

from __future__ import annotations

from typing import Any

import gradio as gr

from hearthnet.errors import HearthNetError
from hearthnet.ui import calls

HEADERS = ["when", "category", "title", "details", "from", "post id"]


def _rows(node: calls.UiNode, posts: list[dict[str, Any]]) -> list[list[Any]]:
    known = calls.names(node)
    return [[p["created_at"][:16].replace("T", " "), p["category"], p["title"], p.get("body") or "",
             known.get(p["author"]) or calls.short(p["author"]), p["post_id"]] for p in posts]


def build(node: calls.UiNode) -> None:
    with gr.Tab("Market", id="market") as tab:
        with gr.Row(equal_height=True):
            category = gr.Dropdown([("everything", "")] + [(c, c) for c in calls.CATEGORIES], value="", label="Show", elem_id="hn-market-cat")
            query = gr.Textbox(label="Search", placeholder="potatoes, bicycle, …", elem_id="hn-market-q")
            mine = gr.Checkbox(label="Only mine", elem_id="hn-market-mine")
            show = gr.Button("Show", elem_id="hn-market-show")
        posts = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="hn-market")
        line = gr.Markdown(elem_id="hn-market-line")
        with gr.Accordion("Post something", open=False):
            with gr.Row():
                p_cat = gr.Dropdown(list(calls.CATEGORIES), value="offer", label="Kind", elem_id="hn-post-cat")
                p_title = gr.Textbox(label="Title", elem_id="hn-post-title")
            p_body = gr.Textbox(label="Details", lines=2, elem_id="hn-post-body")
            p_go = gr.Button("Post", variant="primary", elem_id="hn-post")
        with gr.Accordion("End one of your posts", open=False):
            own = gr.Dropdown(label="Your post", choices=[], elem_id="hn-own")
            end = gr.Button("End it", variant="stop", elem_id="hn-expire")

        async def listing(cat: str, q: str, only_mine: bool):  # type: ignore[no-untyped-def]
            try:
                got = await calls.market_posts(node, category=cat or None, query=q, mine=only_mine)
                mine_posts = await calls.market_posts(node, mine=True)
            except HearthNetError as exc:
                return gr.update(), exc.one_line(), gr.update()
            choices = [(f"{p['title']} ({p['category']})", p["post_id"]) for p in mine_posts]
            return _rows(node, got), f"{len(got)} post{'s' if len(got) != 1 else ''}", gr.Dropdown(choices=choices, value=None)

        async def post(cat: str, title: str, body: str, f_cat: str, q: str, only_mine: bool):  # type: ignore[no-untyped-def]
            try:
                out = await calls.market_post(node, cat, title, body)
            except HearthNetError as exc:
                return gr.update(), exc.one_line(), gr.update(), gr.update(), gr.update()
            rows, _, own_dd = await listing(f_cat, q, only_mine)
            return rows, f"posted, until {out['expires_at'][:16].replace('T', ' ')}", own_dd, "", ""

        async def expire(post_id: str | None, f_cat: str, q: str, only_mine: bool):  # type: ignore[no-untyped-def]
            if not post_id:
                return gr.update(), "choose one of your posts first", gr.update()
            try:
                await calls.market_expire(node, post_id)
            except HearthNetError as exc:
                return gr.update(), exc.one_line(), gr.update()
            rows, _, own_dd = await listing(f_cat, q, only_mine)
            return rows, "ended", own_dd

        filters = [category, query, mine]
        show.click(listing, filters, [posts, line, own])
        query.submit(listing, filters, [posts, line, own])
        p_go.click(post, [p_cat, p_title, p_body, *filters], [posts, line, own, p_title, p_body])
        end.click(expire, [own, *filters], [posts, line, own])
        tab.select(listing, filters, [posts, line, own])  # fresh each time the tab is opened
