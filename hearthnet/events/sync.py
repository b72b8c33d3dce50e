"""Sync protocol objects: what two nodes exchange to converge their logs.

    A -> B   HeadsReport   per author: (contiguous seq head, events held), plus Lamport head
    B -> A   EventBatch    the valid/forked events A lacks, in log order, bounded
    A        apply_batch   checks count and size before parsing, then append_received_many

Exchanged over the signed transport (the mesh issue); here they are plain,
validated objects with the log-side functions that produce and consume them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearthnet.errors import HearthNetError, validation_message
from hearthnet.events.log import EventLog

MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024


class AuthorHead(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=0)  # 1..seq are all held
    count: int = Field(ge=0)  # events held (more than seq when there are gaps above or forks)


class HeadsReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    community_id: str
    head: int = Field(ge=0)
    authors: dict[str, AuthorHead]


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    community_id: str
    events: list[dict[str, str]]
    more: bool = False


def heads_report(log: EventLog) -> HeadsReport:
    heads = log.author_heads()
    return HeadsReport(
        community_id=log.community_id,
        head=log.head(),
        authors={a: AuthorHead(seq=s, count=n) for a, (s, n) in heads.items()},
    )


def batch_for(log: EventLog, report: HeadsReport, *, limit: int = MAX_BATCH_EVENTS, max_bytes: int = MAX_BATCH_BYTES) -> EventBatch:
    """The events the reporter lacks, oldest first, within `limit` events and `max_bytes`."""
    if report.community_id != log.community_id:
        raise HearthNetError("wrong_community", "heads report is for another community")
    wanted = {a: h.seq for a, h in report.authors.items()}
    events, size, more = [], 0, False
    for ev in log.events_after(wanted, limit + 1):
        n = len(ev.payload) + len(ev.sig) + 32
        if len(events) >= limit or size + n > max_bytes:
            more = True
            break
        events.append(ev.envelope())
        size += n
    return EventBatch(community_id=log.community_id, events=events, more=more)


def parse_batch(raw: bytes, *, max_events: int = MAX_BATCH_EVENTS, max_bytes: int = MAX_BATCH_BYTES) -> EventBatch:
    """Parse a received batch body, refusing an oversized one before parsing it."""
    if len(raw) > max_bytes:
        raise HearthNetError("payload_too_large", f"event batch is {len(raw)} bytes; limit {max_bytes}", limit=max_bytes)
    try:
        batch = EventBatch.model_validate_json(raw)
    except ValidationError as exc:
        raise HearthNetError("bad_request", f"event batch: {validation_message(exc)}") from None
    if len(batch.events) > max_events:
        raise HearthNetError("payload_too_large", f"event batch has {len(batch.events)} events; limit {max_events}")
    return batch


def apply_batch(log: EventLog, batch: EventBatch) -> dict[str, Any]:
    if batch.community_id != log.community_id:
        raise HearthNetError("wrong_community", "event batch is for another community")
    return log.append_received_many(batch.events)


async def sync_with(client: Any, log: EventLog, url: str, *, max_rounds: int = 1000) -> dict[str, int]:
    """Exchange events with one peer until neither side has more: heads, then one
    POST that pushes what the peer lacks and brings back what we lack."""
    sent = received = 0
    for _ in range(max_rounds):
        got = await client.get(url, "/sync/v1/heads")
        try:
            theirs = HeadsReport.model_validate(got["heads"])
        except (ValueError, KeyError, TypeError):
            raise HearthNetError("bad_request", f"{url}: malformed heads report") from None
        ours = await asyncio.to_thread(batch_for, log, theirs)
        mine = await asyncio.to_thread(heads_report, log)
        body = {"token": got["token"], "heads": mine.model_dump(), "batch": ours.model_dump() if ours.events else None}
        resp = await client.post(url, "/sync/v1/events", body, timeout=60)
        try:
            back = EventBatch.model_validate(resp["batch"])
        except (ValueError, KeyError, TypeError):
            raise HearthNetError("bad_request", f"{url}: malformed event batch") from None
        res = await asyncio.to_thread(apply_batch, log, back)
        sent += len(ours.events)
        received += res["added"] + res["parked"]
        if not (ours.more or back.more):
            break
    return {"sent": sent, "received": received}


__all__ = ["sync_with", "MAX_BATCH_BYTES", "MAX_BATCH_EVENTS", "AuthorHead", "EventBatch", "HeadsReport", "apply_batch", "batch_for", "heads_report", "parse_batch"]
