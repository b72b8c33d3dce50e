"""Signed transport under attack: hundreds of generated variants per class, none accepted.

Each test prints `security[<class>]: tried N, accepted 0` and asserts that no
variant reached a handler (a counting capability proves it).
"""

from __future__ import annotations

import json
import os
import random

import httpx

from hearthnet import clock
from hearthnet.bus.capability import CapabilityDescriptor
from hearthnet.identity import keys
from hearthnet.identity.canonical import b64u_encode
from hearthnet.transport.signing import sign_request
from hearthnet.transport.tls import pinned_context

COUNTED = CapabilityDescriptor(name="test.counted", version=(1, 0), request_schema={"type": "object"}, max_concurrent=64)
TRUSTED = CapabilityDescriptor(name="test.trusted_only", version=(1, 0), request_schema={"type": "object"}, trust_required="trusted", max_concurrent=64)
HIGH_LIMITS = {"transport": {"rate_soft_rps_per_cap": 100000, "rate_hard_rps_per_cap": 100000, "rate_soft_rps_total": 100000,
                             "rate_hard_rps_total": 100000, "max_body_bytes": 65536}}
CALL = "/bus/v1/call"


def _body(cap="test.counted"):
    return json.dumps({"capability": cap, "version": "1.0", "body": {}}).encode()


class Target:
    def __init__(self, m, node):
        self.node = node
        self.calls = 0
        cert = (m.homes[0].data_dir / "tls" / "cert.pem").read_text()
        self.http = httpx.AsyncClient(base_url=node.url, verify=pinned_context(cert), timeout=10)

        async def counted(body, ctx):
            self.calls += 1
            return {}

        node.bus.register(COUNTED, counted)
        node.bus.register(TRUSTED, counted)

    async def post(self, body: bytes, headers: dict[str, str], path: str = CALL) -> httpx.Response:
        return await self.http.post(path, content=body, headers={"Content-Type": "application/json", **headers})


def _report(name, tried, accepted):
    print(f"security[{name}]: tried {tried}, accepted {accepted}")
    assert accepted == 0 and tried >= 100


async def _attack(t: Target, name: str, variants, expect_status: set[int], expect_codes: set[str]):
    before = t.calls
    tried = accepted = 0
    for body, headers in variants:
        r = await t.post(body, headers)
        tried += 1
        if r.status_code == 200:
            accepted += 1
            continue
        assert r.status_code in expect_status, (name, r.status_code, r.text)
        assert r.json()["error"]["code"] in expect_codes, (name, r.text)
    assert t.calls == before, f"{name}: a variant reached the handler"
    _report(name, tried, accepted)


def test_attacks_are_refused_before_any_handler(mesh):
    async def scenario(m):
        (node,) = await m.create(1, extra=HIGH_LIMITS)
        t = Target(m, node)
        me = node.kp  # a member (the anchor node itself)
        cid = node.community_id
        rng = random.Random(1234)
        try:
            # Sanity: a correct request is accepted and counted.
            body = _body()
            r = await t.post(body, sign_request(me, cid, "POST", CALL, body))
            assert r.status_code == 200 and t.calls == 1

            def forged():
                for i in range(200):
                    body = _body()
                    h = sign_request(me, cid, "POST", CALL, body)
                    kind = i % 5
                    if kind == 0:
                        h["X-HN-Signature"] = "ed25519:" + b64u_encode(os.urandom(64))
                    elif kind == 1:
                        h["X-HN-Signature"] = sign_request(keys.generate(), cid, "POST", CALL, body)["X-HN-Signature"]
                    elif kind == 2:
                        body = _body().replace(b"{}", b'{"x":%d}' % i)  # body changed after signing
                    elif kind == 3:
                        sig = bytearray(h["X-HN-Signature"].encode())
                        pos = rng.randrange(8, len(sig))
                        sig[pos] = ord("A") if sig[pos] != ord("A") else ord("B")
                        h["X-HN-Signature"] = sig.decode()
                    else:
                        h.pop(rng.choice(["X-HN-Signature", "X-HN-Node", "X-HN-Nonce", "X-HN-Time"]))
                    yield body, h

            await _attack(t, "forged_signature", forged(), {400, 401}, {"invalid_signature", "bad_request"})

            body = _body()
            replayed = sign_request(me, cid, "POST", CALL, body)
            assert (await t.post(body, replayed)).status_code == 200
            await _attack(t, "replayed_nonce", ((body, dict(replayed)) for _ in range(150)), {401}, {"replay"})

            skew = node.config.transport.clock_skew_seconds

            def stale():
                for i in range(200):
                    off = (skew + rng.uniform(1, 10**7)) * (-1 if i % 2 else 1)
                    body = _body()
                    yield body, sign_request(me, cid, "POST", CALL, body, ts=clock.iso(clock.now() + off))

            await _attack(t, "stale_and_future_timestamps", stale(), {401}, {"stale_timestamp"})

            def strangers():
                for _ in range(150):
                    body = _body()
                    yield body, sign_request(keys.generate(), cid, "POST", CALL, body)

            await _attack(t, "non_member", strangers(), {403}, {"not_member"})

            def wrong_community():
                for _ in range(150):
                    body = _body()
                    yield body, sign_request(me, b64u_encode(os.urandom(32)), "POST", CALL, body)

            await _attack(t, "wrong_community", wrong_community(), {403}, {"wrong_community"})

            def low_trust():
                for _ in range(150):
                    body = _body("test.trusted_only")
                    yield body, sign_request(member, cid, "POST", CALL, body)

            member = keys.generate()
            from hearthnet.community.membership import add_member

            add_member(m.homes[0], member.node_id, "member")
            await _attack(t, "trust_too_low", low_trust(), {403}, {"forbidden"})

            def oversized():
                for i in range(120):
                    body = b'{"capability":"test.counted","version":"1.0","body":{"pad":"' + b"x" * (65536 + i * 97) + b'"}}'
                    yield body, sign_request(me, cid, "POST", CALL, body)

            await _attack(t, "oversized_body", oversized(), {413}, {"payload_too_large"})

            def malformed():
                for i in range(200):
                    body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))) if i % 2 else b'{"capability": "test.counted", "body": ' + str(i).encode()
                    yield body, sign_request(me, cid, "POST", CALL, body)

            await _attack(t, "malformed_json", malformed(), {400}, {"bad_request"})

            # Revoked: a member that is revoked is refused from then on.
            victim = keys.generate()
            add_member(m.homes[0], victim.node_id, "member")
            body = _body()
            assert (await t.post(body, sign_request(victim, cid, "POST", CALL, body))).status_code == 200
            with m.homes[0].open_log() as log:
                log.append_local("community.member.revoked", {"node_id": victim.node_id, "after_seq": 0, "reason": "test"}, m.homes[0].root_key())

            def revoked():
                for _ in range(150):
                    body = _body()
                    yield body, sign_request(victim, cid, "POST", CALL, body)

            await _attack(t, "revoked_member", revoked(), {403}, {"revoked"})
        finally:
            await t.http.aclose()

    mesh.run(scenario)


def test_replayed_nonce_refused_after_restart(mesh):
    async def scenario(m):
        (node,) = await m.create(1)
        body = _body("echo.ping")
        h = sign_request(node.kp, node.community_id, "POST", CALL, body)
        cert = (m.homes[0].data_dir / "tls" / "cert.pem").read_text()
        async with httpx.AsyncClient(verify=pinned_context(cert), timeout=10) as c:
            r = await c.post(node.url + CALL, content=body, headers=h)
            assert r.status_code == 200
            port = node.port
            await m.stop(0)
            node = await m.start(0, port=port)
            tried = 0
            for _ in range(100):
                r = await c.post(node.url + CALL, content=body, headers=h)
                tried += 1
                assert r.status_code == 401 and r.json()["error"]["code"] == "replay"
            _report("replay_after_restart", tried, 0)

    mesh.run(scenario)


def test_public_endpoints_answer_non_members_and_nothing_else_does(mesh):
    async def scenario(m):
        (node,) = await m.create(1)
        cert = (m.homes[0].data_dir / "tls" / "cert.pem").read_text()
        async with httpx.AsyncClient(base_url=node.url, verify=pinned_context(cert), timeout=10) as c:
            for path in ("/manifest", "/community/manifest", "/health"):
                assert (await c.get(path)).status_code == 200
            # Loopback operator endpoints answer unsigned local requests...
            assert (await c.get("/metrics")).status_code == 200
            # ...everything else needs a member's signature.
            for method, path in (("GET", "/sync/v1/heads"), ("POST", "/sync/v1/events"), ("POST", CALL), ("GET", "/status"),
                                 ("GET", "/caps"), ("GET", "/pubsub/v1/subscribe?topic=events&timeout=0")):
                r = await c.request(method, path, content=b"{}" if method == "POST" else None)
                assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature", (path, r.text)

    mesh.run(scenario)
