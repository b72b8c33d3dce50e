"""Who may use the gateway, and what their request says: one admit helper for every route.

Stock OpenAI clients cannot pin a self-signed certificate or sign requests, so the
gateway asks for an API key (`Authorization: Bearer hn_...`, apikeys.py); a signed
community member may send its X-HN-* signature instead. Nobody else gets in: an open
model port is how strangers use your box.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from hearthnet.bus import CapabilityBus
from hearthnet.config import Config
from hearthnet.errors import HearthNetError, validation_message
from hearthnet.gateway.apikeys import ApiKeyStore
from hearthnet.transport.handling import Authenticator, authenticate_signed, rate_check, read_body
from hearthnet.transport.ratelimit import RateLimiter

MAX_BODY = 4 * 1024 * 1024
M = TypeVar("M", bound=BaseModel)


class GatewayNode(Authenticator, Protocol):
    """What the gateway is built from (hearthnet.node.Node provides it): the bus it calls, the
    node's config and rate limiter, and what authenticates a signed member."""

    config: Config
    bus: CapabilityBus
    rate: RateLimiter

    def log_error(self, msg: str, **extra: Any) -> None: ...


class Gate:
    def __init__(self, node: GatewayNode) -> None:
        self.node = node
        self.keys = ApiKeyStore(node.config.data_dir)

    async def admit(self, request: Request) -> bytes:
        """The body of a request from a known caller (API key or signed member); rate-limited per caller."""
        body = await read_body(request, MAX_BODY)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            who = "apikey:" + self.keys.check(auth[7:].strip()).id
        elif "x-hn-signature" in request.headers:
            who = authenticate_signed(self.node, request, body).node_id
        else:
            raise HearthNetError("unauthorized", "this gateway needs an API key (hearthnet apikey create) as 'Authorization: Bearer hn_...'")
        rate_check(self.node.rate, self.node.metrics, who, "gateway")
        return body

    async def read(self, request: Request, model: type[M]) -> M:
        """An admitted request's body in its shape; bad_request naming the field that is wrong."""
        body = await self.admit(request)
        try:
            return model.model_validate_json(body or b"{}")
        except ValidationError as exc:
            raise HearthNetError("bad_request", validation_message(exc, "body")) from None


__all__ = ["MAX_BODY", "Gate", "GatewayNode"]
