"""The typer application, its global options, and the one error boundary.

Global options (`--data-dir`, `--config`) are accepted before or after the
subcommand: the root callback takes them, and `command()` adds the same options
to every subcommand. Whatever goes wrong ends as one line `error[code]: ...`
and the code's exit status (docs/contract.md), never a traceback.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from hearthnet import constants as C
from hearthnet.errors import HearthNetError
from hearthnet.home import Home

app = typer.Typer(
    name="hearthnet",
    help="HearthNet: a local-first AI mesh for a village.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar=C.ENV_HOME, help="Node data directory (default: $XDG_DATA_HOME/hearthnet).", show_default=False),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", envvar=C.ENV_CONFIG, help="Config file (default: DATA_DIR/hearthnet.toml).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@dataclass
class Globals:
    data_dir: Path | None = None
    config: Path | None = None

    def home(self) -> Home:
        return Home.open(self.data_dir, self.config)


@app.callback()
def _root(ctx: typer.Context, data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    ctx.obj = Globals(data_dir, config)


def command(name: str | None = None, group: typer.Typer | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a subcommand that also accepts the global options after its name."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        extra = [
            inspect.Parameter("_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
            inspect.Parameter("_data_dir", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DataDirOpt),
            inspect.Parameter("_config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOpt),
        ]

        @functools.wraps(fn)
        def wrapper(*args: Any, _ctx: typer.Context, _data_dir: Path | None = None, _config: Path | None = None, **kw: Any) -> Any:
            g = _ctx.find_object(Globals) or _ctx.ensure_object(Globals)
            _current.append(g)
            if _data_dir is not None:
                g.data_dir = _data_dir
            if _config is not None:
                g.config = _config
            return fn(*args, **kw)

        wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *extra])  # type: ignore[attr-defined]
        return (group or app).command(name, **kwargs)(wrapper)

    return deco


# The Globals of the command being run (set by `command()`'s wrapper).
_current: list[Globals] = []


def globals_() -> Globals:
    return _current[-1] if _current else Globals()


def home() -> Home:
    return globals_().home()


def make_console() -> Console:
    """Rich console for tables; wide when piped so ids are not cut."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)


def progress(*columns: Any, quiet: bool = False, transient: bool = False) -> Progress:
    """The CLI's progress bars: on stderr, so stdout stays what a script reads, and only on a terminal."""
    cols = columns or (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    console = Console(stderr=True, highlight=False)
    return Progress(*cols, console=console, disable=quiet or not console.is_terminal, transient=transient)


def table(*columns: str) -> Table:
    """The CLI's one table style."""
    t = Table(show_header=True, header_style="bold", box=None)
    for col in columns:
        t.add_column(col)
    return t


def node_label(short_id: str, display_name: str, *more: str) -> str:
    """`short  (name, more…)`, without repeating the short id when the node has no name of its own."""
    extra = [x for x in (display_name, *more) if x and x != short_id]
    return f"{short_id}  ({', '.join(extra)})" if extra else short_id


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(err: HearthNetError) -> int:
    sys.stderr.write(err.one_line() + "\n")
    return err.exit_code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code. The single place errors become output."""
    cmd = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    _current.clear()
    try:
        rv = cmd.main(args=args, prog_name="hearthnet", standalone_mode=False)
        return rv if isinstance(rv, int) else C.EXIT_OK
    except HearthNetError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        return fail(HearthNetError("aborted", "interrupted"))
    except BrokenPipeError:
        return C.EXIT_OK
    except Exception as exc:
        return _click_exit(exc)


def _click_exit(exc: Exception) -> int:
    """Translate the parser's own exceptions (click's, vendored by typer) by their shape."""
    kind = type(exc).__name__
    ctx = getattr(exc, "ctx", None)
    if kind == "NoArgsIsHelpError" and ctx is not None:
        sys.stdout.write(ctx.get_help() + "\n")
        return C.EXIT_OK
    if kind == "Exit":
        return int(getattr(exc, "exit_code", 0))
    if kind == "Abort":
        return fail(HearthNetError("aborted", "aborted"))
    if hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == 2:
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        return fail(HearthNetError("bad_request", f"{exc.format_message()}{where}"))
    if os.environ.get("HEARTHNET_DEBUG"):
        raise exc
    return fail(HearthNetError("internal", f"{kind}: {exc}"))  # one line, no traceback


__all__ = ["JsonOpt", "app", "command", "emit_json", "globals_", "home", "make_console", "node_label", "progress", "run", "table"]
