"""Capability descriptors, registry entries and route requests.

A descriptor says what a capability is (name, version, JSON Schemas of request,
response and stream frames, params, limits, trust level); its schema hash lets
two nodes check they mean the same contract without shipping the schemas.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hearthnet.errors import HearthNetError
from hearthnet.identity.canonical import blake3_hex, canonical_json

Version = tuple[int, int]
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def parse_version(text: str) -> Version:
    m = re.fullmatch(r"(\d{1,6})\.(\d{1,6})", text or "")  # bounded: int() of thousands of digits is refused
    if not m:
        raise HearthNetError("bad_request", f"version must look like 1.0, not {text!r}")
    return int(m.group(1)), int(m.group(2))


def parse_name_at_version(text: str) -> tuple[str, Version]:
    """"llm.chat@1.0" -> ("llm.chat", (1, 0)); a bare name means 1.0."""
    name, _, ver = text.partition("@")
    if not _NAME.match(name):
        raise HearthNetError("bad_request", f"not a capability name: {name!r} (expected like echo.ping)")
    return name, parse_version(ver) if ver else (1, 0)


def compatible(offered: Version, wanted: Version) -> bool:
    """Same major, minor at least the one asked for."""
    return offered[0] == wanted[0] and offered[1] >= wanted[1]


@dataclass(frozen=True)
class CallContext:
    """What a handler may know about its call. Handlers never learn whether it was local or remote routing."""

    caller: str
    trace_id: str
    deadline: float  # time.monotonic() by which the call must end
    session_id: str | None = None
    stream: bool = False  # set by the bus: the caller asked for a stream of frames

    @property
    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


def default_params_match(wanted: dict[str, Any], offered: dict[str, Any]) -> bool:
    """Every wanted key is offered with that value (or, for a list offer, among its values)."""
    for k, v in wanted.items():
        o = offered.get(k)
        if isinstance(o, list) and not isinstance(v, list):
            if v not in o:
                return False
        elif o != v:
            return False
    return True


# A handler returns a response dict, or (streaming capabilities) an async iterator of
# frames {"event": "...", "data": {...}}.
Handler = Callable[[dict[str, Any], CallContext], Awaitable[dict[str, Any]] | AsyncIterator[dict[str, Any]]]
ParamsPredicate = Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclass(frozen=True)
class CapabilityDescriptor:
    name: str
    version: Version
    request_schema: dict[str, Any]
    response_schema: dict[str, Any] | None = None
    stream_schema: dict[str, Any] | None = None
    stability: str = "stable"
    params: dict[str, Any] = field(default_factory=dict)
    max_concurrent: int = 8
    trust_required: str = "member"  # member | trusted | anchor | self
    timeout_seconds: float = 30.0
    idempotent: bool = False
    # How another node may take over a stream this node started and lost half-way:
    # "continue" (given the frames so far, via the bus's resumer for this name),
    # "restart" (from the beginning; the caller is told), or None (no takeover: error frame).
    resume: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"bad capability name {self.name!r}")
        if self.trust_required not in {"member", "trusted", "anchor", "self"}:
            raise ValueError(f"bad trust level {self.trust_required!r}")
        if self.resume not in (None, "continue", "restart"):
            raise ValueError(f"bad resume mode {self.resume!r}")

    @property
    def version_str(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def streams(self) -> bool:
        return self.stream_schema is not None

    def schema_hash(self) -> str:
        return compute_schema_hash(
            {
                "name": self.name,
                "version": self.version_str,
                "request_schema": self.request_schema,
                "response_schema": self.response_schema,
                "stream_schema": self.stream_schema,
            }
        )

    def spec(self) -> dict[str, Any]:
        """The manifest form (CapabilitySpec)."""
        return {
            "name": self.name,
            "version": self.version_str,
            "stability": self.stability,
            "schema_hash": self.schema_hash(),
            "params": self.params,
            "max_concurrent": self.max_concurrent,
            "trust_required": self.trust_required,
            "streams": self.streams,
            "idempotent": self.idempotent,
            "timeout_seconds": self.timeout_seconds,
            "resume": self.resume,
        }


def compute_schema_hash(partial: dict[str, Any]) -> str:
    return blake3_hex(canonical_json(partial))


@dataclass
class CapabilityEntry:
    """One (node, capability, version) the bus can route to."""

    node_id: str
    name: str
    version: Version
    spec: dict[str, Any]
    is_local: bool
    descriptor: CapabilityDescriptor | None = None  # local entries only
    handler: Handler | None = None
    params_ok: ParamsPredicate | None = None
    url: str | None = None  # remote entries: the peer's base URL
    in_flight: int = 0
    last_seen: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> tuple[str, str, Version]:
        return (self.node_id, self.name, self.version)

    @property
    def max_concurrent(self) -> int:
        return int(self.spec.get("max_concurrent", 1)) or 1

    @property
    def load(self) -> float:
        return self.in_flight / self.max_concurrent

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.get("params", {})


class Service(Protocol):
    """What the bus is handed: a named set of capabilities with a lifecycle (every module of services/)."""

    name: str

    def capabilities(self) -> Capabilities: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# (descriptor, handler, params predicate or None) for each capability a service offers.
Capabilities = list[tuple[CapabilityDescriptor, Handler, ParamsPredicate | None]]


__all__ = ["Capabilities", "Service", 
    "CallContext",
    "CapabilityDescriptor",
    "CapabilityEntry",
    "Handler",
    "ParamsPredicate",
    "Version",
    "compatible",
    "compute_schema_hash",
    "default_params_match",
    "parse_name_at_version",
    "parse_version",
]
