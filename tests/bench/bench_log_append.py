"""Signed appends per second vs plain SQLite inserts of the same rows (one commit per row, same PRAGMAs).

Cases: append_local (one commit per event) in both synchronous modes, and the
async `append` with group commit (64 concurrent writers on the event loop; each
call returns only after the transaction holding its event committed).

    python tests/bench/bench_log_append.py [-n 5000] [--quick]
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchlib import args, best_rate, community_log, emit, post, tmpdir


def main() -> None:
    a = args(default_n=5000, quick_n=200)
    from hearthnet.events import log as log_mod
    from hearthnet.storage import connect

    for sync in ("NORMAL", "FULL"):
        with tmpdir() as d:
            runs = iter(range(100))
            logs = []

            def signed() -> None:
                log, author = community_log(Path(d) / f"signed-{next(runs)}.db", sync)
                logs.append(log)
                for i in range(a.n):
                    log.append_local("market.post.created", post(i), author)

            rate = best_rate(a.n, signed)
            # The baseline inserts exactly the rows the log stored, into the same schema.
            rows = logs[-1]._db.execute(
                "SELECT event_id, author, seq, lamport, event_type, hash, prev, wall_clock, payload, sig, status FROM events WHERE rowid > 2"
            ).fetchall()
            for log in logs:
                log.close()

            def plain() -> None:
                conn = connect(Path(d) / f"plain-{next(runs)}.db", synchronous=sync)
                conn.executescript(log_mod._SCHEMA)
                for r in rows:
                    conn.execute(log_mod._INSERT, r)
                conn.close()

            base = best_rate(len(rows), plain)
        emit(
            "log_append", f"append_local synchronous={sync}", "throughput", rate, "events/s",
            "plain sqlite insert, commit per row", base, "informational (one commit per event)",
            events=a.n,
        )
        if sync == "NORMAL":
            with tmpdir() as d2:
                def grouped() -> None:
                    log, author = community_log(Path(d2) / f"group-{next(runs)}.db", sync)

                    async def main() -> None:
                        async def writer(k: int) -> None:
                            for i in range(k, a.n, 64):
                                await log.append("market.post.created", post(i), author)

                        await asyncio.gather(*(writer(k) for k in range(64)))

                    asyncio.run(main())
                    log.close()

                g_rate = best_rate(a.n, grouped)
            emit("log_append", "append (group commit, 64 concurrent writers) synchronous=NORMAL", "throughput", g_rate, "events/s",
                 "plain sqlite insert, commit per row", base, ">= 5000 signed appends/s", events=a.n)


if __name__ == "__main__":
    main()
