"""Local storage primitives: the one SQLite connection helper and atomic file writes.

SQLite: sqlite-vec is a loadable extension, and some CPython builds (pyenv's, for
one) compile `sqlite3` without extension loading. `connect()` uses the stdlib
module when it can load extensions and the `pysqlite3` build when it cannot, so
the rest of the code never asks which one it got.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sqlite3 as _stdlib_sqlite3
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO
from collections.abc import Callable, Iterator

from hearthnet.errors import HearthNetError


def _stdlib_can_load_extensions() -> bool:
    return hasattr(_stdlib_sqlite3.Connection, "enable_load_extension")


def sqlite_module(prefer: str | None = None) -> ModuleType:
    """The DB-API module to use. `prefer` ("stdlib" | "pysqlite3") is for tests."""
    if prefer == "stdlib" or (prefer is None and _stdlib_can_load_extensions()):
        return _stdlib_sqlite3
    try:
        import pysqlite3.dbapi2 as mod  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on the platform
        if prefer == "pysqlite3":
            raise HearthNetError("internal", "pysqlite3-binary is not installed") from exc
        return _stdlib_sqlite3
    return mod


def _modules() -> list[ModuleType]:
    mods: list[ModuleType] = [_stdlib_sqlite3]
    with contextlib.suppress(ImportError):
        import pysqlite3.dbapi2 as mod  # type: ignore[import-not-found]

        mods.append(mod)
    return mods


# The error types of whichever sqlite module connect() returned (stdlib's or pysqlite3's), for `except`.
Error: tuple[type[Exception], ...] = tuple(m.Error for m in _modules())
DatabaseError: tuple[type[Exception], ...] = tuple(m.DatabaseError for m in _modules())
IntegrityError: tuple[type[Exception], ...] = tuple(m.IntegrityError for m in _modules())
OperationalError: tuple[type[Exception], ...] = tuple(m.OperationalError for m in _modules())


def connect(
    path: Path | str,
    *,
    synchronous: str = "NORMAL",
    extensions: bool = False,
    prefer: str | None = None,
) -> Any:
    """Open a SQLite database in WAL mode with the project's pragmas.

    `extensions=True` loads sqlite-vec into the connection.
    """
    mod = sqlite_module(prefer)
    try:
        conn = mod.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={_checked_sync(synchronous)}")
        conn.execute("PRAGMA foreign_keys=ON")
        if extensions:
            load_vec(conn)
    except mod.OperationalError as exc:  # cannot open/lock/write: a storage problem
        raise HearthNetError("storage_error", f"cannot open database {path}: {exc}") from exc
    except mod.DatabaseError as exc:  # "file is not a database" and friends
        raise HearthNetError("db_corrupt", f"cannot open database {path}: {exc}") from exc
    return conn


def load_vec(conn: Any) -> None:
    """Load the sqlite-vec extension into `conn`."""
    import sqlite_vec

    if not hasattr(conn, "enable_load_extension"):
        raise HearthNetError("internal", "this SQLite build cannot load extensions (install pysqlite3-binary)")
    conn.enable_load_extension(True)
    try:
        sqlite_vec.load(conn)
    finally:
        conn.enable_load_extension(False)


def _checked_sync(mode: str) -> str:
    mode = mode.upper()
    if mode not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise HearthNetError("config_invalid", f"sqlite synchronous mode {mode!r} is not OFF/NORMAL/FULL/EXTRA")
    return mode


def integrity_ok(conn: Any) -> tuple[bool, str]:
    row = conn.execute("PRAGMA integrity_check").fetchone()
    return (row[0] == "ok", row[0])


# --- files ---------------------------------------------------------------------


def read_text(path: Path | str, what: str = "") -> str:
    """A UTF-8 text file that a person gave us: not_found when it cannot be read, config_invalid when it is not text."""
    label = f"{what} {path}" if what else str(path)
    try:
        return Path(path).read_text("utf-8")
    except OSError as exc:
        raise HearthNetError("not_found", f"{label}: cannot read ({exc.strerror or exc})", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise HearthNetError("config_invalid", f"{label}: not UTF-8 text (byte {exc.start})", path=str(path)) from None


@contextlib.contextmanager
def translate_os_errors(what: str) -> Iterator[None]:
    """Turn an OSError while doing `what` into a HearthNetError (storage_error)."""
    try:
        yield
    except HearthNetError:
        raise
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise HearthNetError("storage_error", f"{what}: {reason}") from exc


@contextlib.contextmanager
def atomic_file(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """The one way a file is written in place: a temp file beside `path` to write into; when the block
    ends without error it is fsynced, chmod'ed, renamed over `path` (a symlink there is replaced, never
    written through) and the directory fsynced; on any error it is removed. Readers see the old file or
    the new one, never half."""
    path = Path(path)
    with translate_os_errors(f"cannot write {path}"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    done = False
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            with translate_os_errors(f"cannot write {path}"):
                fh.flush()
                os.fsync(fh.fileno())
        with translate_os_errors(f"cannot write {path}"):
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            done = True
            fsync_dir(path.parent)
    finally:
        if not done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes | memoryview, *, mode: int = 0o644) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    with atomic_file(path, mode=mode) as fh, translate_os_errors(f"cannot write {path}"):
        fh.write(data)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def sha256_of(path: Path, progress: Callable[[int], None] | None = None, block: int = 1 << 20) -> str:
    """sha256 of a file, read in large blocks (hashlib drops the GIL for them: files hash in parallel)."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(block)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
            if progress:
                progress(n)
    return h.hexdigest()


def package_dir(package: str) -> Path:
    """The directory of a data package shipped with HearthNet (`hearthnet.profiles`, `hearthnet.docs`):
    the checkout's own folder in an editable install, site-packages in a wheel install."""
    from importlib.resources import files

    where = files(package)
    if not isinstance(where, Path):  # pip installs unpack to disk; a zipped install would need as_file()
        raise HearthNetError("internal", f"{package} is not installed as a directory ({where})")
    return where


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush every pending write of the filesystem holding `path` (one syncfs(2) instead of an fsync per file)."""
    import ctypes
    import ctypes.util

    with translate_os_errors(f"cannot sync {path}"):
        fd = os.open(path, os.O_RDONLY)
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
                os.sync()
        finally:
            os.close(fd)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (0700) if needed; refuse if it exists and others can read it."""
    with translate_os_errors(f"cannot create {path}"):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        raise HearthNetError(
            "keys_insecure", f"{path} is accessible by other users; run: chmod 700 {path}", path=str(path)
        )
    return path


__all__ = ["atomic_file", "package_dir", "DatabaseError", "Error", "IntegrityError", "OperationalError", "sha256_of", 
    "atomic_write_bytes",
    "atomic_write_text",
    "connect",
    "ensure_private_dir",
    "fsync_dir",
    "integrity_ok",
    "load_vec",
    "sqlite_module",
    "sync_filesystem",
    "translate_os_errors",
]
