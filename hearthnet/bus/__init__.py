"""The signed capability bus: descriptors, registry, router, health, schemas, traces."""

from hearthnet.bus.bus import RETRYABLE, CapabilityBus
from hearthnet.bus.capability import CallContext, CapabilityDescriptor, CapabilityEntry, compatible, parse_name_at_version, parse_version
from hearthnet.bus.router import RouteRequest, Router

__all__ = [
    "RETRYABLE",
    "CallContext",
    "CapabilityBus",
    "CapabilityDescriptor",
    "CapabilityEntry",
    "RouteRequest",
    "Router",
    "compatible",
    "parse_name_at_version",
    "parse_version",
]
