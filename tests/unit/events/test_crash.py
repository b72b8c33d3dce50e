"""kill -9 during a burst of appends loses nothing that append_local returned."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from eventgen import post_data
from hearthnet.home import Home

ASYNC_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from ulid import ULID
    from hearthnet.home import Home
    home = Home.open(sys.argv[1])
    kp = home.identity()
    log = home.open_log()

    async def one(i):
        data = {"post_id": str(ULID()), "category": "offer", "title": f"Post {i}", "expires_at": "2030-01-01T00:00:00.000Z"}
        ev = await log.append("market.post.created", data, kp)
        sys.stdout.write(ev.event_id + "\\n")
        sys.stdout.flush()

    async def main():
        i = 0
        while True:
            await asyncio.gather(*(one(i + k) for k in range(32)))  # group commits of 32
            i += 32

    asyncio.run(main())
    """
)

WRITER = textwrap.dedent(
    """
    import sys
    from ulid import ULID
    from hearthnet.home import Home
    home = Home.open(sys.argv[1])
    kp = home.identity()
    log = home.open_log()
    i = 0
    while True:
        data = {"post_id": str(ULID()), "category": "offer", "title": f"Post {i}", "body": "x" * (i % 300), "expires_at": "2030-01-01T00:00:00.000Z"}
        ev = log.append_local("market.post.created", data, kp)
        sys.stdout.write(ev.event_id + "\\n")
        sys.stdout.flush()
        i += 1
    """
)


@pytest.mark.parametrize("synchronous, writer", [("NORMAL", "sync"), ("FULL", "sync"), ("NORMAL", "group")])
def test_sigkill_mid_burst_loses_no_acknowledged_event(tmp_path, synchronous, writer, monkeypatch):
    monkeypatch.setenv("HEARTHNET_EVENTS__SYNCHRONOUS", synchronous)
    home = Home.open(tmp_path / "node")
    home.init(create_community="Crashdorf")
    code = WRITER if writer == "sync" else ASYNC_WRITER
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "node")], stdout=subprocess.PIPE, text=True)
    acked = []
    try:
        for line in proc.stdout:
            acked.append(line.strip())
            if len(acked) >= 400:
                os.kill(proc.pid, signal.SIGKILL)
                break
        # Lines still in the pipe were also acknowledged before the kill.
        acked.extend(line.strip() for line in proc.stdout.read().splitlines() if line.strip())
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 400
    home2 = Home.open(tmp_path / "node")
    with home2.open_log() as log:
        ok, msg = log.integrity_check()
        assert ok, msg
        stored = {e.event_id for e in log.replay()}
        missing = [a for a in acked if a not in stored]
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert log.verify_all(workers=1).ok
        # The chain continues cleanly after the crash.
        ev = log.append_local("market.post.created", post_data(902), home2.identity())
        assert ev.seq == len(stored) - 2 + 1  # two of the stored events are the root's (genesis, join)
