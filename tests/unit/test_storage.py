import json
import sqlite3

import pytest

from hearthnet import storage
from hearthnet.errors import HearthNetError


@pytest.mark.parametrize("prefer", ["stdlib", "pysqlite3"])
def test_both_sqlite_paths_open_wal(tmp_path, prefer):
    conn = storage.connect(tmp_path / f"{prefer}.db", prefer=prefer)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    conn.close()


def test_helper_picks_a_module_that_loads_sqlite_vec(tmp_path):
    conn = storage.connect(tmp_path / "v.db", extensions=True)
    conn.execute("CREATE VIRTUAL TABLE v USING vec0(e float[2])")
    conn.execute("INSERT INTO v(rowid, e) VALUES (1, ?)", (json.dumps([1.0, 0.0]),))
    conn.execute("INSERT INTO v(rowid, e) VALUES (2, ?)", (json.dumps([0.0, 1.0]),))
    row = conn.execute("SELECT rowid FROM v WHERE e MATCH ? ORDER BY distance LIMIT 1", (json.dumps([0.9, 0.1]),)).fetchone()
    assert row[0] == 1
    conn.close()


def test_stdlib_path_when_it_cannot_load_extensions(tmp_path):
    mod = storage.sqlite_module("stdlib")
    assert mod is sqlite3
    conn = storage.connect(tmp_path / "s.db", prefer="stdlib")
    if hasattr(conn, "enable_load_extension"):
        storage.load_vec(conn)  # this CPython can: it must work
    else:
        with pytest.raises(HearthNetError) as e:
            storage.load_vec(conn)
        assert e.value.code == "internal" and "pysqlite3" in e.value.message
        # ...which is why the default choice is not the stdlib here.
        assert storage.sqlite_module() is not sqlite3
    conn.close()


def test_not_a_database(tmp_path):
    p = tmp_path / "junk.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HearthNetError) as e:
        storage.connect(p)
    assert e.value.code == "db_corrupt"


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "a" / "f.txt"
    storage.atomic_write_text(p, "one")
    storage.atomic_write_text(p, "two", mode=0o600)
    assert p.read_text() == "two" and oct(p.stat().st_mode & 0o777) == "0o600"
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]  # no temp files left


def test_atomic_write_failure_leaves_old_file(tmp_path):
    p = tmp_path / "f.txt"
    storage.atomic_write_text(p, "old")
    with pytest.raises(TypeError):
        storage.atomic_write_bytes(p, "not bytes")  # type: ignore[arg-type]
    assert p.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_private_dir_refuses_open_permissions(tmp_path):
    d = tmp_path / "keys"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    with pytest.raises(HearthNetError) as e:
        storage.ensure_private_dir(d)
    assert e.value.code == "keys_insecure"


def test_atomic_file_replaces_whole_or_leaves_the_old_file(tmp_path):
    from hearthnet.storage import atomic_file

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("the writer failed half-way")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no temp file left
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"not mine")
    target.unlink()
    target.symlink_to(elsewhere)
    with atomic_file(target, mode=0o600) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new" and not target.is_symlink() and elsewhere.read_bytes() == b"not mine"
    assert target.stat().st_mode & 0o777 == 0o600
