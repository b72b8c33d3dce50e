"""Talking to the running node of a data dir (the CLI and the doctor do).

The node writes DATA_DIR/run/node.json when it is up; requests are signed with
the data dir's node key, and the node's own TLS certificate is pinned straight
from DATA_DIR/tls/cert.pem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from hearthnet.errors import HearthNetError
from hearthnet.home import Home
from hearthnet.transport.client import TransportClient
from hearthnet.transport.tls import PinStore

T = TypeVar("T")


def node_url(home: Home, node: str | None = None) -> str:
    if node:
        return node.rstrip("/")
    info = home.read_run_file()
    if info is None:
        raise HearthNetError("no_node", f"no running node for {home.data_dir} (start one: hearthnet run), or pass --node URL")
    return str(info["url"])


async def with_node(home: Home, node: str | None, fn: Callable[[TransportClient, str], Awaitable[T]]) -> T:
    from hearthnet.transport.tls import origin, pin_first_contact

    url = node_url(home, node)
    pins = PinStore(home.data_dir / "pins.json")
    kp = home.identity()
    own = home.data_dir / "tls" / "cert.pem"
    if url.startswith("https://") and node is None and own.exists():
        pins.pin(origin(url), kp.node_id, own.read_text())  # our own node: its certificate is on disk
    client = TransportClient(kp, home.community_id or "", pins, timeout=home.config.transport.rpc_timeout_seconds)
    try:
        if url.startswith("https://"):
            await pin_first_contact(client, url)
        return await fn(client, url)
    except HearthNetError as exc:
        if exc.code == "partition" and node is None:
            raise HearthNetError("no_node", f"the node at {url} does not answer ({exc.message})") from None
        raise
    finally:
        await client.close()


def run_with_node(home: Home, node: str | None, fn: Callable[[TransportClient, str], Awaitable[T]]) -> T:
    return asyncio.run(with_node(home, node, fn))


__all__ = ["node_url", "run_with_node", "with_node"]
