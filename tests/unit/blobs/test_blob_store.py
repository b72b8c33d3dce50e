"""The blob store: atomic, content-addressed, re-verified reads, pins and collection, nothing outside its directory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hearthnet import constants as C
from hearthnet.blobs.chunker import BlobManifest, chunk_blob, manifest_from_dict
from hearthnet.blobs.store import BlobStore
from hearthnet.errors import HearthNetError


class Disk:
    """A filesystem of `total` bytes whose usage is `base` plus what the store holds (the real disk cannot be filled in a test)."""

    def __init__(self, store_root: Path, total: int, base: int) -> None:
        self.root, self.total, self.base = store_root, total, base

    def __call__(self, _: Path) -> tuple[int, int]:
        held = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file() and f.name != "index.db" and not f.name.startswith("index.db"))
        return self.total, self.base + held


class Clock:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def blob(n: int, seed: int) -> bytes:
    return bytes((i * seed + seed) % 251 for i in range(n))


def test_put_get_roundtrip_and_chunking(tmp_path):
    s = BlobStore(tmp_path / "b")
    data = blob(3 * C.CHUNK_SIZE_BYTES + 17, 7)
    m = s.put(data, filename="notes.txt", mime_type="text/plain")
    assert len(m.chunks) == 4 and m.size_bytes == len(data)
    assert s.get(m.cid) == data and s.has_blob(m.cid) and s.is_pinned(m.cid)
    assert s.manifest(m.cid).filename == "notes.txt"
    assert [b.cid for b in s.blobs()] == [m.cid]
    # Same bytes, same CID, on any node.
    assert BlobStore(tmp_path / "other").put(data, filename="notes.txt", mime_type="text/plain").cid == m.cid
    s.close()


def test_a_bit_flipped_on_disk_is_detected_not_served(tmp_path):
    s = BlobStore(tmp_path / "b")
    m = s.put(blob(C.CHUNK_SIZE_BYTES + 1, 3))
    p = s._path(m.chunks[1].cid)
    raw = bytearray(p.read_bytes())
    raw[0] ^= 1
    p.write_bytes(bytes(raw))
    with pytest.raises(HearthNetError) as e:
        s.get(m.cid)
    assert e.value.code == "db_corrupt"
    s.close()


def test_writes_are_checked_and_stay_inside_the_store(tmp_path):
    root = tmp_path / "b"
    s = BlobStore(root)
    good = b"hello"
    m, _ = chunk_blob(good)
    with pytest.raises(HearthNetError) as e:
        s.write_chunk(m.chunks[0].cid, b"hellO")
    assert e.value.code == "bad_request" and not any(root.rglob("*"))
    for bad in ("blake3:../../etc/passwd", "/etc/passwd", "blake3:" + "0" * 63 + "/", "../x"):
        with pytest.raises(HearthNetError) as e:
            s.write_chunk(bad, good)
        assert e.value.code == "bad_request"
    # A shard directory planted as a symlink to elsewhere is refused, not written through.
    outside = tmp_path / "outside"
    outside.mkdir()
    cid = m.chunks[0].cid
    root.mkdir(exist_ok=True)
    (root / cid[7:9]).symlink_to(outside)
    with pytest.raises(HearthNetError) as e:
        s.write_chunk(cid, good)
    assert e.value.code == "storage_error" and not any(outside.iterdir())
    # A chunk file planted as a symlink is replaced by the real chunk, its target untouched.
    (root / cid[7:9]).unlink()
    (root / cid[7:9]).mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"keep me")
    (root / cid[7:9] / cid[7:]).symlink_to(victim)
    with pytest.raises(HearthNetError):
        s.read_chunk(cid)  # a symlink is never served
    s.write_chunk(cid, good)
    assert victim.read_bytes() == b"keep me" and s.read_chunk(cid) == good
    # The filename is a label in the manifest, never a path.
    m2 = s.put(b"x" * 10, filename="../../../../tmp/evil")
    assert s.manifest(m2.cid).filename == "../../../../tmp/evil" and not (tmp_path / "evil").exists()
    assert all(root in p.resolve().parents or p.resolve() == root for p in root.rglob("*") if not p.is_symlink())
    s.close()


def test_manifests_from_the_wire_are_strict(tmp_path):
    m, _ = chunk_blob(b"abc" * 1000, filename="a.bin")
    assert manifest_from_dict(m.as_dict()).cid == m.cid
    for broken in ({**m.as_dict(), "extra": 1}, {**m.as_dict(), "size_bytes": 5}, {**m.as_dict(), "kind": "x"},
                   {**m.as_dict(), "chunks": [["blake3:zz", 3000]]}, "nope"):
        with pytest.raises(HearthNetError) as e:
            manifest_from_dict(broken)
        assert e.value.code == "bad_request"
    # A manifest whose chunks are not here is refused and leaves nothing behind.
    s = BlobStore(tmp_path / "b")
    with pytest.raises(HearthNetError) as e:
        s.add_manifest(m)
    assert e.value.code == "not_found" and not s.has(m.cid) and s.blobs() == []
    s.close()


def test_gc_runs_only_above_the_threshold_and_keeps_pinned_and_in_flight(tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    mib = 1 << 20
    disk = Disk(root, total=100 * mib, base=59 * mib)
    clock = Clock()
    s = BlobStore(root, gc_threshold=0.8, disk_usage=disk, orphan_grace_seconds=0, clock=clock)
    pinned = s.put(blob(4 * mib, 1), pin=True)
    cached = [s.put(blob(4 * mib, 10 + i), pin=False) for i in range(4)]
    assert s.gc().bytes_freed == 0  # 79 MiB of 100: not above the threshold
    flying = s.put(blob(2 * mib, 99), pin=False)
    clock.now += 10
    s.touch(cached[0].cid)  # the most recently used of the cached ones
    with s.in_flight([flying.cid, *(c.cid for c in flying.chunks)]):
        rep = s.gc()
    assert rep.usage_before > 0.8 and rep.usage_after <= 0.7 + 1e-9
    assert s.has_blob(pinned.cid) and s.get(pinned.cid) == blob(4 * mib, 1)
    assert s.has_blob(flying.cid)  # a transfer was using it
    # 81 MiB -> at most 70: the three least recently used cached blobs went, the one just used stayed.
    assert [s.has_blob(c.cid) for c in cached] == [True, False, False, False]
    # Forced: everything unpinned and not in flight goes, pinned stays.
    s.gc(force=True)
    assert s.has_blob(pinned.cid) and not s.has_blob(flying.cid) and not s.has_blob(cached[0].cid)
    assert [b.cid for b in s.blobs()] == [pinned.cid]
    s.close()


def test_orphan_chunks_wait_for_their_grace_period(tmp_path):
    root = tmp_path / "b"
    clock = Clock()
    s = BlobStore(root, gc_threshold=0.5, disk_usage=lambda _: (100, 90), orphan_grace_seconds=3600, clock=clock)
    m, parts = chunk_blob(b"q" * 1000)
    s.write_chunk(m.chunks[0].cid, parts[0])  # uploaded, file.put not yet called
    clock.now += 3500
    s.gc()
    assert s.has(m.chunks[0].cid)  # still inside its grace period
    clock.now += 200
    s.gc()
    assert not s.has(m.chunks[0].cid)
    s.close()


def test_unpin_keeps_data_until_space_is_needed(tmp_path):
    s = BlobStore(tmp_path / "b")
    m = s.put(b"data" * 100)
    assert s.unpin(m.cid) and not s.unpin(m.cid)
    assert s.has_blob(m.cid) and not s.is_pinned(m.cid)
    s.pin(m.cid)
    assert s.is_pinned(m.cid)
    with pytest.raises(HearthNetError):
        s.pin("blake3:" + "0" * 64)
    s.close()


def test_an_empty_blob_is_one_empty_chunk(tmp_path):
    s = BlobStore(tmp_path / "b")
    m = s.put(b"")
    assert isinstance(m, BlobManifest) and len(m.chunks) == 1 and s.get(m.cid) == b""
    s.close()


def _fetch_into_pack(s: BlobStore, data: bytes, *, pin: bool) -> BlobManifest:
    """What a fetch does: chunks the store lacks go into the blob's pack, then the manifest."""
    m, parts = chunk_blob(data)
    w = s.pack_writer(m)
    for ref, part in zip(m.chunks, parts, strict=True):
        if not s.has(ref.cid):
            w.write(ref, part)
    w.close()
    s.sync()
    s.add_manifest(m, pin=pin)
    return m


def test_packed_blobs_read_verify_and_collect_without_losing_shared_chunks(tmp_path):
    s = BlobStore(tmp_path / "b", orphan_grace_seconds=0)
    k = C.CHUNK_SIZE_BYTES
    c1, c2, c3 = blob(k, 3), blob(k, 5), blob(k, 7)
    z = _fetch_into_pack(s, c1 + c2, pin=False)
    w = _fetch_into_pack(s, c1 + c3, pin=True)  # c1 is only in z's pack
    assert s.get(z.cid) == c1 + c2 and s.get(w.cid) == c1 + c3
    assert not s._path(z.chunks[0].cid).exists()  # packed, not a chunk file
    s.gc(force=True)  # z goes; its pack stays because w needs c1 from it
    assert s.info(z.cid) is None and s.get(w.cid) == c1 + c3
    s.unpin(w.cid)
    s.gc(force=True)
    assert s.blobs() == [] and not any((tmp_path / "b" / "packs").iterdir())
    # A flipped bit inside a pack is detected on read.
    y = _fetch_into_pack(s, c2 + c3, pin=True)
    pack = tmp_path / "b" / "packs" / y.cid[7:]
    raw = bytearray(pack.read_bytes())
    raw[k + 10] ^= 1
    pack.write_bytes(bytes(raw))
    with pytest.raises(HearthNetError) as e:
        s.get(y.cid)
    assert e.value.code == "db_corrupt"
    s.close()
