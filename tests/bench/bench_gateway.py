"""The OpenAI-compatible gateway vs llama_cpp.server on the same GGUF, same client, same requests.

A `hearthnet run` process (its embedded SmolLM2, API key) and llama-cpp-python's own
OpenAI server run side by side on loopback; one httpx client sends the same greedy
`/v1/chat/completions` to each in turn (non-streamed and streamed). Figures are
completion tokens per second of wall time per request (the two servers' sampling
defaults differ, so answers can differ in length; tokens/s compares like with like),
best of several requests after a warm-up.

    python tests/bench/bench_gateway.py [-n 64] [--quick]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
from benchlib import args as parse_args
from benchlib import emit, start_node, tmpdir
from bench_rpc import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llm_server import ALIAS, LlamaServer  # noqa: E402

ENV = {"HEARTHNET_DISCOVERY__MDNS_ENABLED": "false", "HEARTHNET_DISCOVERY__UDP_ENABLED": "false"}
MSGS = [{"role": "user", "content": "Count from 1 to 300, separated by commas."}]


def rate(client: httpx.Client, url: str, key: str | None, model: str, n: int, repeats: int, stream: bool) -> float:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": MSGS, "max_tokens": n, "temperature": 0, "seed": 1, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    best = 0.0
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        if stream:
            tokens = chunks = 0
            with client.stream("POST", url + "/chat/completions", json=body, headers=headers) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        d = json.loads(line[6:])
                        if d.get("usage"):  # the gateway reports usage (its chunks may carry several tokens)
                            tokens = d["usage"]["completion_tokens"]
                        elif d.get("choices") and d["choices"][0].get("delta", {}).get("content"):
                            chunks += 1  # llama_cpp.server sends no usage when streaming: one token per chunk
            tokens = tokens or chunks
        else:
            r = client.post(url + "/chat/completions", json=body, headers=headers)
            r.raise_for_status()
            tokens = r.json()["usage"]["completion_tokens"]
        took = time.perf_counter() - t0
        if i and tokens:
            best = max(best, tokens / took)
    return best


def main() -> None:
    a = parse_args(default_n=64, quick_n=8)
    repeats = 1 if a.quick else 5
    from hearthnet.gateway.apikeys import ApiKeyStore
    from hearthnet.home import Home

    with tmpdir() as d:
        home = Home.open(Path(d) / "node")
        home.init(create_community="Gatewaydorf")
        key = ApiKeyStore(home.data_dir).create("bench")[1]
        gw_port = free_port()
        proc, _ = start_node(home.data_dir, free_port(), {**ENV, "HEARTHNET_UI__PORT": str(gw_port)})
        try:
            with LlamaServer(n_ctx=4096) as server, httpx.Client(timeout=300) as client:
                gw = f"http://127.0.0.1:{gw_port}/v1"
                model = "smollm2-135m-instruct-q4_1"
                for stream in (False, True):
                    kind = "streamed" if stream else "non-streamed"
                    base = rate(client, server.url, None, ALIAS, a.n, repeats, stream)
                    via = rate(client, gw, key, model, a.n, repeats, stream)
                    base = max(base, rate(client, server.url, None, ALIAS, a.n, repeats, stream))
                    via = max(via, rate(client, gw, key, model, a.n, repeats, stream))
                    emit("gateway", f"/v1/chat/completions {kind}, {a.n} max tokens, SmolLM2 Q4_1, through the node (API key, bus, llama.cpp)",
                         "tokens_per_s", via, "tok/s", "llama_cpp.server on the same GGUF, same client", base, "close to llama_cpp.server (>= 0.9x)")
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
