"""Transport behaviour between real nodes: cancellation, rate limits, pinning, sync guards."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import pytest

from eventgen import post_data
from hearthnet.bus.capability import CapabilityDescriptor
from hearthnet.errors import HearthNetError
from hearthnet.transport.signing import sign_request
from hearthnet.transport.tls import pinned_context

ENDLESS = CapabilityDescriptor("test.endless", (1, 0), {"type": "object"}, stream_schema={"type": "object"}, max_concurrent=4, timeout_seconds=60)


def test_closing_a_remote_stream_ends_the_handler(mesh):
    async def scenario(m):
        a, b = await m.create(2)
        closed = asyncio.Event()

        async def handler(body, ctx):
            try:
                i = 0
                while True:
                    await asyncio.sleep(0.02)
                    i += 1
                    yield {"event": "chunk", "data": {"i": i}}
            finally:
                closed.set()

        b.bus.register(ENDLESS, handler)
        await m.link()
        agen = a.bus.stream("test.endless", (1, 0), {}, timeout=30)
        n = 0
        async for _ in agen:
            n += 1
            if n == 5:
                break
        await agen.aclose()
        await asyncio.wait_for(closed.wait(), 5)  # b's handler saw the cancellation
        assert not b.flows  # and the stream's flow state is gone

    mesh.run(scenario)


def test_hard_rate_limit_answers_429_with_retry_after(mesh):
    async def scenario(m):
        (node,) = await m.create(1, extra={"transport": {"rate_soft_rps_per_cap": 2, "rate_hard_rps_per_cap": 5}})
        cert = (m.homes[0].data_dir / "tls" / "cert.pem").read_text()
        body = json.dumps({"capability": "echo.ping", "version": "1.0", "body": {}}).encode()
        codes, soft = [], 0
        async with httpx.AsyncClient(base_url=node.url, verify=pinned_context(cert)) as c:
            for _ in range(12):
                r = await c.post("/bus/v1/call", content=body, headers=sign_request(node.kp, node.community_id, "POST", "/bus/v1/call", body))
                codes.append(r.status_code)
                soft += r.headers.get("x-hn-rate") == "soft"
                if r.status_code == 429:
                    assert r.json()["error"]["code"] == "rate_limited"
                    assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["details"]["retry_after_ms"] > 0
        assert codes[:5] == [200] * 5 and 429 in codes and soft >= 1

    mesh.run(scenario)


def test_a_changed_certificate_is_refused(mesh):
    async def scenario(m):
        a, b = await m.create(2)
        assert a.peers.by_node(b.node_id).verified
        port = b.port
        await m.stop(1)
        shutil.rmtree(m.homes[1].data_dir / "tls")  # b comes back with another certificate
        b = await m.start(1, port=port)
        with pytest.raises(HearthNetError) as e:
            await a.fetch_manifest(b.url)
        assert e.value.code == "pin_mismatch"
        with pytest.raises(HearthNetError) as e:
            await a.client.get(b.url, "/health", signed=False)
        assert e.value.code == "pin_mismatch"  # the pinned context refuses the handshake

    mesh.run(scenario)


def test_sync_refuses_unsolicited_and_oversized_batches(mesh):
    async def scenario(m):
        a, b = await m.create(2)
        with pytest.raises(HearthNetError) as e:
            await a.client.post(b.url, "/sync/v1/events", {"token": "made-up", "batch": None, "heads": None})
        assert e.value.code == "conflict"
        got = await a.client.get(b.url, "/sync/v1/heads")
        huge = {"token": got["token"], "batch": {"community_id": a.community_id, "events": [{"payload": "x" * 1024, "sig": "y"}] * 9000}}
        with pytest.raises(HearthNetError) as e:
            await a.client.post(b.url, "/sync/v1/events", huge)
        assert e.value.code == "payload_too_large"
        # a token is single-use
        got = await a.client.get(b.url, "/sync/v1/heads")
        await a.client.post(b.url, "/sync/v1/events", {"token": got["token"]})
        with pytest.raises(HearthNetError) as e:
            await a.client.post(b.url, "/sync/v1/events", {"token": got["token"]})
        assert e.value.code == "conflict"

    mesh.run(scenario)


def test_forged_events_in_a_sync_batch_never_enter_the_log(mesh):
    async def scenario(m):
        a, b = await m.create(2)
        ev = a.event_log.append_local("market.post.created", post_data(901, "real"), a.kp)
        forged = dict(ev.envelope())
        forged["payload"] = forged["payload"].replace('"real"', '"fake"')
        assert forged["payload"] != ev.envelope()["payload"]
        got = await a.client.get(b.url, "/sync/v1/heads")
        batch = {"community_id": a.community_id, "events": [forged], "more": False}
        out = await a.client.post(b.url, "/sync/v1/events", {"token": got["token"], "batch": batch})
        assert out["applied"]["added"] == 0 and out["applied"]["rejected"][0]["code"] == "invalid_signature"
        assert b.event_log.get(ev.event_id) is None or b.event_log.get(ev.event_id).data["title"] == "real"

    mesh.run(scenario)


def test_pubsub_long_poll_and_metrics(mesh):
    async def scenario(m):
        a, b = await m.create(2)
        first = await a.client.get(b.url, "/pubsub/v1/subscribe?topic=events&last_seq=0&timeout=0")
        seq = first["seq"]
        waiter = asyncio.create_task(a.client.get(b.url, f"/pubsub/v1/subscribe?topic=events&last_seq={seq}&timeout=10"))
        await asyncio.sleep(0.2)
        assert not waiter.done()  # it waits for news
        ev = b.event_log.append_local("market.post.created", post_data(902), b.kp)
        got = await asyncio.wait_for(waiter, 5)
        assert [i["item"]["event_id"] for i in got["items"]] == [ev.event_id] and got["seq"] == seq + 1
        with pytest.raises(HearthNetError) as e:
            await a.client.get(b.url, "/pubsub/v1/subscribe?topic=nope&timeout=0")
        assert e.value.code == "not_found"
        await a.bus.call("echo.ping", (1, 0), {})
        from hearthnet.transport.tls import origin

        a.pins.pin(origin(a.url), a.node_id, (m.homes[0].data_dir / "tls" / "cert.pem").read_text())  # talk to itself
        text = await a.client.get(a.url, "/metrics")
        for name in ("hearthnet_requests_total", "hearthnet_request_duration_ms", "hearthnet_active_streams", "hearthnet_nodes_online",
                     "hearthnet_event_log_size", "hearthnet_event_log_lamport_head", "hearthnet_emergency_mode", "hearthnet_blob_storage_bytes",
                     "hearthnet_llm_tokens_generated_total", "hearthnet_llm_concurrent", "hearthnet_capability_health_success_rate",
                     "hearthnet_rate_limited_total", "hearthnet_signature_failures_total", "hearthnet_quarantines_total"):
            assert name in text, name
        assert 'hearthnet_requests_total{capability="echo.ping",result="ok"}' in text

    mesh.run(scenario)


def test_a_served_call_keeps_the_callers_trace_id_and_version(mesh):
    """The serving node's trace names the caller's trace id and the version asked for (they used to be "")."""

    async def scenario(m):
        a, b = await m.create(2)
        await b.client.call_remote(a.url, "echo.ping", "1.0", {"message": "hi"}, timeout=10, trace_id="01TRACEUNARY", session_id=None)
        frames = [f async for f in b.client.stream_remote(a.url, "echo.count", "1.0", {"n": 3, "interval_ms": 1}, timeout=10,
                                                           trace_id="01TRACESTREAM", session_id=None)]
        ping = [t for t in a.bus.trace.recent(50, "echo.ping") if not t.is_local][-1]
        count = [t for t in a.bus.trace.recent(50, "echo.count") if not t.is_local][-1]
        return ping, count, frames

    ping, count, frames = mesh.run(scenario)
    assert (ping.trace_id, ping.version, ping.result) == ("01TRACEUNARY", "1.0", "ok")
    assert (count.trace_id, count.version, count.result) == ("01TRACESTREAM", "1.0", "ok")
    assert count.frames == len(frames) >= 4  # the chunks and `done`
