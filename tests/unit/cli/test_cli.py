"""The CLI, in-process (run()) and as a real subprocess for the no-traceback promise."""

import json
import subprocess
import sys
import tarfile

import pytest

from eventgen import post_data
from hearthnet.cli import run
from hearthnet.home import Home
from probe_servers import free_port


def cli(capsys, *args):
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = cli(capsys, "version", "--json")
    assert code == 0 and json.loads(out)["contract_version"] == "1.0"


def test_init_id_log_doctor_flow(capsys, tmp_path, monkeypatch):
    d = tmp_path / "node"
    # doctor checks that the transport port is free: a node running elsewhere on this machine must not matter.
    monkeypatch.setenv("HEARTHNET_TRANSPORT__PORT", str(free_port()))
    code, out, err = cli(capsys, "--data-dir", d, "init", "--create-community", "Testdorf", "--name", "anchor-1", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["created_identity"] and info["created_community"]
    # global option after the subcommand, too
    code, out, _ = cli(capsys, "id", "--json", "--data-dir", d)
    ident = json.loads(out)
    assert ident["node_id"] == info["node_id"] and ident["community_name"] == "Testdorf" and ident["level"] == "anchor"
    assert ident["display_name"] == "anchor-1" and ident["holds_root_key"]
    code, out, _ = cli(capsys, "--data-dir", d, "log", "--json")
    events = json.loads(out)
    assert [e["event_type"] for e in events] == ["community.created", "community.member.joined"]
    assert events[1]["data"]["node_id"] == info["node_id"]
    code, out, _ = cli(capsys, "--data-dir", d, "doctor", "--json")
    assert code == 0 and all(c["ok"] for c in json.loads(out)["checks"])
    code, out, _ = cli(capsys, "--data-dir", d, "log", "--verify", "--json")
    assert code == 0 and json.loads(out)["checked"] == 2
    code, out, _ = cli(capsys, "--data-dir", d, "log", "--summary")
    assert code == 0 and "Testdorf" in out
    # re-running the same init is a no-op; another community is refused
    code, out, _ = cli(capsys, "--data-dir", d, "init", "--create-community", "Testdorf", "--json")
    assert code == 0 and json.loads(out)["created_community"] is False
    code, _, err = cli(capsys, "--data-dir", d, "init", "--create-community", "Otherdorf")
    assert code == 1 and err.startswith("error[already_exists]")


def test_env_home_and_config_options(capsys, tmp_path, monkeypatch):
    d = tmp_path / "envnode"
    monkeypatch.setenv("HEARTHNET_HOME", str(d))
    assert cli(capsys, "init")[0] == 0
    assert (d / "keys" / "node.key").exists()
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[identity]\ndisplay_name = "from-config"\n')
    code, out, _ = cli(capsys, "id", "--json", "--config", cfg)
    assert json.loads(out)["display_name"] == "from-config"


def test_doctor_reports_missing_setup(capsys, tmp_path):
    d = tmp_path / "fresh"
    code, out, err = cli(capsys, "--data-dir", d, "doctor", "--json")
    assert code == 1 and err.startswith("error[unhealthy]")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert not checks["keys_present"]["ok"] and checks["keys_present"]["fix"]
    code, out, err = cli(capsys, "--data-dir", d, "doctor", "--check", "nope")
    assert code == 1 and "error[not_found]" in err


def test_errors_are_one_line_with_codes(capsys, tmp_path):
    d = tmp_path / "n"
    cases = [
        (("--data-dir", d, "id"), 1, "keys_missing"),
        (("--data-dir", d, "log"), 1, "not_initialised"),
        (("bogus",), 2, "bad_request"),
        (("log", "--limit", "x"), 2, "bad_request"),
        (("--data-dir", d, "erase"), 2, "aborted"),
    ]
    for args, want_code, want in cases:
        code, out, err = cli(capsys, *args)
        assert code == want_code, (args, err)
        assert err.startswith(f"error[{want}]") and err.count("\n") == 1, err


def test_log_before_community(capsys, tmp_path):
    d = tmp_path / "n"
    cli(capsys, "--data-dir", d, "init")
    code, _, err = cli(capsys, "--data-dir", d, "log")
    assert code == 1 and err.startswith("error[not_initialised]")
    code, _, err = cli(capsys, "--data-dir", d, "log", "--type", "weather")
    assert code == 2 and err.startswith("error[bad_request]")


def test_bad_config_file_no_traceback_subprocess(tmp_path):
    d = tmp_path / "n"
    d.mkdir()
    (d / "hearthnet.toml").write_text("[transport]\nport = 'x'\n")
    p = subprocess.run([sys.executable, "-m", "hearthnet", "--data-dir", str(d), "id"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.startswith("error[config_invalid]") and "transport.port" in p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1


def test_export_restores_into_a_new_data_dir(capsys, tmp_path):
    d = tmp_path / "n"
    cli(capsys, "--data-dir", d, "init", "--create-community", "Backupdorf")
    home = Home.open(d)
    with home.open_log() as log:
        for i in range(20):
            log.append_local("market.post.created", post_data(i), home.identity())
    archive = tmp_path / "backup.tar.gz"
    code, out, err = cli(capsys, "--data-dir", d, "export", "--out", archive, "--json")
    assert code == 0, err and json.loads(out)["events"] == 22
    names = tarfile.open(archive).getnames()
    assert "events.jsonl" in names and not any(n.startswith("keys") for n in names)
    code, _, err = cli(capsys, "--data-dir", d, "export", "--out", archive)
    assert code == 1 and "already_exists" in err
    code, _, _ = cli(capsys, "--data-dir", d, "export", "--out", archive, "--with-keys", "--force")
    assert code == 0 and oct(archive.stat().st_mode & 0o777) == "0o600"
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    with tarfile.open(archive) as tar:
        tar.extractall(restored, filter="data")
    (restored / "keys").chmod(0o700)
    code, out, _ = cli(capsys, "--data-dir", restored, "log", "--verify", "--json")
    assert code == 0 and json.loads(out)["checked"] == 22
    code, out, _ = cli(capsys, "--data-dir", restored, "id", "--json")
    assert json.loads(out)["node_id"] == home.identity().node_id


def test_erase(capsys, tmp_path):
    d = tmp_path / "n"
    cli(capsys, "--data-dir", d, "init", "--create-community", "Gone")
    code, _, _ = cli(capsys, "--data-dir", d, "erase", "--yes", "--keep-keys")
    assert code == 0 and (d / "keys" / "node.key").exists() and not (d / "communities").exists()
    code, _, _ = cli(capsys, "--data-dir", d, "erase", "--yes")
    assert code == 0 and not d.exists()
    # A directory that is not a HearthNet data dir is never wiped.
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"meow")
    code, _, err = cli(capsys, "--data-dir", other, "erase", "--yes")
    assert code == 1 and (other / "cat.jpg").exists()


@pytest.mark.parametrize("args", [["--help"], ["log", "--help"], []])
def test_help_exits_zero(capsys, args):
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "Usage" in out


@pytest.mark.parametrize("args", [
    ("render-profile", "--site", "{bin}", "--host", "x", "--out", "{tmp}/o"),
    ("render-profile", "--profile", "{bin}", "--detect", "--out", "{tmp}/o"),
    ("profile", "show", "{bin}"),
    ("site", "set", "--site", "{bin}", "h", "profile", "spark", "--out", "{tmp}/o"),
    ("models", "list", "--index", "{bin}"),
    ("models", "verify", "--lock", "{bin}"),
    ("rag", "seed", "--plan", "{bin}"),
    ("bootstrap", "--plan", "{bin}"),
    ("invite", "redeem", "{bin}"),
])
def test_a_binary_file_where_text_is_expected_is_one_clear_line(capsys, tmp_path, args):
    d = tmp_path / "node"
    assert cli(capsys, "--data-dir", d, "init")[0] == 0
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    code, out, err = cli(capsys, "--data-dir", d, *(a.format(bin=binary, tmp=tmp_path) for a in args))
    assert code == 2 and err.startswith("error[config_invalid]:") and "not UTF-8 text" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args", [
    ("--create-community", ""),
    ("--create-community", "   "),
    ("--create-community", "x" * 121),
    ("--name", "n" * 121),
])
def test_init_with_a_bad_name_creates_nothing(capsys, tmp_path, args):
    d = tmp_path / "node"
    code, out, err = cli(capsys, "--data-dir", d, "init", *args)
    assert code == 2 and err.startswith(("error[bad_request]", "error[config_invalid]")) and len(err.strip().splitlines()) == 1, err
    assert not d.exists()


def test_init_trims_the_community_name_and_reruns_as_a_no_op(capsys, tmp_path):
    d = tmp_path / "node"
    assert cli(capsys, "--data-dir", d, "init", "--create-community", "  Spaced  ")[0] == 0
    code, out, _ = cli(capsys, "--data-dir", d, "init", "--create-community", "Spaced", "--json")
    assert code == 0 and not json.loads(out)["created_community"]
    code, out, _ = cli(capsys, "--data-dir", d, "id", "--json")
    assert json.loads(out)["community_name"] == "Spaced"


def test_init_again_keeps_the_identity_and_leaves_the_config_file_alone(capsys, tmp_path):
    """Provisioning runs `init --name X --json` on every converge and takes the node id from it."""
    d = tmp_path / "node"
    code, out, _ = cli(capsys, "--data-dir", d, "init", "--name", "spark", "--json")
    first = json.loads(out)
    assert code == 0 and first["created_identity"]
    before = (d / "hearthnet.toml").stat()
    code, out, _ = cli(capsys, "--data-dir", d, "init", "--name", "spark", "--json")
    again = json.loads(out)
    assert code == 0 and not again["created_identity"] and again["node_id"] == first["node_id"]
    after = (d / "hearthnet.toml").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    # A new name is written (and only that changes).
    code, out, _ = cli(capsys, "--data-dir", d, "init", "--name", "spark-2", "--json")
    assert code == 0 and json.loads(out)["node_id"] == first["node_id"]
    assert 'display_name = "spark-2"' in (d / "hearthnet.toml").read_text()
