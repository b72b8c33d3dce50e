"""mDNS (DNS-SD) announcement and browsing with python-zeroconf.

Service type `_hearthnet._tcp.local.`, instance name from the short node id,
TXT records: `id` (full node id), `cs` (community short id), `profile`, `port`,
`scheme`, `m` (manifest URL). An announcement only says where to look: the
peer's capabilities are trusted after its manifest is fetched and verified.
Announcements of other communities are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from hearthnet import constants as C
from hearthnet.errors import HearthNetError

OnPeer = Callable[[str, str, int], bool]  # (url, node_id, manifest revision) -> is it new?


def community_short(community_id: str) -> str:
    return community_id[:12]


def instance_name(short_id: str) -> str:
    return short_id.replace("ed25519:", "hn-").lower() + "." + C.MDNS_SERVICE_TYPE


class MdnsDiscovery:
    """Announces this node and reports peers of the same community."""

    def __init__(self, *, node_id: str, short_id: str, community_id: str, profile: str, host: str, port: int, scheme: str, on_peer: OnPeer) -> None:
        self.node_id = node_id
        self.short_id = short_id
        self.cs = community_short(community_id)
        self.profile = profile
        self.host = host
        self.port = port
        self.scheme = scheme
        self.on_peer = on_peer
        self.azc: AsyncZeroconf | None = None
        self.browser: AsyncServiceBrowser | None = None
        self.info: AsyncServiceInfo | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _service_info(self, revision: int = 0) -> AsyncServiceInfo:
        url = f"{self.scheme}://{self.host}:{self.port}"
        props = {"id": self.node_id, "cs": self.cs, "profile": self.profile, "port": str(self.port), "scheme": self.scheme,
                 "m": url + "/manifest", "rev": str(revision)}
        return AsyncServiceInfo(
            C.MDNS_SERVICE_TYPE, instance_name(self.short_id), addresses=[socket.inet_aton(self.host)], port=self.port, properties=props,
            server=self.short_id.replace("ed25519:", "hn-").lower() + ".local.",
        )

    async def start(self) -> None:
        try:
            self.azc = AsyncZeroconf(ip_version=IPVersion.V4Only)
            self.info = self._service_info()
            await self.azc.async_register_service(self.info, allow_name_change=True)
            self.browser = AsyncServiceBrowser(self.azc.zeroconf, [C.MDNS_SERVICE_TYPE], handlers=[self._changed])
        except OSError as exc:
            await self.stop()
            raise HearthNetError("storage_error", f"mDNS unavailable: {exc.strerror or exc}") from None

    def _changed(self, zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            t = asyncio.ensure_future(self._resolve(service_type, name))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        if self.azc is None:
            return
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self.azc.zeroconf, 3000):
            return
        props = {k.decode(): (v.decode() if isinstance(v, bytes) else "") for k, v in (info.properties or {}).items()}
        if props.get("cs") != self.cs or props.get("id") == self.node_id:
            return  # another community, or ourselves
        addrs = info.parsed_addresses(IPVersion.V4Only)
        if not addrs or not info.port:
            return
        scheme = props.get("scheme", "https") if props.get("scheme") in ("http", "https") else "https"
        rev = int(props["rev"]) if props.get("rev", "").isdigit() else 0
        self.on_peer(f"{scheme}://{addrs[0]}:{info.port}", props.get("id", ""), rev)

    async def update(self, revision: int) -> None:
        """Republish the TXT record (its `rev` tells peers to fetch the manifest again)."""
        if self.azc is None or self.info is None:
            return
        info = self._service_info(revision)
        info._name = self.info.name  # keep a name that registration may have made unique
        with contextlib.suppress(Exception):
            await self.azc.async_update_service(info)
            self.info = info

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self.browser is not None:
            with contextlib.suppress(Exception):
                await self.browser.async_cancel()
            self.browser = None
        if self.azc is not None:
            with contextlib.suppress(Exception):
                if self.info is not None:
                    await self.azc.async_unregister_service(self.info)
                await self.azc.async_close()
            self.azc = None


__all__ = ["MdnsDiscovery", "community_short", "instance_name"]
