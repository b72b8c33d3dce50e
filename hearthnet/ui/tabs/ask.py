"""Ask: a question to the mesh's language model, the answer streamed token by token, optionally
grounded in a corpus (with citations), and which node answered in how long."""

from __future__ import annotations


import gradio as gr

from hearthnet.ui import calls


def _answer_md(node: calls.UiNode, ans: calls.Answer) -> tuple[str, str]:
    meta = ""
    if ans.done:
        name = calls.names(node).get(ans.node or "")
        name = "this node" if name == "you" else name
        who = (f"answered by `{calls.short(ans.node)}`" + (f" ({name})" if name else "")) if ans.node else "no node answered"
        meta = f"{who} in {ans.ms / 1000:.1f} s" + (f" · {ans.model}" if ans.model else "")
        if ans.citations:
            meta += "  \n" + "  \n".join(f"[{c['n']}] {c['title']}" + (f" — {c['section']}" if c.get("section") else "") for c in ans.citations)
        if ans.error:
            meta = f"**{ans.error}**  \n" + meta
    return ans.text, meta


def build(node: calls.UiNode) -> None:
    with gr.Tab("Ask", id="ask"):
        question = gr.Textbox(label="Your question", lines=3, max_lines=8, elem_id="hn-question")
        with gr.Row():
            corpus = gr.Dropdown(label="Answer from", choices=[("the model alone", "")], value="", elem_id="hn-corpus", scale=3)
            go = gr.Button("Ask", variant="primary", elem_id="hn-ask", scale=1)
        answer = gr.Markdown(elem_id="hn-answer")
        meta = gr.Markdown(elem_id="hn-answer-meta", elem_classes=["hn-meta"])

        async def run(q: str, c: str):  # type: ignore[no-untyped-def]
            yield "", "asking the mesh…"  # the page's progress overlay is off (it slows the first token): say it here
            async for ans in calls.ask(node, q, c or None):
                yield _answer_md(node, ans)

        async def refresh_corpora():  # type: ignore[no-untyped-def]
            return gr.Dropdown(choices=[("the model alone", "")] + [(n, n) for n in await calls.corpora(node)])

        go.click(run, [question, corpus], [answer, meta], show_progress="hidden", concurrency_limit=None)
        question.submit(run, [question, corpus], [answer, meta], show_progress="hidden", concurrency_limit=None)
        corpus.focus(refresh_corpora, None, corpus)
