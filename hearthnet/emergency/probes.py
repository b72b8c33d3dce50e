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
from urllib.parse import urlsplit

from hearthnet.config import ProbeTarget as Target
from hearthnet.config import parse_target
from hearthnet.errors import HearthNetError


async def probe(t: Target, timeout: float) -> bool:
    """True when the target answered within timeout."""
    try:
        async with asyncio.timeout(timeout):
            if t.kind == "http":
                from hearthnet.httpclient import ServiceClient  # the one plain HTTP client

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
