"""SSE frames, per-stream flow control, the nonce store and pub/sub — each on its own."""

import asyncio

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.transport.nonces import NonceStore
from hearthnet.transport.pubsub import PubSub
from hearthnet.transport.streams import FlowControl, encode_frame, parse_sse


async def _lines(data: bytes):
    for line in data.decode().split("\n"):
        yield line


async def _frames(data: bytes):
    return [f async for f in parse_sse(_lines(data))]


def test_frames_round_trip_through_sse():
    wire = encode_frame(1, "token", {"text": "häll\no"}) + encode_frame(2, "done", {"n": 2})
    frames = asyncio.run(_frames(wire))
    assert [(f.seq, f.event, f.data) for f in frames] == [(1, "token", {"text": "häll\no"}), (2, "done", {"n": 2})]


def test_a_frame_that_is_not_json_is_bad_request():
    with pytest.raises(HearthNetError) as e:
        asyncio.run(_frames(b"id: 1\nevent: token\ndata: {nope\n\n"))
    assert e.value.code == "bad_request"


def test_flow_control_waits_for_acks_and_times_out_without_them():
    async def go():
        flow = FlowControl(window=2, ack_interval=1, ack_timeout=0.2)
        assert [await flow.send(), await flow.send()] == [1, 2]
        waiting = asyncio.create_task(flow.send())
        await asyncio.sleep(0.05)
        assert not waiting.done() and flow.window_used == 2
        flow.ack(1)
        assert await waiting == 3
        with pytest.raises(HearthNetError) as e:
            await flow.send()  # window full again and nobody acks
        return e.value.code

    assert asyncio.run(go()) == "timeout"


def test_a_cancelled_stream_ends_at_once_even_while_waiting_for_an_ack():
    async def go():
        flow = FlowControl(window=1, ack_interval=1, ack_timeout=30)
        await flow.send()
        waiting = asyncio.create_task(flow.send())
        await asyncio.sleep(0.05)
        flow.cancel("revoked", "the caller's membership was revoked")
        flow.cancel("aborted", "later reasons do not replace the first")
        with pytest.raises(HearthNetError) as e:
            await asyncio.wait_for(waiting, 2)
        return e.value

    err = asyncio.run(go())
    assert (err.code, err.message) == ("revoked", "the caller's membership was revoked")


def test_nonces_are_single_use_per_node_and_survive_a_restart(tmp_path):
    store = NonceStore(tmp_path / "nonces.db", keep_seconds=60)
    store.use("ed25519:a", "nonce-123")
    store.use("ed25519:b", "nonce-123")  # another node may pick the same nonce
    with pytest.raises(HearthNetError) as e:
        store.use("ed25519:a", "nonce-123")
    assert e.value.code == "replay"
    store.close()
    again = NonceStore(tmp_path / "nonces.db", keep_seconds=60)
    with pytest.raises(HearthNetError):
        again.use("ed25519:a", "nonce-123")
    again.close()


def test_pubsub_hands_out_what_came_after_last_seq_and_waits_for_the_next():
    async def go():
        ps = PubSub()
        ps.publish("events", {"n": 1})
        first = await ps.subscribe("events", last_seq=0, timeout_seconds=0.1)
        waiter = asyncio.create_task(ps.subscribe("events", last_seq=first["seq"], timeout_seconds=5))
        await asyncio.sleep(0.05)
        ps.publish("events", {"n": 2})
        second = await asyncio.wait_for(waiter, 2)
        empty = await ps.subscribe("peers", last_seq=0, timeout_seconds=0.05)
        with pytest.raises(HearthNetError) as e:
            await ps.subscribe("nope")
        return first, second, empty, e.value.code

    first, second, empty, code = asyncio.run(go())
    assert first["items"] == [{"seq": 1, "item": {"n": 1}}] and second["items"] == [{"seq": 2, "item": {"n": 2}}]
    assert empty["items"] == [] and code == "not_found"
