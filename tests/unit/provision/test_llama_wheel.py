"""The one llama.cpp build: pinned version and flags, the wheelhouse, and the check of what the library reports."""

import hashlib
import json
import re
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.provision.actions import llama_wheel

ROOT = Path(__file__).resolve().parents[3]
PORTABLE = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
# What a native build reports on a Xeon with AMX (issue 13): the build that crashes there.
NATIVE_AMX = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | AVX512_VBMI = 1 | "
              "AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")
X86 = llama_wheel.machine() in ("x86_64", "amd64")


def options_of(flags, **override) -> dict:
    """The options a build with these flags records in its ggml-config.cmake."""
    out = {m[0]: m[1] for f in flags if (m := re.fullmatch(r"-D(GGML_[A-Z0-9_]+)=(\S+)", f).groups())}
    return {"GGML_OPENMP": "ON", **out, **override}  # ggml records OpenMP ON unless the flags say OFF


@pytest.fixture(autouse=True)
def _no_flag_override(monkeypatch):
    monkeypatch.delenv(C.ENV_LLAMA_CMAKE_ARGS, raising=False)


def test_the_extra_pins_the_same_version_the_wheelhouse_builds():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["llm"]
    (pin,) = [e for e in extras if e.startswith("llama-cpp-python")]
    assert pin == f"llama-cpp-python[server]=={C.LLAMA_CPP_VERSION}"


def test_portable_flags_are_never_native_and_switch_off_avx512_amx_and_openmp():
    flags = llama_wheel.portable_flags()
    assert "-DGGML_NATIVE=OFF" in flags and not any("march=native" in f for f in flags)
    assert "-DGGML_OPENMP=OFF" in flags  # no libgomp.so.1 on a minimal box
    if X86:
        exp = llama_wheel.expected_features(flags)
        assert {k for k, v in exp.items() if v} == {"AVX", "AVX2", "FMA", "F16C", "BMI2"}
        assert exp["AMX_INT8"] == exp["AVX512"] == exp["AVX_VNNI"] == 0


@pytest.mark.skipif(not X86, reason="the SIMD feature table is x86's")
def test_a_native_amx_build_is_refused_by_name_and_a_portable_one_passes():
    exp = llama_wheel.expected_features(llama_wheel.portable_flags())
    assert llama_wheel.mismatches(llama_wheel.features(PORTABLE), exp) == []
    bad = llama_wheel.mismatches(llama_wheel.features(NATIVE_AMX), exp)
    assert any(b.startswith("AMX_INT8 = 1") for b in bad) and any(b.startswith("AVX512 = 1") for b in bad)
    flags = llama_wheel.portable_flags()
    with pytest.raises(HearthNetError) as e:
        llama_wheel.check(NATIVE_AMX, options_of(flags, GGML_NATIVE="ON"), flags, "that wheel")
    assert e.value.code == "config_invalid" and "AMX_INT8" in e.value.message and "hearthnet llama install" in e.value.message
    llama_wheel.check(PORTABLE, options_of(flags), flags, "this wheel")
    # A build that lacks what the flags ask for (say an SSE-only build) is refused too.
    assert "AVX2 = 0 (the flags say 1)" in llama_wheel.mismatches(llama_wheel.features("CPU : SSE3 = 1 | AVX = 1 |"), exp)


def test_a_native_build_on_a_cpu_without_avx512_is_caught_by_its_recorded_options():
    """On an AVX2-only CPU a native build reports the same features as a portable one; ggml-config.cmake tells them apart."""
    flags = llama_wheel.portable_flags()
    cmake = 'set(GGML_AVX2 "ON")\nset(GGML_NATIVE "ON")\nset(GGML_AMX_INT8 "OFF")\n'
    assert llama_wheel.recorded_options(cmake) == {"GGML_AVX2": "ON", "GGML_NATIVE": "ON", "GGML_AMX_INT8": "OFF"}
    bad = llama_wheel.option_mismatches(options_of(flags, GGML_NATIVE="ON"), flags)
    assert bad == ["GGML_NATIVE = ON (the flags say OFF)"]
    with pytest.raises(HearthNetError) as e:
        llama_wheel.check(PORTABLE if X86 else "", options_of(flags, GGML_NATIVE="ON"), flags, "that wheel")
    assert "GGML_NATIVE = ON" in e.value.message
    assert llama_wheel.option_mismatches({}, flags) == [f"no ggml build options recorded ({llama_wheel.CMAKE_CONFIG})"]


def test_the_wheelhouse_key_names_version_python_machine_and_flags(monkeypatch, tmp_path):
    flags = llama_wheel.portable_flags()
    k = llama_wheel.key(flags)
    assert k.startswith(f"llama-cpp-python-{C.LLAMA_CPP_VERSION}-{llama_wheel.python_tag()}-{llama_wheel.machine()}-")
    assert llama_wheel.key((*flags, "-DGGML_OPENMP=OFF")) != k and llama_wheel.key(flags, "0.3.35") != k
    monkeypatch.setenv(C.ENV_WHEELHOUSE, str(tmp_path / "wh"))
    assert llama_wheel.wheelhouse_root() == tmp_path / "wh"
    monkeypatch.delenv(C.ENV_WHEELHOUSE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert llama_wheel.wheelhouse_root() == tmp_path / "cache" / "hearthnet" / "wheels"  # outside the clone


@pytest.mark.parametrize("value, says", [
    ("-DGGML_NATIVE=ON -DGGML_AVX2=ON", "GGML_NATIVE=OFF"),
    ("-DGGML_AVX2=OFF", "GGML_NATIVE=OFF"),
    ("-DGGML_NATIVE=OFF; rm -rf /", "not a -DNAME=VALUE"),
    ("-march=native", "not a -DNAME=VALUE"),
])
def test_bad_flag_overrides_are_one_clear_error(monkeypatch, value, says):
    monkeypatch.setenv(C.ENV_LLAMA_CMAKE_ARGS, value)
    with pytest.raises(HearthNetError) as e:
        llama_wheel.portable_flags()
    assert e.value.code == "config_invalid" and says in e.value.message


@pytest.mark.skipif(not X86, reason="the SIMD feature table is x86's")
def test_a_box_without_avx2_sets_its_own_flags_and_is_held_to_them(monkeypatch):
    monkeypatch.setenv(C.ENV_LLAMA_CMAKE_ARGS, "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=ON -DGGML_BMI2=OFF")
    flags = llama_wheel.portable_flags()
    exp = llama_wheel.expected_features(flags)
    assert {k for k, v in exp.items() if v} == {"AVX", "F16C"} and flags[-1] == "-DGGML_OPENMP=OFF"  # added
    monkeypatch.setenv(C.ENV_LLAMA_CMAKE_ARGS, "-DGGML_NATIVE=OFF -DGGML_OPENMP=ON")
    assert llama_wheel.portable_flags() == ("-DGGML_NATIVE=OFF", "-DGGML_OPENMP=ON")  # theirs to choose
    monkeypatch.setenv(C.ENV_LLAMA_CMAKE_ARGS, "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=ON -DGGML_BMI2=OFF")
    assert llama_wheel.mismatches(llama_wheel.features("CPU : SSE3 = 1 | AVX = 1 | F16C = 1 | OPENMP = 1 |"), exp) == []
    assert llama_wheel.key(flags) != llama_wheel.key(C.LLAMA_CPP_PORTABLE_CMAKE_ARGS_X86_64)


def _fake_entry(root: Path, flags: tuple[str, ...], info: str) -> Path:
    d = root / llama_wheel.key(flags)
    d.mkdir(parents=True)
    wheel = d / f"llama_cpp_python-{C.LLAMA_CPP_VERSION}-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    meta = {"version": C.LLAMA_CPP_VERSION, "python": llama_wheel.python_tag(), "machine": llama_wheel.machine(), "flags": list(flags),
            "wheel": wheel.name, "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(), "system_info": info, "built_seconds": 1.0,
            "options": options_of(flags)}
    (d / "build.json").write_text(json.dumps(meta))
    return d


def test_a_built_entry_is_reused_and_a_native_one_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(C.ENV_WHEELHOUSE, str(tmp_path))
    flags = llama_wheel.portable_flags()
    d = _fake_entry(tmp_path, flags, PORTABLE)
    b = llama_wheel.build()  # no compiler runs: the entry is there and whole
    assert b.wheel_path.parent == d and b.flags == list(flags)
    if X86:
        meta = json.loads((d / "build.json").read_text())
        (d / "build.json").write_text(json.dumps({**meta, "system_info": NATIVE_AMX}))
        with pytest.raises(HearthNetError) as e:
            llama_wheel.build()
        assert e.value.code == "config_invalid"


def test_an_entry_whose_wheel_changed_is_not_trusted(tmp_path):
    d = _fake_entry(tmp_path, llama_wheel.portable_flags(), PORTABLE)
    assert llama_wheel._read_build(d) is not None
    next(d.glob("*.whl")).write_bytes(b"tampered")
    assert llama_wheel._read_build(d) is None  # build() would build it anew
    (d / "build.json").write_text("{not json")
    assert llama_wheel._read_build(d) is None


# --- the real library, as installed by the README's commands ------------------------------------------


def test_the_installed_llama_cpp_was_built_with_the_project_flags():
    """A native wheel from pip's cache fails here, loudly, instead of crashing the node's first decode."""
    pytest.importorskip("llama_cpp")
    lib = llama_wheel.installed_lib()
    assert lib is not None
    info = llama_wheel.check_installed()
    assert re.search(r"\bAVX2 = 1\b", info) or not X86
    assert "AMX" not in info and "AVX512" not in info


def test_the_installed_library_is_the_wheelhouse_build():
    pytest.importorskip("llama_cpp")
    entry = llama_wheel.wheelhouse_root() / llama_wheel.key(llama_wheel.portable_flags())
    if not (entry / "build.json").is_file():
        pytest.fail(f"no wheelhouse entry {entry}: install with `hearthnet llama install` (README)")
    b = llama_wheel.build()  # reads the entry; builds nothing
    assert llama_wheel.installed_is(b)
    # The wheel itself, unpacked and loaded in a child process, reports the portable features and options.
    info, options = llama_wheel._probe_wheel(b.wheel_path)
    llama_wheel.check(info, options, tuple(b.flags), b.wheel)
    assert options["GGML_NATIVE"] == "OFF" and llama_wheel.installed_options()["GGML_NATIVE"] == "OFF"
    assert options["GGML_OPENMP"] == "OFF"


def test_the_wheels_libraries_need_only_what_every_debian_box_has(tmp_path):
    """The wheel goes into the offline bundle: a box installs it with no apt. Its shared libraries may
    need the C and C++ runtimes and each other, nothing else (an OpenMP build's libgomp.so.1 is
    missing on a minimal Debian box, and the anchor's llama.cpp did not load there)."""
    pytest.importorskip("llama_cpp")
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.fail("readelf (binutils) is missing: the toolchain that builds llama.cpp brings it")
    entry = llama_wheel.wheelhouse_root() / llama_wheel.key(llama_wheel.portable_flags())
    if not (entry / "build.json").is_file():
        pytest.fail(f"no wheelhouse entry {entry}: install with `hearthnet llama install` (README)")
    b = llama_wheel.build()  # reads the entry; builds nothing
    with zipfile.ZipFile(b.wheel_path) as z:
        libs = [n for n in z.namelist() if re.search(r"\.so(\.\d+)*$", n)]
        z.extractall(tmp_path, members=libs)
    own = {Path(n).name for n in libs}
    base = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2", "librt.so.1", "ld-linux-x86-64.so.2",
            "libssl.so.3", "libcrypto.so.3"}  # OpenSSL's: Debian's python3 needs them itself
    needed = set()
    for n in libs:
        out = subprocess.run([readelf, "-d", str(tmp_path / n)], capture_output=True, text=True, check=True).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    assert libs and needed - own - base == set(), sorted(needed - own - base)


def test_llama_check_on_the_command_line(capsys, monkeypatch):
    pytest.importorskip("llama_cpp")
    from hearthnet.cli import run

    assert run(["llama", "check", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["flags"] == list(llama_wheel.portable_flags()) and ("AVX2 = 1" in out["system_info"] or not X86)
    # A bad override is one line with its code, before anything is built or loaded.
    monkeypatch.setenv(C.ENV_LLAMA_CMAKE_ARGS, "-DGGML_NATIVE=ON")
    assert run(["llama", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error[config_invalid]") and len(err.strip().splitlines()) == 1
    # Held to other flags than it was built with, the installed library fails loudly.
    monkeypatch.setenv(C.ENV_LLAMA_CMAKE_ARGS, "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=OFF")
    assert run(["llama", "check"]) == 2
    assert "GGML_AVX2 = ON (the flags say OFF)" in capsys.readouterr().err
