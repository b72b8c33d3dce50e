"""What box is this? Hardware facts for rendering a profile, and the tier they put the box in.

Every probe degrades instead of failing: a string it cannot read is "unknown", a number is
null, a list is empty, and the probe's name goes into `unknown` — a Pi without `lspci` or a
container without `/sys` still gets a facts document. Probes read files under `root` (so a
recorded tree can stand in for `/`) and run `nvidia-smi`, `lspci` and `ip` only when present,
each with a short timeout.

The document follows profiles/schemas/hardware.schema.json, generated from `HardwareFacts`
(modelled on the `hardware_profile` idea of seeds/hypersync-nvm.md, whose schema was never
published). Only `render_facts()` — a fixed, rounded subset — reaches rendered files, so two
detections of the same box render the same bytes.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hearthnet.errors import HearthNetError, validation_message, validation_path

T = TypeVar("T")
UNKNOWN = "unknown"
Tier = Literal["gpu-xl", "gpu", "cpu", "small", "micro"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cpu(_M):
    model: str = Field(UNKNOWN, description="CPU model name as the kernel reports it.")
    cores: int | None = Field(None, ge=1, description="Physical cores (null: unknown).")
    threads: int | None = Field(None, ge=1, description="Logical CPUs (null: unknown).")


class Gpu(_M):
    vendor: Literal["nvidia", "amd", "intel", "other", "unknown"] = "unknown"
    model: str = UNKNOWN
    vram_gb: float | None = Field(None, ge=0, description="Dedicated memory in GiB (null: unknown, or shared memory).")
    source: Literal["nvidia-smi", "sysfs", "lspci"]


class NetInterface(_M):
    name: str
    mac: str | None = None
    up: bool = False
    wireless: bool = False
    addresses: list[str] = Field(default_factory=list, description="IPv4/IPv6 addresses with prefix length.")


class HardwareFacts(_M):
    """Facts about one box, as `hearthnet detect-hardware --json` prints them."""

    schema_version: Literal[1] = 1
    arch: str = Field(UNKNOWN, description="Machine architecture (x86_64, aarch64, ...).")
    os: str = UNKNOWN
    cpu: Cpu = Field(default_factory=Cpu)
    ram_gb: float | None = Field(None, ge=0, description="Total memory in GiB.")
    gpus: list[Gpu] = Field(default_factory=list)
    disk_free_gb: float | None = Field(None, ge=0, description="Free space where the node keeps its data (changes all the time: never rendered).")
    raspberry_pi: str | None = Field(None, description="Raspberry Pi model string, when the box is one.")
    interfaces: list[NetInterface] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list, description="Probes that could not read anything.")


# --- probes ------------------------------------------------------------------------------------
def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout if p.returncode == 0 else None


def _read(root: Path, path: str) -> str | None:
    try:
        return (root / path.lstrip("/")).read_text(errors="replace")
    except OSError:
        return None


def _cpu(root: Path) -> Cpu:
    info = _read(root, "/proc/cpuinfo") or ""
    model = UNKNOWN
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", info, re.M)
        if m:
            model = m.group(1).strip()
            break
    threads = len(re.findall(r"^processor\s*:", info, re.M)) or None
    pairs = set(re.findall(r"^physical id\s*:\s*(\d+).*?^core id\s*:\s*(\d+)", info, re.M | re.S))
    cores = len(pairs) or threads  # ARM boards list no core ids: one core per processor
    if root == Path("/"):
        threads = threads or os.cpu_count()
        cores = cores or threads
    return Cpu(model=model, cores=cores, threads=threads)


def _ram_gb(root: Path) -> float | None:
    m = re.search(r"^MemTotal:\s*(\d+)\s*kB", _read(root, "/proc/meminfo") or "", re.M)
    return round(int(m.group(1)) / 2**20, 1) if m else None


def _pi(root: Path) -> str | None:
    for p in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        text = (_read(root, p) or "").replace("\x00", "").strip()
        if "Raspberry Pi" in text:
            return text
    return None


_VENDORS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}
_LSPCI_NAMES = {"nvidia": ("nvidia",), "amd": ("advanced micro devices", "amd", "ati "), "intel": ("intel",)}


def _gpus(root: Path, run: Callable[[list[str]], str | None]) -> list[Gpu]:
    out = run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
    if out:
        gpus = []
        for line in out.strip().splitlines():
            name, _, mem = line.rpartition(",")
            try:
                vram = round(float(mem) / 1024, 1)
            except ValueError:
                vram = None
            gpus.append(Gpu(vendor="nvidia", model=name.strip() or UNKNOWN, vram_gb=vram, source="nvidia-smi"))
        return gpus
    names: list[str] = []
    for line in (run(["lspci", "-mm"]) or "").splitlines():
        parts = re.findall(r'"([^"]*)"', line)
        if len(parts) >= 3 and re.search(r"VGA|3D|Display", parts[0]):
            names.append(f"{parts[1]} {parts[2]}".strip())
    gpus = []
    drm = root / "sys/class/drm"
    for card in sorted(drm.glob("card[0-9]")) if drm.is_dir() else []:
        vendor = _VENDORS.get((_read(root, f"/sys/class/drm/{card.name}/device/vendor") or "").strip(), "other")
        vram_b = (_read(root, f"/sys/class/drm/{card.name}/device/mem_info_vram_total") or "").strip()  # amdgpu reports it
        vram = round(int(vram_b) / 2**30, 1) if vram_b.isdigit() else None
        label = next((n for n in names if any(k in n.lower() for k in _LSPCI_NAMES.get(vendor, ()))), UNKNOWN)
        gpus.append(Gpu(vendor=vendor, model=label, vram_gb=vram, source="sysfs"))
    if not gpus:
        gpus = [Gpu(vendor="other", model=n, source="lspci") for n in names]
    return gpus


def _interfaces(root: Path, run: Callable[[list[str]], str | None]) -> list[NetInterface]:
    addrs: dict[str, list[str]] = {}
    raw = run(["ip", "-j", "addr"])
    if raw:
        try:
            for link in json.loads(raw):
                addrs[link["ifname"]] = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
        except (ValueError, KeyError, TypeError):
            addrs = {}
    out = []
    net = root / "sys/class/net"
    for d in sorted(net.iterdir()) if net.is_dir() else []:
        if d.name == "lo":
            continue
        mac = (_read(root, f"/sys/class/net/{d.name}/address") or "").strip() or None
        state = (_read(root, f"/sys/class/net/{d.name}/operstate") or "").strip()
        out.append(NetInterface(name=d.name, mac=mac, up=state == "up", wireless=(d / "wireless").exists(), addresses=addrs.get(d.name, [])))
    return out


def detect(root: Path = Path("/"), data_dir: Path | None = None, run: Callable[[list[str]], str | None] | None = None) -> HardwareFacts:
    """Facts about this box (or the tree under `root`); never raises for a missing probe."""
    live = root == Path("/")
    run = run or (_run if live else (lambda cmd: None))
    unknown: list[str] = []

    def probe(name: str, fn: Callable[[], T], empty: T) -> T:
        try:
            value = fn()
        except Exception:  # a probe that breaks is a probe that knows nothing
            value = empty
        if value in (None, UNKNOWN, []) or value == empty:
            unknown.append(name)
        return value

    def disk() -> float | None:
        usage = shutil.disk_usage(data_dir if data_dir and data_dir.exists() else root)
        return round(usage.free / 2**30, 1)

    cpu = probe("cpu", lambda: _cpu(root), Cpu())
    gpus = probe("gpus", lambda: _gpus(root, run), [])
    if not gpus and ((root / "sys/class/drm").is_dir() or (live and shutil.which("lspci"))):
        unknown.remove("gpus")  # we could look, and there is none: known to have no GPU
    return HardwareFacts(
        arch=(platform.machine() or UNKNOWN) if live else UNKNOWN,
        os=f"{platform.system()} {platform.release()}".strip() if live else UNKNOWN,
        cpu=cpu,
        ram_gb=probe("ram", lambda: _ram_gb(root), None),
        gpus=gpus,
        disk_free_gb=probe("disk", disk, None),
        raspberry_pi=_pi(root),
        interfaces=probe("interfaces", lambda: _interfaces(root, run), []),
        unknown=unknown,
    )


def load_facts(path: Path) -> HardwareFacts:
    """A recorded facts file (`--hardware FACTS.json`). Bad input: one line naming the file and key."""
    try:
        return HardwareFacts.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise HearthNetError("not_found", f"{path}: cannot read hardware facts ({exc.strerror})") from None
    except ValidationError as exc:
        raise HearthNetError("config_invalid", f"{path}: at {validation_message(exc, '(top)')}", path=str(path), key=validation_path(exc, "(top)")) from None


# --- tiers -------------------------------------------------------------------------------------
# Written once, documented in docs/provisioning.md ("Hardware tiers"), tested with recorded boxes.
TIER_RULES: list[tuple[Tier, str]] = [
    ("gpu-xl", "a GPU with at least 20 GiB of VRAM: large local models"),
    ("gpu", "a GPU with at least 8 GiB of VRAM: mid-size models on the GPU"),
    ("cpu", "no such GPU, at least 12 GiB of RAM: mid-size quantised models on the CPU"),
    ("small", "at least 6 GiB of RAM: the tiny embedded model only"),
    ("micro", "less (or unknown) RAM, e.g. a 4 GB Raspberry Pi: no local LLM, calls go to the mesh"),
]


def tier(facts: HardwareFacts) -> Tier:
    vram = max((g.vram_gb or 0.0 for g in facts.gpus if g.vendor in ("nvidia", "amd")), default=0.0)
    ram = facts.ram_gb or 0.0
    if vram >= 20:
        return "gpu-xl"
    if vram >= 8:
        return "gpu"
    if ram >= 12:
        return "cpu"
    if ram >= 6:
        return "small"
    return "micro"


# Memory sizes boxes are sold with. A box shows a little less than it has (firmware, GPU
# carve-outs): 3.7 GiB visible on a 4 GB Pi is 4, 15.5 on a 16 GB mini PC is 16.
_LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def _bucket(gb: float | None) -> int:
    if not gb:
        return 0
    return max((x for x in _LADDER if x <= gb * 1.1), default=0)


def render_facts(facts: HardwareFacts) -> dict[str, Any]:
    """The only facts that reach rendered files: fixed keys, rounded, nothing that changes minute to minute."""
    best = max(facts.gpus, key=lambda g: g.vram_gb or 0.0, default=None)
    return {
        "arch": facts.arch,
        "cores": facts.cpu.cores or 0,
        "ram_tier_gb": _bucket(facts.ram_gb),
        "vram_tier_gb": _bucket(best.vram_gb if best else None),
        "gpu_model": best.model if best else None,
        "raspberry_pi": facts.raspberry_pi is not None,
        "tier": tier(facts),
    }


VOLATILE = ("disk", "interfaces")  # probes whose readings change from run to run


def stable(facts: HardwareFacts) -> HardwareFacts:
    """The facts without what changes from run to run (free disk, interfaces and their addresses):
    what a provisioner records for `render-profile --hardware`, so an unchanged box renders unchanged."""
    return facts.model_copy(update={"disk_free_gb": None, "interfaces": [], "unknown": [u for u in facts.unknown if u not in VOLATILE]})


def schema() -> dict[str, Any]:
    s = HardwareFacts.model_json_schema()
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["$id"] = "https://hearthnet.invalid/schemas/hardware.schema.json"
    return s


__all__ = ["TIER_RULES", "VOLATILE", "stable", "Cpu", "Gpu", "HardwareFacts", "NetInterface", "detect", "load_facts", "render_facts", "schema", "tier"]
