"""render-profile wall time: one host, and a 50-host site (--all), through the real CLI.

Baseline (same run): the CLI starting and doing nothing (`hearthnet version`), so the
ratio says how much rendering adds to the interpreter and import cost every command pays.
Goal: < 1 s per host. Also the in-process render time per host (no interpreter start).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchlib import args, emit, tmpdir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "profiles" / "examples" / "site.yaml"
HW = ROOT / "tests" / "fixtures" / "hardware"
HN = [sys.executable, "-m", "hearthnet"]


def site_with(n: int, d: Path) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    boxes = sorted(HW.glob("*.json"))
    hosts = {"mill-server": {"profile": "anchor", "hardware": str(HW / "gpu-24gb.json")}}
    for i in range(1, n):
        hosts[f"house-{i:02d}"] = {"profile": ("hearth", "spark", "bridge")[i % 3], "hardware": str(boxes[i % len(boxes)]),
                                   "mode": "dev" if i % 7 == 0 else "prod"}
    doc["hosts"] = hosts
    doc["corpora"]["village_handbook"]["sources"] = [{"path": str(ROOT / "tests" / "rag" / "corpus")}]
    p = d / "site.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def wall(cmd: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    a = args(50, 5)
    repeats = 1 if a.n < 50 else 3
    with tmpdir() as t:
        d = Path(t)
        site = site_with(a.n, d)
        start = wall([*HN, "--data-dir", str(d / "x"), "version"], repeats)
        one = wall([*HN, "--data-dir", str(d / "x"), "render-profile", "--site", str(site), "--host", "house-01", "--out", str(d / "one")], repeats)
        emit("render", "one_host", "wall_seconds", one, "s", "cli_start_seconds", start, "< 1 s per host")
        # Fresh output each time: the full write path, not the 'unchanged' shortcut.
        best = float("inf")
        for r in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([*HN, "--data-dir", str(d / "x"), "render-profile", "--site", str(site), "--all", "--out", str(d / f"all{r}")],
                           check=True, capture_output=True)
            best = min(best, time.perf_counter() - t0)
        # Milliseconds: seconds rounded to 3 places would lose the ratio's precision.
        emit("render", f"site_{a.n}_hosts", "wall_ms_per_host", 1000 * best / a.n, "ms", "cli_start_ms", 1000 * start, "< 1000 ms per host",
             total_seconds=round(best, 3))
        sys.path.insert(0, str(ROOT))
        from hearthnet.provision import render
        from hearthnet.provision.site import load_site

        s = load_site(site)
        t0 = time.perf_counter()
        render.site_files(s, site, list(s.hosts), render.Facts())
        emit("render", f"site_{a.n}_hosts_in_process", "render_ms_per_host", 1000 * (time.perf_counter() - t0) / a.n, "ms",
             "cli_start_ms", 1000 * start, "< 1000 ms per host")


if __name__ == "__main__":
    main()
