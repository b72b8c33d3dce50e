"""Type aliases shared across modules (reference §0.1). Never invent synonyms."""

from __future__ import annotations

from typing import Literal

NodeID = str  # "ed25519:<base64url 32 bytes>" (full) or "ed25519:XXXX-XXXX-XXXX-XXXX" (short)
CommunityID = str  # base64url of blake3 over the community's genesis facts
CapabilityName = str  # "llm.chat"
Version = tuple[int, int]  # (1, 0)
Lamport = int
CID = str  # "blake3:<hex>"
EventID = str  # ULID
TraceID = str  # ULID
SchemaHash = str  # "blake3:<hex>"
WallClock = str  # "2026-05-26T08:14:22.123Z"
Signature = str  # "ed25519:<base64url 64 bytes>"
Topic = str

TrustLevel = Literal["unknown", "member", "trusted", "anchor"]
Profile = Literal["anchor", "hearth", "spark", "bridge"]
Stability = Literal["experimental", "beta", "stable"]
Mode = Literal["online", "degraded", "offline"]
Category = Literal["offer", "request", "info", "emergency"]

TRUST_ORDER: dict[str, int] = {"unknown": 0, "member": 1, "trusted": 2, "anchor": 3}
