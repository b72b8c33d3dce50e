"""Reachability probes. A target is one of

    https://host[:port]/path   HTTP(S) GET; any HTTP answer means the way there works
    dns://server[:port]/name   a DNS query for `name` sent to `server`; any answer counts
    dns:name  or  name         a lookup of `name` through the system resolver
                               (an IP address is not a name: looking it up proves nothing)

Targets come only from config (the default list is empty): a node never probes the
internet unless told to.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from hearthnet.errors import HearthNetError


@dataclass(frozen=True)
class Target:
    text: str
    kind: str  # http | dns | resolve
    host: str
    port: int
    path: str  # http: path; dns: the name asked for


def parse_target(text: str) -> Target:
    u = urlsplit(text)
    try:
        if u.scheme in ("http", "https") and u.hostname:
            return Target(text, "http", u.hostname, u.port or (443 if u.scheme == "https" else 80), u.path or "/")
        if u.scheme == "dns" and u.hostname and u.path.strip("/"):
            return Target(text, "dns", u.hostname, u.port or 53, u.path.strip("/"))
    except ValueError:
        pass
    name = text[4:] if u.scheme == "dns" and not u.netloc else ("" if u.scheme else text)
    if name and all(c.isalnum() or c in ".-" for c in name) and not _is_ip(name):
        return Target(text, "resolve", name, 0, "")
    raise HearthNetError("config_invalid", f"emergency.probe_targets: {text!r} is not https://host/path, dns://server/name or a host name")


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


async def probe(t: Target, timeout: float) -> bool:
    """True when the target answered within timeout."""
    try:
        async with asyncio.timeout(timeout):
            if t.kind == "http":
                from hearthnet.transport.client import ServiceClient  # the one HTTP client

                u = urlsplit(t.text)
                c = ServiceClient(f"{u.scheme}://{u.netloc}", timeout=timeout)
                try:
                    await c.status(t.path + (f"?{u.query}" if u.query else ""))
                finally:
                    await c.close()
                return True
            if t.kind == "dns":
                import dns.asyncquery
                import dns.message

                q = dns.message.make_query(t.path, "A")
                await dns.asyncquery.udp(q, socket.gethostbyname(t.host), timeout=timeout, port=t.port)
                return True
            await asyncio.get_running_loop().getaddrinfo(t.host, None)
            return True
    except (TimeoutError, HearthNetError, OSError):
        return False
    except Exception:  # noqa: BLE001  a malformed answer is no answer
        return False


__all__ = ["Target", "parse_target", "probe"]
