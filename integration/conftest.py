"""Fixtures for multi-node tests: real nodes (uvicorn, TLS, signatures) on loopback.

Every node started here is stopped at the end of the test, also when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from hearthnet import clock
from hearthnet import config as config_mod
from hearthnet.community.membership import add_member, join
from hearthnet.home import Home
from hearthnet.node import Node
from nodeprocs import Procs

FAST = {
    "discovery": {"manifest_refresh_seconds": 0.3, "mdns_enabled": False, "udp_enabled": False},
    "events": {"sync_interval_seconds": 0.3},
}


class Mesh:
    """N in-process nodes of one community; node 0 is the anchor."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.homes: list[Home] = []
        self.nodes: list[Node | None] = []
        self.tasks: list[asyncio.Task[Any] | None] = []

    def home(self, i: int) -> Home:
        return Home.open(self.base / f"n{i}")

    async def create(self, n: int, *, tls: bool = True, extra: dict[str, dict[str, Any]] | None = None) -> list[Node]:
        settings = {**FAST, "transport": {"tls": tls, "host": "127.0.0.1", "port": 0}}
        for k, v in (extra or {}).items():
            settings[k] = {**settings.get(k, {}), **v}
        for i in range(n):
            h = self.home(i)
            h.init(create_community="Loopdorf" if i == 0 else None, display_name=f"node-{i}")
            config_mod.set_keys(h.config_path, h.data_dir, settings)
            self.homes.append(self.home(i))
            self.nodes.append(None)
            self.tasks.append(None)
        await self.start(0)
        for i in range(1, n):
            add_member(self.homes[0], self.homes[i].identity().node_id, "member")
            await join(self.homes[i], self.nodes[0].url)  # type: ignore[union-attr]
            self.homes[i] = self.home(i)
            await self.start(i)
        await self.link()
        return [x for x in self.nodes if x is not None]

    async def start(self, i: int, port: int | None = None) -> Node:
        node = Node(self.home(i), port=port)
        task = asyncio.create_task(node.serve(handle_signals=False))
        for _ in range(500):
            if node.ready or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        self.nodes[i], self.tasks[i] = node, task
        return node

    async def adopt(self, i: int) -> Node:
        """Start data dir n<i>, set up outside the mesh (CLI init, redeem or join), with the mesh's
        settings (loopback, any free port): never the default port a real node may hold."""
        h = self.home(i)
        config_mod.set_keys(h.config_path, h.data_dir, {**FAST, "transport": {"host": "127.0.0.1", "port": 0}})
        while len(self.nodes) <= i:
            self.homes.append(None)  # type: ignore[arg-type]
            self.nodes.append(None)
            self.tasks.append(None)
        self.homes[i] = self.home(i)
        node = await self.start(i)
        await self.link()
        return node

    async def stop(self, i: int) -> None:
        node, task = self.nodes[i], self.tasks[i]
        if node is not None and task is not None:
            node.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        self.nodes[i] = self.tasks[i] = None

    async def link(self) -> None:
        """Tell every running node about every other (loopback has no multicast)."""
        live = [x for x in self.nodes if x is not None]
        for a in live:
            for b in live:
                if a is not b:
                    a.peers.seen(b.url, "static")
        for _ in range(50):
            await asyncio.gather(*(a.refresh_peers() for a in live))
            if all(self._knows(a, b) for a in live for b in live if a is not b):
                return
            await asyncio.sleep(0.1)  # one refresh can lose a race under load (a timeout, an overlapping older manifest)

    @staticmethod
    def _knows(a: Node, b: Node) -> bool:
        """a's registry holds every capability b serves itself."""
        offered = {(e.name, e.version) for e in b.bus.registry.all_local()}
        seen = {(e.name, e.version) for e in a.bus.registry.all() if not e.is_local and e.node_id == b.node_id}
        return offered <= seen

    async def withdraw(self, node: Node, *names: str) -> None:
        """The node stops offering these capabilities (as a box without that model), and everyone hears of it."""
        for name in names:
            node.bus.registry.deregister_local(name)
        await self.link()

    async def until(self, pred: Any, seconds: float = 10.0) -> None:
        """Wait for pred() (manifests spread by refresh; one refresh can lose a race under load)."""
        for _ in range(int(seconds / 0.1)):
            if pred():
                return
            await self.link()
            await asyncio.sleep(0.1)
        raise AssertionError("condition not reached in time")

    async def close(self) -> None:
        for i in range(len(self.nodes)):
            await self.stop(i)
        clock.set_offset(0.0)

    def run(self, scenario: Any) -> Any:
        """asyncio.run(scenario(self)), stopping every node afterwards even on failure."""

        async def wrapped() -> Any:
            try:
                return await scenario(self)
            finally:
                await self.close()

        return asyncio.run(wrapped())


@pytest.fixture
def mesh(tmp_path: Path):
    m = Mesh(tmp_path)
    yield m
    clock.set_offset(0.0)


@pytest.fixture
def procs():
    """Starts `hearthnet run` processes; SIGTERMs (then kills) every one at the end."""
    p = Procs()
    yield p
    p.stop_all()
