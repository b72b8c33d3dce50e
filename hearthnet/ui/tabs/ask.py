"""Ask: a question to the mesh's language model, the answer streamed token by token, optionally
grounded in a corpus (with citations), and which node answered in how long.

The answer does not take Gradio's event path (a queue join, then an SSE message and a page diff
per token: about 70 ms before the first word, three times the bus's own first frame). The click
runs the phone page's streaming client (/mobile/ask.js) in the browser instead, against the same
adapter (/mobile/api/ask → calls.ask → the bus), and it writes the words into this tab itself.
"""

from __future__ import annotations

import gradio as gr

from hearthnet.ui import calls

HEAD = '<script src="/mobile/ask.js"></script>'  # the page's <head>: see app.mount
ANSWER_HTML = ('<div id="hn-answer" class="hn-answer" aria-live="polite"></div>'
               '<p id="hn-answer-error" class="hn-error" role="alert"></p>'
               '<p id="hn-answer-meta" class="hn-meta"></p>')
ASK_JS = """(question, corpus) => {
  const el = (id) => document.getElementById(id);
  hearthAsk.ask(question, corpus, {answer: el("hn-answer"), meta: el("hn-answer-meta"), error: el("hn-answer-error")});
  return [];
}"""


def build(node: calls.UiNode) -> None:
    with gr.Tab("Ask", id="ask"):
        question = gr.Textbox(label="Your question", lines=3, max_lines=8, elem_id="hn-question")
        with gr.Row():
            corpus = gr.Dropdown(label="Answer from", choices=[("the model alone", "")], value="", elem_id="hn-corpus", scale=3)
            go = gr.Button("Ask", variant="primary", elem_id="hn-ask", scale=1)
        gr.HTML(ANSWER_HTML, elem_id="hn-answer-box")

        async def refresh_corpora():  # type: ignore[no-untyped-def]
            return gr.Dropdown(choices=[("the model alone", "")] + [(n, n) for n in await calls.corpora(node)])

        go.click(None, [question, corpus], None, js=ASK_JS)
        question.submit(None, [question, corpus], None, js=ASK_JS)
        corpus.focus(refresh_corpora, None, corpus)
