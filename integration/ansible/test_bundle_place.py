"""The install role's own module, hearthnet_bundle_place, run as Ansible runs it (its args as
JSON, its result as JSON on stdout) on real files: files land by rename, the staged manifest
becomes SHA256SUMS, staging leftovers (also a killed run's) go, and the whole bundle is checked."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "ansible/roles/hearthnet_install/library/hearthnet_bundle_place.py"


def place(tmp_path: Path, **args) -> tuple[int, dict]:
    spec = tmp_path / "args.json"
    spec.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    p = subprocess.run([sys.executable, str(MODULE), str(spec)], capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)


def bundle(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, Path]:
    """A bundle root whose staged manifest names `files`, unpacked into a staging dir."""
    root, staging = tmp_path / "bundle", tmp_path / "bundle" / ".incoming.abc"
    for name, data in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files.items()))
    (root / ".SHA256SUMS.incoming").write_text(sums)
    return root, staging


def test_files_are_placed_the_manifest_moved_and_everything_verified(tmp_path):
    root, staging = bundle(tmp_path, {"wheels/a.whl": b"a" * 1000, "corpora.json": b"{}"})
    (root / ".incoming.old").mkdir()  # left by a run killed before
    rc, res = place(tmp_path, root=str(root), staging=str(staging), files=["wheels/a.whl", "corpora.json"])
    assert rc == 0 and res["changed"] and res["placed"] == ["wheels/a.whl", "corpora.json"] and res["verified"] == 2, res
    assert sorted(p.name for p in root.iterdir()) == ["SHA256SUMS", "corpora.json", "wheels"]
    # Again, with nothing new: nothing changes, and the bundle is still checked.
    rc, res = place(tmp_path, root=str(root), staging=str(root / ".incoming"), files=[])
    assert rc == 0 and not res["changed"] and res["verified"] == 2
    (root / "corpora.json").write_bytes(b"[]")
    rc, res = place(tmp_path, root=str(root), staging=str(root / ".incoming"), files=[])
    assert rc == 1 and res["failed"] and "corpora.json: FAILED" in res["msg"]


def test_a_file_missing_from_the_archive_or_outside_the_bundle_fails_before_anything_moves(tmp_path):
    root, staging = bundle(tmp_path, {"a.txt": b"a"})
    rc, res = place(tmp_path, root=str(root), staging=str(staging), files=["../escape.txt"])
    assert rc == 1 and "outside" in res["msg"] and not (tmp_path / "escape.txt").exists()
    rc, res = place(tmp_path, root=str(root), staging=str(staging), files=["a.txt", "b.txt"])
    assert rc == 1 and "not in the unpacked archive" in res["msg"]
    assert (staging / "a.txt").exists() and not (root / "a.txt").exists()  # a.txt was fine, and still did not move
    assert (root / ".SHA256SUMS.incoming").exists() and not (root / "SHA256SUMS").exists()  # the old manifest stays


def test_files_the_new_manifest_does_not_name_are_removed(tmp_path):
    """A newer bundle (or a box's smaller part of it) drops wheels: the box keeps only what SHA256SUMS names."""
    root, staging = bundle(tmp_path, {"wheels/old.whl": b"o", "wheels/kept.whl": b"k", "corpora.json": b"{}"})
    rc, res = place(tmp_path, root=str(root), staging=str(staging), files=["wheels/old.whl", "wheels/kept.whl", "corpora.json"])
    assert rc == 0 and res["removed"] == []
    sums = (root / "SHA256SUMS").read_text().splitlines()
    (root / ".SHA256SUMS.incoming").write_text("".join(f"{line}\n" for line in sums if not line.endswith("wheels/old.whl")))
    rc, res = place(tmp_path, root=str(root), staging=str(root / ".incoming"), files=[])
    assert rc == 0 and res["changed"] and res["removed"] == ["wheels/old.whl"] and res["verified"] == 2, res
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["SHA256SUMS", "corpora.json", "wheels/kept.whl"]
    rc, res = place(tmp_path, root=str(root), staging=str(root / ".incoming"), files=[])
    assert rc == 0 and not res["changed"] and res["removed"] == []
