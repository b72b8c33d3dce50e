"""The first-run screen: what the UI listener serves while the node has no community yet.

`hearthnet run` on such a data dir (and with the UI on) serves only this page, on the UI's
address, until a person creates a community here or redeems an invite; then the node starts
for real on the same port and the page turns into the full UI by itself. Plain HTML with no
framework, so it works without the `ui` extra, behind the same access check as the full UI
(open on loopback; from the LAN it asks for an API key, `hearthnet apikey create`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hearthnet.community.membership import redeem_invite
from hearthnet.errors import HearthNetError
from hearthnet.gateway.apikeys import ApiKeyStore
from hearthnet.home import Home
from hearthnet.ui.access import Access, login_routes

MAX_FORM = 16 * 1024  # an invite is a few KB

STYLE = """body{font:17px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:#faf6ef;color:#2b2118;margin:0;padding:16px}
main{max-width:640px;margin:0 auto}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:28px}.muted{color:#6d5f52;font-size:.9rem}
code{overflow-wrap:anywhere;background:#f0e6d6;padding:2px 4px;border-radius:4px}label{display:block;margin-top:10px;font-weight:600}
input,textarea,button{font:inherit;width:100%;min-height:48px;margin-top:6px;padding:10px 12px;border-radius:8px;box-sizing:border-box;
border:1px solid #6d5f52;background:#fff;color:#2b2118}button{background:#b5542b;color:#fff;border:0;cursor:pointer}
.error{color:#b00;font-weight:600;overflow-wrap:anywhere}"""

# Polls until the full UI answers on this port, then shows it: the node starts in a few seconds.
WAIT_JS = """<script>
async function wait(){try{const r=await fetch("/mobile/api/status",{cache:"no-store"});if(r.ok){location.replace("/");return}}catch(e){}
setTimeout(wait,1000)}setTimeout(wait,1000);
</script>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
           f"<title>HearthNet: first run</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>")
    return HTMLResponse(doc, status_code=status, headers={"cache-control": "no-store"})


def _start(home: Home, error: str = "") -> str:
    kp = home.identity()
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<h1>HearthNet: this box has no community yet</h1>{err}
<p>This node is <code id="node-id">{html.escape(kp.node_id)}</code>
<span class="muted">(short: {html.escape(kp.short_id)})</span></p>
<h2>Start a new community</h2>
<p class="muted">For the first box of a village: it becomes the community's anchor.</p>
<form method="post" action="/first-run/create">
<label for="name">Community name</label><input id="name" name="name" required maxlength="120" placeholder="Our Village">
<label for="display_name">This box's name (optional)</label><input id="display_name" name="display_name" maxlength="120">
<button type="submit">Create the community</button></form>
<h2>Join a community</h2>
<p class="muted">Give the node id above to a member of the community; they create an invite for it
(Community tab, or <code>hearthnet invite create NODE_ID</code>). Paste it here.</p>
<form method="post" action="/first-run/redeem">
<label for="invite">Invite</label><textarea id="invite" name="invite" rows="4" required placeholder="hearthnet://v1/…"></textarea>
<button type="submit">Join</button></form>"""


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_FORM:
        raise HearthNetError("payload_too_large", f"the form is over {MAX_FORM} bytes")
    try:
        fields = parse_qs(raw.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        raise HearthNetError("bad_request", "the form is not valid form data") from None
    return {k: v[0].strip() for k, v in fields.items() if v}


def build_first_run(home: Home, done: Callable[[], None]) -> Any:
    """The first-run app; `done()` is called once this node belongs to a community."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    keys = ApiKeyStore(home.data_dir)
    login_routes(app, keys)

    def joined(what: str, name: str) -> HTMLResponse:
        done()
        return _page(f"<h1>{html.escape(what)} {html.escape(name)}</h1><p>The node is starting; this page turns into HearthNet in a few seconds.</p>"
                     + WAIT_JS)

    @app.get("/")
    async def start() -> HTMLResponse:
        return _page(_start(home))

    @app.post("/first-run/create")
    async def create(request: Request) -> HTMLResponse:
        try:
            form = await _form(request)
            res = home.init(create_community=form.get("name", ""), display_name=form.get("display_name") or None)
        except HearthNetError as exc:
            return _page(_start(home, exc.one_line()), exc.http_status)
        with home.open_log() as log:
            return joined("Created", log.membership.name or res.community_id or "")

    @app.post("/first-run/redeem")
    async def redeem(request: Request) -> HTMLResponse:
        try:
            form = await _form(request)
            if not form.get("invite", "").startswith("hearthnet://"):
                raise HearthNetError("bad_request", "paste the whole invite: it starts with hearthnet://v1/")
            res = await redeem_invite(home, form["invite"])
        except HearthNetError as exc:
            return _page(_start(home, exc.one_line()), exc.http_status)
        return joined("Joined", res["name"])

    @app.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def elsewhere(rest: str) -> Response:
        exc = HearthNetError("not_initialised", "this node has no community yet: open / to create one or join one")
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    app.add_middleware(Access, keys=keys)
    return app


__all__ = ["build_first_run"]
