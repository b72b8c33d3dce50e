"""`hearthnet doctor`: named checks, each saying what is wrong and how to fix it.

Checks are registered once, in order; each takes the node's Home and returns a
CheckResult. A check never raises: a fault becomes a failed result.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass

from hearthnet import clock
from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.home import Home
from hearthnet.identity import keys


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    data: dict[str, object] | None = None  # machine-readable facts for --json (a worker's pid, its last crash)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


Check = Callable[[Home], CheckResult]
_CHECKS: dict[str, Check] = {}


def register(name: str) -> Callable[[Check], Check]:
    def deco(fn: Check) -> Check:
        if name in _CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        _CHECKS[name] = fn
        return fn

    return deco


def names() -> list[str]:
    return list(_CHECKS)


def run_one(name: str, home: Home) -> CheckResult:
    fn = _CHECKS.get(name)
    if fn is None:
        raise HearthNetError("not_found", f"no doctor check named {name!r} (have: {', '.join(_CHECKS)})")
    try:
        return fn(home)
    except HearthNetError as exc:
        return CheckResult(name, False, exc.message, _FIXES.get(exc.code))
    except Exception as exc:  # a check must report, never crash the doctor
        return CheckResult(name, False, f"check failed unexpectedly: {type(exc).__name__}: {exc}")


def run_all(home: Home) -> list[CheckResult]:
    return [run_one(n, home) for n in _CHECKS]


_FIXES = {
    "keys_missing": "run `hearthnet init`",
    "keys_insecure": "chmod 600 the key file and 700 its directory",
    "not_initialised": "run `hearthnet init --create-community NAME` on the first node, or join a community",
    "db_corrupt": "restore the data dir from `hearthnet export`, or re-sync from peers",
}


@register("data_dir_writable")
def _data_dir(home: Home) -> CheckResult:
    d = home.data_dir
    if not d.is_dir():
        return CheckResult("data_dir_writable", False, f"{d} does not exist", "run `hearthnet init`")
    try:
        with tempfile.NamedTemporaryFile(dir=d, prefix=".doctor-"):
            pass
    except OSError as exc:
        return CheckResult("data_dir_writable", False, f"{d} is not writable: {exc.strerror}", f"fix the permissions of {d}")
    return CheckResult("data_dir_writable", True, str(d))


@register("keys_present")
def _keys_present(home: Home) -> CheckResult:
    p = home.key_path
    if not p.exists():
        return CheckResult("keys_present", False, f"no node key at {p}", "run `hearthnet init`")
    if not keys.key_file_private(p) or (p.parent.stat().st_mode & 0o077):
        return CheckResult("keys_present", False, f"{p} is readable by other users", f"chmod 600 {p} && chmod 700 {p.parent}")
    return CheckResult("keys_present", True, f"{p} (private)")


@register("keys_loadable")
def _keys_loadable(home: Home) -> CheckResult:
    kp = home.identity()
    return CheckResult("keys_loadable", True, f"node {kp.short_id}")


@register("community_present")
def _community(home: Home) -> CheckResult:
    cid = home.community_id
    if not cid:
        return CheckResult("community_present", False, "no community configured", _FIXES["not_initialised"])
    with home.open_log() as log:
        st = log.membership
        if st.genesis is None:
            return CheckResult("community_present", False, f"community {cid[:16]}…: genesis event not in the log yet", "sync with a member")
        me = home.identity().node_id
        level = st.level_of(me)
        if level == "unknown":
            return CheckResult("community_present", False, f"{st.name}: this node is not a member (yet)", "ask the anchor to add this node")
        return CheckResult("community_present", True, f"{st.name} ({cid[:16]}…), this node is {level}")


@register("event_log_writable")
def _log_writable(home: Home) -> CheckResult:
    with home.open_log() as log:
        ok, msg = log.integrity_check()
        if not ok:
            return CheckResult("event_log_writable", False, f"integrity_check: {msg}", _FIXES["db_corrupt"])
        log.check_writable()
        return CheckResult("event_log_writable", True, f"{log.count()} valid events, integrity ok, writable")


@register("disk_space")
def _disk(home: Home) -> CheckResult:
    target = home.data_dir if home.data_dir.exists() else home.data_dir.parent
    free = shutil.disk_usage(target).free
    ok = free >= C.DOCTOR_MIN_FREE_DISK_BYTES
    return CheckResult(
        "disk_space", ok, f"{free / 2**30:.1f} GiB free at {target}", None if ok else "free some disk space (blobs, old snapshots)"
    )


@register("clock_sanity")
def _clock(home: Home) -> CheckResult:
    now = clock.now()
    if now < clock.parse_iso(C.CLOCK_FLOOR_ISO):
        return CheckResult("clock_sanity", False, f"system clock says {clock.iso(now)}: before {C.CLOCK_FLOOR_ISO}", "set the time (timedatectl / NTP / a peer)")
    if home.community_id and home.config.event_db_path(home.community_id).exists():
        with home.open_log() as log:
            newest = log.newest_wall_clock()
        skew = home.config.transport.clock_skew_seconds
        if newest and clock.parse_iso(newest) > now + skew:
            return CheckResult(
                "clock_sanity", False, f"clock {clock.iso(now)} is behind the newest event ({newest}) by more than {skew}s",
                "set the time; peers will reject this node's signed requests",
            )
    return CheckResult("clock_sanity", True, clock.iso(now))


def _running(home: Home, path: str) -> dict | None:
    """GET `path` from the running node of this data dir, or None when none runs.

    /health is read unsigned (it is public), so a node whose clock is far off,
    which refuses signed requests as stale, can still say what is wrong."""
    from hearthnet.transport.local import run_with_node

    if home.read_run_file() is None:
        return None
    return run_with_node(home, None, lambda c, u: c.get(u, path, timeout=5, signed=path != "/health"))


@register("transport_port")
def _transport(home: Home) -> CheckResult:
    import socket

    health = _running(home, "/health")
    if health is not None:
        return CheckResult("transport_port", True, f"node answers at {read_url(home)}")
    t = home.config.transport
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((t.host, t.port))
        except OSError as exc:
            return CheckResult("transport_port", False, f"{t.host}:{t.port} is taken ({exc.strerror}) and no node of this data dir runs",
                               "stop what uses the port or set transport.port")
    return CheckResult("transport_port", True, f"node not running; {t.host}:{t.port} is free")


@register("at_least_one_capability")
def _caps(home: Home) -> CheckResult:
    caps = _running(home, "/caps")
    if caps is None:
        return CheckResult("at_least_one_capability", True, "node not running (checked when it runs)")
    n = len(caps["capabilities"])
    local = sum(1 for c in caps["capabilities"] if c["local"])
    return CheckResult("at_least_one_capability", n > 0, f"{n} routable ({local} local)", None if n else "enable a service or join peers")


@register("mesh_clock")
def _mesh_clock(home: Home) -> CheckResult:
    health = _running(home, "/health")
    if health is None:
        return CheckResult("mesh_clock", True, "node not running (checked when it runs)")
    if health.get("clock_warning"):
        return CheckResult("mesh_clock", False, health["clock_warning"] + " — peers reject its signed requests",
                           "set the time, or enable transport.learn_time_from_peers")
    off = health.get("clock_offset_to_peers")
    applied = health.get("clock_offset_applied") or 0
    detail = "no peers to compare with" if off is None else f"{off:+.1f}s from the peers' median"
    return CheckResult("mesh_clock", True, detail + (f" (corrected by {applied:+.0f}s learnt from peers)" if applied else ""))


@register("llm_worker")
def _llm_worker(home: Home) -> CheckResult:
    """The running node's llama.cpp worker processes: up, and their last crash if any."""
    health = _running(home, "/health")
    if health is None:
        return CheckResult("llm_worker", True, "node not running (checked when it runs)")
    workers = health.get("llm_workers") or []
    if not workers:
        return CheckResult("llm_worker", True, "no embedded model on this node")
    parts, ok = [], True
    for w in workers:
        state = w["state"]
        text = f"{w['model']}: {state}" + (f" (pid {w['pid']})" if w.get("pid") else "")
        if w.get("restarts"):
            text += f", restarted {w['restarts']}x"
        crash = w.get("last_crash")
        if crash:
            how = f"killed by {crash['signal']}" if crash.get("signal") else f"exited with status {crash['exit_code']}"
            text += f"; last crash: pid {crash['pid']} {how} at {crash['at']}"
        if state == "restarting":
            ok = False
            text += f"; restarting in {w.get('restart_in_seconds')}s"
        parts.append(text)
    fix = None if ok else "see the node's log for the worker's exit; `hearthnet llama check` tells whether llama.cpp was built for this CPU"
    return CheckResult("llm_worker", ok, "; ".join(parts), fix, data={"workers": workers})


@register("llama_build")
def _llama_build(home: Home) -> CheckResult:
    """The installed llama-cpp-python was built with the pinned portable flags (a native build crashes on some CPUs)."""
    from hearthnet.provision.actions import llama_wheel

    lib = llama_wheel.installed_lib()
    if lib is None:
        return CheckResult("llama_build", True, "llama-cpp-python not installed (llm.* is routed to peers)")
    info = llama_wheel.system_info_of(lib)
    bad = llama_wheel.problems(info, llama_wheel.installed_options(), llama_wheel.portable_flags())
    if bad:
        return CheckResult("llama_build", False, f"{lib.parent.parent.name} was not built with the portable flags: {'; '.join(bad)}",
                           "hearthnet llama install (builds the portable wheel once and installs it)", data={"system_info": info})
    feats = [k for k, v in llama_wheel.features(info).items() if v and k in llama_wheel.X86_FEATURES.values()]
    return CheckResult("llama_build", True, f"portable build ({' '.join(feats) or 'no x86 SIMD flags'})", data={"system_info": info})


def _multicast_check(name: str, group: str, port: int, enabled: bool, what: str) -> CheckResult:
    """Can this box join `group` on `port`? Binds and joins only; sends nothing."""
    import socket
    import struct

    if not enabled:
        return CheckResult(name, True, f"{what} disabled in config")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(AttributeError, OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("", port))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
    except OSError as exc:
        return CheckResult(name, False, f"cannot join {group}:{port}: {exc.strerror or exc}",
                           "check that an interface is up with a multicast route (ip route add 224.0.0.0/4 dev IFACE)")
    finally:
        s.close()
    return CheckResult(name, True, f"can join {group}:{port}")


@register("mdns_socket")
def _mdns(home: Home) -> CheckResult:
    return _multicast_check("mdns_socket", "224.0.0.251", 5353, home.config.discovery.mdns_enabled, "mDNS")


@register("udp_multicast")
def _udp(home: Home) -> CheckResult:
    d = home.config.discovery
    return _multicast_check("udp_multicast", d.udp_multicast_group, d.udp_port, d.udp_enabled, "UDP discovery")


def read_url(home: Home) -> str:
    info = home.read_run_file() or {}
    return str(info.get("url", "?"))


def render_json(results: list[CheckResult]) -> str:
    return json.dumps({"ok": all(r.ok for r in results), "checks": [r.as_dict() for r in results]}, indent=2)


__all__ = ["CheckResult", "names", "register", "render_json", "run_all", "run_one"]
