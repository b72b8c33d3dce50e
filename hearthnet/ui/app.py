"""The Gradio app: Ask, Mesh and Status tabs, with a banner that turns the page into the
emergency theme by itself when the node goes offline. Imported only when the UI is on.

Nothing here reaches the internet: analytics and the version check are off, there is no
share link, no server-side rendering, the theme is an object with system fonts (a theme
named by string, or a Google font, would be fetched from a hub), and no component that
loads from a CDN is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hearthnet.ui import calls

# Before gradio is imported: it reads these at import time.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_TELEMETRY_ENABLED", "False")

import gradio as gr  # noqa: E402 - after the environment above

from hearthnet.ui.tabs import ask, chat, community, files, market, mesh, status  # noqa: E402 - they import gradio

STATUS_EVERY_S = 5
FONTS = ["system-ui", "-apple-system", "Segoe UI", "sans-serif"]

CSS = """
.hn-banner { padding: 8px 12px; border-radius: 8px; margin-bottom: 4px; }
.hn-banner.online { background: #f3ece1; color: #2b2118; }
.hn-banner.degraded { background: #fff0c2; color: #3a2a00; }
.hn-banner.offline { background: #7a1010; color: #fff4e8; font-weight: 600; }
.hn-meta { color: #6d5f52; font-size: .9em; }
.hn-answer { white-space: pre-wrap; min-height: 2.5em; line-height: 1.5; }
.hn-error { color: #a3200f; font-weight: 600; }
.hn-error:empty, .hn-meta:empty { display: none; }
"""
# The emergency theme: while the banner says offline, the whole page turns (CSS :has(), so no
# reload and no second theme object: the banner's class is the switch).
CSS += """
body:has(.hn-banner.offline), body:has(.hn-banner.offline) .gradio-container, body:has(.hn-banner.offline) .main {
  --body-background-fill: #2a0d0d; --background-fill-primary: #3a1616; --background-fill-secondary: #2a0d0d;
  --body-text-color: #fff4e8; --body-text-color-subdued: #f0c9b4; --block-background-fill: #3a1616;
  --block-label-text-color: #f0c9b4; --block-title-text-color: #fff4e8; --input-background-fill: #4a1f1f;
  --button-primary-background-fill: #e0572b; --border-color-primary: #7a3a2a; --table-even-background-fill: #3a1616;
  --table-odd-background-fill: #2a0d0d; --block-label-background-fill: #5a2a20; --block-title-background-fill: #5a2a20;
  --code-background-fill: #5a2a20; --color-accent-soft: #5a2a20; background: #2a0d0d; color: #fff4e8;
}
/* Gradio prefixes the rules above with its container (.gradio-container… .contain), which
   outranks a plain body:has(): these name the container too. */
body:has(.hn-banner.offline) .gradio-container .contain .hn-meta { color: #f0c9b4; }
body:has(.hn-banner.offline) .gradio-container .contain .hn-error { color: #ffb59e; }
"""


def theme() -> Any:
    return gr.themes.Soft(primary_hue="orange", neutral_hue="stone", font=FONTS, font_mono=["ui-monospace", "monospace"])


def banner(node: calls.UiNode) -> str:
    s = node.status()
    mode = s["emergency"]["mode"]
    what = {"online": "online", "degraded": "internet unreliable", "offline": "OFFLINE: the mesh keeps working without the internet"}[mode]
    parts = [f"<b>{_esc(s['display_name'])}</b>", _esc(s["profile"] or ""), _esc(s["community"] or "no community yet"), what]
    return f'<div class="hn-banner {mode}" data-mode="{mode}">{" · ".join(p for p in parts if p)}</div>'


def _esc(text: str) -> str:
    import html

    return html.escape(str(text))


def build_blocks(node: calls.UiNode, scratch: Path) -> Any:
    """The page; `scratch` holds what the page hands the browser (downloads, QR codes)."""
    with gr.Blocks(title="HearthNet", analytics_enabled=False) as blocks:
        timer = gr.Timer(STATUS_EVERY_S)
        top = gr.HTML(lambda: banner(node), elem_id="hn-banner")
        timer.tick(lambda: banner(node), None, top)
        with gr.Tabs():
            ask.build(node)
            chat.build(node)
            market.build(node)
            files.build(node, scratch)
            community.build(node, scratch)
            mesh.build(node, timer)
            status.build(node, timer)
    return blocks


def mount(app: Any, node: calls.UiNode, scratch: Path) -> Any:
    """The Gradio app at / of the listener's FastAPI app (its queue starts from the app's lifespan)."""
    return gr.mount_gradio_app(app, build_blocks(node, scratch), path="/", allowed_paths=[str(scratch)], ssr_mode=False, theme=theme(), css=CSS, head=ask.HEAD, footer_links=[], pwa=False,
                               mcp_server=False, show_error=False, enable_monitoring=False)


__all__ = ["banner", "build_blocks", "mount"]
