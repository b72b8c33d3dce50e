"""UDP multicast announcements: the fallback where mDNS is filtered or absent.

Every interval a node sends one small JSON datagram to the group:
    {"v": 1, "id": full node id, "cs": community short id, "url": base URL, "profile": ..., "rev": manifest revision}
Listeners ignore other communities and themselves, and hand the URL to the
peer registry; nothing is trusted until the manifest behind it verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from hearthnet.discovery.mdns import community_short

MAX_DATAGRAM = 1024
REPLY_MIN_SECONDS = 0.3


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes], None]) -> None:
        self.handle = handle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= MAX_DATAGRAM:
            self.handle(data)


class UdpDiscovery:
    def __init__(self, *, node_id: str, community_id: str, profile: str, url: str, group: str, port: int,
                 on_peer: Callable[[str, str, int], bool], interval: float, revision: Callable[[], int] = lambda: 0,
                 iface_addr: str = "0.0.0.0") -> None:
        self.node_id = node_id
        self.cs = community_short(community_id)
        self.profile = profile
        self.url = url
        self.group = group
        self.port = port
        self.on_peer = on_peer
        self.interval = interval
        self.iface_addr = iface_addr
        self.revision = revision
        self._recv: asyncio.DatagramTransport | None = None
        self._send: socket.socket | None = None
        self._task: asyncio.Task[Any] | None = None
        self.sent = 0
        self._last_reply = 0.0

    def _handle(self, data: bytes) -> None:
        try:
            msg = json.loads(data)
            if msg.get("v") != 1 or msg.get("cs") != self.cs or msg.get("id") == self.node_id:
                return
            url, nid, rev = str(msg["url"]), str(msg["id"]), int(msg.get("rev", 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        if url.startswith(("http://", "https://")) and len(url) < 200:
            if self.on_peer(url, nid, rev):
                self._reply()

    def _reply(self) -> None:
        """A newcomer announced itself: answer at once (debounced) so it need not wait
        for our next periodic announcement."""
        now = time.monotonic()
        if now - self._last_reply >= REPLY_MIN_SECONDS:
            self._last_reply = now
            self.announce()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        rs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        rs.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(AttributeError, OSError):
            rs.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        rs.bind(("", self.port))
        mreq = struct.pack("4s4s", socket.inet_aton(self.group), socket.inet_aton(self.iface_addr))
        rs.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        rs.setblocking(False)
        self._recv, _ = await loop.create_datagram_endpoint(lambda: _Listener(self._handle), sock=rs)
        ss = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        ss.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # LAN only
        ss.setblocking(False)
        self._send = ss
        self._task = asyncio.create_task(self._announce_loop())

    def announce(self) -> None:
        if self._send is None:
            return
        msg = json.dumps({"v": 1, "id": self.node_id, "cs": self.cs, "url": self.url, "profile": self.profile, "rev": self.revision()}).encode()
        with contextlib.suppress(OSError):
            self._send.sendto(msg, (self.group, self.port))
            self.sent += 1

    async def _announce_loop(self) -> None:
        # Announce fast while starting (peers may be coming up too), then settle.
        delays = [0.0, 0.5, 1.0, 2.0]
        i = 0
        while True:
            self.announce()
            await asyncio.sleep(delays[i] if i < len(delays) else self.interval)
            i += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._recv is not None:
            self._recv.close()
        if self._send is not None:
            self._send.close()


__all__ = ["UdpDiscovery"]
