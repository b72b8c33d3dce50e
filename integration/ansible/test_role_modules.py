"""The playbook's own modules, run as Ansible runs them (args as JSON in, result as JSON out), on
real files. hearthnet_bundle (install role): inspect lists what the box lacks (nothing hashed when
the install marker says this part is installed); placed unpacks the sent archive, renames each file
into place, writes SHA256SUMS, removes leftovers (also a killed run's) and checks it all; installed
has the real uv install from the wheels only and writes the marker last; its action plugin sends
only what is missing. hearthnet_files (ansible/library): directories and files by content with
their owners and modes. hearthnet_fact (facts role): the facts.d fact installed and read at once."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pwd
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from hearthnet import constants as C

MODULE = Path(__file__).resolve().parents[2] / "ansible/roles/hearthnet_install/library/hearthnet_bundle.py"


def run_module(module: Path, tmp_path: Path, args: dict) -> tuple[int, dict]:
    """One module file run as Ansible runs it: its arguments as JSON in, its result as JSON out."""
    spec = tmp_path / f"{module.stem}.args.json"
    spec.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    p = subprocess.run([sys.executable, str(module), str(spec)], capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)


def run(tmp_path: Path, **args) -> tuple[int, dict]:
    return run_module(MODULE, tmp_path, args)


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


def test_the_sent_archive_and_those_killed_runs_left_are_removed_once_unpacked(tmp_path):
    """The action plugin sends into the task's own remote temporary directory; a killed run's stays behind."""
    root, base = tmp_path / "bundle", tmp_path / "remote-tmp"
    part = {"a.txt": b"a"}
    sent, stale, other = base / "ansible-tmp-2" / "hearthnet-bundle.tar", base / "ansible-tmp-1" / "hearthnet-bundle.tar", base / "ansible-tmp-1" / "x.tar"
    for path in (sent, stale, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        archive(root, part).rename(path)
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part), archive=str(sent), files=["a.txt"])
    assert rc == 0 and res["placed"] == ["a.txt"], res
    assert not sent.exists() and not stale.exists() and other.exists()  # only the plugin's own name is touched


def test_check_mode_reports_and_changes_nothing(tmp_path):
    root = tmp_path / "bundle"
    part = {"a.txt": b"a"}
    tar = archive(root, part)
    rc, res = run(tmp_path, root=str(root), manifest=manifest(part), archive=str(tar), files=["a.txt"], _ansible_check_mode=True)
    assert rc == 0 and res["changed"] and files_under(root) == [".incoming.tar"]


def wheel(where: Path, name: str = "hnprobe", version: str = "1.0") -> Path:
    """A real (tiny) wheel, so the real uv has something to install with no index."""
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n" for n, d in files.items())
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
        zf.writestr(f"{name}-{version}.dist-info/RECORD", record + f"{name}-{version}.dist-info/RECORD,,\n")
    return path


def test_installed_makes_the_venv_installs_from_the_wheels_only_and_marks_it_last(tmp_path):
    uv = Path(sys.executable).with_name("uv")  # the dev extra pins the bundle's uv
    assert subprocess.run([str(uv), "--version"], capture_output=True, text=True).stdout.split()[1] == C.UV_VERSION
    root, venv, marker = tmp_path / "bundle", tmp_path / "venv", tmp_path / "installed.json"
    wheel(root / "wheels")
    wanted = {"sums": "a", "extras": [], "version": "1.0"}
    args = {"state": "installed", "root": str(root), "manifest": [], "uv": str(uv), "python": sys.executable, "venv": str(venv),
            "marker": str(marker), "wanted": wanted, "requirement": "hnprobe==1.0"}
    rc, res = run(tmp_path, **args, _ansible_check_mode=True)
    assert rc == 0 and res["changed"] and res["venv_created"] and not venv.exists() and not marker.exists()
    rc, res = run(tmp_path, **args)
    assert rc == 0 and res["changed"] and res["venv_created"], res
    probe = subprocess.run([str(venv / "bin/python"), "-c", "import hnprobe; print(hnprobe.VERSION)"], capture_output=True, text=True)
    assert probe.stdout.strip() == "1.0" and not (venv / "bin/pip").exists()  # no pip in a uv venv
    assert json.loads(marker.read_text()) == wanted
    rc, res = run(tmp_path, **args)
    assert rc == 0 and not res["changed"]
    # Something the wheels cannot give: it fails with uv's own words, and the marker still says the old install.
    rc, res = run(tmp_path, **{**args, "wanted": {**wanted, "version": "2.0"}, "requirement": "hnprobe==2.0"})
    assert rc == 1 and "installing hnprobe==2.0 failed" in res["msg"] and "hnprobe" in res["msg"], res
    assert json.loads(marker.read_text()) == wanted and [p.name for p in tmp_path.glob(".installed.*")] == []
    # A new part of the bundle (another marker) installs again into the same venv.
    wheel(root / "wheels", version="2.0")
    rc, res = run(tmp_path, **{**args, "wanted": {**wanted, "version": "2.0"}, "requirement": "hnprobe==2.0"})
    assert rc == 0 and res["changed"] and not res["venv_created"] and json.loads(marker.read_text())["version"] == "2.0"


FILES = Path(__file__).resolve().parents[2] / "ansible/library/hearthnet_files.py"


def files_module(tmp_path: Path, **kw) -> tuple[int, dict]:
    return run_module(FILES, tmp_path, kw)


def test_files_makes_directories_with_their_modes_once(tmp_path):
    want = [{"path": str(tmp_path / "opt/hn"), "owner": "root", "mode": "0755"},
            {"path": str(tmp_path / "data"), "owner": "nobody", "group": "nogroup", "mode": "0700"}]
    rc, res = files_module(tmp_path, dirs=want, _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0 and res["changed"] and not (tmp_path / "opt").exists() and len(res["diff"]) == 2
    rc, res = files_module(tmp_path, dirs=want)
    assert rc == 0 and res["changed"] and res["made"] == [w["path"] for w in want], res
    data = (tmp_path / "data").stat()
    assert oct(data.st_mode & 0o777) == "0o700" and data.st_uid == pwd.getpwnam("nobody").pw_uid
    assert oct((tmp_path / "opt/hn").stat().st_mode & 0o777) == "0o755"
    rc, res = files_module(tmp_path, dirs=want)
    assert rc == 0 and not res["changed"] and res["made"] == [] and res["diff"] == []
    (tmp_path / "data").chmod(0o755)  # drift: reported in --check, repaired by a run
    rc, res = files_module(tmp_path, dirs=want, _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0 and res["changed"] and oct((tmp_path / "data").stat().st_mode & 0o777) == "0o755" and "0700" in json.dumps(res["diff"])
    rc, res = files_module(tmp_path, dirs=want)
    assert rc == 0 and res["changed"] and oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"
    (tmp_path / "file").write_text("x")
    rc, res = files_module(tmp_path, dirs=[{"path": str(tmp_path / "file"), "owner": "root", "mode": "0755"}])
    assert rc == 1 and "is not a directory" in res["msg"]


def test_files_writes_by_content_and_removes_what_must_be_absent(tmp_path):
    site, settings = tmp_path / "etc/site.yaml", tmp_path / "etc/settings.json"
    want = [{"path": str(site), "content": "name: v\n", "owner": "nobody", "group": "nogroup", "mode": "0644"},
            {"path": str(settings), "content": "{}\n", "owner": "root", "mode": "0600"}]
    rc, res = files_module(tmp_path, files=want, _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0 and res["changed"] and not (tmp_path / "etc").exists() and res["diff"][0]["after"] == "name: v\n"
    rc, res = files_module(tmp_path, files=want)
    assert rc == 0 and res["changed"] and res["written"] == [str(site), str(settings)], res
    assert site.read_text() == "name: v\n" and site.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert oct(settings.stat().st_mode & 0o777) == "0o600" and sorted(p.name for p in site.parent.iterdir()) == ["settings.json", "site.yaml"]
    rc, res = files_module(tmp_path, files=want)
    assert rc == 0 and not res["changed"] and res["diff"] == []
    settings.chmod(0o644)  # drift in the mode alone
    rc, res = files_module(tmp_path, files=want)
    assert rc == 0 and res["changed"] and res["written"] == [] and oct(settings.stat().st_mode & 0o777) == "0o600"
    rc, res = files_module(tmp_path, files=want[:1], absent=[str(settings)], _ansible_check_mode=True)
    assert rc == 0 and res["changed"] and settings.exists()
    rc, res = files_module(tmp_path, files=want[:1], absent=[str(settings)])
    assert rc == 0 and res["changed"] and res["removed"] == [str(settings)] and not settings.exists()
    rc, res = files_module(tmp_path, files=want[:1], absent=[str(settings)])
    assert rc == 0 and not res["changed"]
    rc, res = files_module(tmp_path, files=[{"path": "relative/x", "content": ""}])
    assert rc == 1 and "must be absolute" in res["msg"]


ROLE = MODULE.parents[1]


def play(tmp_path: Path, *extra: str, **args) -> dict:
    """The module through its action plugin, as a role task runs it (ad hoc, against this machine)."""
    env = {**{k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG"}, "ANSIBLE_ACTION_PLUGINS": str(ROLE / "action_plugins"),
           "ANSIBLE_LIBRARY": str(ROLE / "library"), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
           "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-remote")}
    p = subprocess.run([str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local", "-i", "localhost,",
                        "-e", f"ansible_python_interpreter={sys.executable}", "-m", "hearthnet_bundle", "-a", json.dumps(args), *extra],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)  # no ansible.cfg but these
    assert " => {" in p.stdout, p.stdout + p.stderr
    head, body = p.stdout.split(" => ", 1)
    return {**json.loads(body), "failed": "FAILED" in head}


def test_the_action_sends_only_what_the_box_lacks_in_one_archive(tmp_path):
    src, root = tmp_path / "controller", tmp_path / "box"
    part = {"wheels/a.whl": b"a" * 5000, "tools/uv": b"#!uv", "corpora.json": b"{}"}
    for name, data in part.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    (src / "tools/uv").chmod(0o755)
    args = {"src": str(src), "root": str(root), "manifest": manifest(part)}
    res = play(tmp_path, "--check", **args)
    assert res["changed"] and sorted(res["missing"]) == sorted(part) and not root.exists()
    res = play(tmp_path, **args)
    assert res["changed"] and not res["failed"] and sorted(res["placed"]) == sorted(part) and res["verified"] == 3, res
    assert files_under(root) == ["SHA256SUMS", "corpora.json", "tools/uv", "wheels/a.whl"] and os.access(root / "tools/uv", os.X_OK)
    assert list((tmp_path / "ansible-local").rglob("*.tar")) == []  # the controller's archive is gone too
    remote = tmp_path / "ansible-remote"  # the task sent its archive into a temporary directory here
    assert remote.is_dir() and list(remote.rglob("hearthnet-bundle.tar")) == []  # and removed it
    (root / "corpora.json").unlink()  # as if a killed run had placed only some of the files
    res = play(tmp_path, **args)
    assert res["changed"] and res["placed"] == ["corpora.json"], res
    res = play(tmp_path, **args)
    assert not res["changed"] and res["placed"] == [] and res["verified"] == 3
    # The install marker says this part is installed: nothing is hashed, nothing sent.
    marker, wanted = tmp_path / "installed.json", {"sums": "x"}
    marker.write_text(json.dumps(wanted))
    (root / "wheels/a.whl").write_bytes(b"changed, and not looked at")
    res = play(tmp_path, **args, marker=str(marker), wanted=wanted)
    assert not res["changed"] and res["current"] and res["placed"] == []
    # A file of the part that the controller's bundle lacks: one clear failure, nothing sent.
    (src / "corpora.json").unlink()
    (root / "corpora.json").unlink()
    res = play(tmp_path, **args)
    assert res["failed"] and "corpora.json is in this box's part of the bundle but not in" in res["msg"], res


FACT = Path(__file__).resolve().parents[2] / "ansible/roles/hearthnet_facts/library/hearthnet_fact.py"
FACT_SCRIPT = "#!/usr/bin/python3\nimport json, os\nprint(json.dumps({'cpus': os.cpu_count(), 'n': %d}))\n"


def test_the_fact_is_installed_and_read_in_one_run(tmp_path):
    def fact(**kw):
        return run_module(FACT, tmp_path, kw)

    path = tmp_path / "facts.d" / "hearthnet.fact"
    # --check on a fresh box: the facts are read all the same, from a file that is not installed.
    rc, res = fact(path=str(path), content=FACT_SCRIPT % 1, _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0 and res["changed"] and res["ansible_facts"]["ansible_local"]["hearthnet"] == {"cpus": os.cpu_count(), "n": 1}, res
    assert not path.parent.exists() and "n': 1" in res["diff"]["after"]
    rc, res = fact(path=str(path), content=FACT_SCRIPT % 1)
    assert rc == 0 and res["changed"] and res["ansible_facts"]["ansible_local"]["hearthnet"]["n"] == 1
    assert path.read_text() == FACT_SCRIPT % 1 and oct(path.stat().st_mode & 0o777) == "0o755"
    rc, res = fact(path=str(path), content=FACT_SCRIPT % 1)
    assert rc == 0 and not res["changed"] and res["ansible_facts"]["ansible_local"]["hearthnet"]["n"] == 1
    rc, res = fact(path=str(path), content=FACT_SCRIPT % 2, _ansible_check_mode=True)  # the new script's facts, the old file kept
    assert rc == 0 and res["changed"] and res["ansible_facts"]["ansible_local"]["hearthnet"]["n"] == 2 and path.read_text() == FACT_SCRIPT % 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["hearthnet.fact"]
    rc, res = fact(path=str(path), content="#!/bin/sh\necho not json\n")  # a broken script is not installed
    assert rc == 1 and "did not print JSON" in res["msg"] and path.read_text() == FACT_SCRIPT % 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["hearthnet.fact"]
