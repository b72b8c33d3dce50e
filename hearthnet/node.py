"""The running node: the composition of every part, in the order of the design.

    config -> identity -> event log (+ replay engine, views) -> transport client
    -> capability bus (+ services) -> peers (static, joined, discovered)
    -> HTTP server -> manifest refresh loop -> sync loop

`Node.serve()` runs until SIGTERM/SIGINT (or `stop()`), then shuts down in
reverse order: no new requests, loops stopped, open streams ended, the log
closed after its last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from hearthnet import __version__, clock
from hearthnet import constants as C
from hearthnet.bus import CapabilityBus
from hearthnet.bus.capability import Service
from hearthnet.errors import HearthNetError
from hearthnet.emergency.detector import Detector
from hearthnet.emergency.state import StateBus
from hearthnet.events import sync
from hearthnet.events.replay import ActivityView, ReplayEngine
from hearthnet.home import Home
from hearthnet.events.community import build_community_manifest
from hearthnet.identity.envelope import Signed
from hearthnet.identity.manifest import CapabilitySpec, Endpoint, HardwareSpec, NodeManifest, build_node_manifest, verify_node_manifest
from hearthnet.discovery.mesh_clock import MeshClock
from hearthnet.discovery.peers import PeerRegistry
from hearthnet.observability import logging as hlog
from hearthnet.observability.metrics import Metrics
from hearthnet.blobs.store import BlobStore, remove_stale_temp
from hearthnet.blobs.transfer import Source, TransferManager
from hearthnet.services.file.service import FileService
from hearthnet.services.file.view import FileView
from hearthnet.services.chat.service import ChatService
from hearthnet.identity.invite import RedeemedInvites
from hearthnet.services.community.service import CommunityService
from hearthnet.events.types import MEMBERSHIP_TYPES
from hearthnet.services.chat.view import ChatView
from hearthnet.services.moderation.service import ModerationService
from hearthnet.services.moderation.view import ModerationView
from hearthnet.provision import models
from hearthnet.services.diag import DiagService
from hearthnet.services.rag.service import RagService
from hearthnet.services.marketplace.service import MarketService
from hearthnet.services.marketplace.view import MarketView
from hearthnet.services.embedding.service import EmbeddingService, embedder_from_index
from hearthnet.services.llm.service import RESUMERS, LlmService, build_backends
from hearthnet.transport.client import TransportClient
from hearthnet.transport.nonces import NonceStore
from hearthnet.transport.pubsub import PubSub
from hearthnet.transport.ratelimit import RateLimiter
from hearthnet.transport.streams import FlowControl
from hearthnet.transport.tls import PinStore, ensure_cert, origin, pin_first_contact

if TYPE_CHECKING:
    from hearthnet.transport.server import Served


def bind_socket(host: str, port: int, hint: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (else ~40 ms per keep-alive request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        code = "already_exists" if exc.errno == errno.EADDRINUSE else "storage_error"
        raise HearthNetError(code, f"cannot listen on {host}:{port}: {exc.strerror} ({hint})") from None
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the node owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or ::, which a listener binds but nobody can call: shown and advertised as something reachable."""
    return host in ("0.0.0.0", "::")


async def _serve(app: Any, sock: Any, ssl_kw: dict[str, Any], lifespan: str = "off") -> tuple[_Server, asyncio.Task[Any]]:
    """Start uvicorn on a bound socket and return once it listens (or raise what stopped it)."""
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan, timeout_graceful_shutdown=5, **ssl_kw))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    return server, task


async def _shut(server: uvicorn.Server, task: asyncio.Task[Any]) -> None:
    """Stop a uvicorn server. Idle keep-alive TLS connections wait for the peer's close_notify,
    which an idle peer never sends: give requests in flight a moment, then drop the rest."""
    server.should_exit = True
    with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 1.0)
    for conn in list(server.server_state.connections):
        with contextlib.suppress(Exception):
            conn.transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 10)


async def first_run(home: Home, *, handle_signals: bool = True) -> bool:
    """Serve the first-run screen (hearthnet.ui.first_run) on the UI's address until this node
    belongs to a community (True) or SIGTERM/SIGINT stops it first (False). Creates the node's
    identity if it has none, so the screen can show the node id an inviter needs."""
    from hearthnet.ui.first_run import build_first_run

    if not home.key_path.exists():
        home.init()
    ui = home.config.ui
    sock = bind_socket(ui.host, ui.port, "set ui.port")
    joined, stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    server, task = await _serve(build_first_run(home, joined.set), sock, {})
    watch = asyncio.ensure_future(_joined_elsewhere(home, joined))
    host, port = sock.getsockname()[:2]
    hlog.get_logger("node").warning("no community yet: serving the first-run page", extra={
        "ui_url": f"http://{'127.0.0.1' if is_wildcard(host) else host}:{port}/"})
    try:
        waits = [asyncio.ensure_future(e.wait()) for e in (joined, stop)]
        await asyncio.wait([*waits, task], return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if task.done():
            task.result()  # the server died: say why
        await asyncio.sleep(0.5)  # the answer that says "joined" reaches the browser before the port closes
    finally:
        watch.cancel()
        await _shut(server, task)
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    return joined.is_set()


async def _joined_elsewhere(home: Home, joined: asyncio.Event) -> None:
    """A community created or joined by another process while the page is up (`hearthnet join`,
    or a provisioner's `bootstrap` in a terminal) counts as joining here: the node starts, as it
    does after the page's own create or redeem, instead of serving the page until restarted."""
    while not joined.is_set():
        await asyncio.sleep(C.FIRST_RUN_WATCH_SECONDS)
        if home.community_id is not None:
            joined.set()


def local_address() -> str:
    """The address of the interface that routes outward (no packet is sent)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: connect() on UDP only picks a route
        return s.getsockname()[0]
    return "127.0.0.1"


def hardware(data_dir: Path | None = None) -> HardwareSpec:
    """The manifest's hardware summary, from the same probes as `hearthnet detect-hardware`."""
    from hearthnet.provision.hardware import detect

    f = detect(data_dir=data_dir)
    best = max(f.gpus, key=lambda g: g.vram_gb or 0.0, default=None)
    return HardwareSpec(gpu=best.model if best else None, vram_gb=(best.vram_gb or 0.0) if best else 0.0, ram_gb=f.ram_gb or 0.0,
                        cpu_cores=f.cpu.cores or os.cpu_count() or 0, disk_free_gb=f.disk_free_gb or 0.0)


class Node:
    def __init__(self, home: Home, *, host: str | None = None, port: int | None = None) -> None:
        self.home = home
        cfg = self.config = home.config
        self.kp = home.identity()
        self.node_id = self.kp.node_id
        self.logger = hlog.get_logger("node")
        self.event_log = home.open_log()
        self.community_id = self.event_log.community_id
        self.engine = ReplayEngine(self.event_log)
        self.activity = ActivityView()
        self.engine.register(self.activity)
        self.engine.catch_up()
        self.metrics = Metrics(cfg.observability.metrics_enabled)
        self.bus = CapabilityBus(self.node_id, cfg.bus, trace_size=cfg.observability.trace_ring_buffer, metrics=self.metrics)
        self.bus.register_service(DiagService(self.node_id))
        self.services: list[Service] = []
        self.llm: LlmService | None = None
        self.bus.resumers.update(RESUMERS)
        if "llm.chat" not in cfg.bus.disabled:
            backends = build_backends(cfg.llm, [cfg.path(cfg.models.dir)], self._model_index)  # none without the llm extra: the node routes llm.* to peers
            if backends:
                self.llm = LlmService(backends, self.metrics, self.bus)
                self._add_service(self.llm)
        if "embed.text" not in cfg.bus.disabled:
            embedder = embedder_from_index(cfg.embedding, [cfg.path(cfg.models.dir)], self._model_index)  # None without the embed extra: routed to peers
            if embedder is not None:
                self._add_service(EmbeddingService(embedder, cfg.embedding.timeout_seconds))
        self.blobs = BlobStore(cfg.path(cfg.file.blobs_dir), cfg.file.gc_threshold)
        if cfg.rag.enabled and "rag.query" not in cfg.bus.disabled:
            self._add_service(self._rag_service())
        self.moderation = ModerationView(lambda n: self.event_log.membership.level_of(n))
        self.engine.register(self.moderation)
        self.market_view = MarketView()
        self.engine.register(self.market_view)
        self.market: MarketService | None = None
        if cfg.market.enabled:
            self.market = MarketService(cfg.market, self.market_view, self.append_event, self.node_id,
                                        self.moderation.is_hidden)
            self._add_service(self.market)
        t = cfg.transport
        self.pins = PinStore(cfg.data_dir / "pins.json")
        self.client = TransportClient(self.kp, self.community_id, self.pins, timeout=t.rpc_timeout_seconds)
        self.file_view = FileView()
        self.engine.register(self.file_view)
        self.transfer = TransferManager(self.blobs, self.client)
        self.files: FileService | None = None
        if cfg.file.enabled:
            self.files = FileService(self.blobs, self.file_view, self.transfer, self.append_event, self.node_id,
                                     self.blob_sources, self.moderation.is_hidden)
            self._add_service(self.files)
        self.chat_view = ChatView(self.node_id)
        self.engine.register(self.chat_view)
        self.chat: ChatService | None = None
        if cfg.chat.enabled:
            self.chat = ChatService(cfg.chat, self.chat_view, self.kp, self.append_event,
                                    is_member=lambda n: self.event_log.membership.is_member(n),
                                    peer_url=lambda n: r.url if (r := self.peers.by_node(n)) is not None and r.verified else None,
                                    relays=lambda: [(p.node_id or "", p.url) for p in self.peers.live()], push=self.sync_with)
            self._add_service(self.chat)
        self._add_service(ModerationService(self.moderation, self.append_event, self.node_id,
                                            self._moderation_target_exists))
        self.community = CommunityService(self.event_log, self.kp, lambda: [self.public_url()], RedeemedInvites(cfg.data_dir / "run" / "invites.db"),
                                          self._author_seq)
        self._add_service(self.community)
        for e in list(self.bus.registry.all_local()):
            if e.name in cfg.bus.disabled:
                self.bus.registry.deregister_local(e.name, e.version)
        self.boot = secrets.token_urlsafe(8)
        self.revision = 0
        self.bus.registry.add_listener(self._registry_changed)
        run_dir = cfg.data_dir / "run"
        self.nonces = NonceStore(run_dir / "nonces.db", keep_seconds=2 * cfg.transport.clock_skew_seconds + 60)
        self.rate = RateLimiter(t.rate_soft_rps_per_cap, t.rate_hard_rps_per_cap, t.rate_soft_rps_total, t.rate_hard_rps_total)
        # Blob chunks have their own budget (per peer, the all-capabilities rates): a 20 MiB
        # file is 80 requests, which would hit a single capability's limit at once.
        self.blob_rate = RateLimiter(t.rate_soft_rps_total, t.rate_hard_rps_total, t.rate_soft_rps_total, t.rate_hard_rps_total)
        self.bus.remote = self.client
        self.peers = PeerRegistry(self.node_id)
        self.emergency = StateBus()
        self.detector = Detector(cfg.emergency, self.emergency, on_change=self._mode_changed)  # bad targets fail at start
        self._withdrawn: list[Any] = []
        self.pubsub = PubSub()
        self.flows: dict[str, FlowControl] = {}
        self.host = host or t.host
        self.port = t.port if port is None else port
        self.tls = t.tls
        self.tls_fingerprint: str | None = None
        self.url = ""
        self.ready = False
        self.started = time.monotonic()
        self.mesh_clock = MeshClock()
        self._stop = asyncio.Event()
        self._server: _Server | None = None
        self._gateway: _Server | None = None
        self.gateway_url: str | None = None
        self.ui_url: str | None = None
        self._bg: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.mdns: Any = None
        self._adv_host: str | None = None
        self._hardware = hardware(cfg.data_dir)
        self.udp: Any = None
        for url in cfg.discovery.static_peers:
            self.peers.seen(url, "static")
        for url in self._saved_peers():
            self.peers.seen(url, "join")

    def _mode_changed(self, old: str, new: str) -> None:
        """Offline: withdraw what needs the internet and prune silent peers sooner; back: restore both."""
        for state in ("online", "degraded", "offline"):
            self.metrics.emergency_mode.labels(state=state).set(1 if state == new else 0)
        if new == "offline":
            for e in [e for e in self.bus.registry.all_local() if (e.spec.get("params") or {}).get("requires_internet")]:
                if self.bus.registry.deregister_local(e.name, e.version):
                    self._withdrawn.append(e)
            self.peers.set_pruning_aggressive(True)
        elif old == "offline":
            for e in self._withdrawn:
                with contextlib.suppress(HearthNetError):
                    self.bus.register(e.descriptor, e.handler, e.params_ok)
            self._withdrawn.clear()
            self.peers.set_pruning_aggressive(False)
        self.logger.warning("emergency mode %s -> %s", old, new, extra={"from": old, "to": new})

    def _registry_changed(self, ev: Any) -> None:
        if ev.entry.is_local:
            self.revision += 1
            self._republish()

    def _republish(self) -> None:
        """Tell the LAN our manifest changed (peers fetch it again)."""
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            if self.udp is not None:
                self.udp.announce()
            if self.mdns is not None:
                loop.create_task(self.mdns.update(self.revision))

    def _discovered(self, source: str) -> Any:
        def on_peer(url: str, node_id: str, rev: int) -> bool:
            if node_id == self.node_id:
                return False
            rec, new = self.peers.seen(url, source, node_id)
            stale = rec.manifest is None or rec.manifest.revision != rev
            if new or stale:
                t = asyncio.get_running_loop().create_task(self.refresh_peer(rec.url))
                self._bg.add(t)
                t.add_done_callback(self._bg.discard)
            return new

        return on_peer

    # --- identity documents ----------------------------------------------------------
    def node_manifest(self) -> Signed:
        caps = [CapabilitySpec(**e.spec) for e in self.bus.registry.all_local()]
        host = self.advertised_host()
        return build_node_manifest(
            self.kp,
            community_id=self.community_id,
            display_name=self.config.identity.display_name,
            profile=self.config.identity.profile,
            endpoints=[Endpoint(transport="https" if self.tls else "http", host=host, port=self.port or 1)],
            hardware=self._hardware,
            capabilities=caps,
            uptime_seconds=int(time.monotonic() - self.started),
            load={"in_flight": float(sum(e.in_flight for e in self.bus.registry.all_local()))},
            tls_fingerprint=self.tls_fingerprint,
            boot=self.boot,
            revision=self.revision,
        )

    def community_manifest(self) -> Signed:
        self.event_log.refresh()
        return build_community_manifest(self.event_log.membership, self.event_log.head(), self.kp)

    def health(self) -> dict[str, Any]:
        off = self.mesh_clock.offset()
        skew = self.config.transport.clock_skew_seconds
        warning = None
        if off is not None and abs(off) > skew / 2:
            warning = f"this node's clock is {off:+.0f}s from its peers' (allowed ±{skew}s)"
        return {
            "status": "ok",
            "node_id": self.node_id,
            "short_id": self.kp.short_id,
            "community_id": self.community_id,
            "version": __version__,
            "time": clock.iso(),
            "clock_offset_applied": round(clock.offset(), 3),
            "clock_offset_to_peers": None if off is None else round(off, 3),
            "clock_warning": warning,
            "uptime_seconds": int(time.monotonic() - self.started),
            # Native inference runs in supervised worker processes: their state, pid and last crash.
            "llm_workers": self.llm.workers() if self.llm is not None else [],
        }

    def status(self) -> dict[str, Any]:
        self.event_log.refresh()
        st = self.event_log.membership
        return {
            **self.health(),
            "url": self.url,
            "display_name": self.config.identity.display_name or self.kp.short_id,
            "profile": self.config.identity.profile,
            "community": st.name,
            "level": st.level_of(self.node_id),
            "log": {"head": self.event_log.head(), **self.event_log.status_counts()},
            "peers": [p.as_dict() for p in self.peers.all()],
            "emergency": {"mode": (em := self.emergency.current()).mode, "since": em.since, "last_probe": em.last_probe,
                          "probe_results": em.probe_results},
            "capabilities_local": sorted(f"{e.name}@{e.version[0]}.{e.version[1]}" for e in self.bus.registry.all_local()),
            "withdrawn": sorted(f"{e.name}@{e.version[0]}.{e.version[1]}" for e in self._withdrawn),
            "ui_url": self.ui_url,
        }

    def members(self) -> list[dict[str, Any]]:
        """The community's members from this node's log (what `hearthnet member list` shows)."""
        self.event_log.refresh()
        return self.event_log.membership.rows()

    def capability_table(self) -> list[dict[str, Any]]:
        out = []
        for e in sorted(self.bus.registry.all(), key=lambda e: (e.name, not e.is_local, e.node_id)):
            h = self.bus.health.get(e.node_id, e.name)
            out.append({
                "name": e.name, "version": f"{e.version[0]}.{e.version[1]}", "node_id": e.node_id, "local": e.is_local,
                "url": e.url, "in_flight": e.in_flight, "max_concurrent": e.max_concurrent, "params": e.params,
                "success_rate": round(h.success_rate, 3), "p50_ms": h.percentile(0.5),
                "quarantined": self.bus.health.is_quarantined(e.node_id, e.name), "trust_required": e.spec.get("trust_required"),
            })
        return out

    def record_served(self, served: Served, result: str, t0: float, frames: int = 0) -> None:
        """A call served to a peer, in the trace with the caller's trace id and the version it asked for."""
        from hearthnet.bus.trace import CallTraceEvent

        ms = (time.perf_counter() - t0) * 1000
        self.bus.trace.record(CallTraceEvent(clock.iso(), served.trace_id, served.capability, served.version, served.caller, self.node_id, False,
                                             result, round(ms, 3), 1, frames))
        self.metrics.requests_total.labels(capability=served.capability, result=result).inc()
        self.metrics.request_duration_ms.labels(capability=served.capability).observe(ms)

    def refresh_gauges(self) -> None:
        m, cid = self.metrics, self.community_id[:16]
        m.event_log_size.labels(community=cid).set(self.event_log.count())
        m.event_log_lamport_head.labels(community=cid).set(self.event_log.head())
        m.nodes_online.labels(community=cid).set(len(self.peers.live()))
        for e in self.bus.registry.all():
            m.capability_health_success_rate.labels(capability=e.name, node=e.node_id[:20]).set(self.bus.health.get(e.node_id, e.name).success_rate)

    def log_error(self, msg: str, **extra: Any) -> None:
        self.logger.error(msg, extra=extra)

    def log_warning(self, msg: str, **extra: Any) -> None:
        self.logger.warning(msg, extra=extra)

    # --- peers ---------------------------------------------------------------------------
    def _saved_peers(self) -> list[str]:
        p = self.config.data_dir / "peers.json"
        try:
            return [str(u) for u in json.loads(p.read_text())]
        except (OSError, ValueError, TypeError):
            return []

    async def fetch_manifest(self, url: str) -> NodeManifest:
        """Fetch, (first contact: pin the certificate) and verify a peer's manifest."""
        t0 = time.perf_counter()
        if url.startswith("https://"):
            await pin_first_contact(self.client, url)
        doc = await self.client.get(url, "/manifest", signed=False, timeout=5)
        rtt = (time.perf_counter() - t0) * 1000
        # Fetched live from the node itself, so judge expiry by the node's own clock:
        # a box whose clock runs ahead must still be able to learn the mesh time.
        try:
            issued = clock.parse_iso(json.loads(doc["payload"])["issued_at"])
        except (KeyError, TypeError, ValueError, HearthNetError):
            issued = None
        m = verify_node_manifest(doc, community_id=self.community_id, now=issued)
        if url.startswith("https://"):
            pin = self.pins.get(origin(url))
            if pin is None or m.tls_fingerprint != pin["fingerprint"] or pin["node_id"] != m.node_id:
                raise HearthNetError("pin_mismatch", f"{url}: manifest does not match the pinned certificate")
        # Mesh time: the peer signed issued_at roughly rtt/2 before we got it.
        self.mesh_clock.observe(m.node_id, m.issued_at, rtt)
        return m

    async def refresh_peer(self, url: str) -> None:
        try:
            m = await self.fetch_manifest(url)
        except HearthNetError as exc:
            rec = self.peers.failed(url)
            if rec is not None and rec.failures >= 3 and rec.node_id:
                self.bus.registry.remove_peer(rec.node_id)
                self.mesh_clock.forget(rec.node_id)
            self.logger.info("peer unreachable", extra={"peer": url, "code": exc.code, "reason": exc.message})
            return
        if m.node_id == self.node_id:
            self.peers.remove(url)  # our own address (announced back to us)
            return
        known = self.peers.by_node(m.node_id)
        if known is not None and known.manifest is not None and known.manifest.boot == m.boot and known.manifest.revision > m.revision:
            return  # an older manifest that arrived late (two refreshes overlapped): keep the newer
        first = known is None or known.manifest is None
        rec = self.peers.verified(url, m)
        if first and self.chat is not None and m.node_id in self.chat_view.pending_recipients():
            self._spawn(self.chat.deliver(m.node_id))  # it is back: hand over what waited for it
        if first:
            self.logger.info("peer verified", extra={"peer": m.node_id, "url": rec.url, "source": rec.source, "peers": len(self.peers.live())})
        added, removed = self.bus.registry.update_peer(m.node_id, rec.url, [c.model_dump() for c in m.capabilities])
        if added or removed:
            self.pubsub.publish("capabilities", {"node_id": m.node_id, "added": added, "removed": removed})

    async def refresh_peers(self) -> None:
        await asyncio.gather(*(self.refresh_peer(p.url) for p in self.peers.all()))
        self.peers.prune_stale()
        if self.config.transport.learn_time_from_peers and (off := self.mesh_clock.learn()) is not None:
            self.logger.warning("clock corrected from peers", extra={"offset_seconds": round(off, 3)})

    # --- sync ------------------------------------------------------------------------------
    async def sync_with(self, url: str) -> dict[str, int]:
        return await sync.sync_with(self.client, self.event_log, url)

    async def sync_round(self) -> None:
        for p in self.peers.live():
            try:
                await self.sync_with(p.url)
            except HearthNetError as exc:
                self.logger.info("sync failed", extra={"peer": p.url, "code": exc.code, "reason": exc.message})

    def public_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.advertised_host()}:{self.port}"

    def _author_seq(self, node_id: str) -> int:
        h = sync.heads_report(self.event_log).authors.get(node_id)
        return h.seq if h is not None else 0

    def _membership_event(self, ev: Any) -> None:
        """A membership change (any thread): end the open streams of callers that are now revoked."""
        if ev.event_type in MEMBERSHIP_TYPES and self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_revoked_streams)

    def _close_revoked_streams(self) -> None:
        revoked = self.event_log.membership.revoked
        for flow in list(self.flows.values()):
            if getattr(flow, "caller", None) in revoked:
                flow.cancel("revoked", "the caller's membership was revoked")

    def _chat_event(self, ev: Any) -> None:
        """A message to this node arrived (any thread): receipt it on the loop."""
        if self.chat is not None and ev.event_type == "chat.message.sent" and ev.data.get("to") == self.node_id and self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._spawn(self.chat.acknowledge()))  # type: ignore[union-attr]

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    def _moderation_target_exists(self, kind: str, target: str) -> bool:
        if kind == "market.post":
            return self.market_view.get(target) is not None
        return self.file_view.get(target) is not None

    def blob_sources(self, cid: str, only: list[str] | None = None) -> list[Source]:
        """Live peers to fetch a blob from: the ones named, else the ones advertising it, else every live peer."""
        live = {p.node_id: p.url for p in self.peers.live() if p.node_id and p.node_id != self.node_id}
        wanted = only or [n for n in self.file_view.sources(cid) if n in live] or sorted(live)
        return [Source(n, live[n]) for n in wanted if n in live]

    async def _collect_blobs(self) -> None:
        report = await asyncio.to_thread(self.blobs.gc)
        if report.bytes_freed:
            self.logger.info("blob store collected", extra=report.as_dict())
        self.metrics.blob_storage_bytes.set(await asyncio.to_thread(self.blobs.total_bytes))

    async def _sweep_market(self) -> None:
        if self.market is not None and self.community_id:
            self.market.sweep()

    async def _every(self, seconds: float, fn: Any) -> None:
        while not self._stop.is_set():
            try:
                await fn()
            except Exception as exc:  # a loop must survive one bad round
                self.logger.error("background round failed", extra={"task": fn.__name__, "error": f"{type(exc).__name__}: {exc}"})
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)

    # --- lifecycle -------------------------------------------------------------------------
    def _bind(self) -> socket.socket:
        sock = bind_socket(self.host, self.port, "choose another with --port")
        self.port = sock.getsockname()[1]
        return sock

    def stop(self) -> None:
        self._stop.set()

    async def serve(self, *, handle_signals: bool = True) -> None:
        from hearthnet.transport.server import build_app

        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
        self._loop = loop
        self.event_log.add_listener(self._chat_event)
        self.event_log.add_listener(self._membership_event)
        if self.chat is not None:
            self._spawn(self.chat.acknowledge())  # messages that arrived before a crash
        self.event_log.add_listener(lambda ev: loop.call_soon_threadsafe(
            self.pubsub.publish, "events", {"event_id": ev.event_id, "event_type": ev.event_type, "author": ev.author, "lamport": ev.lamport}))
        ssl_kw: dict[str, Any] = {}
        if self.tls:
            cert, key, self.tls_fingerprint = ensure_cert(self.config.data_dir / "tls", self.kp.short_id)
            ssl_kw = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        sock = self._bind()
        gateway_sock = None
        if self.config.ui.gateway_enabled or self.config.ui.enabled:
            try:
                gateway_sock = bind_socket(self.config.ui.host, self.config.ui.port, "set ui.port, or ui.enabled and ui.gateway_enabled = false")
            except HearthNetError:
                sock.close()
                raise
        scheme = "https" if self.tls else "http"
        shown = "127.0.0.1" if is_wildcard(self.host) else self.host
        self.url = f"{scheme}://{shown}:{self.port}"
        app = build_app(self)
        self._server, server_task = await _serve(app, sock, ssl_kw)
        gateway_task = None
        if gateway_sock is not None:
            from hearthnet.ui.listener import build_listener

            g_host, g_port = gateway_sock.getsockname()[:2]
            base = f"http://{'127.0.0.1' if is_wildcard(g_host) else g_host}:{g_port}"
            self.gateway_url = f"{base}/v1" if self.config.ui.gateway_enabled else None
            self.ui_url = f"{base}/" if self.config.ui.enabled else None
            # lifespan on: Gradio starts its queue from the app's lifespan.
            self._gateway, gateway_task = await _serve(build_listener(self), gateway_sock, {}, lifespan="on")
        await self._start_discovery()
        self.ready = True
        self._write_run_file()
        self.logger.info("node started", extra={"url": self.url, "node_id": self.node_id, "community_id": self.community_id, "ui_url": self.ui_url})
        if self.ui_url and self.config.ui.launch_browser:
            import webbrowser

            self._spawn(asyncio.to_thread(webbrowser.open, self.ui_url))  # a desktop box: open the UI for its person
        loops = [
            asyncio.create_task(self._every(self.config.discovery.manifest_refresh_seconds, self.refresh_peers)),
            asyncio.create_task(self._every(self.config.events.sync_interval_seconds, self.sync_round)),
            asyncio.create_task(self.detector.run()),
        ]
        remove_stale_temp(self.blobs.root)
        loops.append(asyncio.create_task(self._every(C.BLOB_GC_INTERVAL_SECONDS, self._collect_blobs)))
        if self.market is not None:
            loops.append(asyncio.create_task(self._every(C.MARKET_SWEEP_INTERVAL_SECONDS, self._sweep_market)))
        stop_task = asyncio.create_task(self._stop.wait())
        await asyncio.wait({server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        self.ready = False
        self._stop.set()
        await self.detector.shutdown()
        self.logger.info("node stopping")
        for flow in list(self.flows.values()):
            flow.cancel("partition", "the serving node is stopping")
        self._server.should_exit = True
        for t in [*loops, *self._bg]:
            t.cancel()
        await asyncio.gather(*loops, *self._bg, return_exceptions=True)
        await self._stop_discovery()
        await _shut(self._server, server_task)
        if gateway_task is not None and self._gateway is not None:
            await _shut(self._gateway, gateway_task)
        stop_task.cancel()
        for svc in self.services:
            with contextlib.suppress(Exception):
                await svc.stop()
        await self.client.close()
        self.nonces.close()
        self.blobs.close()
        self.event_log.close()
        self._remove_run_file()
        self.logger.info("node stopped")

    @property
    def _model_index(self) -> Path | None:
        """The site's own model index when the config names one, else None: the package's."""
        return self.config.path(self.config.models.index) if self.config.models.index else None

    def _rag_service(self) -> RagService:
        """RAG over this node's corpora; embeddings come through the bus with the configured model."""
        cfg = self.config
        entry = models.find(cfg.embedding.model, self._model_index)
        try:
            tokenizer: Path | None = models.locate(entry, [cfg.path(cfg.models.dir)]).parent / "tokenizer.json"  # exact chunk lengths when the files are here
        except HearthNetError:
            tokenizer = None
        return RagService(cfg.rag, cfg.path(cfg.rag.corpora_dir), bus=self.bus, blobs=self.blobs,
                          append_event=self.append_event,
                          embed_model=entry.id, embed_dims=int(entry.raw.get("dimensions", 0)), embed_max_tokens=entry.context, tokenizer_file=tokenizer,
                          embed_timeout=cfg.embedding.timeout_seconds)

    @property
    def clock_skew_seconds(self) -> float:
        return self.config.transport.clock_skew_seconds

    def append_event(self, event_type: str, data: dict[str, Any]) -> Any:
        """Sign and append one event as this node (what the services are handed to write with)."""
        return self.event_log.append_local(event_type, data, self.kp)

    def _add_service(self, svc: Service) -> None:
        self.bus.register_service(svc)
        self.services.append(svc)

    def advertised_host(self) -> str:
        if self._adv_host is None:  # one route lookup per run, not per manifest request
            self._adv_host = self.config.transport.advertise_host or (local_address() if is_wildcard(self.host) else self.host)
        return self._adv_host

    async def _start_discovery(self) -> None:
        from hearthnet.discovery.mdns import MdnsDiscovery
        from hearthnet.discovery.udp import UdpDiscovery

        d = self.config.discovery
        host = self.advertised_host()
        scheme = "https" if self.tls else "http"
        if host.startswith("127.") or host in ("::1", "localhost"):
            # Nobody on the LAN could reach a loopback address: announce nothing.
            self.logger.info("discovery off: the node listens on loopback only", extra={"host": host})
            return
        if d.mdns_enabled:
            self.mdns = MdnsDiscovery(node_id=self.node_id, short_id=self.kp.short_id, community_id=self.community_id,
                                      profile=self.config.identity.profile, host=host, port=self.port, scheme=scheme,
                                      on_peer=self._discovered("mdns"))
            try:
                await self.mdns.start()
            except HearthNetError as exc:
                self.logger.warning("mDNS disabled", extra={"reason": exc.message})
                self.mdns = None
        if d.udp_enabled:
            self.udp = UdpDiscovery(node_id=self.node_id, community_id=self.community_id, profile=self.config.identity.profile,
                                    url=f"{scheme}://{host}:{self.port}", group=d.udp_multicast_group, port=d.udp_port,
                                    on_peer=self._discovered("udp"), interval=d.udp_interval_seconds, revision=lambda: self.revision)
            try:
                await self.udp.start()
            except OSError as exc:
                self.logger.warning("UDP discovery disabled", extra={"reason": str(exc)})
                self.udp = None

    async def _stop_discovery(self) -> None:
        for part in (self.mdns, self.udp):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()
        self.mdns = self.udp = None

    def _write_run_file(self) -> None:
        self.home.write_run_file({"pid": os.getpid(), "url": self.url, "port": self.port, "node_id": self.node_id,
                                  "tls_fingerprint": self.tls_fingerprint, "gateway_url": self.gateway_url,
                                  "ui_url": self.ui_url})

    def _remove_run_file(self) -> None:
        self.home.remove_run_file()


__all__ = ["Node"]
