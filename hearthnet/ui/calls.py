"""What the UI asks of the bus, shared by the Gradio tabs and the phone page's adapter: one
implementation of each, so both show the same thing."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Protocol

from ulid import ULID

from hearthnet.blobs.chunker import check_cid, local_name, verify_chunk
from hearthnet.bus import CapabilityBus
from hearthnet.errors import HearthNetError
from hearthnet.storage import atomic_file, translate_os_errors
from hearthnet.transport.blob_upload import upload_file
from hearthnet.transport.client import TransportClient
from hearthnet.transport.tls import pin_first_contact

ASK_MAX_TOKENS = 256
GROUNDING_HITS = 4


class UiNode(Protocol):
    """What the UI is built from (hearthnet.node.Node provides it)."""

    bus: CapabilityBus
    node_id: str
    client: TransportClient  # signed with the node's own key: uploads go to its chunk endpoint, as the CLI's do
    url: str

    def status(self) -> dict[str, Any]: ...

    def capability_table(self) -> list[dict[str, Any]]: ...

    def members(self) -> list[dict[str, Any]]: ...


def names(node: UiNode) -> dict[str, str]:
    """node id -> what a person calls it: "you", a peer's display name, a member's, else the short id."""
    out = {m["node_id"]: m["display_name"] for m in node.members() if m["display_name"]}
    out.update({p["node_id"]: p["display_name"] for p in node.status()["peers"] if p.get("display_name")})
    out[node.node_id] = "you"
    return out


def short(node_id: str | None) -> str:
    """ed25519:AbCdEf… -> ed25519:AbCdEf (enough to tell nodes apart on a screen)."""
    return node_id[:16] if node_id else "?"


@dataclass
class Answer:
    """An answer as it streams: the text so far, then who answered, in how long, from what."""

    text: str = ""
    node: str | None = None
    ms: float | None = None
    model: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "node": self.node, "ms": self.ms, "model": self.model, "citations": self.citations,
                "error": self.error, "done": self.done}


async def corpora(node: UiNode) -> list[str]:
    """Corpus names the mesh can search (empty when no node serves rag)."""
    try:
        out = await node.bus.call("rag.list_corpora", (1, 0), {}, timeout=10)
    except HearthNetError:
        return []
    return sorted({c["corpus"] for c in out.get("corpora", []) if not c.get("error")})


async def _grounding(node: UiNode, question: str, corpus: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages, citations): the corpus's best chunks as numbered notes the model must cite."""
    hits = (await node.bus.call("rag.query", (1, 0), {"corpus": corpus, "query": question, "k": GROUNDING_HITS}, timeout=60))["hits"]
    notes = "\n\n".join(f"[{i}] {h['text']}" for i, h in enumerate(hits, 1))
    system = ("Answer from the numbered notes below, briefly, and cite the notes you used as [1], [2]. "
              "If the notes do not hold the answer, say so.\n\n" + notes)
    cites = [{"n": i, "title": h.get("title") or "", "section": h.get("section"), "doc_cid": h.get("doc_cid")} for i, h in enumerate(hits, 1)]
    return [{"role": "system", "content": system}, {"role": "user", "content": question}], cites


async def ask(node: UiNode, question: str, corpus: str | None = None, *, max_tokens: int = ASK_MAX_TOKENS) -> AsyncIterator[Answer]:
    """Stream an llm.chat answer through the bus; with a corpus, grounded in its best chunks.
    Yields the growing answer after each token and once more when it is done (with an
    `error` line instead of raising)."""
    t0 = time.perf_counter()
    ans = Answer()
    trace_id = str(ULID())
    try:
        question = question.strip()
        if not question:
            raise HearthNetError("bad_request", "ask a question first")
        messages = [{"role": "user", "content": question}]
        if corpus:
            messages, ans.citations = await _grounding(node, question, corpus)
        frames = node.bus.stream("llm.chat", (1, 0), {"messages": messages, "max_tokens": max_tokens}, trace_id=trace_id)
        try:
            async for frame in frames:
                ev, data = frame.get("event"), frame.get("data") or {}
                if ev == "token":
                    ans.text += data.get("text", "")
                    yield ans
                elif ev == "failover" and data.get("mode") == "restarted":
                    ans.text = ""  # another node starts the answer again
                elif ev == "error":
                    raise HearthNetError.from_wire(data, "the answer failed")
                elif ev == "done":
                    ans.model = data.get("model")  # and read on: the bus records the call when its stream ends
        finally:
            await frames.aclose()
    except HearthNetError as exc:
        ans.error = exc.one_line()  # one line, never a traceback
    ans.ms = round((time.perf_counter() - t0) * 1000)
    served = [t for t in node.bus.trace.recent(200, "llm.chat") if t.trace_id == trace_id]
    ans.node = served[-1].to_node if served else None
    ans.done = True
    yield ans


CATEGORIES = ("offer", "request", "info", "emergency")
MARKET_LIMIT = 50


async def market_posts(node: UiNode, *, category: str | None = None, query: str = "", mine: bool = False) -> list[dict[str, Any]]:
    """Current posts, newest first, as market.list gives them (filters applied by the serving node)."""
    req: dict[str, Any] = {"limit": MARKET_LIMIT}
    if category:
        req["category"] = category
    if query.strip():
        req["query"] = query.strip()[:200]
    if mine:
        req["author"] = node.node_id
    return list((await node.bus.call("market.list", (1, 0), req, timeout=15))["posts"])


async def market_post(node: UiNode, category: str, title: str, body: str = "") -> dict[str, Any]:
    if not title.strip():
        raise HearthNetError("bad_request", "a post needs a title")
    return await node.bus.call("market.post", (1, 0), {"category": category, "title": title.strip(), "body": body.strip()}, timeout=30)


async def market_expire(node: UiNode, post_id: str) -> dict[str, Any]:
    return await node.bus.call("market.expire", (1, 0), {"post_id": post_id}, timeout=30)


async def chat_history(node: UiNode, peer: str | None = None) -> dict[str, Any]:
    """{"messages", "unread"}: with a peer, that conversation; without, every message (for the list)."""
    return await node.bus.call("chat.history", (1, 0), {"peer": peer} if peer else {}, timeout=15)


async def chat_send(node: UiNode, to: str, text: str) -> dict[str, Any]:
    if not text.strip():
        raise HearthNetError("bad_request", "write a message first")
    return await node.bus.call("chat.send", (1, 0), {"to": to, "body": text}, timeout=30)


async def chat_read(node: UiNode, peer: str) -> dict[str, Any]:
    return await node.bus.call("chat.read", (1, 0), {"peer": peer}, timeout=15)


def delivery(m: dict[str, Any]) -> str:
    """Where a message is, as the sender sees it."""
    if not m.get("mine"):
        return "read" if m.get("read_at") else "new"
    return "read" if m.get("read_at") else "delivered" if m.get("delivered_at") else "sent"


FILES_LIMIT = 200
Progress = Callable[[int, int], None]  # (bytes so far, total bytes)


async def files(node: UiNode, query: str = "") -> list[dict[str, Any]]:
    """Files advertised on the mesh and held by this node (file.list)."""
    body: dict[str, Any] = {"limit": FILES_LIMIT}
    if query.strip():
        body["query"] = query.strip()[:200]
    return list((await node.bus.call("file.list", (1, 0), body, timeout=15))["files"])


async def file_share(node: UiNode, path: Path, name: str, progress: Progress | None = None) -> dict[str, Any]:
    """Put a local file on this node (pinned) and advertise it; `progress` follows the chunks."""
    with translate_os_errors(f"cannot read {name}"):
        total = path.stat().st_size
    sent = [0]

    def step(n: int) -> None:
        sent[0] += n
        if progress is not None:
            progress(sent[0], total)

    if node.url.startswith("https://"):
        await pin_first_contact(node.client, node.url)  # the node's own certificate, checked like any peer's
    return await upload_file(node.client, node.url, path, filename=Path(name).name[:255] or None, on_bytes=step)


async def file_download(node: UiNode, cid: str, into: Path, progress: Progress | None = None) -> Path:
    """Fetch a file onto this node from every node that advertises it (file.fetch), then read it
    through the bus into `into` under its own name, every chunk checked against its CID."""
    cid = cid.strip()
    check_cid(cid)
    async for frame in node.bus.stream("file.fetch", (1, 0), {"cid": cid}, timeout=3600):
        d = frame.get("data") or {}
        if frame.get("event") == "error":
            raise HearthNetError.from_wire(d, "the fetch failed")
        if frame.get("event") == "progress" and progress is not None:
            progress(int(d.get("bytes", 0)), 0)
    target: Path | None = None
    total = done = 0
    with contextlib.ExitStack() as stack:
        fh = None
        async for frame in node.bus.stream("file.read", (1, 0), {"cid": cid}, timeout=3600):
            ev, d = frame.get("event"), frame.get("data") or {}
            if ev == "error":
                raise HearthNetError.from_wire(d, "the read failed")
            if ev == "manifest":
                target = into / local_name(d.get("filename"), cid)
                total = int(d.get("size_bytes") or 0)
                fh = stack.enter_context(atomic_file(target))
            elif ev == "chunk" and fh is not None:
                data = base64.b64decode(d["data_b64"])
                verify_chunk(data, d["cid"])
                with translate_os_errors(f"cannot write {target}"):
                    fh.write(data)
                done += len(data)
                if progress is not None:
                    progress(done, total)
        if target is None:
            raise HearthNetError("internal", "file.read ended without a manifest")
    return target


async def invite(node: UiNode, node_id: str, level: str = "member", ttl_seconds: int = 86400) -> dict[str, Any]:
    """An invite for one node id (community.invite on this node, signed with its key)."""
    return await node.bus.call("community.invite", (1, 0), {"node_id": node_id.strip(), "level": level, "ttl_seconds": ttl_seconds}, timeout=30)


async def member_change(node: UiNode, action: str, node_id: str, level: str = "member", reason: str = "") -> dict[str, Any]:
    """promote, demote or revoke a member (this node signs; co-signatures as the policy asks)."""
    if action == "revoke":
        return await node.bus.call("community.revoke", (1, 0), {"node_id": node_id, "reason": reason[:500]}, timeout=30)
    if action not in ("promote", "demote"):
        raise HearthNetError("bad_request", f"no member action {action!r}")
    return await node.bus.call(f"community.{action}", (1, 0), {"node_id": node_id, "level": level}, timeout=30)


async def moderation(node: UiNode) -> list[dict[str, Any]]:
    """What trusted members hid, with their reasons (moderation.list)."""
    return list((await node.bus.call("moderation.list", (1, 0), {}, timeout=15))["hidden"])


async def moderate(node: UiNode, hide: bool, kind: str, target: str, reason: str) -> dict[str, Any]:
    if not target.strip() or not reason.strip():
        raise HearthNetError("bad_request", "name the post id or file CID, and say why")
    body = {"kind": kind, "target": target.strip(), "reason": reason.strip()}
    return await node.bus.call("moderation.hide" if hide else "moderation.unhide", (1, 0), body, timeout=30)


__all__ = ["CATEGORIES", "Answer", "UiNode", "ask", "chat_history", "chat_read", "chat_send", "corpora", "delivery", "market_expire",
           "market_post", "market_posts", "names", "short", "files", "file_share", "file_download", "invite", "member_change", "moderation",
           "moderate"]
