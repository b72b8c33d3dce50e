"""Who may use the UI: anyone on loopback; from any other address, whoever logs in with an
API key (`hearthnet apikey create`), which is then kept in an HttpOnly cookie. Deny by
default, like the gateway. The listener is plain HTTP: the key crosses the LAN in clear
(docs/configuration.md says so).

Gradio's own `auth` and `auth_dependency` do not combine with a loopback exemption, so the
check is one ASGI middleware in front of everything on the listener except the gateway's
/v1 (which asks for its key itself) and the login page.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from hearthnet.errors import HearthNetError
from hearthnet.gateway.apikeys import ApiKeyStore

COOKIE = "hn_key"
LOOPBACK = {"127.0.0.1", "::1"}
OPEN_PATHS = ("/login", "/logout")
MAX_FORM = 4096


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for k, v in headers:
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                name, _, value = part.strip().partition("=")
                if name == COOKIE:
                    return value
    return None


def _is_loopback(scope: dict[str, Any]) -> bool:
    client = scope.get("client")
    return bool(client) and (client[0] in LOOPBACK or client[0].startswith("127."))


def _safe_next(target: str) -> str:
    """Only a path on this listener (no scheme, no //host): a login must not redirect away."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


class Access:
    """ASGI middleware: loopback, the gateway's /v1 and the login page pass; anyone else needs
    the cookie of a valid key (HTML pages redirect to /login, other requests get 401)."""

    def __init__(self, app: Any, keys: ApiKeyStore) -> None:
        self.app, self.keys = app, keys

    def allowed(self, scope: dict[str, Any]) -> bool:
        path = scope.get("path", "")
        if _is_loopback(scope) or path == "/v1" or path.startswith("/v1/") or path in OPEN_PATHS:
            return True
        secret = _cookie(scope.get("headers", []))
        if not secret:
            return False
        try:
            self.keys.check(secret)
        except HearthNetError:
            return False
        return True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        accept = dict(scope.get("headers", [])).get(b"accept", b"").decode("latin-1")
        if scope.get("method") == "GET" and "text/html" in accept:
            target = quote(scope.get("path", "/") + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else ""))
            await _respond(send, 303, b"", [(b"location", f"/login?next={target}".encode())])
            return
        await _respond(send, 401, b'{"error": {"code": "unauthorized", "message": "log in with an API key at /login"}}',
                       [(b"content-type", b"application/json")])


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>HearthNet: log in</title>
<style>
body {{ font: 18px/1.4 system-ui, sans-serif; margin: 0; padding: 24px; background: #faf6ef; color: #2b2118; }}
main {{ max-width: 420px; margin: 10vh auto; }}
input, button {{ font: inherit; width: 100%; box-sizing: border-box; min-height: 48px; margin-top: 8px; padding: 8px 12px; }}
button {{ background: #b5542b; color: #fff; border: 0; border-radius: 8px; }}
.err {{ color: #a01818; }}
</style></head>
<body><main>
<h1>HearthNet</h1>
<p>This box's UI asks for an API key when it is reached over the network. Ask the box's
keeper for one (<code>hearthnet apikey create NAME</code>).</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" placeholder="hn_..." required>
<button type="submit">Log in</button>
</form>
</main></body></html>
"""


def login_routes(app: Any, keys: ApiKeyStore) -> None:
    """GET/POST /login and POST /logout on the listener's FastAPI app."""

    def page(nxt: str, error: str | None, status: int = 200) -> HTMLResponse:
        err = f'<p class="err">{html.escape(error)}</p>' if error else ""
        return HTMLResponse(LOGIN_PAGE.format(error=err, next=html.escape(_safe_next(nxt), quote=True)), status_code=status,
                            headers={"cache-control": "no-store"})

    @app.get("/login", include_in_schema=False)
    async def login_form(next: str = "/") -> HTMLResponse:  # noqa: A002 - the query parameter's name
        return page(next, None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Any:
        body = await request.body()
        form = parse_qs(body[:MAX_FORM].decode("utf-8", "replace"))
        secret, nxt = (form.get("key") or [""])[0].strip(), (form.get("next") or ["/"])[0]
        try:
            keys.check(secret)
        except HearthNetError as exc:
            return page(nxt, exc.one_line(), 401)
        resp = RedirectResponse(_safe_next(nxt), status_code=303)
        # HttpOnly: page scripts cannot read it; SameSite=Strict: other sites cannot ride it.
        resp.set_cookie(COOKIE, secret, httponly=True, samesite="strict", path="/")
        return resp

    @app.post("/logout", include_in_schema=False)
    async def logout() -> Any:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp


__all__ = ["COOKIE", "Access", "login_routes"]
