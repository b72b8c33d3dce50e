"""The one llama.cpp build: llama-cpp-python compiled once, with pinned portable flags, into a wheelhouse.

Why not plain `pip install llama-cpp-python`: pip compiles it with GGML_NATIVE=ON, for the CPU
it happens to build on. A VM whose CPUID advertises AVX-512 or AMX that the hypervisor does not
execute then dies at the first decode (SIGSEGV in libggml-cpu). And pip caches that wheel by
version, not by build flags, so the native wheel comes back whatever CMAKE_ARGS says later.

So the node, the tests and the offline bundle install one wheel, built here with
x86-64-v3-class flags (AVX2/FMA/F16C/BMI2, no AVX-512, no AMX) outside pip's cache, into

    $XDG_CACHE_HOME/hearthnet/wheels/llama-cpp-python-<version>-<python>-<machine>-<flags hash>/
        llama_cpp_python-<version>-….whl
        build.json      the flags, the wheel's sha256 and the features its library reports

and installed from there only (`--find-links DIR --only-binary llama-cpp-python`). Before a
wheel is used, its library is loaded in a child process and `llama_print_system_info()` must
report exactly the CPU features the flags ask for: a native build fails loudly here instead
of crashing the node later.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.storage import sha256_of

PACKAGE = "llama-cpp-python"
# CMake option → the name ggml-cpu reports in llama_print_system_info() (x86 SIMD only: the
# features that decide whether the library runs on a CPU).
X86_FEATURES = {
    "GGML_AVX": "AVX", "GGML_AVX2": "AVX2", "GGML_FMA": "FMA", "GGML_F16C": "F16C", "GGML_BMI2": "BMI2", "GGML_AVX_VNNI": "AVX_VNNI",
    "GGML_AVX512": "AVX512", "GGML_AVX512_VBMI": "AVX512_VBMI", "GGML_AVX512_VNNI": "AVX512_VNNI", "GGML_AVX512_BF16": "AVX512_BF16",
    "GGML_AMX_TILE": "AMX_TILE", "GGML_AMX_INT8": "AMX_INT8", "GGML_AMX_BF16": "AMX_BF16",
}

# Run in a child process: loading a library built for another CPU may crash it, and the
# parent must live to say so. ctypes only, so numpy (llama_cpp's import) is not needed.
_PROBE = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.llama_print_system_info.restype = ctypes.c_char_p
print(lib.llama_print_system_info().decode())
"""


def machine() -> str:
    return platform.machine().lower() or "unknown"


def python_tag() -> str:
    return f"cp{sys.version_info.major}{sys.version_info.minor}"


def portable_flags() -> tuple[str, ...]:
    """The pinned CMake flags for this machine, or HEARTHNET_LLAMA_CMAKE_ARGS when set (a box without AVX2)."""
    given = os.environ.get(C.ENV_LLAMA_CMAKE_ARGS, "").split()
    if given:
        bad = [f for f in given if not re.fullmatch(r"-D[A-Z0-9_]+=[A-Za-z0-9_.]+", f)]
        if bad:
            raise HearthNetError("config_invalid", f"{C.ENV_LLAMA_CMAKE_ARGS}: {bad[0][:60]!r} is not a -DNAME=VALUE CMake flag")
        if "-DGGML_NATIVE=ON" in given or "-DGGML_NATIVE=OFF" not in given:
            raise HearthNetError("config_invalid", f"{C.ENV_LLAMA_CMAKE_ARGS} must hold -DGGML_NATIVE=OFF: a native build crashes on other CPUs")
        # OpenMP off unless the flags say otherwise: an OpenMP build needs libgomp, which a minimal box lacks.
        return tuple(given) if any(f.startswith("-DGGML_OPENMP=") for f in given) else (*given, "-DGGML_OPENMP=OFF")
    return C.LLAMA_CPP_PORTABLE_CMAKE_ARGS_X86_64 if machine() in ("x86_64", "amd64") else C.LLAMA_CPP_PORTABLE_CMAKE_ARGS_OTHER


def wheelhouse_root() -> Path:
    given = os.environ.get(C.ENV_WHEELHOUSE)
    if given:
        return Path(given).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hearthnet" / "wheels"


def key(flags: tuple[str, ...], version: str = C.LLAMA_CPP_VERSION) -> str:
    """The wheelhouse folder of one build: version, Python tag, machine and a hash of the flags."""
    digest = hashlib.sha256(" ".join(flags).encode()).hexdigest()[:12]
    return f"{PACKAGE}-{version}-{python_tag()}-{machine()}-{digest}"


def features(system_info: str) -> dict[str, int]:
    """`CPU : SSE3 = 1 | AVX2 = 1 | … |` as {"SSE3": 1, "AVX2": 1, …} (the CPU backend's part)."""
    out: dict[str, int] = {}
    for name, value in re.findall(r"([A-Z][A-Z0-9_]*)\s*=\s*(\d+)", system_info):
        out.setdefault(name, int(value))
    return out


def expected_features(flags: tuple[str, ...]) -> dict[str, int]:
    """What the library must report for these flags: 1 for each x86 feature switched on, 0 for every other."""
    if machine() not in ("x86_64", "amd64"):
        return {}
    on = {m.group(1) for f in flags if (m := re.fullmatch(r"-D(GGML_[A-Z0-9_]+)=(?:ON|1|TRUE)", f, re.I))}
    return {feat: int(opt in on) for opt, feat in X86_FEATURES.items()}


def mismatches(reported: dict[str, int], expected: dict[str, int]) -> list[str]:
    """One phrase per feature the library has and the flags do not allow, or lacks and they ask for."""
    bad = []
    for name, want in expected.items():
        have = reported.get(name, 0)
        if have != want:
            bad.append(f"{name} = {have} (the flags say {want})")
    # A feature the table does not know yet but that a native build on a newer CPU may bring.
    bad += [f"{n} = 1 (not allowed by the flags)" for n, v in reported.items()
            if v and n not in expected and expected and (n.startswith("AVX512") or n.startswith("AMX"))]
    return bad


CMAKE_CONFIG = "lib/cmake/ggml/ggml-config.cmake"  # where the wheel records ggml's build options


def recorded_options(cmake_config: str) -> dict[str, str]:
    """ggml's build options as its ggml-config.cmake records them: {"GGML_NATIVE": "OFF", …}."""
    return dict(re.findall(r'set\((GGML_[A-Z0-9_]+) "([^"]*)"\)', cmake_config))


def _switch(value: str) -> str:
    v = value.strip().upper()
    return "ON" if v in ("ON", "1", "TRUE", "YES") else "OFF" if v in ("OFF", "0", "FALSE", "NO", "") else v


def option_mismatches(recorded: dict[str, str], flags: tuple[str, ...]) -> list[str]:
    """One phrase per -DGGML_X=V flag the build did not record as V (GGML_NATIVE above all:
    on a CPU without AVX-512 a native build reports the same features as a portable one)."""
    if not recorded:
        return [f"no ggml build options recorded ({CMAKE_CONFIG})"]
    bad = []
    for f in flags:
        m = re.fullmatch(r"-D(GGML_[A-Z0-9_]+)=(\S+)", f)
        if m and _switch(recorded.get(m.group(1), "?")) != _switch(m.group(2)):
            bad.append(f"{m.group(1)} = {recorded.get(m.group(1), 'unset')} (the flags say {m.group(2)})")
    return bad


def installed_options() -> dict[str, str]:
    """The build options the installed llama-cpp-python recorded ({} when it recorded none)."""
    from importlib import metadata

    try:
        p = Path(str(metadata.distribution(PACKAGE).locate_file(CMAKE_CONFIG)))
        return recorded_options(p.read_text())
    except (metadata.PackageNotFoundError, OSError):
        return {}


def system_info_of(lib: Path) -> str:
    """llama_print_system_info() of one libllama.so, read in a child process."""
    try:
        p = subprocess.run([sys.executable, "-c", _PROBE, str(lib)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise HearthNetError("internal", f"loading {lib} took over 120 s") from None
    if p.returncode != 0:
        why = f"signal {-p.returncode}" if p.returncode < 0 else ((p.stderr.strip().splitlines() or ["no output"])[-1])
        raise HearthNetError("internal", f"cannot load {lib}: {why}")
    return p.stdout.strip()


def installed_lib() -> Path | None:
    """libllama.so of the llama_cpp package this Python would import, or None."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        for name in ("libllama.so", "libllama.dylib"):
            p = Path(base) / "lib" / name
            if p.is_file():
                return p
    return None


@dataclass(frozen=True)
class Build:
    version: str
    python: str
    machine: str
    flags: list[str]
    wheel: str  # file name, inside `dir`
    sha256: str
    system_info: str
    built_seconds: float
    options: dict[str, str]  # ggml's recorded build options
    dir: str = ""

    @property
    def wheel_path(self) -> Path:
        return Path(self.dir) / self.wheel

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _read_build(d: Path) -> Build | None:
    meta = d / "build.json"
    try:
        b = Build(**{**json.loads(meta.read_text()), "dir": str(d)})
    except (OSError, ValueError, TypeError):
        return None
    return b if b.wheel_path.is_file() and sha256_of(b.wheel_path) == b.sha256 else None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One build at a time per wheelhouse (a person and CI on one box)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _probe_wheel(wheel: Path) -> tuple[str, dict[str, str]]:
    """(system info, recorded build options) of a wheel, its library loaded from an unpacked copy."""
    with tempfile.TemporaryDirectory(prefix="llama-probe-") as tmp:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        lib = Path(tmp) / "llama_cpp" / "lib" / "libllama.so"
        if not lib.is_file():
            raise HearthNetError("internal", f"{wheel.name} holds no llama_cpp/lib/libllama.so")
        for so in lib.parent.iterdir():  # zipfile drops the mode bits
            so.chmod(0o755)
        cfg = Path(tmp) / CMAKE_CONFIG
        return system_info_of(lib), recorded_options(cfg.read_text()) if cfg.is_file() else {}


def problems(system_info: str, options: dict[str, str], flags: tuple[str, ...]) -> list[str]:
    """What differs between a build (its reported CPU features and recorded options) and the flags."""
    return mismatches(features(system_info), expected_features(flags)) + option_mismatches(options, flags)


def check(system_info: str, options: dict[str, str], flags: tuple[str, ...], what: str) -> None:
    """Raise unless the library reports the CPU features, and recorded the options, that the flags ask for."""
    bad = problems(system_info, options, flags)
    if bad:
        raise HearthNetError("config_invalid", f"{what} was not built with HearthNet's portable flags: {'; '.join(bad)} "
                             "(a native build crashes on CPUs that advertise features they cannot run: `hearthnet llama install`)")


def build(flags: tuple[str, ...] | None = None, *, verify: bool = True, say: Callable[[str], None] | None = None) -> Build:
    """The wheel for these flags (default: the portable ones), built once into the wheelhouse.

    `verify=False` is for other flag sets (the benchmark's native build): its features are
    recorded but not held to the portable set."""
    flags = portable_flags() if flags is None else flags
    root = wheelhouse_root()
    final = root / key(flags)
    found = _read_build(final)  # an entry appears whole (renamed into place): no lock needed to read one
    with contextlib.nullcontext() if found is not None else _locked(root):
        found = found or _read_build(final)
        if found is not None:
            if verify:
                check(found.system_info, found.options, flags, found.wheel)
            return found
        if final.exists():  # a stale or tampered entry: build it anew
            shutil.rmtree(final)
        for stale in root.glob(".build-*"):  # left by a build that was killed (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        tmp.chmod(0o755)
        try:
            log = tmp / "build.log"
            if say:
                say(f"building {PACKAGE} {C.LLAMA_CPP_VERSION} from source with {' '.join(flags)} (5-13 minutes on 2 cores; log: {log})")
            env = {**os.environ, "CMAKE_ARGS": " ".join(flags), "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1)}
            env.pop("FORCE_CMAKE", None)
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--no-binary", PACKAGE, "--wheel-dir", str(tmp),
                   f"{PACKAGE}=={C.LLAMA_CPP_VERSION}"]
            t0 = time.monotonic()
            with log.open("w") as out:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
            wheels = sorted(tmp.glob("*.whl"))
            if rc != 0 or len(wheels) != 1:
                kept = root / f"failed-{key(flags)}.log"
                shutil.copyfile(log, kept)
                tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["no output"]
                raise HearthNetError("internal", f"building {PACKAGE} failed (pip exit {rc}): {tail[0][:200]} — full log: {kept}")
            info, options = _probe_wheel(wheels[0])
            if verify:
                check(info, options, flags, wheels[0].name)
            b = Build(C.LLAMA_CPP_VERSION, python_tag(), machine(), list(flags), wheels[0].name, sha256_of(wheels[0]), info,
                      round(time.monotonic() - t0, 1), options)
            meta = {k: v for k, v in b.as_dict().items() if k != "dir"}
            (tmp / "build.json").write_text(json.dumps(meta, indent=2) + "\n")
            tmp.rename(final)  # the entry appears whole or not at all
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        built = _read_build(final)
        if built is None:
            raise HearthNetError("storage_error", f"the wheelhouse entry {final} did not read back")
        return built


def _pip(*args: str) -> None:
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True)
    if p.returncode != 0:
        last = [ln for ln in p.stderr.splitlines() if ln.strip()][-1:] or ["pip failed"]
        raise HearthNetError("internal", f"pip install {' '.join(args)[:200]}: {last[0][:300]}")


def installed_is(b: Build) -> bool:
    """Is the installed libllama.so the one inside this build's wheel (same bytes)?"""
    lib = installed_lib()
    if lib is None:
        return False
    with zipfile.ZipFile(b.wheel_path) as z:
        try:
            inside = z.read("llama_cpp/lib/libllama.so")
        except KeyError:
            return False
    return hashlib.sha256(inside).hexdigest() == sha256_of(lib)


def install(b: Build, *, extras: str = "server") -> None:
    """Install this build into the running Python, replacing any other llama-cpp-python (a native one from pip's cache)."""
    if not installed_is(b):
        _pip("--no-deps", "--force-reinstall", str(b.wheel_path))
    # Its dependencies (and the extra's) from the index; llama-cpp-python itself only ever from the wheelhouse.
    _pip("--find-links", b.dir, "--only-binary", PACKAGE, f"{PACKAGE}[{extras}]=={b.version}")
    lib = installed_lib()
    if lib is None or not installed_is(b):
        raise HearthNetError("internal", f"after installing {b.wheel}, Python imports another llama_cpp ({lib})")
    check(system_info_of(lib), installed_options(), tuple(b.flags), f"the installed {PACKAGE}")


def check_installed(flags: tuple[str, ...] | None = None) -> str:
    """The installed library's system info, after checking it against the flags (default: the portable ones)."""
    lib = installed_lib()
    if lib is None:
        raise HearthNetError("not_found", f"{PACKAGE} is not installed (`hearthnet llama install`)")
    info = system_info_of(lib)
    check(info, installed_options(), portable_flags() if flags is None else flags, f"the installed {PACKAGE} ({lib.parent.parent})")
    return info


__all__ = ["Build", "build", "check", "check_installed", "expected_features", "features", "install", "installed_is", "installed_lib",
           "installed_options", "key", "mismatches", "option_mismatches", "portable_flags", "problems", "recorded_options", "system_info_of",
           "wheelhouse_root"]
