"""The capability bus: register capabilities, route calls, fail over, serve remote calls.

Services only register capabilities and handle requests; they never know whether
a caller is local or remote. Routing, retries, deadlines, schema checks,
concurrency limits and traces are the bus's job alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from ulid import ULID

from hearthnet import clock
from hearthnet.bus.capability import CallContext, CapabilityDescriptor, CapabilityEntry, Handler, ParamsPredicate, Service, Version
from hearthnet.bus.health import HealthTracker
from hearthnet.bus.registry import Registry
from hearthnet.bus.router import RouteRequest, Router
from hearthnet.bus.schema import SchemaValidator
from hearthnet.bus.trace import CallTraceEvent, TraceHook, usage_of
from hearthnet.config import BusConfig
from hearthnet.errors import HearthNetError
from hearthnet.observability.metrics import Metrics
from hearthnet.types import TRUST_ORDER

# A node failing with one of these has not given an answer: try the next candidate.
RETRYABLE = frozenset({"partition", "timeout", "capacity_exceeded", "rate_limited", "no_node", "internal", "unhealthy", "not_found", "pin_mismatch"})


# Given the original request and the frames already delivered, the request that makes
# another node continue the answer from there. Supplied by services (llm.*); the bus
# itself never looks inside frames.
Resumer = Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]


class RemoteCaller(Protocol):
    async def call_remote(self, url: str, name: str, version: str, body: dict[str, Any], *, timeout: float, trace_id: str, session_id: str | None) -> dict[str, Any]: ...

    def stream_remote(self, url: str, name: str, version: str, body: dict[str, Any], *, timeout: float, trace_id: str, session_id: str | None) -> AsyncIterator[dict[str, Any]]: ...


class CapabilityBus:
    def __init__(self, node_id: str, config: BusConfig, *, trace_size: int = 10000, metrics: Metrics | None = None) -> None:
        self.node_id = node_id
        self.config = config
        self.registry = Registry(node_id)
        self.health = HealthTracker(config.health_window_calls, config.quarantine_threshold, config.quarantine_seconds)
        self.schema = SchemaValidator()
        self.router = Router(self.registry, self.health, prefer_local=config.prefer_local, local_load_threshold=config.local_load_threshold)
        self.trace = TraceHook(trace_size)
        self.metrics = metrics or Metrics()
        self.remote: RemoteCaller | None = None
        self.resumers: dict[str, Resumer] = {}

    # --- registration --------------------------------------------------------------
    def register(self, descriptor: CapabilityDescriptor, handler: Handler, params_ok: ParamsPredicate | None = None) -> CapabilityEntry:
        return self.registry.register_local(descriptor, handler, params_ok)

    def register_service(self, service: Service) -> None:
        for descriptor, handler, params_ok in service.capabilities():
            self.register(descriptor, handler, params_ok)

    # --- serving (local execution, for local routes and remote callers alike) -------------
    def _local_entry(self, name: str, version: Version) -> CapabilityEntry:
        entry = self.registry.local(name, version)
        if entry is None or entry.descriptor is None:
            raise HearthNetError("not_found", f"this node does not offer {name}@{version[0]}.{version[1]}")
        return entry

    def check_trust(self, name: str, version: Version, caller: str, caller_level: str) -> None:
        d = self._local_entry(name, version).descriptor
        assert d is not None
        if caller == self.node_id:
            return  # a node's own operator (its CLI signs with the node key) may use all of it
        need = d.trust_required
        if need == "self":
            if caller != self.node_id:
                raise HearthNetError("forbidden", f"{name} answers only its own node")
        elif TRUST_ORDER.get(caller_level, 0) < TRUST_ORDER[need]:
            raise HearthNetError("forbidden", f"{name} needs trust level {need}; caller is {caller_level}")

    async def serve(self, name: str, version: Version, body: Any, ctx: CallContext) -> dict[str, Any]:
        entry = self._local_entry(name, version)
        return await self._run_unary(entry, body, ctx)

    def serve_stream(self, name: str, version: Version, body: Any, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        entry = self._local_entry(name, version)
        return self._run_stream(entry, body, ctx)

    def _admit(self, entry: CapabilityEntry, body: Any) -> CapabilityDescriptor:
        d = entry.descriptor
        assert d is not None
        self.schema.validate_request(d, body)
        if entry.in_flight >= d.max_concurrent:
            raise HearthNetError("capacity_exceeded", f"{d.name} is at its limit of {d.max_concurrent} concurrent calls", retry_after_ms=200)
        return d

    async def _run_unary(self, entry: CapabilityEntry, body: Any, ctx: CallContext) -> dict[str, Any]:
        d = self._admit(entry, body)
        entry.in_flight += 1
        try:
            res = entry.handler(body, dataclasses.replace(ctx, stream=False))  # type: ignore[misc]
            if not asyncio.iscoroutine(res):
                raise HearthNetError("bad_request", f"{d.name} answers only as a stream (use stream)")
            async with asyncio.timeout(min(ctx.remaining, d.timeout_seconds)):  # no extra task, unlike wait_for
                out = await res
        except TimeoutError:
            raise HearthNetError("timeout", f"{d.name} did not answer within its deadline") from None
        finally:
            entry.in_flight -= 1
        self.schema.validate_response(d, out)
        return out

    async def _run_stream(self, entry: CapabilityEntry, body: Any, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        d = self._admit(entry, body)
        if not d.streams:
            raise HearthNetError("bad_request", f"{d.name} does not stream")
        entry.in_flight += 1
        self.metrics.active_streams.labels(capability=d.name).inc()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                entry.in_flight -= 1
                self.metrics.active_streams.labels(capability=d.name).dec()

        agen = entry.handler(body, dataclasses.replace(ctx, stream=True))  # type: ignore[misc]
        try:
            if not hasattr(agen, "__anext__"):
                if asyncio.iscoroutine(agen):
                    agen.close()
                raise HearthNetError("internal", f"{d.name} handler did not return a stream")
            deadline = min(ctx.deadline, time.monotonic() + d.timeout_seconds)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HearthNetError("timeout", f"{d.name} stream passed its deadline")
                try:
                    async with asyncio.timeout(remaining):  # no task per frame, unlike wait_for
                        frame = await agen.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise HearthNetError("timeout", f"{d.name} stream passed its deadline") from None
                self.schema.validate_stream_frame(d, frame)
                if frame.get("event") in ("done", "error"):
                    # The answer is complete: free the slot now, not after the caller has read it
                    # (a caller that asks again at once must not find the model still "busy").
                    release()
                yield frame
        finally:
            release()
            if hasattr(agen, "aclose"):
                await agen.aclose()  # cancellation reaches the handler

    # --- calling (routing + failover) -----------------------------------------------
    def _ranked(self, name: str, version: Version, session_id: str | None, params_filter: Callable[[dict[str, Any]], bool] | None,
                params: dict[str, Any] | None = None) -> list[CapabilityEntry]:
        req = RouteRequest(name, version, session_id, params_filter, params)
        ranked = self.router.rank(req)
        if not ranked:
            _, quarantined = self.router.candidates(req)
            if quarantined:
                raise HearthNetError("partition", f"every node offering {name} is quarantined")
            raise HearthNetError("not_found", f"no node offers {name}@{version[0]}.{version[1]}")
        return ranked

    def _record(self, entry: CapabilityEntry, trace_id: str, t0: float, result: str, attempts: int, frames: int = 0, usage: Any = None) -> None:
        ms = (time.perf_counter() - t0) * 1000
        t_in, t_out = usage_of(usage)
        self.trace.record(
            CallTraceEvent(clock.iso(), trace_id, entry.name, f"{entry.version[0]}.{entry.version[1]}", self.node_id, entry.node_id,
                           entry.is_local, result, round(ms, 3), attempts, frames, t_in, t_out)
        )
        self.metrics.requests_total.labels(capability=entry.name, result=result).inc()
        self.metrics.request_duration_ms.labels(capability=entry.name).observe(ms)

    def _health(self, entry: CapabilityEntry, ok: bool, t0: float) -> None:
        before = self.health.total_quarantines
        self.health.record(entry.node_id, entry.name, success=ok, latency_ms=(time.perf_counter() - t0) * 1000)
        if self.health.total_quarantines > before:
            self.metrics.quarantines_total.inc()

    async def call(
        self,
        name: str,
        version: Version,
        body: dict[str, Any],
        *,
        timeout: float | None = None,
        session_id: str | None = None,
        params_filter: Callable[[dict[str, Any]], bool] | None = None,
        trace_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call the best node; on a failure that gave no answer, the next one, within the deadline."""
        trace_id = trace_id or str(ULID())
        deadline = time.monotonic() + (timeout or self.config_timeout(name))
        ranked = self._ranked(name, version, session_id, params_filter, params)
        last: HearthNetError | None = None
        codes: set[str] = set()
        for attempt, entry in enumerate(ranked, 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            t0 = time.perf_counter()
            try:
                if entry.is_local:
                    ctx = CallContext(self.node_id, trace_id, deadline, session_id)
                    out = await self._run_unary(entry, body, ctx)
                else:
                    out = await self._remote().call_remote(
                        entry.url or "", name, f"{version[0]}.{version[1]}", body, timeout=remaining, trace_id=trace_id, session_id=session_id
                    )
            except HearthNetError as exc:
                if exc.code in RETRYABLE:
                    self._health(entry, exc.code == "not_found", t0)  # "not that model here" is no sickness
                    self._record(entry, trace_id, t0, exc.code, attempt)
                    last = exc
                    codes.add(exc.code)
                    continue
                self._record(entry, trace_id, t0, exc.code, attempt)
                raise
            self._health(entry, True, t0)
            self._record(entry, trace_id, t0, "ok", attempt, usage=out)
            self.router.stick(session_id, entry.node_id)
            return out
        raise self._exhausted(name, last, codes, deadline)

    async def stream(
        self,
        name: str,
        version: Version,
        body: dict[str, Any],
        *,
        timeout: float | None = None,
        session_id: str | None = None,
        params_filter: Callable[[dict[str, Any]], bool] | None = None,
        trace_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Frames from the best node. Before the first frame a failure moves to the next
        candidate. After it, a capability that declares `resume` is taken over by the next
        candidate (one `failover` frame, then the rest of the answer); any other stream
        ends with one `error` frame (code `partition`)."""
        trace_id = trace_id or str(ULID())
        deadline = time.monotonic() + (timeout or self.config_timeout(name))
        ranked = self._ranked(name, version, session_id, params_filter, params)
        last: HearthNetError | None = None
        codes: set[str] = set()
        delivered: list[dict[str, Any]] = []  # frames of the answer so far, for a takeover
        lost: tuple[str, str] | None = None  # (node, code) that failed mid-stream, until someone takes over
        for attempt, entry in enumerate(ranked, 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            t0 = time.perf_counter()
            frames = 0
            usage = None
            req = body
            if lost is not None:
                mode, req = self._takeover(name, body, delivered, entry)
                if mode == "restarted":
                    delivered = []
                yield {"event": "failover", "data": {"from": lost[0], "to": entry.node_id, "mode": mode, "reason": lost[1]}}
            if entry.is_local:
                src = self._run_stream(entry, req, CallContext(self.node_id, trace_id, deadline, session_id))
            else:
                src = self._remote().stream_remote(
                    entry.url or "", name, f"{version[0]}.{version[1]}", req, timeout=remaining, trace_id=trace_id, session_id=session_id
                )
            try:
                async for frame in src:
                    if frame.get("event") == "error":
                        data = frame.get("data", {})
                        code = data.get("code", "internal")
                        if code in RETRYABLE and entry.spec.get("resume") and (frames or lost):
                            # The node lives but lost its backend half-way: a takeover as if it had died.
                            raise HearthNetError(code, str(data.get("message", "stream failed")))
                        frames += 1
                        yield frame
                        self._health(entry, code not in RETRYABLE, t0)
                        self._record(entry, trace_id, t0, code, attempt, frames)
                        return
                    frames += 1
                    if entry.spec.get("resume"):
                        delivered.append(frame)
                    if frame.get("event") == "done":
                        usage = frame.get("data")
                    yield frame
            except HearthNetError as exc:
                # The caller's own mistake (bad_request, schema_invalid ...) is no sickness of the node, as in call().
                self._health(entry, exc.code == "not_found" or exc.code not in RETRYABLE, t0)
                self._record(entry, trace_id, t0, exc.code, attempt, frames)
                if frames == 0 and lost is None and exc.code in RETRYABLE:
                    last = exc
                    codes.add(exc.code)
                    continue
                out_of_time = exc.code == "timeout" and time.monotonic() >= deadline - 0.05
                if exc.code in RETRYABLE and not out_of_time and entry.spec.get("resume") and attempt < len(ranked):
                    lost = (entry.node_id, exc.code)  # the next candidate takes over (see _takeover)
                    continue
                if frames == 0 and lost is None:
                    raise
                # A node lost mid-stream is a partition; the caller's own deadline is a timeout. A local
                # handler's own failure (its llama.cpp worker died: `unhealthy`) keeps its code.
                code = "timeout" if out_of_time else ("partition" if exc.code in RETRYABLE and not entry.is_local else exc.code)
                yield {"event": "error", "data": {"code": code, "message": f"{entry.node_id[:20]}… failed mid-stream: {exc.message}"}}
                return
            finally:
                if hasattr(src, "aclose"):
                    await src.aclose()
            self._health(entry, True, t0)
            self._record(entry, trace_id, t0, "ok", attempt, frames, usage)
            self.router.stick(session_id, entry.node_id)
            return
        if lost is not None:
            yield {"event": "error", "data": {"code": "partition", "message": f"{lost[0][:20]}… failed mid-stream and no other node could take over"}}
            return
        raise self._exhausted(name, last, codes, deadline)

    def _takeover(self, name: str, body: dict[str, Any], delivered: list[dict[str, Any]], entry: CapabilityEntry) -> tuple[str, dict[str, Any]]:
        """("resumed", request continuing after `delivered`) when the new node can continue, else ("restarted", original request)."""
        resumer = self.resumers.get(name)
        if resumer is not None and entry.spec.get("resume") == "continue" and delivered:
            return "resumed", resumer(body, delivered)
        return "restarted", body

    def _exhausted(self, name: str, last: HearthNetError | None, codes: set[str], deadline: float) -> HearthNetError:
        """The error for a call or stream whose candidates all failed (or whose deadline passed)."""
        if last is None or time.monotonic() >= deadline:
            return HearthNetError("timeout", f"{name} did not answer within its deadline")
        if len(codes) == 1 and last.code != "internal":
            return HearthNetError(last.code, last.message, **last.details)  # every node said the same
        return HearthNetError("partition", f"every node offering {name} failed; last: {last.message}", last_code=last.code)

    def config_timeout(self, name: str) -> float:
        spec_t = [float(e.spec["timeout_seconds"]) for e in self.registry.all() if e.name == name and e.spec.get("timeout_seconds")]
        return max(spec_t) if spec_t else 30.0

    def _remote(self) -> RemoteCaller:
        if self.remote is None:
            raise HearthNetError("partition", "this bus has no transport for remote calls")
        return self.remote


__all__ = ["RETRYABLE", "CapabilityBus", "RemoteCaller", "Resumer"]
