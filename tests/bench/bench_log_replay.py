"""Replay into the materialised views per second vs reading the same rows from SQLite.

Replay does not re-verify (events were verified on entry); it parses each
payload and applies it to every registered view.

    python tests/bench/bench_log_replay.py [-n 20000] [--quick]
"""

from __future__ import annotations

from pathlib import Path

from benchlib import best_rate, community_log, chat, emit, post, tmpdir
from benchlib import args as parse_args


def main() -> None:
    a = parse_args(default_n=20000, quick_n=300)
    from hearthnet.events.replay import ActivityView, ReplayEngine

    with tmpdir() as d:
        log, author = community_log(Path(d) / "events.db")
        for i in range(a.n):
            if i % 3:
                log.append_local("market.post.created", post(i), author)
            else:
                log.append_local("chat.message.sent", chat(i, author.node_id), author)
        total = log.count()
        engine = ReplayEngine(log)
        view = ActivityView()
        engine.register(view)

        def replay() -> None:
            engine.rebuild_all()
            assert engine.applied == total

        rate = best_rate(total, replay)

        def read_rows() -> None:
            rows = log._db.execute(
                "SELECT event_id, author, seq, lamport, event_type, hash, prev, wall_clock, payload, sig FROM events WHERE status = 0 ORDER BY lamport, author, event_id"
            ).fetchall()
            assert len(rows) == total

        base = best_rate(total, read_rows)
        log.close()
    emit("log_replay", "rebuild views (activity) from the log", "throughput", rate, "events/s", "sqlite read of the same rows in log order", base,
         ">= 20000 events/s", events=total)


if __name__ == "__main__":
    main()
