"""The UI listener's one ASGI app (ui.host:ui.port, plain HTTP): the OpenAI-compatible gateway
at /v1 (ui.gateway_enabled), and with ui.enabled the login page, the phone page at /mobile/
and the Gradio app at / (when the `ui` extra is installed), all behind the access check."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from hearthnet import constants as C
from hearthnet.gateway.apikeys import ApiKeyStore
from hearthnet.storage import translate_os_errors
from hearthnet.gateway.openai_api import GatewayNode, build_gateway
from hearthnet.ui import calls
from hearthnet.ui.access import Access, login_routes
from hearthnet.ui.mobile import mount_mobile


class ListenerNode(GatewayNode, calls.UiNode):
    def log_warning(self, msg: str, **extra: Any) -> None: ...


def gradio_installed() -> bool:
    return importlib.util.find_spec("gradio") is not None


def _scratch(data_dir: Path) -> Path:
    """The UI's scratch folder, emptied: nothing a browser was handed outlives the run."""
    d = data_dir / C.UI_SCRATCH_DIR
    shutil.rmtree(d, ignore_errors=True)
    with translate_os_errors(f"cannot create {d}"):
        d.mkdir(mode=0o700, parents=True)
    return d


def build_listener(node: ListenerNode) -> Any:
    ui = node.config.ui
    app = build_gateway(node) if ui.gateway_enabled else FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    if not ui.enabled:
        return app
    keys = ApiKeyStore(node.config.data_dir)
    login_routes(app, keys)
    mount_mobile(app, node)
    if gradio_installed():
        from hearthnet.ui.app import mount

        app = mount(app, node, _scratch(node.config.data_dir))
    else:
        node.log_warning("ui.enabled, but the ui extra is not installed (pip install 'hearthnet[ui]'): serving the phone page /mobile/ only")

        @app.get("/", include_in_schema=False)
        async def root() -> Any:
            from fastapi.responses import RedirectResponse

            return RedirectResponse("/mobile/", status_code=307)
    app.add_middleware(Access, keys=keys)
    return app


__all__ = ["build_listener", "gradio_installed"]
