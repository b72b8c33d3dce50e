"""Files across real nodes on loopback: put, fetch from several sources, a lying source, resume, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.transport.tls import pin_first_contact
from nodeprocs import cli

MIB = 1 << 20


async def run_cli(d: Path, *args: str, check: bool = True):
    return await asyncio.to_thread(cli, d, *args, check=check, timeout=180)


@pytest.mark.slow
def test_a_20_mib_file_reaches_two_nodes_from_two_sources(mesh, tmp_path):
    data = os.urandom(20 * MIB)
    src = tmp_path / "harvest-plan.bin"
    src.write_bytes(data)

    async def scenario(m):
        a, b, c = await m.create(3)
        # a: `hearthnet file put` uploads raw chunks to its node, which pins and advertises the file.
        out = json.loads((await run_cli(m.base / "n0", "file", "put", str(src), "--json")).stdout)
        cid = out["cid"]
        assert out["size_bytes"] == 20 * MIB and out["chunks"] == 80 and out["event_id"]
        await m.until(lambda: b.file_view.sources(cid) == [a.node_id] and c.file_view.get(cid) is not None)
        # b fetches from a (the only source) and advertises its copy.
        rep = await b.transfer.fetch(cid, b.blob_sources(cid))
        assert rep.fetched == 80 and rep.by_source == {a.node_id: 80} and not rep.bad_sources
        b.files.advertise(cid)
        await m.until(lambda: sorted(c.file_view.sources(cid)) == sorted([a.node_id, b.node_id]))
        # c: `hearthnet file get` fetches through its node from both sources, then writes the file.
        dest = tmp_path / "out"
        dest.mkdir()
        got = json.loads((await run_cli(m.base / "n2", "file", "get", cid, "--out", str(dest), "--json")).stdout)
        assert Path(got["path"]) == dest / "harvest-plan.bin" and (dest / "harvest-plan.bin").read_bytes() == data
        by_source = got["report"]["by_source"]
        assert set(by_source) == {a.node_id, b.node_id} and sum(by_source.values()) == 80, by_source
        listed = json.loads((await run_cli(m.base / "n2", "file", "list", "--json")).stdout)
        row = next(r for r in listed if r["cid"] == cid)
        assert row["filename"] == "harvest-plan.bin" and row["local"] and not row["pinned"] and len(row["sources"]) == 2
        # Existing output is not overwritten without --force; an unknown CID is a clear error.
        p = await run_cli(m.base / "n2", "file", "get", cid, "--out", str(dest / "harvest-plan.bin"), check=False)
        assert p.returncode != 0 and p.stderr.startswith("error[already_exists]")
        p = await run_cli(m.base / "n2", "file", "get", "blake3:" + "ab" * 32, "--out", str(dest / "x"), check=False)
        assert p.stderr.startswith("error[not_found]") and len(p.stderr.strip().splitlines()) == 1 and not (dest / "x").exists()
        assert sorted(x.name for x in dest.iterdir()) == ["harvest-plan.bin"]  # no temp files left behind

    mesh.run(scenario)


def test_a_corrupting_source_is_reported_and_the_fetch_succeeds_from_another(mesh):
    data = os.urandom(3 * MIB + 1234)

    async def scenario(m):
        a, b, c = await m.create(3)
        await m.until(lambda: b.event_log.membership.is_member(c.node_id))  # b admits c's requests once it has synced c's join
        manifest = a.blobs.put(data, filename="map.pdf")
        b.blobs.put(data, filename="map.pdf")
        cid = manifest.cid
        real = b.blobs.read_chunk

        def lying(chunk_cid: str) -> bytes:  # b's disk is fine; b itself lies about the bytes
            raw = real(chunk_cid)
            return raw if chunk_cid == cid else bytes([raw[0] ^ 0xFF]) + raw[1:]

        b.blobs.read_chunk = lying  # type: ignore[method-assign]
        sources = [s for s in c.blob_sources(cid, [b.node_id, a.node_id])]
        assert [s.node_id for s in sources] == [b.node_id, a.node_id]
        rep = await c.transfer.fetch(cid, sources)
        assert c.blobs.get(cid) == data
        assert [x["node_id"] for x in rep.bad_sources] == [b.node_id] and rep.bad_sources[0]["code"] == "bad_request", rep.bad_sources
        assert rep.by_source == {a.node_id: len(manifest.chunks)}
        # Nothing wrong was written: every stored chunk re-verifies.
        assert all(c.blobs.read_chunk(r.cid) for r in manifest.chunks)

    mesh.run(scenario)


def test_fetch_resumes_and_fails_cleanly_when_no_source_has_it(mesh):
    data = os.urandom(6 * MIB)

    async def scenario(m):
        a, b = await m.create(2)
        manifest = a.blobs.put(data)
        cid = manifest.cid
        # An interrupted fetch: cancelled after a few chunks arrived.
        task = asyncio.create_task(b.transfer.fetch(cid, b.blob_sources(cid, [a.node_id])))
        for _ in range(500):
            if sum(b.blobs.has(r.cid) for r in manifest.chunks) >= 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not b.blobs.has_blob(cid) and b.blobs.info(cid) is None  # no manifest: the blob is not here yet
        had = sum(b.blobs.has(r.cid) for r in manifest.chunks)
        assert 0 < had < len(manifest.chunks)
        rep = await b.transfer.fetch(cid, b.blob_sources(cid, [a.node_id]))
        assert rep.already_had == had and rep.fetched == len(manifest.chunks) - had and b.blobs.get(cid) == data
        # A bit flipped on a's disk: a refuses to serve it (db_corrupt), and b reports a as a bad source.
        other = a.blobs.put(os.urandom(MIB))
        p = a.blobs._path(other.chunks[2].cid)
        raw = bytearray(p.read_bytes())
        raw[100] ^= 4
        p.write_bytes(bytes(raw))
        with pytest.raises(HearthNetError) as e:
            await b.transfer.fetch(other.cid, b.blob_sources(other.cid, [a.node_id]))
        assert e.value.code == "partition" and e.value.details["bad_sources"][0]["code"] == "db_corrupt"
        assert not b.blobs.has_blob(other.cid)
        # Unknown CID.
        with pytest.raises(HearthNetError) as e:
            await b.transfer.fetch("blake3:" + "cd" * 32, b.blob_sources("x", [a.node_id]))
        assert e.value.code == "not_found"
        # Raw chunk endpoint: members only, uploads need trust and the right hash.
        with pytest.raises(HearthNetError) as e:
            await b.client.put_bytes(a.url, "/blobs/v1/chunk/" + manifest.chunks[0].cid, b"x")
        assert e.value.code == "forbidden"
        await pin_first_contact(a.client, a.url)  # a's operator talks to its own node
        with pytest.raises(HearthNetError) as e:
            await a.client.put_bytes(a.url, "/blobs/v1/chunk/" + manifest.chunks[0].cid, b"x")
        assert e.value.code == "bad_request"

    mesh.run(scenario)


def test_chunks_a_source_lacks_come_from_another(mesh):
    chunk = 256 * 1024
    data = os.urandom(12 * chunk + 99)

    async def scenario(m):
        a, b, c = await m.create(3)
        await m.until(lambda: b.event_log.membership.is_member(c.node_id))
        full = a.blobs.put(data)
        b.blobs.put(data[: 5 * chunk])  # b holds the first five chunks only (and the manifest from c's cache below)
        c.blobs.write_chunk(full.cid, full.encode())
        rep = await c.transfer.fetch(full.cid, c.blob_sources(full.cid, [b.node_id, a.node_id]))
        assert c.blobs.get(full.cid) == data and not rep.bad_sources
        assert rep.by_source.get(a.node_id, 0) >= 8 and sum(rep.by_source.values()) == 13

    mesh.run(scenario)


def test_a_local_disk_failure_stops_the_fetch_without_blaming_sources(mesh, tmp_path):
    async def scenario(m):
        a, b = await m.create(2)
        cid = a.blobs.put(os.urandom(2 * MIB)).cid
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        b.blobs.root.mkdir(parents=True, exist_ok=True)
        (b.blobs.root / "packs").symlink_to(elsewhere)  # the store refuses to write through it
        with pytest.raises(HearthNetError) as e:
            await b.transfer.fetch(cid, b.blob_sources(cid, [a.node_id]))
        assert e.value.code == "storage_error" and not any(elsewhere.iterdir()) and not b.blobs.has_blob(cid)
        # No worker outlives the fetch (counting every task would also count the nodes' own, which come and go).
        # Not every task runs a coroutine with a name: an async generator's aclose() is an `async_generator_athrow`.
        workers = [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "_Fetch.worker"]
        assert not workers
        (b.blobs.root / "packs").unlink()
        rep = await b.transfer.fetch(cid, b.blob_sources(cid, [a.node_id]))
        assert not rep.bad_sources and b.blobs.get(cid) == a.blobs.get(cid)

    mesh.run(scenario)
