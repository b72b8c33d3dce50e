"""The bus in one process: validation, limits, deadlines, traces, failover over fake-free local entries."""

import asyncio

import pytest

from hearthnet.bus import CapabilityBus, CapabilityDescriptor
from hearthnet.config import BusConfig
from hearthnet.errors import HearthNetError
from hearthnet.services.diag import DiagService

ME = "ed25519:me"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def bus():
    b = CapabilityBus(ME, BusConfig(), trace_size=100)
    b.register_service(DiagService(ME))
    return b


def test_unary_and_stream(bus):
    assert run(bus.call("echo.ping", (1, 0), {"message": "hi"}))["message"] == "hi"

    async def frames():
        return [f async for f in bus.stream("echo.count", (1, 0), {"n": 5})]

    out = run(frames())
    assert [f["event"] for f in out] == ["chunk"] * 5 + ["done"]
    assert [t.result for t in bus.trace.recent(10)] == ["ok", "ok"]


def test_request_failing_schema_never_reaches_handler(bus):
    calls = []
    d = CapabilityDescriptor("test.strict", (1, 0), {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False})

    async def handler(body, ctx):
        calls.append(body)
        return {}

    bus.register(d, handler)
    for bad in [{}, {"n": "1"}, {"n": 1, "x": 2}, [], "str"]:
        with pytest.raises(HearthNetError) as e:
            run(bus.call("test.strict", (1, 0), bad))
        assert e.value.code == "schema_invalid" and "path" in e.value.details
    assert calls == []
    assert run(bus.call("test.strict", (1, 0), {"n": 1})) == {}


def test_bad_response_is_schema_invalid(bus):
    d = CapabilityDescriptor("test.liar", (1, 0), {"type": "object"}, response_schema={"type": "object", "required": ["answer"]})

    async def handler(body, ctx):
        return {"nope": 1}

    bus.register(d, handler)
    with pytest.raises(HearthNetError) as e:
        run(bus.call("test.liar", (1, 0), {}))
    assert e.value.code == "schema_invalid" and "response" in e.value.message


def test_concurrency_limit(bus):
    d = CapabilityDescriptor("test.one", (1, 0), {"type": "object"}, max_concurrent=1)
    gate = asyncio.Event()

    async def handler(body, ctx):
        await gate.wait()
        return {}

    bus.register(d, handler)
    entry = bus.registry.local("test.one", (1, 0))

    async def main():
        first = asyncio.create_task(bus.serve("test.one", (1, 0), {}, _ctx()))
        while entry.in_flight == 0:  # until the first call holds the one slot
            await asyncio.sleep(0)
        with pytest.raises(HearthNetError) as e:
            await bus.serve("test.one", (1, 0), {}, _ctx())
        assert e.value.code == "capacity_exceeded" and e.value.details["retry_after_ms"] > 0
        gate.set()
        await first

    run(main())
    assert entry.in_flight == 0


def _ctx(seconds=5.0):
    import time

    from hearthnet.bus.capability import CallContext

    return CallContext(ME, "t", time.monotonic() + seconds)


def test_deadline_is_honoured_and_stream_cancellation_reaches_handler(bus):
    state = {"closed": False}
    d = CapabilityDescriptor("test.endless", (1, 0), {"type": "object"}, stream_schema={"type": "object"})

    async def handler(body, ctx):
        try:
            while True:
                await asyncio.sleep(0.01)
                yield {"event": "chunk", "data": {}}
        finally:
            state["closed"] = True

    bus.register(d, handler)

    async def consume_some():
        agen = bus.stream("test.endless", (1, 0), {}, timeout=5)
        n = 0
        async for _ in agen:
            n += 1
            if n == 3:
                break
        await agen.aclose()

    run(consume_some())
    assert state["closed"]  # the consumer went away: the handler was closed

    async def too_slow():
        return [f async for f in bus.stream("test.endless", (1, 0), {}, timeout=0.2)]

    frames = run(too_slow())
    assert len(frames) > 3 and frames[-1] == {"event": "error", "data": {"code": "timeout", "message": frames[-1]["data"]["message"]}}


def test_unknown_and_unroutable(bus):
    with pytest.raises(HearthNetError) as e:
        run(bus.call("nope.nothing", (1, 0), {}))
    assert e.value.code == "not_found"
    with pytest.raises(HearthNetError) as e:
        run(bus.call("echo.ping", (2, 0), {}))
    assert e.value.code == "not_found"


def test_trust_levels(bus):
    d = CapabilityDescriptor("test.admin", (1, 0), {"type": "object"}, trust_required="trusted")
    s = CapabilityDescriptor("test.mine", (1, 0), {"type": "object"}, trust_required="self")

    async def handler(body, ctx):
        return {}

    bus.register(d, handler)
    bus.register(s, handler)
    bus.check_trust("test.admin", (1, 0), "x", "trusted")
    bus.check_trust("test.admin", (1, 0), "x", "anchor")
    with pytest.raises(HearthNetError) as e:
        bus.check_trust("test.admin", (1, 0), "x", "member")
    assert e.value.code == "forbidden"
    bus.check_trust("test.mine", (1, 0), ME, "member")
    with pytest.raises(HearthNetError):
        bus.check_trust("test.mine", (1, 0), "someone-else", "anchor")
    bus.check_trust("test.admin", (1, 0), ME, "member")  # its own operator may use everything on the node


def test_a_callers_own_mistakes_on_a_stream_never_quarantine_the_node(bus):
    """A stream refused for its request (as a tool call naming a function not in `tools`) is the
    caller's fault, as it is for a unary call: ten in a row leave the node routable."""

    async def refuse(body, ctx):
        raise HearthNetError("bad_request", "not a tool of this request")
        yield {}

    bus.register(CapabilityDescriptor("test.picky", (1, 0), {"type": "object"}, stream_schema={"type": "object"}), refuse)

    async def go():
        codes = []
        for _ in range(10):
            with pytest.raises(HearthNetError) as e:
                async for _f in bus.stream("test.picky", (1, 0), {}):
                    pass
            codes.append(e.value.code)
        return codes

    assert run(go()) == ["bad_request"] * 10
    assert not bus.health.is_quarantined(ME, "test.picky")
