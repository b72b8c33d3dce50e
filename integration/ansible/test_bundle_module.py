"""The install role's own module, hearthnet_bundle, run as Ansible runs it (its args as JSON, its
result as JSON on stdout) on real files: inspect lists what the box lacks (and hashes nothing when
the install marker says this part is installed); placed unpacks the sent archive, renames each
file into place, writes SHA256SUMS, removes leftovers (also a killed run's) and checks it all."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "ansible/roles/hearthnet_install/library/hearthnet_bundle.py"


def run(tmp_path: Path, **args) -> tuple[int, dict]:
    spec = tmp_path / "args.json"
    spec.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    p = subprocess.run([sys.executable, str(MODULE), str(spec)], capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)


def manifest(files: dict[str, bytes]) -> list[str]:
    return [f"{hashlib.sha256(d).hexdigest()}  {n}" for n, d in sorted(files.items())]


def archive(root: Path, files: dict[str, bytes], executable: tuple[str, ...] = ()) -> Path:
    """What the controller sends: a tar of `files` at root/.incoming.tar."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / ".incoming.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid = len(data), 0o755 if name in executable else 0o644, 1000
            tar.addfile(info, io.BytesIO(data))
    return path


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_inspect_then_place_then_nothing_left_to_do(tmp_path):
    root = tmp_path / "bundle"
    part = {"wheels/a.whl": b"a" * 1000, "corpora.json": b"{}", "tools/uv": b"#!uv"}
    rc, res = run(tmp_path, state="inspect", root=str(root), manifest=manifest(part))
    assert rc == 0 and not res["changed"] and not res["current"] and sorted(res["missing"]) == sorted(part), res
    tar = archive(root, part, executable=("tools/uv",))
    (root / ".incoming.old").mkdir()  # a killed run's staging
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part), archive=str(tar), files=sorted(part))
    assert rc == 0 and res["changed"] and res["placed"] == sorted(part) and res["verified"] == 3, res
    assert files_under(root) == ["SHA256SUMS", "corpora.json", "tools/uv", "wheels/a.whl"]  # archive and staging gone
    assert (root / "SHA256SUMS").read_text().splitlines() == sorted(manifest(part), key=lambda line: line.split("  ")[1])
    assert os.access(root / "tools/uv", os.X_OK) and not os.access(root / "corpora.json", os.X_OK)
    assert (root / "wheels/a.whl").stat().st_uid == os.getuid()  # the placer's, not the controller's uid 1000
    rc, res = run(tmp_path, state="inspect", root=str(root), manifest=manifest(part))
    assert rc == 0 and res["missing"] == []
    # Nothing new: nothing changes, and the bundle is still checked; a changed file fails the check.
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part))
    assert rc == 0 and not res["changed"] and res["verified"] == 3
    (root / "corpora.json").write_bytes(b"[]")
    rc, res = run(tmp_path, state="inspect", root=str(root), manifest=manifest(part))
    assert rc == 0 and res["missing"] == ["corpora.json"]
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part))
    assert rc == 1 and res["failed"] and "corpora.json: FAILED" in res["msg"]


def test_the_install_marker_spares_the_hashing(tmp_path):
    root = tmp_path / "bundle"
    part = {"wheels/a.whl": b"a"}
    marker, wanted = tmp_path / "installed.json", {"sums": "x", "extras": [], "version": "0.1.0"}
    marker.write_text(json.dumps(wanted))
    rc, res = run(tmp_path, state="inspect", root=str(root), manifest=manifest(part), marker=str(marker), wanted=wanted)
    assert rc == 0 and res["current"] and res["missing"] == []  # nothing is there, and nothing was looked at
    rc, res = run(tmp_path, state="inspect", root=str(root), manifest=manifest(part), marker=str(marker), wanted={**wanted, "extras": ["llm"]})
    assert rc == 0 and not res["current"] and res["missing"] == ["wheels/a.whl"]


def test_a_bad_name_or_a_file_missing_from_the_archive_fails_before_anything_moves(tmp_path):
    root = tmp_path / "bundle"
    part = {"a.txt": b"a", "b.txt": b"b"}
    tar = archive(root, {"a.txt": b"a"})
    rc, res = run(tmp_path, root=str(root), manifest=[*manifest(part), f"{'0' * 64}  ../escape.txt"], archive=str(tar), files=["a.txt"])
    assert rc == 1 and "outside" in res["msg"] and not (tmp_path / "escape.txt").exists()
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part), archive=str(tar), files=["a.txt", "b.txt"])
    assert rc == 1 and "b.txt not in the archive" in res["msg"]
    assert not (root / "a.txt").exists() and not (root / "SHA256SUMS").exists()  # a.txt was fine, and still did not move
    rc, res = run(tmp_path, root=str(root), manifest=["not a checksum line"])
    assert rc == 1 and "line 1" in res["msg"]


def test_files_the_new_manifest_does_not_name_are_removed(tmp_path):
    """A newer bundle (or a box's smaller part of it) drops wheels: the box keeps only what SHA256SUMS names."""
    root = tmp_path / "bundle"
    part = {"wheels/old.whl": b"o", "wheels/kept.whl": b"k", "corpora.json": b"{}"}
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part), archive=str(archive(root, part)), files=sorted(part))
    assert rc == 0 and res["removed"] == []
    smaller = {k: v for k, v in part.items() if k != "wheels/old.whl"}
    rc, res = run(tmp_path, root=str(root), manifest=manifest(smaller))
    assert rc == 0 and res["changed"] and res["removed"] == ["wheels/old.whl"] and res["verified"] == 2, res
    assert files_under(root) == ["SHA256SUMS", "corpora.json", "wheels/kept.whl"]
    rc, res = run(tmp_path, root=str(root), manifest=manifest(smaller))
    assert rc == 0 and not res["changed"] and res["removed"] == []


def test_check_mode_reports_and_changes_nothing(tmp_path):
    root = tmp_path / "bundle"
    part = {"a.txt": b"a"}
    tar = archive(root, part)
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part), archive=str(tar), files=["a.txt"], _ansible_check_mode=True)
    assert rc == 0 and res["changed"] and files_under(root) == [".incoming.tar"]
