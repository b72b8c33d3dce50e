"""The OpenAI-compatible gateway: `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`.

It listens on its own plain-HTTP port (`ui.host`, loopback by default), beside the web
UI, and lets in only callers with an API key or a member's signature (admit.py). One
router per area — models.py, chat.py (with the tool contract in tool_calls.py),
embeddings.py — each turning a request into a bus call (relay.py) and the answer into
OpenAI's shape. Errors have OpenAI's shape too, with our closed code set.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from hearthnet.errors import HearthNetError
from hearthnet.gateway import chat, embeddings, models
from hearthnet.gateway.admit import Gate, GatewayNode
from hearthnet.transport.handling import AsciiJSONResponse, install_error_handlers, retry_after_header

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "invalid_request_error",
          429: "rate_limit_error"}


def error_response(err: HearthNetError) -> JSONResponse:
    body = {"error": {"message": err.message, "type": _TYPES.get(err.http_status, "server_error"), "code": err.code, "param": None}}
    return AsciiJSONResponse(body, status_code=err.http_status, headers=retry_after_header(err))


def build_gateway(node: GatewayNode) -> FastAPI:
    app = FastAPI(title="HearthNet OpenAI-compatible gateway", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app, error_response, node.log_error, "gateway")
    gate = Gate(node)
    for area in (models, chat, embeddings):
        app.include_router(area.router(gate))
    known = {r.path for r in app.routes if getattr(r, "path", "").startswith("/v1/")}

    # Last under /v1: a wrong method or an unknown path still gets the gateway's error shape. Without
    # it, Starlette would hand them to whatever is mounted at / beside the gateway (the Gradio UI).
    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], include_in_schema=False)
    async def elsewhere(request: Request, rest: str) -> Response:
        if request.url.path in known:
            raise HearthNetError("bad_request", f"{request.method} is not allowed on {request.url.path}")
        raise HearthNetError("not_found", f"no gateway route {request.url.path}")

    return app


__all__ = ["GatewayNode", "build_gateway", "error_response"]
