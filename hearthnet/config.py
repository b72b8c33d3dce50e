"""Node configuration: one TOML file plus HEARTHNET_* environment overrides.

Precedence (highest first): environment (`HEARTHNET_<SECTION>__<KEY>`), the TOML
file, the defaults below (which come from hearthnet.constants). Relative paths
resolve under the data directory (`--data-dir`, `HEARTHNET_HOME`, default
`$XDG_DATA_HOME/hearthnet`). Every key is documented in docs/configuration.md;
a test fails when one is not.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tomli_w
import tomlkit
import tomlkit.exceptions
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hearthnet import constants as C
from hearthnet.errors import HearthNetError, validation_path
from hearthnet.storage import atomic_write_text


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentityConfig(_Section):
    keys_dir: Path = Field(Path("keys"), description="Directory holding the node key (0700; files 0600).")
    display_name: str = Field("", max_length=120, description="Human name shown to peers; empty means the short node id.")
    profile: Literal["anchor", "hearth", "spark", "bridge"] = Field("hearth", description="The box's role, announced to peers.")


class CommunityConfig(_Section):
    community_id: str | None = Field(None, description="Pins the community this node belongs to; normally empty: init and join record it in DATA_DIR/community.json.")
    state_dir: Path = Field(Path("communities"), description="One sub-directory per community: event log, snapshots.")


class EventsConfig(_Section):
    synchronous: Literal["NORMAL", "FULL"] = Field(
        C.EVENT_LOG_SYNCHRONOUS,
        description="SQLite synchronous mode: NORMAL survives a process crash, FULL also a power loss (slower).",
    )
    max_payload_bytes: int = Field(C.EVENT_MAX_PAYLOAD_BYTES, ge=1024, description="Largest accepted event payload.")
    max_parked: int = Field(C.EVENT_MAX_PARKED, ge=0, description="Events from not-yet-known authors kept waiting.")
    snapshot_every_lamport: int = Field(C.SNAPSHOT_LAG_LAMPORT, ge=1, description="Take a view snapshot every N Lamport ticks.")
    snapshots_keep: int = Field(C.SNAPSHOTS_KEEP, ge=1, description="Snapshots kept after pruning.")
    sync_interval_seconds: float = Field(C.SYNC_INTERVAL_SECONDS, gt=0, description="Seconds between sync rounds with every known peer.")


class TransportConfig(_Section):
    host: str = Field("0.0.0.0", description="Address the signed transport listens on.")
    port: int = Field(C.TRANSPORT_DEFAULT_PORT, ge=0, le=65535, description="Transport port (0 picks a free one).")
    tls_cert: Path | None = Field(None, description="TLS certificate; generated (self-signed, pinned) when empty.")
    tls_key: Path | None = Field(None, description="TLS private key matching tls_cert.")
    clock_skew_seconds: int = Field(C.CLOCK_SKEW_SECONDS, ge=1, description="Allowed clock difference on signed requests.")
    rate_soft_rps_per_cap: float = Field(C.RATE_LIMIT_SOFT_RPS_PER_CAP, gt=0, description="Soft rate limit per peer and capability.")
    rate_hard_rps_per_cap: float = Field(C.RATE_LIMIT_HARD_RPS_PER_CAP, gt=0, description="Hard rate limit per peer and capability.")
    rate_soft_rps_total: float = Field(C.RATE_LIMIT_SOFT_RPS_TOTAL, gt=0, description="Soft rate limit per peer, all capabilities.")
    rate_hard_rps_total: float = Field(C.RATE_LIMIT_HARD_RPS_TOTAL, gt=0, description="Hard rate limit per peer, all capabilities.")
    rpc_timeout_seconds: float = Field(C.RPC_DEFAULT_TIMEOUT_SECONDS, gt=0, description="Default deadline of a remote call.")
    max_body_bytes: int = Field(C.TRANSPORT_MAX_BODY_BYTES, ge=1024, description="Largest request body accepted (sync batches have their own limit).")
    stream_window_frames: int = Field(C.STREAM_WINDOW_FRAMES, ge=1, description="Unacknowledged stream frames in flight.")
    stream_ack_interval_frames: int = Field(C.STREAM_ACK_INTERVAL_FRAMES, ge=1, description="Receiver acknowledges at least this often.")
    stream_ack_timeout_seconds: float = Field(C.STREAM_ACK_TIMEOUT_SECONDS, gt=0, description="A stream ends when no acknowledgement comes this long.")
    tls: bool = Field(True, description="Serve HTTPS with a self-signed certificate that peers pin to this node id.")
    advertise_host: str | None = Field(None, description="Address peers should use for this node (default: the listen address, or the outbound interface's address when listening on all).")
    learn_time_from_peers: bool = Field(True, description="Correct this node's clock by the median offset of its peers' signed manifests.")


class DiscoveryConfig(_Section):
    mdns_enabled: bool = Field(True, description="Announce and browse _hearthnet._tcp over mDNS.")
    udp_enabled: bool = Field(True, description="UDP multicast announcements as the mDNS fallback.")
    udp_multicast_group: str = Field(C.DISCOVERY_UDP_MULTICAST_GROUP, description="Multicast group for UDP announcements.")
    udp_port: int = Field(C.DISCOVERY_UDP_PORT, ge=1, le=65535, description="UDP announcement port.")
    udp_interval_seconds: float = Field(C.DISCOVERY_UDP_INTERVAL_STABLE_SECONDS, gt=0, description="Seconds between UDP announcements once started (the first few come faster).")
    static_peers: list[str] = Field(default_factory=list, description="Peer URLs to contact without discovery.")
    manifest_refresh_seconds: float = Field(C.MANIFEST_REPUBLISH_INTERVAL_SECONDS, gt=0, description="Seconds between fetching each peer's manifest (and republishing ours).")


class BusConfig(_Section):
    prefer_local: bool = Field(True, description="Serve a call locally while local load is under the threshold.")
    local_load_threshold: float = Field(0.80, ge=0, le=1, description="Local load above which remote nodes compete.")
    health_window_calls: int = Field(C.HEALTH_WINDOW_CALLS, ge=1, description="Calls remembered per (node, capability).")
    quarantine_threshold: float = Field(C.HEALTH_QUARANTINE_THRESHOLD, ge=0, le=1, description="Success rate below which a node is quarantined.")
    quarantine_seconds: int = Field(C.HEALTH_QUARANTINE_SECONDS, ge=1, description="How long a quarantine lasts.")
    disabled: list[str] = Field(default_factory=list, description="Capability names this node does not offer (e.g. echo.ping); it still calls them on peers.")


class LlmBackendConfig(_Section):
    name: Literal["llama_cpp", "ollama", "lmstudio", "vllm", "hf_api", "anthropic_api", "nemotron", "openbmb"] = Field(
        description="Which backend: llama_cpp runs a pinned GGUF in a supervised worker process; the others are HTTP servers.")
    url: str | None = Field(None, description="Server base URL (…/v1); empty means the backend's default.")
    model: str | None = Field(None, description="Model id: a model-index id for llama_cpp, the server's model name otherwise.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key (keys never go in this file).")
    local: bool = Field(False, description="nemotron: a self-hosted NIM on this box instead of NVIDIA's cloud.")
    ctx: int | None = Field(None, ge=256, description="Context length in tokens; empty means the model index's (llama_cpp) or 4096.")
    max_concurrent: int | None = Field(None, ge=1, description="Generations at once; empty means 1 for llama_cpp, 4 for HTTP servers.")

    @model_validator(mode="after")
    def _needs_model(self) -> LlmBackendConfig:
        if self.name != "llama_cpp" and not self.model:
            raise ValueError(f"backend {self.name} needs `model` (the name its server knows the model by)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, not {self.url!r}")
        return self


class LlmConfig(_Section):
    backends: list[LlmBackendConfig] = Field(default_factory=list, description="LLM backends; empty means the embedded default.")


class ModelsConfig(_Section):
    dir: Path = Field(Path("models"), description="Model files fetched or added by name (`hearthnet models fetch`); loaded only after their sha256 matches the index.")
    index: Path | None = Field(None, description="A model index to read instead of the package's: a site's own, which render-profile writes beside the config as models.index.json.")


class EmbeddingConfig(_Section):
    model: str = Field("all-minilm-l6-v2", description="Model-index id of the embedding model served by embed.text.")
    batch_size: int = Field(32, ge=1, le=1024, description="Texts encoded per forward pass.")
    device: str = Field("cpu", description="Torch device for the embedder.")
    timeout_seconds: float = Field(C.EMBED_TIMEOUT_SECONDS, gt=0, description="Longest one embed.text call (a batch of texts) may take: served here, and asked by this node's RAG; raise it on a slow or emulated box.")


class RagConfig(_Section):
    enabled: bool = Field(True, description="Serve rag.* capabilities.")
    corpora_dir: Path = Field(Path("corpora"), description="One SQLite database per corpus.")
    default_k: int = Field(C.RAG_DEFAULT_K, ge=1, description="Chunks returned when a query gives no k.")
    max_k: int = Field(C.RAG_MAX_K, ge=1, description="Largest k a query may ask for.")
    keyword_weight: float = Field(0.5, ge=0, le=4, description="Weight of the BM25 ranking against the vector ranking in hybrid fusion (1 = plain RRF).")
    ingest_timeout_seconds: float = Field(C.RAG_INGEST_TIMEOUT_SECONDS, gt=0, description="Longest one document's ingest (rag.ingest: every chunk embedded and indexed) may take: served here, and asked by this node's `rag ingest` and `rag seed`; raise it with [embedding] timeout_seconds on a slow or emulated box.")


class FileConfig(_Section):
    enabled: bool = Field(True, description="Serve file.* capabilities (the raw chunk endpoint is always served to members).")
    blobs_dir: Path = Field(Path("blobs"), description="Content-addressed blob store.")
    gc_threshold: float = Field(C.BLOB_GC_DISK_THRESHOLD, gt=0, le=1, description="Disk usage above which unpinned blobs are collected.")


class MarketConfig(_Section):
    enabled: bool = Field(True, description="Serve market.* capabilities.")
    default_ttl_seconds: int = Field(C.MARKET_DEFAULT_TTL_SECONDS, ge=60, description="Post lifetime when none is given.")
    max_ttl_seconds: int = Field(C.MARKET_MAX_TTL_SECONDS, ge=60, description="Longest post lifetime allowed.")


class ChatConfig(_Section):
    enabled: bool = Field(True, description="Serve chat.* capabilities.")
    store_and_forward: bool = Field(True, description="Let peers carry messages for offline recipients (false: chat.send refuses an unreachable recipient).")


class EmergencyConfig(_Section):
    probe_targets: list[str] = Field(
        default_factory=list,
        description="DNS names / URLs probed for internet reachability. Empty: the node never probes the internet.",
    )
    probe_interval_online: float = Field(C.EMERGENCY_PROBE_INTERVAL_ONLINE, gt=0, description="Seconds between probes while online.")
    probe_interval_offline: float = Field(C.EMERGENCY_PROBE_INTERVAL_OFFLINE, gt=0, description="Seconds between probes while offline.")
    probe_timeout_seconds: float = Field(C.EMERGENCY_PROBE_TIMEOUT_SECONDS, gt=0, description="Timeout of one probe.")
    debounce_seconds: float = Field(C.EMERGENCY_TRANSITION_DEBOUNCE_SECONDS, ge=0, description="A state must hold this long before the mode flips.")

    @field_validator("probe_targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        for t in v:
            try:
                parse_target(t)
            except HearthNetError as exc:
                raise ValueError(exc.message) from None
        return v


# --- emergency probe targets (parsed here, with the setting; probed by emergency.probes) ---------------
@dataclass(frozen=True)
class ProbeTarget:
    text: str
    kind: str  # http | dns | resolve
    host: str
    port: int
    path: str  # http: path; dns: the name asked for


def parse_target(text: str) -> ProbeTarget:
    u = urlsplit(text)
    try:
        if u.scheme in ("http", "https") and u.hostname:
            return ProbeTarget(text, "http", u.hostname, u.port or (443 if u.scheme == "https" else 80), u.path or "/")
        if u.scheme == "dns" and u.hostname and u.path.strip("/"):
            return ProbeTarget(text, "dns", u.hostname, u.port or 53, u.path.strip("/"))
    except ValueError:
        pass
    name = text[4:] if u.scheme == "dns" and not u.netloc else ("" if u.scheme else text)
    if name and all(c.isalnum() or c in ".-" for c in name) and not _is_ip(name):
        return ProbeTarget(text, "resolve", name, 0, "")
    raise HearthNetError("config_invalid", f"emergency.probe_targets: {text!r} is not https://host/path, dns://server/name or a host name")


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False



class UiConfig(_Section):
    enabled: bool = Field(True, description=("Serve the web UI (Gradio, with the `ui` extra) and the phone page /mobile/ on ui.host:ui.port; "
                                             "beyond loopback they ask for an API key."))
    host: str = Field("127.0.0.1", description="Address the web UI and OpenAI gateway listen on (plain HTTP: keep it on loopback unless the LAN is trusted).")
    port: int = Field(C.UI_DEFAULT_PORT, ge=0, le=65535, description="Port of the web UI and OpenAI gateway (0 = any free port).")
    gateway_enabled: bool = Field(True, description="Serve the OpenAI-compatible /v1 API (API key or signed member required).")
    launch_browser: bool = Field(False, description="Open a browser on start (off: most boxes are headless).")


class ObservabilityConfig(_Section):
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Lowest level logged.")
    log_dir: Path = Field(Path("logs"), description="JSON-lines log files.")
    metrics_enabled: bool = Field(True, description="Serve /metrics.")
    trace_ring_buffer: int = Field(C.TRACE_RING_BUFFER, ge=1, description="Recent calls kept for /trace/recent.")


SECTIONS: dict[str, type[_Section]] = {
    "identity": IdentityConfig,
    "community": CommunityConfig,
    "events": EventsConfig,
    "transport": TransportConfig,
    "discovery": DiscoveryConfig,
    "bus": BusConfig,
    "llm": LlmConfig,
    "models": ModelsConfig,
    "embedding": EmbeddingConfig,
    "rag": RagConfig,
    "file": FileConfig,
    "market": MarketConfig,
    "chat": ChatConfig,
    "emergency": EmergencyConfig,
    "ui": UiConfig,
    "observability": ObservabilityConfig,
}


class Config(BaseSettings):
    """All sections. Build through `load()`, which also resolves paths."""

    model_config = SettingsConfigDict(
        env_prefix=C.ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    identity: IdentityConfig = IdentityConfig()
    community: CommunityConfig = CommunityConfig()
    events: EventsConfig = EventsConfig()
    transport: TransportConfig = TransportConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    bus: BusConfig = BusConfig()
    llm: LlmConfig = LlmConfig()
    models: ModelsConfig = ModelsConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    rag: RagConfig = RagConfig()
    file: FileConfig = FileConfig()
    market: MarketConfig = MarketConfig()
    chat: ChatConfig = ChatConfig()
    emergency: EmergencyConfig = EmergencyConfig()
    ui: UiConfig = UiConfig()
    observability: ObservabilityConfig = ObservabilityConfig()

    # Not a file key: set by load() from --data-dir / HEARTHNET_HOME.
    data_dir: Path = Field(Path("."), exclude=True)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init kwargs); no .env, no secrets dir.
        return (env_settings, init_settings)

    # --- derived paths -------------------------------------------------------
    def path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.data_dir / p

    @property
    def keys_dir(self) -> Path:
        return self.path(self.identity.keys_dir)

    def community_dir(self, community_id: str | None = None) -> Path:
        cid = community_id or self.community.community_id
        if not cid:
            raise HearthNetError("not_initialised", "this node has no community yet (hearthnet init --create-community NAME)")
        return self.path(self.community.state_dir) / cid

    def event_db_path(self, community_id: str | None = None) -> Path:
        return self.community_dir(community_id) / C.EVENT_DB_FILE

    def snapshots_dir(self, community_id: str | None = None) -> Path:
        return self.community_dir(community_id) / "snapshots"


# --- loading -------------------------------------------------------------------


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / C.APP_NAME


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    raw = data_dir or os.environ.get(C.ENV_HOME) or default_data_dir()
    return Path(raw).expanduser().absolute()


def resolve_config_path(data_dir: Path, config_path: Path | str | None = None) -> Path:
    raw = config_path or os.environ.get(C.ENV_CONFIG)
    return Path(raw).expanduser().absolute() if raw else data_dir / C.CONFIG_FILE_NAME


def read_file(config_path: Path, *, required: bool = False) -> dict[str, Any]:
    """The TOML file's table, or {} when it does not exist and is not required."""
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        if required:
            raise HearthNetError("config_invalid", f"config file {config_path} does not exist", file=str(config_path)) from None
        return {}
    except OSError as exc:
        raise HearthNetError("config_invalid", f"cannot read config file {config_path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HearthNetError("config_invalid", f"{config_path}: not valid TOML: {exc}", file=str(config_path)) from exc
    if "data_dir" in data:
        raise HearthNetError(
            "config_invalid",
            f"{config_path}: data_dir is not a file key; use --data-dir or {C.ENV_HOME}",
            file=str(config_path),
            key="data_dir",
        )
    return data


def load(
    data_dir: Path | str | None = None,
    config_path: Path | str | None = None,
    *,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Load the config for a data dir. Raises HearthNetError("config_invalid")."""
    home = resolve_data_dir(data_dir)
    cfg_path = resolve_config_path(home, config_path)
    explicit = bool(config_path or os.environ.get(C.ENV_CONFIG))
    data = read_file(cfg_path, required=explicit)
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Config(**data, data_dir=home)
    except ValidationError as exc:
        raise _config_error(exc, data, cfg_path) from None


def check_table(data: dict[str, Any], path: Path) -> None:
    """A table of config keys (a render-profile --settings file) against the config's shape;
    config_invalid naming `path`, the key and what was expected."""
    try:
        Config(**data, data_dir=Path(path).parent)
    except ValidationError as exc:
        raise _config_error(exc, data, Path(path)) from None


def default_config(data_dir: Path | str | None = None) -> Config:
    """All defaults, ignoring any file (the environment still applies)."""
    return Config(data_dir=resolve_data_dir(data_dir))


def file_data(config: Config) -> dict[str, Any]:
    """The sections that differ from the defaults, as a TOML-ready table."""
    return config.model_dump(mode="json", exclude_defaults=True, exclude_none=True)


def save(config: Config, path: Path | None = None) -> Path:
    """Atomically write the non-default keys of `config` as a new TOML file."""
    target = path or (config.data_dir / C.CONFIG_FILE_NAME)
    header = "# HearthNet node configuration. Keys: docs/configuration.md\n"
    atomic_write_text(target, header + tomli_w.dumps(file_data(config)), mode=0o644)
    return target


def set_keys(path: Path, data_dir: Path, changes: dict[str, dict[str, Any]]) -> Config:
    """Edit keys in the TOML file at `path`, keeping its comments and layout.

    The edited text is validated through `load` before it replaces the file, so
    a bad value leaves the file as it was. Environment overrides never leak in.
    """
    try:
        doc = tomlkit.parse(path.read_text("utf-8")) if path.exists() else tomlkit.document()
    except (tomlkit.exceptions.ParseError, OSError, UnicodeDecodeError) as exc:
        raise HearthNetError("config_invalid", f"{path}: cannot edit: {exc}") from None
    if not doc.as_string().strip():  # a file holding only the header comment keeps it once
        doc.add(tomlkit.comment("HearthNet node configuration. Keys: docs/configuration.md"))
    for section, values in changes.items():
        table = doc.get(section)
        if table is None:
            table = tomlkit.table()
            doc[section] = table
        for k, v in values.items():
            table[k] = str(v) if isinstance(v, Path) else v
    text = tomlkit.dumps(doc)
    try:
        data = tomllib.loads(text)
        Config(**data, data_dir=data_dir)
    except ValidationError as exc:
        raise _config_error(exc, data, path) from None
    if not (path.exists() and path.read_text("utf-8") == text):  # a re-run that sets the same keys leaves the file alone
        atomic_write_text(path, text, mode=0o644)
    return load(data_dir, path)


def updated(config: Config, section: str, **values: Any) -> Config:
    """A copy of `config` with keys of one section replaced (validated)."""
    merged = config.model_dump(mode="python")
    merged[section] = {**merged[section], **values}
    merged.pop("data_dir", None)
    try:
        return Config(**merged, data_dir=config.data_dir)
    except ValidationError as exc:
        raise _config_error(exc, merged, None) from None


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _config_error(exc: ValidationError, data: dict[str, Any], cfg_path: Path | None) -> HearthNetError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = validation_path(exc, "")
    env_name = C.ENV_PREFIX + "__".join(p.upper() for p in loc)
    if env_name in os.environ:
        where = f"environment {env_name}"
    elif cfg_path is not None:
        where = str(cfg_path)
    else:
        where = "config"
    if err["type"] == "extra_forbidden":
        expected = "no such key (see docs/configuration.md)"
    elif err["type"] == "missing":
        expected = "a value is required"
    else:
        expected = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "…"  # keep the error one readable line
    shown = "" if err["type"] in {"extra_forbidden", "missing"} else f" = {text}"
    return HearthNetError(
        "config_invalid",
        f"{where}: {key}{shown}: {expected}",
        key=key,
        value=repr(value)[:200],
        expected=expected,
    )


__all__ = [
    "SECTIONS",
    "BusConfig",
    "check_table",
    "ChatConfig",
    "CommunityConfig",
    "Config",
    "DiscoveryConfig",
    "EmbeddingConfig",
    "EmergencyConfig",
    "EventsConfig",
    "FileConfig",
    "IdentityConfig",
    "LlmBackendConfig",
    "LlmConfig",
    "MarketConfig",
    "ObservabilityConfig",
    "RagConfig",
    "TransportConfig",
    "UiConfig",
    "default_config",
    "default_data_dir",
    "load",
    "resolve_config_path",
    "resolve_data_dir",
    "save",
    "set_keys",
    "updated",
]
