"""The signed client: requests to peers, connection reuse, deadlines, typed errors.

Built on hearthnet.httpclient (the one HTTP client's error translation): a refused or
broken connection is `partition`, a deadline is `timeout`, and an error answer is rebuilt
as the HearthNetError (CallError) the peer sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.httpclient import CallError, translate_errors
from hearthnet.identity.keys import KeyPair
from hearthnet.transport.signing import sign_request
from hearthnet.transport.streams import parse_sse
from hearthnet.transport.tls import PinStore, origin


def _from_response(resp: httpx.Response, body: bytes) -> CallError:
    try:
        err = json.loads(body)["error"]
        code, message, details = err["code"], err["message"], dict(err.get("details") or {})
    except (ValueError, KeyError, TypeError):
        code = "partition" if resp.status_code >= 500 else "bad_request"
        message, details = f"HTTP {resp.status_code} from peer", {}
    retry = details.pop("retry_after_ms", None)
    if retry is None and resp.headers.get("retry-after", "").isdigit():
        retry = int(resp.headers["retry-after"]) * 1000
    return CallError(code, message, retry_after_ms=retry, alt_nodes=details.pop("alt_nodes", None), **details)


class TransportClient:
    def __init__(self, kp: KeyPair, community_id: str, pins: PinStore | None = None, *, timeout: float = C.RPC_DEFAULT_TIMEOUT_SECONDS) -> None:
        self.kp = kp
        self.community_id = community_id
        self.pins = pins
        self.timeout = timeout
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, url: str) -> httpx.AsyncClient:
        key = origin(url)
        c = self._clients.get(key)
        if c is None:
            verify: Any = True
            if key.startswith("https://"):
                # Never talk to a peer over an unverified connection: pin first (pin_first_contact).
                ctx = self.pins.context_for(key) if self.pins else False
                if ctx is False:
                    raise CallError("partition", f"{key}: no pinned certificate yet (first contact not made)")
                verify = ctx
            c = self._clients[key] = httpx.AsyncClient(
                base_url=key, verify=verify, timeout=self.timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=32)
            )
        return c

    def forget(self, url: str) -> None:
        """Drop the pooled connection for an origin (its certificate was pinned or changed)."""
        c = self._clients.pop(origin(url), None)
        if c is not None:
            asyncio.get_event_loop().create_task(c.aclose())

    def _signed_headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        h = sign_request(self.kp, self.community_id, method, path, body)
        h["Content-Type"] = "application/json"
        return h

    async def request(self, method: str, url: str, path: str, payload: Any = None, *, timeout: float | None = None, signed: bool = True) -> Any:
        """JSON in, JSON out. Raises CallError."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = self._signed_headers(method, path, body) if signed else {}
        with translate_errors(url):
            resp = await self._client(url).request(method, path, content=body or None, headers=headers, timeout=timeout or self.timeout)
            if resp.status_code >= 400:
                raise _from_response(resp, resp.content)
            try:
                return resp.json()
            except ValueError:
                return resp.text

    async def get(self, url: str, path: str, *, signed: bool = True, timeout: float | None = None) -> Any:
        return await self.request("GET", url, path, timeout=timeout, signed=signed)

    async def post(self, url: str, path: str, payload: Any, *, timeout: float | None = None) -> Any:
        return await self.request("POST", url, path, payload, timeout=timeout)

    # --- raw bytes (blob chunks) -------------------------------------------------------
    async def iter_bytes(self, url: str, path: str, *, max_bytes: int, timeout: float | None = None) -> AsyncIterator[bytes]:
        """A signed GET answered with raw bytes, as they arrive. Past `max_bytes` the
        connection is dropped and payload_too_large raised: nobody asked for the rest."""
        headers = self._signed_headers("GET", path, b"")
        t = timeout or self.timeout
        with translate_errors(url):
            async with self._client(url).stream("GET", path, headers=headers, timeout=httpx.Timeout(t, connect=min(t, 5.0))) as resp:
                if resp.status_code >= 400:
                    raise _from_response(resp, await resp.aread())
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise CallError("payload_too_large", f"{url}{path}: {declared} bytes, expected at most {max_bytes}")
                seen = 0
                async for block in resp.aiter_raw():
                    seen += len(block)
                    if seen > max_bytes:
                        raise CallError("payload_too_large", f"{url}{path}: more than the {max_bytes} bytes asked for")
                    yield block

    async def get_bytes(self, url: str, path: str, *, max_bytes: int, timeout: float | None = None) -> bytes:
        """The whole raw answer of a signed GET (at most `max_bytes`)."""
        return b"".join([b async for b in self.iter_bytes(url, path, max_bytes=max_bytes, timeout=timeout)])

    async def put_bytes(self, url: str, path: str, data: bytes, *, timeout: float | None = None) -> Any:
        headers = self._signed_headers("PUT", path, data)
        headers["Content-Type"] = "application/octet-stream"
        with translate_errors(url):
            resp = await self._client(url).put(path, content=data, headers=headers, timeout=timeout or self.timeout)
            if resp.status_code >= 400:
                raise _from_response(resp, resp.content)
            return resp.json()

    # --- bus -----------------------------------------------------------------------
    async def call_remote(self, url: str, name: str, version: str, body: dict[str, Any], *, timeout: float, trace_id: str, session_id: str | None, route: bool = False) -> dict[str, Any]:
        req = {"capability": name, "version": version, "body": body, "trace_id": trace_id, "session_id": session_id, "timeout_ms": int(timeout * 1000), "route": route}
        out = await self.post(url, "/bus/v1/call", req, timeout=timeout)
        return out["result"]

    async def stream_remote(self, url: str, name: str, version: str, body: dict[str, Any], *, timeout: float, trace_id: str, session_id: str | None, route: bool = False) -> AsyncIterator[dict[str, Any]]:
        req = {"capability": name, "version": version, "body": body, "trace_id": trace_id, "session_id": session_id,
               "timeout_ms": int(timeout * 1000), "stream": True, "route": route}
        raw = json.dumps(req, separators=(",", ":")).encode()
        client = self._client(url)
        acks: set[asyncio.Task[Any]] = set()
        with translate_errors(url):
            async with client.stream("POST", "/bus/v1/call", content=raw, headers=self._signed_headers("POST", "/bus/v1/call", raw),
                                     timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as resp:
                if resp.status_code >= 400:
                    raise _from_response(resp, await resp.aread())
                stream_id, every = None, C.STREAM_ACK_INTERVAL_FRAMES
                try:
                    async for frame in parse_sse(resp.aiter_lines()):
                        if frame.event == "ready":
                            stream_id, every = frame.data.get("stream_id"), int(frame.data.get("ack_every", every))
                            continue
                        if stream_id and frame.seq and frame.seq % every == 0:
                            t = asyncio.create_task(self._ack(url, stream_id, frame.seq))
                            acks.add(t)
                            t.add_done_callback(acks.discard)
                        yield {"event": frame.event, "data": frame.data}
                        if frame.event in ("done", "error"):
                            return
                finally:
                    for t in acks:
                        t.cancel()
        raise CallError("partition", f"{url} closed the stream before it finished")

    async def _ack(self, url: str, stream_id: str, upto: int) -> None:
        with contextlib.suppress(HearthNetError):
            await self.post(url, "/bus/v1/ack", {"stream_id": stream_id, "upto": upto}, timeout=5)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.aclose()


__all__ = ["CallError", "TransportClient"]
