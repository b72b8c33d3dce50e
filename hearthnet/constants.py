"""Every named constant of HearthNet, and nowhere else.

Values a village or a test may need to change are the *defaults* of config keys
(see hearthnet.config and docs/configuration.md); the code reads the config, not
these names, wherever the issue calls for a knob.
"""

# --- contract -------------------------------------------------------------
CONTRACT_VERSION = "1.0"
EVENT_SCHEMA_VERSION = 1
SNAPSHOT_SCHEMA_VERSION = 1
MANIFEST_SCHEMA_VERSION = 1

# Domain-separation tags: a signature made for one kind of object can never be
# replayed as another kind (an event is never a valid manifest, and so on).
SIGN_DOMAIN_EVENT = b"hearthnet/event/v1"
SIGN_DOMAIN_NODE_MANIFEST = b"hearthnet/node-manifest/v1"
SIGN_DOMAIN_COMMUNITY_MANIFEST = b"hearthnet/community-manifest/v1"
SIGN_DOMAIN_SNAPSHOT = b"hearthnet/snapshot/v1"
SIGN_DOMAIN_INVITE = b"hearthnet/invite/v1"
SIGN_DOMAIN_RPC = b"hearthnet/rpc/v1"

# --- discovery / manifests (reference §0.2) --------------------------------
MANIFEST_TTL_SECONDS = 30
MANIFEST_REPUBLISH_INTERVAL_SECONDS = 20
DISCOVERY_UDP_INTERVAL_ACTIVE_SECONDS = 5
DISCOVERY_UDP_INTERVAL_STABLE_SECONDS = 30
DISCOVERY_UDP_MULTICAST_GROUP = "239.255.42.42"
DISCOVERY_UDP_PORT = 42424
MDNS_SERVICE_TYPE = "_hearthnet._tcp.local."

# --- emergency --------------------------------------------------------------
EMERGENCY_PROBE_INTERVAL_ONLINE = 10
EMERGENCY_PROBE_INTERVAL_OFFLINE = 2
EMERGENCY_PROBE_TIMEOUT_SECONDS = 2
EMERGENCY_TRANSITION_DEBOUNCE_SECONDS = 30

# --- transport ----------------------------------------------------------------
TRANSPORT_DEFAULT_PORT = 7080
CONNECTION_IDLE_SECONDS = 60
RECONNECT_BACKOFF_CAP_SECONDS = 30
STREAM_WINDOW_FRAMES = 16
STREAM_ACK_INTERVAL_FRAMES = 8
STREAM_ACK_TIMEOUT_SECONDS = 5
RPC_DEFAULT_TIMEOUT_SECONDS = 30
LLM_GENERATION_DEFAULT_TIMEOUT_SECONDS = 120
RATE_LIMIT_SOFT_RPS_PER_CAP = 10
RATE_LIMIT_HARD_RPS_PER_CAP = 100
RATE_LIMIT_SOFT_RPS_TOTAL = 100
RATE_LIMIT_HARD_RPS_TOTAL = 1000
TRANSPORT_MAX_BODY_BYTES = 1024 * 1024
# How far a peer's clock may be from ours before a signed request is stale.
CLOCK_SKEW_SECONDS = 120

# --- llama.cpp: the one build, and its worker process ------------------------------
LLAMA_CPP_VERSION = "0.3.36"
# x86-64-v3 class, never -march=native: a guest whose CPUID advertises AVX-512 or AMX that
# the hypervisor does not execute dies at the first decode with a native build (issue 13).
LLAMA_CPP_PORTABLE_CMAKE_ARGS_X86_64 = (
    "-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON",
    "-DGGML_AVX_VNNI=OFF", "-DGGML_AVX512=OFF", "-DGGML_AVX512_VBMI=OFF", "-DGGML_AVX512_VNNI=OFF", "-DGGML_AVX512_BF16=OFF",
    "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF",
    # ggml's own thread pool, not OpenMP: an OpenMP build needs libgomp.so.1, which a minimal
    # Debian box does not have (the village VM's anchor failed to load libllama.so for it).
    "-DGGML_OPENMP=OFF",
)
LLAMA_CPP_PORTABLE_CMAKE_ARGS_OTHER = ("-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF")
ENV_LLAMA_CMAKE_ARGS = "HEARTHNET_LLAMA_CMAKE_ARGS"  # replaces the pinned flags (a box without AVX2)
ENV_WHEELHOUSE = "HEARTHNET_WHEELHOUSE"  # default: $XDG_CACHE_HOME/hearthnet/wheels
# models fetch keeps this much disk free beyond the files it still has to fetch.
MODELS_DISK_MARGIN_BYTES = 256 << 20
# The offline bundle's installer: uv's binary from its PyPI wheel (tools/uv in the bundle). Under
# emulation pip spent 72 s of a 254 s converge on one base install; uv (native code) installs the same
# wheels, compiling their bytecode on every core (docs/provisioning.md, "why uv installs").
UV_VERSION = "0.13.9"
LLM_WORKER_RESTART_BACKOFF_FIRST_SECONDS = 1.0
LLM_WORKER_RESTART_BACKOFF_MAX_SECONDS = 60.0
# A worker that ran this long without dying starts the backoff over at its first step.
LLM_WORKER_STABLE_SECONDS = 60.0
LLM_WORKER_FLUSH_SECONDS = 0.05
# OpenAI tool calling (services/llm/tools.py): OpenAI's own limit on tools per request, and
# schema sizes that keep a request well inside the transport's body limit.
LLM_MAX_TOOLS = 128
LLM_TOOL_SCHEMA_MAX_BYTES = 64 * 1024
LLM_TOOLS_MAX_BYTES = 256 * 1024
# How many characters of a call's arguments one streamed delta carries (the gateway re-emits
# a call it got whole as OpenAI's fragments, as servers that stream calls do).
LLM_TOOL_ARGUMENT_FRAGMENT_CHARS = 24

# --- blobs ------------------------------------------------------------------
CHUNK_SIZE_BYTES = 262144
BLOB_GC_DISK_THRESHOLD = 0.80
BLOB_GC_TARGET_MARGIN = 0.10  # a collection frees space until usage is this far below the threshold
BLOB_GC_INTERVAL_SECONDS = 300
BLOB_ORPHAN_GRACE_SECONDS = 3600  # uploaded chunks wait this long for the file.put that names them
BLOB_MAX_MANIFEST_BYTES = 1 << 20  # a manifest of ~13,000 chunks: files up to ~3 GiB
BLOB_FETCH_CONCURRENCY = 2  # streamed requests in flight per source
BLOB_BATCH_MAX_CHUNKS = 32  # chunks in one streamed raw request (8 MiB): long streams read like a plain download
BLOB_SOURCE_MAX_FAILURES = 3  # a source that fails this many chunk requests is dropped for the fetch

# --- embeddings -------------------------------------------------------------
EMBED_MAX_TEXTS = 256  # texts in one embed.text request
EMBED_MAX_TEXT_CHARS = 20000
EMBED_TIMEOUT_SECONDS = 120  # one embed.text call (a batch of texts): the server's limit, and the deadline RAG gives its calls
RAG_INGEST_TIMEOUT_SECONDS = 1800  # one document's rag.ingest (every batch embedded): the server's limit, and the CLI's deadline
EMBED_WARMUP_SECONDS = 900  # `rag seed` waits this long for a cold embedder (torch and the model loading on a slow box)

# --- rag --------------------------------------------------------------------
# The reference's 1000/200 assumed a long-context embedder; a chunk is never longer
# than the embedder reads (MiniLM: 256 word pieces), so the ceiling is the model's.
RAG_CHUNK_TOKENS = 1000  # upper bound; the embedder's max_tokens wins when smaller
RAG_CHUNK_OVERLAP_FRACTION = 0.15  # overlap as a share of the chunk length
RAG_DEFAULT_K = 5
RAG_MAX_K = 20
RAG_RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)
RAG_CANDIDATES = 50  # per ranking, before fusion
RAG_MMAP_BYTES = 1 << 30  # address space (not memory) a corpus database may map

# --- bus health ------------------------------------------------------------------
HEALTH_WINDOW_CALLS = 100
HEALTH_QUARANTINE_THRESHOLD = 0.5
HEALTH_QUARANTINE_SECONDS = 60

# --- event log ----------------------------------------------------------------
EVENT_LOG_RETENTION_DAYS = 30
SNAPSHOT_LAG_LAMPORT = 1000
SNAPSHOTS_KEEP = 7
SYNC_INTERVAL_SECONDS = 5
# One event's canonical payload may not exceed this many bytes.
EVENT_MAX_PAYLOAD_BYTES = 65536
# Events from authors not (yet) known to be members wait here, bounded.
EVENT_MAX_PARKED = 10000
# SQLite `synchronous` for the event log: NORMAL in WAL mode survives a process
# crash (kill -9) but may lose the last commits on power loss; FULL survives both.
EVENT_LOG_SYNCHRONOUS = "NORMAL"
# Re-verification uses worker processes above this many events (pynacl does not
# speed up with threads).
VERIFY_PARALLEL_MIN_EVENTS = 2000

# --- observability ---------------------------------------------------------------
TRACE_RING_BUFFER = 10000
LOG_RETENTION_DAYS = 14

# --- invites ----------------------------------------------------------------
INVITE_PREFIX = "hearthnet://v1/"
INVITE_DEFAULT_TTL_SECONDS = 86400
INVITE_MAX_TTL_SECONDS = 30 * 86400
INVITE_MAX_CHARS = 4096  # a QR code holds it comfortably

# --- ui ---------------------------------------------------------------------
UI_DEFAULT_PORT = 7860
FIRST_RUN_WATCH_SECONDS = 2.0  # how often the first-run page looks for a community another process made or joined

# --- market / chat --------------------------------------------------------
MARKET_DEFAULT_TTL_SECONDS = 604800
MARKET_MAX_TTL_SECONDS = 2592000
MARKET_SWEEP_INTERVAL_SECONDS = 60  # how often a node closes its own posts past their expiry

# --- doctor -------------------------------------------------------------------
# A clock earlier than this is certainly wrong (boxes without an RTC boot in 1970).
CLOCK_FLOOR_ISO = "2025-01-01T00:00:00Z"
DOCTOR_MIN_FREE_DISK_BYTES = 512 * 1024 * 1024

# --- files and directories ------------------------------------------------------
APP_NAME = "hearthnet"
CONFIG_FILE_NAME = "hearthnet.toml"
NODE_KEY_FILE = "node.key"
COMMUNITY_ROOT_KEY_FILE = "community-root.key"
EVENT_DB_FILE = "events.db"
UI_SCRATCH_DIR = "ui-scratch"  # in the data dir: what the web UI hands a browser (downloads, QR codes); emptied at start
COMMUNITY_FILE = "community.json"  # the community this node belongs to: runtime state, kept out of the (rendered) config
RUN_FILE = "run/node.json"  # written by a running node, read by the CLI (Home.read_run_file)
ENV_HOME = "HEARTHNET_HOME"
ENV_CONFIG = "HEARTHNET_CONFIG"
ENV_PREFIX = "HEARTHNET_"

# --- CLI exit codes (reference M12 §6, plus 6 for --check) ----------------------
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_NODE = 3
EXIT_AUTH = 4
EXIT_CAPACITY = 5
EXIT_WOULD_CHANGE = 6
