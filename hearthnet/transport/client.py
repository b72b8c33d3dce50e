"""The one HTTP client: signed requests to peers, connection reuse, deadlines, typed errors.

Errors from httpx never leave this module: a refused or broken connection is
`partition`, a deadline is `timeout`, and an error answer is rebuilt as the
HearthNetError (CallError) the peer sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from hearthnet import constants as C
from hearthnet.errors import ERRORS, HearthNetError
from hearthnet.identity.keys import KeyPair
from hearthnet.transport.signing import sign_request
from hearthnet.transport.streams import parse_sse
from hearthnet.transport.tls import PinStore, origin


class CallError(HearthNetError):
    """An error answered by (or on the way to) a peer."""

    def __init__(self, code: str, message: str, *, retry_after_ms: int | None = None, alt_nodes: list[str] | None = None, **details: Any) -> None:
        super().__init__(code if code in ERRORS else "internal", message, **details)
        self.retry_after_ms = retry_after_ms
        self.alt_nodes = alt_nodes or []


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


@contextlib.contextmanager
def _translate(url: str):
    try:
        yield
    except HearthNetError:
        raise
    except httpx.TimeoutException:
        raise CallError("timeout", f"{url} did not answer in time") from None
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise CallError("pin_mismatch", f"{url} presented a TLS certificate other than the one pinned for it") from None
        raise CallError("partition", f"{url} unreachable: {type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise CallError("partition", f"{url}: {type(exc).__name__}: {exc}") from None


def _upstream_error(status: int, body: bytes, url: str) -> CallError:
    """An error answer from a service outside the mesh (an LLM server), as one of our codes."""
    kind = ""
    try:
        err = json.loads(body).get("error")
        message = err.get("message") if isinstance(err, dict) else str(err)
        kind = str(err.get("code") or err.get("type") or "") if isinstance(err, dict) else ""
    except (ValueError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    message = f"{url} answered HTTP {status}: {message}"
    if status == 400 and ("context_length" in kind or "context length" in message.lower()):
        return CallError("payload_too_large", message)
    if status in (401, 403):
        return CallError("unhealthy", message)  # our key for it is wrong: this backend can't serve anyone
    code = {400: "bad_request", 404: "not_found", 408: "timeout", 413: "payload_too_large", 422: "bad_request", 429: "rate_limited"}.get(status)
    return CallError(code or ("partition" if status >= 500 else "bad_request"), message)


class ServiceClient:
    """Plain JSON/SSE over HTTP to a service outside the mesh (OpenAI-compatible and other LLM servers).

    Unsigned, no pinning: the URL and its key come from this node's own config.
    Same error translation as mesh calls: refused or broken is `partition`.
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, *, timeout: float = C.RPC_DEFAULT_TIMEOUT_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers or {}, timeout=timeout)

    async def post(self, path: str, payload: dict[str, Any], *, timeout: float | None = None) -> Any:
        url = self.base_url + path
        with _translate(url):
            resp = await self._client.post(path, json=payload, timeout=timeout or self.timeout)
            if resp.status_code >= 400:
                raise _upstream_error(resp.status_code, resp.content, url)
            try:
                return resp.json()
            except ValueError:
                raise CallError("partition", f"{url} answered something that is not JSON") from None

    async def get(self, path: str, *, timeout: float | None = None) -> Any:
        url = self.base_url + path
        with _translate(url):
            resp = await self._client.get(path, timeout=timeout or self.timeout)
            if resp.status_code >= 400:
                raise _upstream_error(resp.status_code, resp.content, url)
            return resp.json()

    async def stream_sse(self, path: str, payload: dict[str, Any], *, timeout: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """The JSON `data:` payloads of a server-sent-event answer, until `[DONE]` or the end.

        An answer cut off before `[DONE]` (or, for servers without it, before the caller
        saw its own end marker) raises `partition`; the caller decides which end it expects.
        """
        url = self.base_url + path
        t = timeout or self.timeout
        with _translate(url):
            async with self._client.stream("POST", path, json=payload, timeout=httpx.Timeout(t, connect=min(t, 5.0))) as resp:
                if resp.status_code >= 400:
                    raise _upstream_error(resp.status_code, await resp.aread(), url)
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    value = line[5:].strip()
                    if value == "[DONE]":
                        return
                    try:
                        yield json.loads(value)
                    except ValueError:
                        raise CallError("partition", f"{url} sent a stream frame that is not JSON") from None

    async def status(self, path: str, *, timeout: float | None = None) -> int:
        """The HTTP status of a GET, body discarded (reachability probes). Unreachable raises partition/timeout."""
        url = self.base_url + path
        t = timeout or self.timeout
        with _translate(url):
            async with self._client.stream("GET", path, timeout=httpx.Timeout(t)) as resp:
                return resp.status_code

    async def stream_bytes(self, path: str, *, timeout: float | None = None) -> AsyncIterator[bytes]:
        """The body of a GET, as it arrives (file downloads from mirrors). 404 is not_found."""
        url = self.base_url + path
        t = timeout or self.timeout
        with _translate(url):
            async with self._client.stream("GET", path, timeout=httpx.Timeout(t, connect=min(t, 5.0))) as resp:
                if resp.status_code == 404:
                    raise CallError("not_found", f"{url}: not found")
                if resp.status_code >= 400:
                    raise _upstream_error(resp.status_code, await resp.aread(), url)
                async for block in resp.aiter_bytes(1 << 20):
                    yield block

    async def close(self) -> None:
        await self._client.aclose()


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
        with _translate(url):
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
        with _translate(url):
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
        with _translate(url):
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
        with _translate(url):
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


__all__ = ["CallError", "ServiceClient", "TransportClient"]
