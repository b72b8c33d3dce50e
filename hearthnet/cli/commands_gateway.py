"""API keys of the OpenAI-compatible gateway (node-local; no running node needed)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

from typing import Annotated

import typer

from hearthnet.cli.app import JsonOpt, app, command, emit_json, home, make_console, table
from hearthnet.gateway.apikeys import ApiKeyStore

console = make_console()
apikey_app = typer.Typer(help="API keys for the OpenAI-compatible gateway (deny by default).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _store() -> ApiKeyStore:
    h = home()
    h.identity()  # an initialised data dir (keys_missing otherwise), not a stray directory
    return ApiKeyStore(h.data_dir)


@command("create", group=apikey_app)
def create_cmd(name: Annotated[str, typer.Option("--name", help="What the key is for, e.g. 'kitchen tablet'.")] = "default",
               json_out: JsonOpt = False) -> None:
    """Make a key and print it once (only its hash is kept)."""
    key, secret = _store().create(name)
    if json_out:
        emit_json({**key.public(), "key": secret})
        return
    print(secret)  # alone on stdout, so KEY=$(hearthnet apikey create) works
    typer.echo(f"key {key.id} ({key.name}): shown once, keep it safe. Use it as 'Authorization: Bearer <key>' (OPENAI_API_KEY).", err=True)


@command("list", group=apikey_app)
def list_cmd(json_out: JsonOpt = False) -> None:
    """Keys of this node (never the keys themselves)."""
    keys = _store().list()
    if json_out:
        emit_json([k.public() for k in keys])
        return
    t = table("id", "name", "created", "revoked")
    for k in keys:
        t.add_row(k.id, k.name, k.created_at, k.revoked_at or "")
    console.print(t)


@command("revoke", group=apikey_app)
def revoke_cmd(key: Annotated[str, typer.Argument(help="Key id (key_...) or name.")], json_out: JsonOpt = False) -> None:
    """Stop accepting a key, at once (the running node re-reads the key file)."""
    k = _store().revoke(key)
    if json_out:
        emit_json(k.public())
        return
    console.print(f"revoked {k.id} ({k.name})")
