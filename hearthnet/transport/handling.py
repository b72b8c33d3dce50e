"""Request handling that the node's server and the OpenAI gateway share: reading a bounded
body, authenticating a signed member, the rate check (with its metrics and soft limit),
error answers and the exception handlers that make every failure one JSON error of the
closed code set — never a bare 500, never a traceback on stderr.

Both apps are built from collaborators (the Protocols below), not from the Node, so the
transport knows nothing above it and each piece can be tested on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from hearthnet.errors import HearthNetError, validation_message
from hearthnet.events.membership import MembershipState
from hearthnet.observability.metrics import Metrics
from hearthnet.transport.nonces import NonceStore
from hearthnet.transport.ratelimit import RateLimiter
from hearthnet.transport.signing import SignedCaller, verify_request


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error that echoes what a client sent (a lone surrogate, say)
    can always be encoded, so an error answer never becomes a 500 of its own."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def retry_after_header(err: HearthNetError) -> dict[str, str]:
    retry = err.details.get("retry_after_ms")
    return {"Retry-After": str(max(1, -(-int(retry) // 1000)))} if retry else {}


def error_response(err: HearthNetError) -> JSONResponse:
    """The wire shape of docs/contract.md ("Errors") with the code's HTTP status."""
    return AsciiJSONResponse(err.to_dict(), status_code=err.http_status, headers=retry_after_header(err))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with payload_too_large as soon as it passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HearthNetError("bad_request", "bad Content-Length")
        if int(declared) > limit:
            raise HearthNetError("payload_too_large", f"body of {declared} bytes exceeds {limit}", limit=limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HearthNetError("payload_too_large", f"body exceeds {limit} bytes", limit=limit)
            chunks.append(chunk)
    except ClientDisconnect:  # an ordinary event: the answer goes nowhere, and nothing is logged as a fault
        raise HearthNetError("aborted", "the client hung up before the body arrived") from None
    return b"".join(chunks)


def install_error_handlers(app: FastAPI, render: Callable[[HearthNetError], Response], log_error: Callable[..., None], what: str) -> None:
    """Every failure of a request as one `render`ed error: ours as they are, FastAPI's and Starlette's
    mapped onto the closed set, anything else `internal` with one log line."""

    @app.exception_handler(HearthNetError)
    async def _hn(_: Request, exc: HearthNetError) -> Response:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _val(_: Request, exc: RequestValidationError) -> Response:
        return render(HearthNetError("bad_request", f"bad request: {validation_message(exc, 'request')}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return render(HearthNetError("not_found" if exc.status_code == 404 else "bad_request", str(exc.detail)))

    @app.exception_handler(Exception)
    async def _any(_: Request, exc: Exception) -> Response:
        log_error(f"unhandled error in {what} request", error=f"{type(exc).__name__}: {exc}")
        return render(HearthNetError("internal", f"{type(exc).__name__}: {exc}"))


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request."""

    node_id: str
    level: str


class MembershipSource(Protocol):
    """The event log as far as authentication needs it."""

    @property
    def membership(self) -> MembershipState: ...

    def refresh(self) -> Any: ...


class Authenticator(Protocol):
    community_id: str
    clock_skew_seconds: float
    event_log: MembershipSource
    nonces: NonceStore
    metrics: Metrics


def authenticate_signed(auth: Authenticator, request: Request, body: bytes) -> Caller:
    """The signed community member behind a request (transport and gateway alike), or the error why not."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        signed: SignedCaller = verify_request(request.headers, request.method, path, body, community=auth.community_id,
                                              skew_seconds=auth.clock_skew_seconds)
    except HearthNetError as exc:
        auth.metrics.signature_failures_total.labels(reason=exc.code).inc()
        raise
    auth.event_log.refresh()  # an admin command may have changed membership from another process
    st = auth.event_log.membership
    if signed.node_id in st.revoked:
        auth.metrics.signature_failures_total.labels(reason="revoked").inc()
        raise HearthNetError("revoked", "caller's membership was revoked")
    if not st.is_member(signed.node_id):
        auth.metrics.signature_failures_total.labels(reason="not_member").inc()
        raise HearthNetError("not_member", "caller is not a member of this community")
    auth.nonces.use(signed.node_id, signed.nonce)  # after the signature: strangers cannot fill the store
    return Caller(signed.node_id, st.level_of(signed.node_id))


def rate_check(limiter: RateLimiter, metrics: Metrics, who: str, capability: str, what: str = "") -> dict[str, str]:
    """Count one request of `who` to `capability`: rate_limited past the hard limit, an
    `X-HN-Rate: soft` header past the soft one (both counted in the metrics)."""
    chk = limiter.check(who, capability)
    if not chk.allowed:
        metrics.rate_limited_total.labels(capability=capability, reason="hard").inc()
        raise HearthNetError("rate_limited", f"too many {what or capability} requests from this {'key' if who.startswith('apikey:') else 'node'}",
                             retry_after_ms=chk.retry_after_ms)
    if chk.soft_exceeded:
        metrics.rate_limited_total.labels(capability=capability, reason="soft").inc()
        return {"X-HN-Rate": "soft"}
    return {}


__all__ = ["AsciiJSONResponse", "Authenticator", "Caller", "MembershipSource", "authenticate_signed", "error_response", "install_error_handlers",
           "rate_check", "read_body", "retry_after_header"]
