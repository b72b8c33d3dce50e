"""Node manifests: what a node is and offers, signed by the node, short-lived.

A peer's capabilities are trusted only after its manifest verifies (canonical
payload, signature by the node id it names) and is not expired.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError, validation_message
from hearthnet.identity.envelope import Signed, open_signed, seal
from hearthnet.identity.keys import KeyPair


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_M):
    transport: Literal["https", "http"] = "https"
    host: str
    port: int = Field(ge=1, le=65535)


class HardwareSpec(_M):
    gpu: str | None = None
    vram_gb: float = Field(0, ge=0)
    ram_gb: float = Field(0, ge=0)
    cpu_cores: int = Field(0, ge=0)
    disk_free_gb: float = Field(0, ge=0)


class CapabilitySpec(_M):
    name: str
    version: str
    stability: Literal["experimental", "beta", "stable"] = "stable"
    schema_hash: str
    params: dict[str, Any] = Field(default_factory=dict)
    max_concurrent: int = Field(1, ge=1)
    trust_required: Literal["member", "trusted", "anchor", "self"] = "member"
    streams: bool = False
    idempotent: bool = False
    timeout_seconds: float = 30.0
    resume: Literal["continue", "restart"] | None = None  # how another node may take over a lost stream (docs/contract.md §5)


class NodeManifest(_M):
    version: Literal[1] = 1
    contract_version: str
    node_id: str
    display_name: str
    community_id: str
    profile: Literal["anchor", "hearth", "spark", "bridge"]
    endpoints: list[Endpoint]
    hardware: HardwareSpec
    capabilities: list[CapabilitySpec]
    uptime_seconds: int = Field(ge=0)
    load: dict[str, float]
    tls_fingerprint: str | None = None  # sha256 of the transport certificate peers must pin
    # Orders manifests of one node: `boot` changes at each start, `revision` with each
    # change of its capabilities, so a late-arriving older manifest is not applied.
    boot: str = ""
    revision: int = Field(0, ge=0)
    issued_at: str
    expires_at: str

    def is_expired(self, now: float | None = None) -> bool:
        return clock.parse_iso(self.expires_at) < (clock.now() if now is None else now)


def build_node_manifest(
    kp: KeyPair,
    *,
    community_id: str,
    display_name: str,
    profile: str,
    endpoints: list[Endpoint],
    hardware: HardwareSpec,
    capabilities: list[CapabilitySpec],
    uptime_seconds: int,
    load: dict[str, float],
    tls_fingerprint: str | None = None,
    boot: str = "",
    revision: int = 0,
    ttl_seconds: int = C.MANIFEST_TTL_SECONDS,
) -> Signed:
    now = clock.now()
    m = NodeManifest(
        contract_version=C.CONTRACT_VERSION,
        node_id=kp.node_id,
        display_name=display_name or kp.short_id,
        community_id=community_id,
        profile=profile,  # type: ignore[arg-type]
        endpoints=endpoints,
        hardware=hardware,
        capabilities=capabilities,
        uptime_seconds=uptime_seconds,
        load=load,
        tls_fingerprint=tls_fingerprint,
        boot=boot,
        revision=revision,
        issued_at=clock.iso(now),
        expires_at=clock.iso(now + ttl_seconds),
    )
    return seal(m.model_dump(mode="json"), kp, C.SIGN_DOMAIN_NODE_MANIFEST)


def verify_node_manifest(envelope: Any, *, community_id: str | None = None, now: float | None = None) -> NodeManifest:
    """Verify signature, schema, community and expiry. Raises HearthNetError."""
    obj, _ = open_signed(envelope, C.SIGN_DOMAIN_NODE_MANIFEST, "node_id", max_bytes=256 * 1024, what="node manifest")
    try:
        m = NodeManifest.model_validate(obj)
    except ValidationError as exc:
        raise HearthNetError("bad_request", f"node manifest: {validation_message(exc)}") from None
    if community_id is not None and m.community_id != community_id:
        raise HearthNetError("wrong_community", "node manifest is for another community")
    if m.is_expired(now):
        raise HearthNetError("expired", f"node manifest expired at {m.expires_at}")
    return m


__all__ = ["CapabilitySpec", "Endpoint", "HardwareSpec", "NodeManifest", "build_node_manifest", "verify_node_manifest"]
