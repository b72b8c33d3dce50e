"""The one plain HTTP client, for servers that are not nodes: OpenAI-compatible and other LLM
servers, emergency probes, model mirrors. Unsigned and unpinned: the URL (and its key) come
from this node's own config. The signed client between nodes (transport.client) builds on the
same error translation.

Errors from httpx never leave here: a refused or broken connection is `partition`, a
deadline is `timeout`, and an error answer becomes the nearest code of the closed set.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from hearthnet import constants as C
from hearthnet.errors import ERRORS, HearthNetError


class CallError(HearthNetError):
    """An error answered by (or on the way to) a peer."""

    def __init__(self, code: str, message: str, *, retry_after_ms: int | None = None, alt_nodes: list[str] | None = None, **details: Any) -> None:
        super().__init__(code if code in ERRORS else "internal", message, **details)
        self.retry_after_ms = retry_after_ms
        self.alt_nodes = alt_nodes or []


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """httpx's exceptions as our codes: refused or broken is `partition`, a deadline `timeout`."""
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
        with translate_errors(url):
            resp = await self._client.post(path, json=payload, timeout=timeout or self.timeout)
            if resp.status_code >= 400:
                raise _upstream_error(resp.status_code, resp.content, url)
            try:
                return resp.json()
            except ValueError:
                raise CallError("partition", f"{url} answered something that is not JSON") from None

    async def get(self, path: str, *, timeout: float | None = None) -> Any:
        url = self.base_url + path
        with translate_errors(url):
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
        with translate_errors(url):
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
        with translate_errors(url):
            async with self._client.stream("GET", path, timeout=httpx.Timeout(t)) as resp:
                return resp.status_code

    async def stream_bytes(self, path: str, *, timeout: float | None = None) -> AsyncIterator[bytes]:
        """The body of a GET, as it arrives (file downloads from mirrors). 404 is not_found."""
        url = self.base_url + path
        t = timeout or self.timeout
        with translate_errors(url):
            async with self._client.stream("GET", path, timeout=httpx.Timeout(t, connect=min(t, 5.0))) as resp:
                if resp.status_code == 404:
                    raise CallError("not_found", f"{url}: not found")
                if resp.status_code >= 400:
                    raise _upstream_error(resp.status_code, await resp.aread(), url)
                async for block in resp.aiter_bytes(1 << 20):
                    yield block

    async def close(self) -> None:
        await self._client.aclose()


__all__ = ["CallError", "ServiceClient", "translate_errors"]
