"""Re-verification of stored events, in worker processes.

pynacl releases no speed-up to threads, so a full pass over a large log splits
the rows across processes (one per core). Each worker re-derives everything a
row claims from its signed payload alone.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any
from collections.abc import Sequence

import blake3

from hearthnet import constants as C
from hearthnet.identity.keys import verify_bytes

Row = tuple[Any, ...]  # event_id, author, seq, lamport, event_type, hash, prev, wall_clock, payload, sig


def verify_rows(rows: Sequence[Row], community_id: str) -> list[tuple[str, str]]:
    """Problems found in `rows` as (event_id, reason)."""
    problems: list[tuple[str, str]] = []
    for event_id, author, seq, lamport, event_type, h, prev, wall_clock, payload, sig in rows:
        raw = payload.encode("utf-8")
        if "blake3:" + blake3.blake3(raw).hexdigest() != h:
            problems.append((event_id, "stored hash does not match the payload"))
            continue
        try:
            obj = json.loads(raw)
            claimed = (obj["event_id"], obj["author"], obj["seq"], obj["lamport"], obj["event_type"], obj["prev"], obj["wall_clock"], obj["community_id"])
        except (ValueError, KeyError, TypeError):
            problems.append((event_id, "payload is not a well-formed event"))
            continue
        if claimed != (event_id, author, seq, lamport, event_type, prev, wall_clock, community_id):
            problems.append((event_id, "indexed columns do not match the signed payload"))
            continue
        # No canonical-form check here: it was made on entry, and the signature
        # covers these exact bytes, so any later change breaks the signature.
        if not verify_bytes(author, raw, sig, C.SIGN_DOMAIN_EVENT):
            problems.append((event_id, "signature does not verify"))
    return problems


def verify_rows_parallel(rows: Sequence[Row], community_id: str, *, workers: int | None = None) -> list[tuple[str, str]]:
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n <= 1 or len(rows) < C.VERIFY_PARALLEL_MIN_EVENTS:
        return verify_rows(rows, community_id)
    size = -(-len(rows) // (n * 4))
    parts = [rows[i : i + size] for i in range(0, len(rows), size)]
    # fork is cheapest and safe while this is the only thread (the CLI); a running
    # node has server threads, where only forkserver is safe.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    try:
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context(method)) as pool:
            results = pool.map(verify_rows, parts, [community_id] * len(parts))
            return [p for part in results for p in part]
    except (BrokenProcessPool, OSError):
        return verify_rows(rows, community_id)  # no worker processes here: do it in-process


__all__ = ["verify_rows", "verify_rows_parallel"]
