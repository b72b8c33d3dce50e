"""The CLI imports only the module of the command it runs: the table in hearthnet.cli must name,
for every top-level command and group, the modules that register it and all its subcommands."""

from __future__ import annotations

import json
import subprocess
import sys

import hearthnet.cli as cli

SHAPE = """
import json, sys, click, typer
import hearthnet.cli as cli
cli.load(sys.argv[1:])
def shape(cmd):
    return sorted((n, shape(c)) for n, c in cmd.commands.items()) if isinstance(cmd, click.Group) else []
root = typer.main.get_command(cli._app.app)
print(json.dumps({n: shape(c) for n, c in root.commands.items()}))
"""


def _shape(*argv: str) -> dict:
    p = subprocess.run([sys.executable, "-c", SHAPE, *argv], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_the_table_names_every_command_and_all_its_subcommands():
    everything = _shape()  # no command named: every module
    assert set(cli.COMMANDS) == set(everything)
    for modules in sorted(set(cli.COMMANDS.values())):
        names = [n for n, m in cli.COMMANDS.items() if m == modules]
        partial = _shape(names[0])
        for n in names:
            assert partial.get(n) == everything[n], (n, modules)


def test_global_options_before_the_command_are_skipped():
    assert cli._command_of(["--data-dir", "/x", "--config", "/y/c.toml", "models", "verify"]) == "models"
    assert cli._command_of(["--json"]) is None and cli._command_of([]) is None
    assert cli._command_of(["--data-dir", "status"]) is None  # the value of --data-dir, not a command
