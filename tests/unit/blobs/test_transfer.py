"""TransferManager: a blob fetched from several peers, every chunk verified, liars dropped, interrupted fetches resumed.

The peers here are real blob stores behind a stand-in for the network that answers
the two GET routes the way the node's server does (`/blobs/v1/chunk/<cid>` and the
streamed `/blobs/v1/chunks?cids=`); the HTTP path itself is covered by the
integration tests. Each peer can be told to lie, to lack chunks or to cut answers short.
"""

from __future__ import annotations

import asyncio

import pytest

from hearthnet import constants as C
from hearthnet.blobs.store import BlobStore
from hearthnet.blobs.transfer import BATCH_PATH, CHUNK_PATH, Source, TransferManager
from hearthnet.errors import HearthNetError

BLOCK = 64 * 1024  # how the stand-in network hands out an answer's bytes


class Peer:
    """One node's blob routes, served from its own store."""

    def __init__(self, store: BlobStore, *, lies_about: frozenset[str] = frozenset(), lacks: frozenset[str] = frozenset(),
                 cuts_after: int | None = None) -> None:
        self.store, self.lies_about, self.lacks, self.cuts_after = store, lies_about, lacks, cuts_after
        self.requests: list[str] = []

    def _has(self, cid: str) -> bool:
        return cid not in self.lacks and self.store.has(cid)

    def _chunk(self, cid: str) -> bytes:
        if not self._has(cid):
            raise HearthNetError("not_found", f"no blob chunk {cid} here", cid=cid)
        data = self.store.read_chunk(cid)
        return bytes([data[0] ^ 1]) + data[1:] if cid in self.lies_about else data

    def answer(self, path: str) -> bytes:
        self.requests.append(path)
        if path.startswith(BATCH_PATH):
            wanted = path[len(BATCH_PATH):].split(",")
            missing = [c for c in wanted if not self._has(c)]
            if missing:
                raise HearthNetError("not_found", f"{len(missing)} of the {len(wanted)} chunks are not here", missing=missing)
            data = b"".join(self._chunk(c) for c in wanted)
        else:
            data = self._chunk(path[len(CHUNK_PATH):])
        return data if self.cuts_after is None else data[:self.cuts_after]


class Network:
    """The client's two methods TransferManager uses, routed to peers by URL."""

    def __init__(self, peers: dict[str, Peer]) -> None:
        self.peers = peers

    async def iter_bytes(self, url: str, path: str, *, max_bytes: int, timeout: float | None = None):
        data = self.peers[url].answer(path)
        for i in range(0, len(data), BLOCK):
            await asyncio.sleep(0)  # bytes arrive over time: other requests run in between
            if i + BLOCK > max_bytes and len(data) > max_bytes:
                raise HearthNetError("payload_too_large", f"{url}{path}: more than the {max_bytes} bytes asked for")
            yield data[i:i + BLOCK]

    async def get_bytes(self, url: str, path: str, *, max_bytes: int, timeout: float | None = None) -> bytes:
        return b"".join([b async for b in self.iter_bytes(url, path, max_bytes=max_bytes, timeout=timeout)])


def payload(chunks: int, seed: int = 5) -> bytes:
    n = chunks * C.CHUNK_SIZE_BYTES - 100
    return bytes((i * seed + i // 7) % 251 for i in range(n))


@pytest.fixture
def village(tmp_path):
    """Two peers holding the same blob, and an empty store to fetch into."""
    data = payload(10)
    stores = {name: BlobStore(tmp_path / name) for name in ("a", "b", "here")}
    m = stores["a"].put(data, filename="map.pdf")
    assert stores["b"].put(data, filename="map.pdf").cid == m.cid
    yield data, m, stores
    for s in stores.values():
        s.close()


def fetch(here: BlobStore, net: Network, cid: str, names: list[str], **kw):
    mgr = TransferManager(here, net, **kw)
    return asyncio.run(mgr.fetch(cid, [Source(f"ed25519:{n}", n) for n in names]))


def test_a_blob_is_spread_over_all_sources_and_arrives_whole(village):
    data, m, stores = village
    net = Network({"a": Peer(stores["a"]), "b": Peer(stores["b"])})
    seen = []
    mgr = TransferManager(stores["here"], net)
    rep = asyncio.run(mgr.fetch(m.cid, [Source("ed25519:a", "a"), Source("ed25519:b", "b")], pin=True,
                                progress=lambda done, total, nbytes: seen.append((done, total))))
    assert stores["here"].get(m.cid) == data and stores["here"].is_pinned(m.cid)
    assert stores["here"].manifest(m.cid).filename == "map.pdf"
    assert (rep.chunks, rep.fetched, rep.already_had, rep.bytes_fetched) == (10, 10, 0, len(data))
    assert set(rep.by_source) == {"ed25519:a", "ed25519:b"} and sum(rep.by_source.values()) == 10
    assert rep.bad_sources == []
    assert seen[-1] == (10, 10) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    # Batched: far fewer requests than chunks.
    assert len(net.peers["a"].requests) + len(net.peers["b"].requests) < 10


def test_a_source_that_sends_wrong_bytes_is_dropped_and_its_chunks_come_from_another(village):
    data, m, stores = village
    liar = Peer(stores["a"], lies_about=frozenset(c.cid for c in m.chunks))
    net = Network({"a": liar, "b": Peer(stores["b"])})
    rep = fetch(stores["here"], net, m.cid, ["a", "b"])
    assert stores["here"].get(m.cid) == data
    assert rep.by_source == {"ed25519:b": 10}
    assert [(b["node_id"], b["code"]) for b in rep.bad_sources] == [("ed25519:a", "bad_request")]
    # After the first wrong chunk it is asked for nothing more (manifest + one batch at most per worker).
    assert len(liar.requests) <= 1 + TransferManager(stores["here"], net).concurrency


def test_a_chunk_nobody_has_fails_the_fetch_and_a_later_fetch_resumes(village):
    data, m, stores = village
    gone = m.chunks[3].cid
    net = Network({"a": Peer(stores["a"], lacks=frozenset({gone})), "b": Peer(stores["b"], lacks=frozenset({gone}))})
    with pytest.raises(HearthNetError) as e:
        fetch(stores["here"], net, m.cid, ["a", "b"])
    assert e.value.code == "not_found" and e.value.details["missing"] == 1 and "fetch again to resume" in e.value.message
    assert not stores["here"].has(m.cid)  # no manifest: the blob is not here, only protected chunks are
    # The chunk turns up on a third peer: only it is fetched.
    third = Peer(stores["b"])
    rep = fetch(stores["here"], Network({"c": third}), m.cid, ["c"])
    assert (rep.already_had, rep.fetched) == (9, 1) and stores["here"].get(m.cid) == data
    assert third.requests == [CHUNK_PATH + m.cid, CHUNK_PATH + gone]


def test_an_answer_cut_short_is_retried_chunk_by_chunk(village):
    data, m, stores = village
    cut = Peer(stores["a"], cuts_after=C.CHUNK_SIZE_BYTES + 10)  # every answer stops just after its first chunk
    rep = fetch(stores["here"], Network({"a": cut}), m.cid, ["a"], concurrency=1)
    assert stores["here"].get(m.cid) == data
    assert rep.fetched == 10 and rep.bytes_fetched == len(data)  # the chunk fetched alone is not fetched again


def test_a_wrong_manifest_is_refused_and_the_next_source_asked(village):
    data, m, stores = village
    other = stores["b"].put(b"something else entirely")
    wrong = Peer(stores["a"])
    wrong.answer = lambda path: (wrong.requests.append(path), stores["b"].read_chunk(other.cid))[1]  # type: ignore[method-assign]
    net = Network({"a": wrong, "b": Peer(stores["b"])})
    rep = fetch(stores["here"], net, m.cid, ["a", "b"])
    assert stores["here"].get(m.cid) == data
    assert rep.bad_sources[0]["chunk"] == "manifest" and rep.bad_sources[0]["code"] == "bad_request"


def test_no_source_and_a_blob_already_here(village):
    data, m, stores = village
    with pytest.raises(HearthNetError) as e:
        fetch(stores["here"], Network({}), m.cid, [])
    assert e.value.code == "not_found"
    peer = Peer(stores["a"])
    fetch(stores["here"], Network({"a": peer}), m.cid, ["a"])
    before = len(peer.requests)
    rep = fetch(stores["here"], Network({"a": peer}), m.cid, ["a"])
    assert (rep.already_had, rep.fetched) == (10, 0) and len(peer.requests) == before  # nothing asked


def test_two_fetches_of_one_blob_share_the_work(village):
    data, m, stores = village
    peer = Peer(stores["a"])
    mgr = TransferManager(stores["here"], Network({"a": peer}))

    async def both():
        src = [Source("ed25519:a", "a")]
        return await asyncio.gather(mgr.fetch(m.cid, src), mgr.fetch(m.cid, src))

    first, second = asyncio.run(both())
    assert first is second and first.fetched == 10
    assert peer.requests.count(CHUNK_PATH + m.cid) == 1


def test_a_cid_that_is_not_one_is_refused_before_any_request(village):
    _, _, stores = village
    peer = Peer(stores["a"])
    with pytest.raises(HearthNetError) as e:
        fetch(stores["here"], Network({"a": peer}), "blake3:../../etc", ["a"])
    assert e.value.code == "bad_request" and peer.requests == []
