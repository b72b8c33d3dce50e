"""The one llama.cpp build: `hearthnet llama build|install|check` (hearthnet.provision.actions.llama_wheel)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

import sys

import typer

from hearthnet.cli.app import JsonOpt, app, command, emit_json
from hearthnet.provision.actions import llama_wheel

llama_app = typer.Typer(help="llama-cpp-python built once with portable CPU flags, into a wheelhouse outside pip's cache.", no_args_is_help=True)
app.add_typer(llama_app, name="llama")


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _report(b: llama_wheel.Build, json_out: bool, installed: bool = False) -> None:
    if json_out:
        emit_json({**b.as_dict(), "wheel_path": str(b.wheel_path), "installed": installed})
        return
    print(b.wheel_path)
    print(f"flags      {' '.join(b.flags)}")
    print(f"features   {b.system_info}")
    if installed:
        print(f"installed  into {sys.prefix}")


@command("build", group=llama_app)
def build_cmd(json_out: JsonOpt = False) -> None:
    """Build the portable wheel into the wheelhouse (once; later calls reuse it) and print its path."""
    _report(llama_wheel.build(say=_say), json_out)


@command("install", group=llama_app)
def install_cmd(json_out: JsonOpt = False) -> None:
    """Build the portable wheel if need be, and install it into this Python, replacing any other build."""
    b = llama_wheel.build(say=_say)
    llama_wheel.install(b)
    _report(b, json_out, installed=True)


@command("check", group=llama_app)
def check_cmd(json_out: JsonOpt = False) -> None:
    """Check that the installed llama-cpp-python reports exactly the CPU features of the portable flags."""
    info = llama_wheel.check_installed()
    lib = llama_wheel.installed_lib()
    if json_out:
        emit_json({"ok": True, "library": str(lib), "system_info": info, "flags": list(llama_wheel.portable_flags())})
        return
    print(f"ok: {lib} is a portable build")
    print(f"features   {info}")
