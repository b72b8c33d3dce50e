"""SSE frames and per-stream flow control.

A stream answers `POST /bus/v1/call` with `stream: true` as text/event-stream:

    id: <seq>\nevent: <name>\ndata: <json>\n\n

The first frame is `ready` with the `stream_id`. The receiver acknowledges with
`POST /bus/v1/ack {"stream_id", "upto": seq}` at least every
STREAM_ACK_INTERVAL_FRAMES frames; the sender keeps at most STREAM_WINDOW_FRAMES
unacknowledged frames in flight and ends the stream with a `timeout` error if
no acknowledgement comes within STREAM_ACK_TIMEOUT_SECONDS. Closing the
connection ends the handler; a cancellation (`POST /bus/v1/cancel`, the caller's
revocation, the node stopping) ends the stream with one `error` frame saying why.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from hearthnet import constants as C
from hearthnet.errors import HearthNetError


@dataclass(frozen=True)
class Frame:
    event: str
    data: dict[str, Any]
    seq: int


def encode_frame(seq: int, event: str, data: dict[str, Any]) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[Frame]:
    """Frames from an SSE line stream."""
    seq, event, data = 0, "message", []
    async for line in lines:
        if line == "":
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except json.JSONDecodeError:
                    raise HearthNetError("bad_request", "stream frame is not JSON") from None
                yield Frame(event, payload, seq)
            seq, event, data = 0, "message", []
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            seq = int(value) if value.isdigit() else 0
        elif field == "event":
            event = value
        elif field == "data":
            data.append(value)


class FlowControl:
    def __init__(self, window: int = C.STREAM_WINDOW_FRAMES, ack_interval: int = C.STREAM_ACK_INTERVAL_FRAMES, ack_timeout: float = C.STREAM_ACK_TIMEOUT_SECONDS) -> None:
        self.window = window
        self.ack_interval = ack_interval
        self.ack_timeout = ack_timeout
        self.sent = 0
        self.acked = 0
        self._wake = asyncio.Event()  # an ack came, or the stream was cancelled
        self.cancelled: HearthNetError | None = None

    @property
    def window_used(self) -> int:
        return self.sent - self.acked

    async def send(self) -> int:
        """Wait for room in the window; returns the sequence number of the next frame.
        Raises the cancellation's error (`aborted`, `revoked`, `unhealthy`) as soon as the stream is cancelled,
        also while it waits for an ack (a receiver that stopped reading must not hold it open)."""
        while True:
            if self.cancelled is not None:
                raise self.cancelled
            if self.sent - self.acked < self.window:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.ack_timeout)
            except TimeoutError:
                raise HearthNetError("timeout", f"receiver acknowledged nothing for {self.ack_timeout:.0f}s") from None
        self.sent += 1
        return self.sent

    def ack(self, upto: int) -> None:
        if upto > self.acked:
            self.acked = min(upto, self.sent)
            self._wake.set()

    def cancel(self, code: str, message: str) -> None:
        """End the stream with one `error {code, message}` frame (the first reason wins)."""
        if self.cancelled is None:
            self.cancelled = HearthNetError(code, message)
            self._wake.set()


__all__ = ["Frame", "FlowControl", "encode_frame", "parse_sse"]
