"""The signed, append-only event log of one community (SQLite, WAL mode).

- `append_local` mints (ULID, author seq + prev hash, Lamport tick, wall clock),
  signs and commits before it returns: kill -9 after it returned loses nothing.
- `append_received` checks shape, size, canonical form, schema, community and
  signature, then stores the envelope byte for byte. Duplicates are no-ops;
  out-of-order arrival is fine: the log's order is (lamport, author, event_id).
- Membership (hearthnet.events.membership) decides each event's status:
  valid, parked (author not known yet), void (after a revocation's cut-off),
  forked (author forked). Only valid events reach views; valid and forked ones
  are offered to peers, so every node ends up holding the same evidence.

Durability: every append is its own SQLite transaction. With
`synchronous=NORMAL` (default) a committed append survives a process crash but
the last ones may be lost on power loss; `synchronous=FULL` survives both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
from ulid import ULID

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.events import membership as M
from hearthnet.events.types import (
    MEMBERSHIP_TYPES,
    PARKED,
    STATUS_NAMES,
    VALID,
    Event,
    check_data,
    check_payload,
)
from hearthnet.identity.canonical import canonical_json
from hearthnet.identity.envelope import envelope_shape
from hearthnet.identity.keys import KeyPair, verify_bytes
from hearthnet.storage import DatabaseError, IntegrityError, connect, integrity_ok
from hearthnet.storage import Error as SqliteError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    rowid      INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,
    author     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    lamport    INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    hash       TEXT NOT NULL,
    prev       TEXT,
    wall_clock TEXT NOT NULL,
    payload    TEXT NOT NULL,
    sig        TEXT NOT NULL,
    status     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_order ON events(lamport, author, event_id);
CREATE INDEX IF NOT EXISTS events_author ON events(author, seq);
CREATE INDEX IF NOT EXISTS events_membership ON events(event_type) WHERE event_type LIKE 'community.%';
CREATE TABLE IF NOT EXISTS forks (author TEXT PRIMARY KEY, at_seq INTEGER NOT NULL);
"""

_COLS = "event_id, author, seq, lamport, event_type, hash, prev, wall_clock, payload, sig"
_INSERT = f"INSERT INTO events ({_COLS}, status) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
SIGN_DOMAIN = C.SIGN_DOMAIN_EVENT


def event_hash(payload: bytes) -> str:
    return "blake3:" + blake3.blake3(payload).hexdigest()


def _event_from_row(row: tuple[Any, ...]) -> Event:
    event_id, author, seq, lamport, event_type, h, prev, wall_clock, payload, sig = row[:10]
    obj = json.loads(payload)
    return Event(
        obj["schema_version"], event_id, obj["community_id"], author, seq, prev, lamport,
        wall_clock, event_type, obj["data"], payload, sig, h,
    )


def verify_event_envelope(envelope: Any, community_id: str, *, max_payload_bytes: int = C.EVENT_MAX_PAYLOAD_BYTES) -> Event:
    """The one event verifier: shape, size, canonical form, schema, community and
    signature. Raises HearthNetError; touches no database."""
    env = envelope_shape(envelope, max_bytes=max_payload_bytes, what="event")
    raw = env.payload.encode("utf-8")
    if len(raw) > max_payload_bytes:
        raise HearthNetError("payload_too_large", f"event payload exceeds {max_payload_bytes} bytes")
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise HearthNetError("event_invalid", "event payload is not JSON") from None
    if not isinstance(obj, dict):
        raise HearthNetError("event_invalid", "event payload is not an object")
    try:
        canonical = canonical_json(obj) == raw
    except HearthNetError:
        canonical = False
    if not canonical:
        raise HearthNetError("event_invalid", "event payload is not in canonical (RFC 8785) form")
    p = check_payload(obj)
    if p.community_id != community_id:
        raise HearthNetError("wrong_community", f"event belongs to community {p.community_id[:16]}")
    if not verify_bytes(p.author, raw, env.sig, SIGN_DOMAIN):
        raise HearthNetError("invalid_signature", f"event {p.event_id}: signature does not verify for its author")
    return Event(
        p.schema_version, p.event_id, p.community_id, p.author, p.seq, p.prev, p.lamport,
        p.wall_clock, p.event_type, p.data, env.payload, env.sig, event_hash(raw),
    )


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    """What `append_received` did: "added", "duplicate" or "parked"."""

    result: str
    event: Event


@dataclass(slots=True)
class VerifyReport:
    checked: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class EventLog:
    def __init__(
        self,
        db_path: Path,
        community_id: str,
        *,
        synchronous: str = C.EVENT_LOG_SYNCHRONOUS,
        max_payload_bytes: int = C.EVENT_MAX_PAYLOAD_BYTES,
        max_parked: int = C.EVENT_MAX_PARKED,
    ) -> None:
        self.path = Path(db_path)
        self.community_id = community_id
        self.max_payload_bytes = max_payload_bytes
        self.max_parked = max_parked
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = connect(self.path, synchronous=synchronous)
        try:
            self._db.executescript(_SCHEMA)
            stored = self._meta("community_id")
        except DatabaseError as exc:
            self._db.close()
            raise HearthNetError("db_corrupt", f"{self.path}: {exc}") from None
        if stored is None:
            self._db.execute("INSERT INTO meta VALUES ('community_id', ?)", (community_id,))
        elif stored != community_id:
            self._db.close()
            raise HearthNetError("wrong_community", f"{self.path} belongs to community {stored}, not {community_id}")
        self._lamport = self._db.execute("SELECT COALESCE(MAX(lamport), 0) FROM events").fetchone()[0]
        self._heads: dict[str, tuple[int, str]] = {}  # author -> (seq, hash) of newest own event
        self._listeners: list[Callable[[Event], None]] = []
        self._reset_listeners: list[Callable[[], None]] = []
        self._forks: dict[str, int] = dict(self._db.execute("SELECT author, at_seq FROM forks").fetchall())
        self.membership = self._derive_membership()
        self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
        self._pending: list[tuple[Event, asyncio.Future[Event]]] = []
        self._flush_scheduled = False

    def refresh(self) -> bool:
        """Pick up commits made by another process (an admin command beside a running
        node): reload the clock, forks and membership, and have views rebuild.
        Cheap when nothing changed (one PRAGMA). Returns True when something had."""
        with self._lock:
            v = self._db.execute("PRAGMA data_version").fetchone()[0]
            if v == self._data_version:
                return False
            self._data_version = v
            self._lamport = self._db.execute("SELECT COALESCE(MAX(lamport), 0) FROM events").fetchone()[0]
            self._heads.clear()
            self._forks = dict(self._db.execute("SELECT author, at_seq FROM forks").fetchall())
            self.membership = self._derive_membership()
        self._notify_reset()
        return True

    # --- small helpers ---------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One transaction around several writes; nested use joins the outer one."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def lamport(self) -> int:
        """The Lamport clock: the highest Lamport time stored."""
        return self._lamport

    def head(self) -> int:
        return self._lamport

    def count(self, status: int | None = VALID) -> int:
        if status is None:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM events WHERE status=?", (status,)).fetchone()[0]

    def status_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall()
        out = {name: 0 for name in STATUS_NAMES.values()}
        out.update({STATUS_NAMES[s]: n for s, n in rows})
        return out

    def forks(self) -> dict[str, int]:
        return dict(self._forks)

    def check_writable(self) -> None:
        """Take the write lock and release it, writing nothing. Raises storage_error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("ROLLBACK")
            except SqliteError as exc:
                raise HearthNetError("storage_error", f"event log is not writable: {exc}") from None

    def newest_wall_clock(self) -> str | None:
        return self._db.execute("SELECT MAX(wall_clock) FROM events").fetchone()[0]

    def integrity_check(self) -> tuple[bool, str]:
        with self._lock:
            return integrity_ok(self._db)

    # --- listeners ---------------------------------------------------------------
    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """`fn(event)` for every event that becomes valid in append order."""
        self._listeners.append(fn)

    def add_reset_listener(self, fn: Callable[[], None]) -> None:
        """`fn()` when stored statuses changed (revocation, fork, late join): views must rebuild."""
        self._reset_listeners.append(fn)

    def remove_listener(self, fn: Callable[[Event], None]) -> None:
        self._listeners.remove(fn)

    def _notify(self, ev: Event) -> None:
        for fn in list(self._listeners):
            fn(ev)

    def _notify_reset(self) -> None:
        for fn in list(self._reset_listeners):
            fn()

    async def subscribe(self, event_types: Iterable[str] | None = None, max_queue: int = 10000) -> AsyncIterator[Event]:
        """Valid events as they are appended. A consumer that falls `max_queue` behind
        gets capacity_exceeded and should catch up with `replay()`."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event | None] = asyncio.Queue(max_queue + 1)
        wanted = set(event_types) if event_types else None

        def push(ev: Event | None) -> None:
            if queue.full():
                return
            queue.put_nowait(None if queue.qsize() >= max_queue else ev)

        def listener(ev: Event) -> None:
            if wanted is None or ev.event_type in wanted:
                loop.call_soon_threadsafe(push, ev)

        self.add_listener(listener)
        try:
            while True:
                ev = await queue.get()
                if ev is None:
                    raise HearthNetError("capacity_exceeded", "subscriber fell behind; catch up with replay()")
                yield ev
        finally:
            self.remove_listener(listener)

    # --- local appends -----------------------------------------------------------
    def append_local(self, event_type: str, data: dict[str, Any], kp: KeyPair) -> Event:
        """Mint, sign and commit an event authored by `kp`. Returns after the commit."""
        check_data(event_type, data)
        self.refresh()
        with self._lock:
            ev = self._mint(event_type, data, kp)
            reset = False
            try:
                if event_type in MEMBERSHIP_TYPES:
                    with self._tx():
                        self._insert(ev, VALID)
                        reset = self._rederive()
                else:
                    self._insert(ev, VALID)  # autocommit: one transaction
            except BaseException:
                self._forget_reservations()
                raise
        if reset:
            self._notify_reset()
        else:
            self._notify(ev)
        return ev

    async def append(self, event_type: str, data: dict[str, Any], kp: KeyPair) -> Event:
        """Group commit for concurrent writers on the event loop: appends made while a
        commit is pending share the next transaction. Returns after that transaction
        committed (the same promise as append_local), or raises and stores nothing."""
        if event_type in MEMBERSHIP_TYPES:
            return self.append_local(event_type, data, kp)
        check_data(event_type, data)
        self.refresh()
        loop = asyncio.get_running_loop()
        with self._lock:
            ev = self._mint(event_type, data, kp)
            fut: asyncio.Future[Event] = loop.create_future()
            self._pending.append((ev, fut))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending, self._flush_scheduled = self._pending, [], False
            try:
                with self._tx():
                    for ev, _ in batch:
                        self._insert(ev, VALID)
            except HearthNetError as exc:
                self._forget_reservations()
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(HearthNetError(exc.code, exc.message, **exc.details))
                return
        for ev, fut in batch:
            self._notify(ev)
            if not fut.done():
                fut.set_result(ev)

    def _mint(self, event_type: str, data: dict[str, Any], kp: KeyPair) -> Event:
        """Build and sign the author's next event, reserving its seq and Lamport time in
        memory (call under the lock; _forget_reservations undoes it if the write fails)."""
        author = kp.node_id
        if event_type == "community.created":
            if self.membership.genesis is not None or self.count(None):
                raise HearthNetError("already_exists", "this log already has its genesis event")
        else:
            self._check_may_write(author, event_type, data)
        seq, prev = self._next_seq(author)
        lamport = self._lamport + 1
        obj = {
            "schema_version": C.EVENT_SCHEMA_VERSION,
            "event_id": str(ULID()),
            "community_id": self.community_id,
            "author": author,
            "seq": seq,
            "prev": prev,
            "lamport": lamport,
            "wall_clock": clock.iso(),
            "event_type": event_type,
            "data": data,
        }
        payload = canonical_json(obj)
        if len(payload) > self.max_payload_bytes:
            raise HearthNetError("payload_too_large", f"event payload is {len(payload)} bytes; limit {self.max_payload_bytes}")
        ev = Event(
            C.EVENT_SCHEMA_VERSION, obj["event_id"], self.community_id, author, seq, prev, lamport,
            obj["wall_clock"], event_type, data, payload.decode("utf-8"), kp.sign_bytes(payload, SIGN_DOMAIN), event_hash(payload),
        )
        if event_type == "community.created" and not M.genesis_ok(ev, self.community_id):
            raise HearthNetError("event_invalid", "genesis data does not derive this community id")
        self._lamport = lamport
        self._heads[author] = (seq, ev.hash)
        return ev

    def _forget_reservations(self) -> None:
        self._heads.clear()
        self._lamport = self._db.execute("SELECT COALESCE(MAX(lamport), 0) FROM events").fetchone()[0]

    def _check_may_write(self, author: str, event_type: str, data: dict[str, Any]) -> None:
        st = self.membership
        if st.genesis is None:
            raise HearthNetError("not_initialised", "the log has no genesis event yet; join or create the community first")
        if author in st.revoked:
            raise HearthNetError("revoked", f"{author} was revoked from this community")
        if not st.is_member(author):
            raise HearthNetError("not_member", f"{author} is not a member of this community")
        if author in self._forks:
            raise HearthNetError("conflict", "this author's chain is forked; its new events would be excluded")
        if event_type in MEMBERSHIP_TYPES:
            probe = Event(1, "", self.community_id, author, 0, None, 0, "", event_type, data, "", "", "")
            if not M.may_author(st, probe):
                raise HearthNetError("forbidden", f"{author[:24]}… may not sign this {event_type} (its level, the target's, or the policy)")

    def _next_seq(self, author: str) -> tuple[int, str | None]:
        head = self._heads.get(author)
        if head is None:
            row = self._db.execute(
                "SELECT seq, hash FROM events WHERE author=? ORDER BY seq DESC, hash LIMIT 1", (author,)
            ).fetchone()
            head = (row[0], row[1]) if row else (0, "")
            self._heads[author] = head
        return head[0] + 1, (head[1] or None)

    def _insert(self, ev: Event, status: int) -> None:
        try:
            self._db.execute(
                _INSERT,
                (ev.event_id, ev.author, ev.seq, ev.lamport, ev.event_type, ev.hash, ev.prev, ev.wall_clock, ev.payload, ev.sig, status),
            )
        except IntegrityError:
            raise HearthNetError("conflict", f"event {ev.event_id} exists already") from None
        except SqliteError as exc:
            raise HearthNetError("storage_error", f"cannot store event: {exc}") from None

    # --- received events -----------------------------------------------------------
    def parse_envelope(self, envelope: Any) -> Event:
        """Check an envelope completely without touching the database (see verify_event_envelope)."""
        return verify_event_envelope(envelope, self.community_id, max_payload_bytes=self.max_payload_bytes)

    def append_received(self, envelope: Any) -> AppendOutcome:
        """Verify and store one received event. Idempotent for duplicates."""
        ev = self.parse_envelope(envelope)
        self.refresh()
        with self._lock:
            return self._store_received(ev)

    def append_received_many(self, envelopes: Iterable[Any]) -> dict[str, Any]:
        """Store a batch (ordered by log order first, so members come before their events).

        Returns counts of added/duplicate/parked and the rejected ones with their codes.
        """
        parsed: list[Event] = []
        rejected: list[dict[str, str]] = []
        for env in envelopes:
            try:
                parsed.append(self.parse_envelope(env))
            except HearthNetError as exc:
                rejected.append({"code": exc.code, "message": exc.message})
        counts = {"added": 0, "duplicate": 0, "parked": 0}
        parsed.sort(key=lambda e: e.order_key)
        self.refresh()
        with self._lock:
            for ev in parsed:
                try:
                    counts[self._store_received(ev).result] += 1
                except HearthNetError as exc:
                    rejected.append({"code": exc.code, "message": exc.message, "event_id": ev.event_id})
        return {**counts, "rejected": rejected}

    def _store_received(self, ev: Event) -> AppendOutcome:
        row = self._db.execute("SELECT hash FROM events WHERE event_id=?", (ev.event_id,)).fetchone()
        if row is not None:
            if row[0] == ev.hash:
                return AppendOutcome("duplicate", ev)
            raise HearthNetError("conflict", f"event id {ev.event_id} was already used for another event")
        st = self.membership
        is_genesis = ev.event_type == "community.created"
        if is_genesis and not M.genesis_ok(ev, self.community_id):
            raise HearthNetError("event_invalid", "genesis event does not derive this community id")
        cut = st.cutoff(ev.author)
        if cut is not None and ev.seq > cut:
            raise HearthNetError("revoked", f"{ev.author[:24]} was revoked after its event {cut}")
        fork_at = self._fork_point(ev)
        if is_genesis:
            status = VALID
        else:
            forks = self._forks if fork_at is None else {**self._forks, ev.author: fork_at}
            status = M.status_for(st, ev.author, ev.seq, forks)
        if status == PARKED and self.count(PARKED) >= self.max_parked:
            raise HearthNetError("capacity_exceeded", f"{self.max_parked} events already wait for unknown authors")
        new_fork = fork_at is not None and fork_at < self._forks.get(ev.author, fork_at + 1)
        changed = False
        if new_fork or ev.event_type in MEMBERSHIP_TYPES:
            forks_before = dict(self._forks)
            try:
                with self._tx():
                    self._insert(ev, status)
                    if new_fork:
                        self._db.execute("INSERT OR REPLACE INTO forks VALUES (?, ?)", (ev.author, fork_at))
                        self._forks[ev.author] = fork_at
                    changed = self._rederive() or new_fork
            except BaseException:
                self._forks = forks_before
                self.membership = self._derive_membership()
                raise
        else:
            self._insert(ev, status)
        if ev.lamport > self._lamport:
            self._lamport = ev.lamport
        self._heads.pop(ev.author, None)
        if changed:
            status = self._db.execute("SELECT status FROM events WHERE event_id=?", (ev.event_id,)).fetchone()[0]
            self._notify_reset()
        elif status == VALID:
            self._notify(ev)
        return AppendOutcome("parked" if status == PARKED else "added", ev)

    def _fork_point(self, ev: Event) -> int | None:
        """The seq from which `ev.author` is forked, counting `ev`; None if it chains cleanly."""
        points = []
        same = self._db.execute("SELECT 1 FROM events WHERE author=? AND seq=? AND hash!=? LIMIT 1", (ev.author, ev.seq, ev.hash)).fetchone()
        if same:
            points.append(ev.seq)
        if ev.seq > 1:
            preds = [r[0] for r in self._db.execute("SELECT hash FROM events WHERE author=? AND seq=?", (ev.author, ev.seq - 1))]
            if preds and ev.prev not in preds:
                points.append(ev.seq)
        succ = [r[0] for r in self._db.execute("SELECT prev FROM events WHERE author=? AND seq=?", (ev.author, ev.seq + 1))]
        if any(p != ev.hash for p in succ):
            points.append(ev.seq + 1)
        return min(points) if points else None

    # --- membership ---------------------------------------------------------------
    def _derive_membership(self) -> M.MembershipState:
        rows = self._db.execute(f"SELECT {_COLS} FROM events WHERE event_type LIKE 'community.%'").fetchall()
        evs = [_event_from_row(r) for r in rows if r[4] in MEMBERSHIP_TYPES]
        return M.derive(self.community_id, evs, self._forks)

    def _rederive(self) -> bool:
        """Recompute membership and every stored status. True if any status changed."""
        st = self.membership = self._derive_membership()
        genesis_id = st.genesis.event_id if st.genesis else None
        changed = 0
        with self._tx():
            for (author,) in self._db.execute("SELECT DISTINCT author FROM events").fetchall():
                member = st.genesis is not None and author in st.members
                cur = self._db.execute(
                    """UPDATE events SET status = CASE
                           WHEN event_id = ? THEN 0
                           WHEN ? = 0 THEN 1
                           WHEN ? IS NOT NULL AND seq > ? THEN 2
                           WHEN ? IS NOT NULL AND seq >= ? THEN 3
                           ELSE 0 END
                       WHERE author = ? AND status != CASE
                           WHEN event_id = ? THEN 0
                           WHEN ? = 0 THEN 1
                           WHEN ? IS NOT NULL AND seq > ? THEN 2
                           WHEN ? IS NOT NULL AND seq >= ? THEN 3
                           ELSE 0 END""",
                    (genesis_id, int(member), st.cutoff(author), st.cutoff(author), self._forks.get(author), self._forks.get(author), author)
                    + (genesis_id, int(member), st.cutoff(author), st.cutoff(author), self._forks.get(author), self._forks.get(author)),
                )
                changed += cur.rowcount
            if changed:
                # Views built before this point are stale; snapshots record the epoch.
                self._db.execute(
                    "INSERT INTO meta VALUES ('status_epoch', '1') "
                    "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                )
        return changed > 0

    @property
    def status_epoch(self) -> int:
        """Bumped whenever stored statuses change (views must rebuild)."""
        return int(self._meta("status_epoch") or 0)

    def max_rowid(self) -> int:
        return self._db.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]

    def valid_inserted_before(self, rowid: int, position: tuple[int, str, str]) -> bool:
        """Did a valid event land after row `rowid` whose log position is at or before `position`?"""
        row = self._db.execute(
            "SELECT 1 FROM events WHERE rowid > ? AND status = 0 AND (lamport, author, event_id) <= (?, ?, ?) LIMIT 1",
            (rowid, *position),
        ).fetchone()
        return row is not None

    # --- reading -------------------------------------------------------------------
    def get(self, event_id: str) -> Event | None:
        row = self._db.execute(f"SELECT {_COLS} FROM events WHERE event_id=?", (event_id,)).fetchone()
        return _event_from_row(row) if row else None

    def status_of(self, event_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM events WHERE event_id=?", (event_id,)).fetchone()
        return STATUS_NAMES[row[0]] if row else None

    def replay(
        self,
        *,
        since_lamport: int = 0,
        event_types: Iterable[str] | None = None,
        limit: int | None = None,
        statuses: Iterable[int] = (VALID,),
        after: tuple[int, str, str] | None = None,
    ) -> Iterator[Event]:
        """Events in log order (lamport, author, event_id). `after` resumes after an order key."""
        sql = [f"SELECT {_COLS} FROM events WHERE lamport > ?"]
        args: list[Any] = [since_lamport]
        stat = tuple(statuses)
        sql.append(f"AND status IN ({','.join('?' * len(stat))})")
        args.extend(stat)
        if event_types:
            types = tuple(event_types)
            sql.append(f"AND event_type IN ({','.join('?' * len(types))})")
            args.extend(types)
        if after is not None:
            sql.append("AND (lamport, author, event_id) > (?, ?, ?)")
            args.extend(after)
        sql.append("ORDER BY lamport, author, event_id")
        if limit is not None:
            sql.append("LIMIT ?")
            args.append(int(limit))
        cur = self._db.cursor()
        cur.execute(" ".join(sql), args)
        while True:
            rows = cur.fetchmany(512)
            if not rows:
                return
            for row in rows:
                yield _event_from_row(row)

    def rows_with_status(self) -> Iterator[tuple[Event, str]]:
        """Every stored event with its status, in log order (for `hearthnet log --all`)."""
        cur = self._db.cursor()
        cur.execute(f"SELECT {_COLS}, status FROM events ORDER BY lamport, author, event_id")
        for row in cur:
            yield _event_from_row(row), STATUS_NAMES[row[10]]

    def author_heads(self) -> dict[str, tuple[int, int]]:
        """author -> (highest seq n such that 1..n are all held, events held), over valid+forked events."""
        rows = self._db.execute(
            """SELECT author, COUNT(*),
                      COALESCE(MAX(CASE WHEN seq = rn THEN seq END), 0)
               FROM (SELECT author, seq, DENSE_RANK() OVER (PARTITION BY author ORDER BY seq) AS rn
                     FROM events WHERE status IN (0, 3))
               GROUP BY author"""
        ).fetchall()
        return {a: (contig, n) for a, n, contig in rows}

    def events_after(self, author_seqs: dict[str, int], limit: int) -> list[Event]:
        """Valid and forked events the holder of `author_seqs` lacks (seq above its contiguous head)."""
        out: list[Event] = []
        cur = self._db.cursor()
        cur.execute(f"SELECT {_COLS} FROM events WHERE status IN (0, 3) ORDER BY lamport, author, event_id")
        for row in cur:
            if row[2] > author_seqs.get(row[1], 0):
                out.append(_event_from_row(row))
                if len(out) >= limit:
                    break
        return out

    def missing(self) -> dict[str, list[tuple[int, int]]]:
        """Per author, the seq ranges we lack below the highest seq we hold (gaps to ask for)."""
        gaps: dict[str, list[tuple[int, int]]] = {}
        prev_author, expect = None, 1
        for author, seq in self._db.execute("SELECT DISTINCT author, seq FROM events ORDER BY author, seq"):
            if author != prev_author:
                prev_author, expect = author, 1
            if seq > expect:
                gaps.setdefault(author, []).append((expect, seq - 1))
            expect = seq + 1
        return gaps

    # --- re-verification ----------------------------------------------------------
    def verify_all(self, *, workers: int | None = None) -> VerifyReport:
        """Re-check every stored event: hash, canonical payload matching its columns,
        signature, and author chains. Detects tampering on disk."""
        from hearthnet.events.verify import verify_rows_parallel

        with self._lock:
            rows = self._db.execute(f"SELECT {_COLS} FROM events ORDER BY author, seq").fetchall()
        report = VerifyReport(checked=len(rows))
        report.problems.extend(verify_rows_parallel(rows, self.community_id, workers=workers))
        # Chains: each event's prev is the hash of one of the author's events at seq-1.
        hashes: dict[tuple[str, int], set[str]] = {}
        for r in rows:
            hashes.setdefault((r[1], r[2]), set()).add(r[5])
        for r in rows:
            event_id, author, seq, prev = r[0], r[1], r[2], r[6]
            preds = hashes.get((author, seq - 1))
            if seq > 1 and preds and prev not in preds and author not in self._forks:
                report.problems.append((event_id, "prev does not match the author's previous event"))
        return report


__all__ = ["AppendOutcome", "EventLog", "VerifyReport", "event_hash", "verify_event_envelope"]
