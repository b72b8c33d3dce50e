"""The `hearthnet` command line (typer). Importing registers every command."""

from __future__ import annotations

import sys

from hearthnet.cli import commands_chat, commands_community, commands_file, commands_gateway, commands_llama, commands_log, commands_market, commands_mesh, commands_moderation, commands_models, commands_node, commands_provision, commands_rag  # noqa: F401  (register commands)
from hearthnet.cli.app import app, run


def main() -> None:
    sys.exit(run())


__all__ = ["app", "main", "run"]
