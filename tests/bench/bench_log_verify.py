"""Full re-verification (`hearthnet log --verify`) vs the raw ed25519 verify rate of pynacl on one core.

    python tests/bench/bench_log_verify.py [-n 20000] [--quick]
"""

from __future__ import annotations

from pathlib import Path

from benchlib import best_rate, community_log, emit, post, tmpdir
from benchlib import args as parse_args


def main() -> None:
    a = parse_args(default_n=20000, quick_n=300)
    import nacl.signing

    from hearthnet import constants as C
    from hearthnet.identity.canonical import b64u_decode

    with tmpdir() as d:
        log, author = community_log(Path(d) / "events.db")
        for i in range(a.n):
            log.append_local("market.post.created", post(i), author)
        total = log.count(None)

        def verify_all() -> None:
            rep = log.verify_all()
            assert rep.ok and rep.checked == total

        rate = best_rate(total, verify_all, repeats=2)

        # Baseline: the same signatures over the same bytes, verified in a tight loop on one core.
        rows = log._db.execute("SELECT author, payload, sig FROM events").fetchall()
        vk = nacl.signing.VerifyKey(b64u_decode(author.node_id[8:]))
        items = [(C.SIGN_DOMAIN_EVENT + b"\x00" + p.encode(), b64u_decode(s[8:])) for a_, p, s in rows if a_ == author.node_id]

        def raw() -> None:
            for msg, sig in items:
                vk.verify(msg, sig)

        base = best_rate(len(items), raw, repeats=2)
        log.close()
    emit("log_verify", "hearthnet log --verify (all cores)", "throughput", rate, "events/s", "raw pynacl ed25519 verify, one core", base,
         ">= 0.8x the raw verify rate", events=total)


if __name__ == "__main__":
    main()
