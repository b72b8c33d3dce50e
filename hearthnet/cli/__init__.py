"""The `hearthnet` command line (typer).

Each command lives in one `commands_*` module, which registers it on import. A run
imports only the module of the command it was given (the table below), so a quick
command such as `hearthnet id` does not pay for the bus, the transport and the
services; on a small box or under emulation that is most of a command's start-up.
`hearthnet --help`, an unknown command and `load([])` load every module, in one fixed
order, so help lists the commands the same way every time. A unit test keeps the table
equal to what the modules register.
"""

from __future__ import annotations

import importlib
import sys
from hearthnet.cli import app as _app

MODULES = ("commands_chat", "commands_community", "commands_file", "commands_gateway", "commands_llama", "commands_log", "commands_market",
           "commands_mesh", "commands_moderation", "commands_models", "commands_node", "commands_provision", "commands_rag")
# Top-level command or group -> the module(s) that register it.
COMMANDS = {
    "run": "commands_mesh", "ready": "commands_mesh", "status": "commands_mesh", "caps": "commands_mesh", "call": "commands_mesh",
    "trace": "commands_mesh", "join": "commands_mesh", "member": "commands_mesh commands_community",  # both add member subcommands
    "log": "commands_log", "export": "commands_log", "erase": "commands_log",
    "version": "commands_node", "id": "commands_node", "init": "commands_node", "doctor": "commands_node",
    "detect-hardware": "commands_provision", "render-profile": "commands_provision", "bootstrap": "commands_provision",
    "profile": "commands_provision", "site": "commands_provision", "state": "commands_provision",
    "chat": "commands_chat", "invite": "commands_community", "file": "commands_file", "apikey": "commands_gateway", "llama": "commands_llama",
    "market": "commands_market", "moderate": "commands_moderation", "models": "commands_models", "rag": "commands_rag",
}
_GLOBAL_WITH_VALUE = ("--data-dir", "--config")


def _command_of(argv: list[str]) -> str | None:
    """The command named on the line, skipping the global options that may come first."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _GLOBAL_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def load(argv: list[str] | None = None) -> None:
    """Register the command `argv` names, or every command when it names none or an unknown one."""
    modules = COMMANDS.get(_command_of(list(sys.argv[1:] if argv is None else argv)) or "")
    for name in modules.split() if modules else MODULES:
        importlib.import_module(f"hearthnet.cli.{name}")


def run(argv: list[str] | None = None) -> int:
    load(argv)
    return _app.run(argv)


def main() -> None:
    sys.exit(run())


app = _app.app  # the typer application; its commands are registered by load()

__all__ = ["COMMANDS", "MODULES", "app", "load", "main", "run"]
