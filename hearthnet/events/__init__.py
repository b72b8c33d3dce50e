"""The signed, replicated, append-only community event log."""

from hearthnet.events.log import AppendOutcome, EventLog, VerifyReport, event_hash
from hearthnet.events.types import EVENT_TYPES, MEMBERSHIP_TYPES, Event, EventType

__all__ = ["EVENT_TYPES", "MEMBERSHIP_TYPES", "AppendOutcome", "Event", "EventLog", "EventType", "VerifyReport", "event_hash"]
