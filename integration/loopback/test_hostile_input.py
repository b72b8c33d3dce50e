"""Hostile input against every route of a real `hearthnet run` process: 0 × HTTP 500.

Hypothesis draws random and boundary requests — bodies (JSON of every shape, the known
troublemakers: integers past Python's digit limit, lone surrogates, deep nesting, bytes
that are not UTF-8), methods, paths (extra and percent-encoded segments) and the signature
headers (valid as a member, missing, malformed) — against the node's transport routes, its
OpenAI gateway and the web UI's adapter (/mobile/api). Every answer must be below 500, every
error must carry a code of the closed set, and the keep-alive connection must survive (a 500 used to close it). How many
requests were tried is printed.
"""

from __future__ import annotations

import json
import os
import urllib.parse

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hearthnet.errors import ERRORS
from hearthnet.gateway.apikeys import ApiKeyStore
from hearthnet.home import Home
from hearthnet.transport.signing import sign_request
from nodeprocs import community, free_port

# No model work: a well-formed call is answered quickly (not_found) instead of generating.
QUIET = {"HEARTHNET_BUS__DISABLED": json.dumps(["llm.chat", "llm.complete", "embed.text", "rag.query"])}

NODE_ROUTES = [
    ("GET", "/manifest"), ("GET", "/community/manifest"), ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"),
    ("GET", "/trace/recent"), ("GET", "/status"), ("GET", "/caps"), ("POST", "/bus/v1/call"), ("POST", "/bus/v1/ack"),
    ("POST", "/bus/v1/cancel"), ("GET", "/sync/v1/heads"), ("POST", "/sync/v1/events"), ("GET", "/blobs/v1/chunk/{cid}"),
    ("GET", "/blobs/v1/chunks"), ("PUT", "/blobs/v1/chunk/{cid}"), ("POST", "/community/v1/redeem"), ("GET", "/pubsub/v1/subscribe"),
]
GATEWAY_ROUTES = [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/embeddings")]
# The web UI's adapter on the same listener (open on loopback): the phone page's and the Ask tab's.
UI_ROUTES = [("GET", "/mobile/api/status"), ("GET", "/mobile/api/corpora"), ("POST", "/mobile/api/ask"), ("GET", "/mobile/api/market"),
             ("POST", "/mobile/api/market"), ("GET", "/mobile/api/chat"), ("POST", "/mobile/api/chat")]

HUGE_INT = "9" * 5000
RAW = [
    b"", b"null", b"[]", b"{}", b"\xff\xfe\x00", b"[" * 3000 + b"]" * 3000, b'"\\ud800"', b'{"a": "\\udfff"}',
    ('{"capability": "echo.ping", "version": "1.0", "body": {"n": ' + HUGE_INT + "}}").encode(),
    ('{"capability": "echo.ping", "version": "1.' + HUGE_INT + '", "body": {}}').encode(),
    b'{"capability": "\\ud800", "version": "1.0", "body": {}}',
    ('{"stream_id": "x", "upto": ' + HUGE_INT + "}").encode(),
    b'{"invite": "hearthnet://v1/\\ud800"}',
    b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}',
    b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": null}]}]}',
    b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": ["a"]}]}]}',
    *(('{"capability": "echo.ping", "version": "1.0", "body": {"message": "x"}, "timeout_ms": ' + v + "}").encode()
      for v in ("null", '"soon"', "[]", "{}", "true", "-1", "1e400")),
    *(('{"stream_id": "abc", "upto": ' + v + "}").encode() for v in ("null", '"8"', "[]", "{}", "1.5", "-3")),
]

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=24)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=12)
names = st.sampled_from(["echo.ping", "echo.count", "market.post", "file.list", "community.invite", "llm.chat", "nope.nope", "", "a" * 300])
call_bodies = st.fixed_dictionaries({"capability": names | st.text(max_size=20), "body": json_values},
                                    optional={"version": st.sampled_from(["1.0", "2.0", "1.x", "", "1"]) | st.text(max_size=8) | json_values,
                                              "timeout_ms": json_values, "stream": json_values, "route": json_values,
                                              "trace_id": json_values, "session_id": json_values})
flow_bodies = st.fixed_dictionaries({}, optional={"stream_id": json_values, "upto": json_values})
gateway_bodies = st.fixed_dictionaries({"model": json_values | st.just("smollm2-135m-instruct-q4_1")},
                                       optional={"messages": st.lists(st.fixed_dictionaries({"role": json_values | st.sampled_from(["user", "system"]),
                                                                                              "content": json_values}), max_size=3) | json_values,
                                                 "prompt": json_values, "input": json_values, "max_tokens": json_values, "stream": json_values,
                                                 "temperature": json_values, "stop": json_values, "n": json_values})
ui_bodies = st.fixed_dictionaries({}, optional={k: json_values | st.text(max_size=30) for k in ("question", "corpus", "to", "text", "category", "title", "body")})
bodies = st.one_of(ui_bodies.map(lambda v: json.dumps(v).encode()), st.sampled_from(RAW), st.binary(max_size=64), json_values.map(lambda v: json.dumps(v).encode()),
                   call_bodies.map(lambda v: json.dumps(v).encode()), flow_bodies.map(lambda v: json.dumps(v).encode()),
                   gateway_bodies.map(lambda v: json.dumps(v).encode()))
segments = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#"), max_size=12).map(urllib.parse.quote)
auth_modes = st.sampled_from(["member", "member", "member", "none", "bad_time", "short_nonce", "other_community", "garbage"])


@pytest.fixture(scope="module")
def target(tmp_path_factory, request):
    from nodeprocs import Procs

    procs = Procs()
    request.addfinalizer(procs.stop_all)
    base = tmp_path_factory.mktemp("hostile")
    dirs = [base / "anchor", base / "member"]
    ports = [free_port(), free_port()]
    gw = free_port()
    community(procs, dirs, ports, "Fuzzdorf", {**QUIET, "HEARTHNET_UI__PORT": str(gw), "HEARTHNET_UI__ENABLED": "true"})
    member = Home.open(dirs[1])
    key = ApiKeyStore(Home.open(dirs[0]).data_dir).create("fuzz")[1]
    node = httpx.Client(base_url=f"https://127.0.0.1:{ports[0]}", verify=False, timeout=10)
    gateway = httpx.Client(base_url=f"http://127.0.0.1:{gw}", timeout=10)
    request.addfinalizer(node.close)
    request.addfinalizer(gateway.close)
    return {"node": node, "gateway": gateway, "kp": member.identity(), "community": member.community_id, "key": key, "tried": [0, 0]}


def _headers(t: dict, mode: str, method: str, path: str, body: bytes) -> dict:
    signed_path = urllib.parse.unquote(path.split("?")[0]) + (("?" + path.split("?", 1)[1]) if "?" in path else "")
    if mode == "none":
        return {}
    if mode == "garbage":
        return {"X-HN-Node": "ed25519:\u00e9".encode("latin-1"), "X-HN-Time": "yesterday", "X-HN-Nonce": "", "X-HN-Signature": "!!"}
    h = sign_request(t["kp"], t["community"], method, signed_path, body)
    if mode == "bad_time":
        h["X-HN-Time"] = "2026-13-45T99:99:99Z"
    elif mode == "short_nonce":
        h["X-HN-Nonce"] = "abc"
    elif mode == "other_community":
        h["X-HN-Community"] = "x" * 10
    return h


def _check(resp: httpx.Response, what: str) -> None:
    assert resp.status_code < 500, f"{what} -> {resp.status_code}: {resp.read()[:300]!r}"
    if resp.status_code >= 400:
        body = json.loads(resp.read())
        assert body["error"]["code"] in ERRORS, f"{what} -> {body}"


def _send(client: httpx.Client, method: str, path: str, body: bytes, headers: dict, what: str) -> None:
    with client.stream(method, path, content=body if method != "GET" else None, headers=headers) as resp:
        _check(resp, what)  # streams (SSE) are not read to their end: the status and error shape are what count


@settings(max_examples=int(os.environ.get("HEARTHNET_FUZZ_EXAMPLES", "600")), deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(NODE_ROUTES), body=bodies, mode=auth_modes, cid=segments, extra=st.none() | segments,
       query=st.none() | st.dictionaries(st.sampled_from(["cids", "topic", "n", "limit", "since"]), st.text(max_size=20), max_size=2),
       wrong_method=st.booleans())
def test_node_routes_answer_hostile_requests_without_5xx(target, route, body, mode, cid, extra, query, wrong_method):
    method, path = route
    path = path.replace("{cid}", cid or "x")
    if extra is not None:
        path = path.rstrip("/") + "/" + extra
    if query:
        path += "?" + urllib.parse.urlencode(query)
    if wrong_method:
        method = {"GET": "POST", "POST": "GET", "PUT": "DELETE"}[method]
    if path.startswith("/pubsub") and method == "GET" and mode == "member" and extra is None:
        return  # a valid subscription is an open event stream by design; its refusals are covered above
    _send(target["node"], method, path, body, _headers(target, mode, method, path, body), f"{method} {path} [{mode}] {body[:80]!r}")
    target["tried"][0] += 1


@settings(max_examples=int(os.environ.get("HEARTHNET_FUZZ_EXAMPLES", "600")) // 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(GATEWAY_ROUTES + UI_ROUTES), body=bodies, auth=st.sampled_from(["key", "key", "key", "none", "wrong"]), wrong_method=st.booleans())
def test_gateway_routes_answer_hostile_requests_without_5xx(target, route, body, auth, wrong_method):
    method, path = route
    if wrong_method:
        method = "POST" if method == "GET" else "GET"
    headers = {"key": {"Authorization": f"Bearer {target['key']}"}, "none": {}, "wrong": {"Authorization": "Bearer hn-nope"}}[auth]
    _send(target["gateway"], method, path, body, headers, f"{method} {path} [{auth}] {body[:80]!r}")
    target["tried"][1] += 1


@pytest.mark.parametrize("route", NODE_ROUTES + GATEWAY_ROUTES + UI_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_route_takes_the_known_troublemakers(target, route):
    """Deterministic: each troublemaker body against each route, signed as a member (or with the gateway key)."""
    method, path = route
    path = path.replace("{cid}", "b3" + "a" * 64)
    gateway = (method, route[1]) in GATEWAY_ROUTES + UI_ROUTES
    for body in RAW:
        if path.startswith("/pubsub"):
            path = "/pubsub/v1/subscribe?topic=" + urllib.parse.quote(body[:40].decode("latin-1"))
        headers = {"Authorization": f"Bearer {target['key']}"} if gateway else _headers(target, "member", method, path, body)
        _send(target["gateway" if gateway else "node"], method, path, body, headers, f"{method} {path} {body[:80]!r}")
        target["tried"][int(gateway)] += 1


def test_report_what_was_tried(target, capsys):
    """Runs last in this module: the count of hostile requests, in the test output."""
    node, gateway = target["tried"]
    with capsys.disabled():
        print(f"\nhostile input: {node} requests to the node's routes, {gateway} to the gateway and the UI's adapter, 0 answers >= 500")
    assert node >= 100 and gateway >= 50
    # The connection that took them all is still usable.
    assert target["node"].get("/health").status_code == 200

