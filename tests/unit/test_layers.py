"""Every import looks down the layers docs/architecture.md lists (the table there is the rule)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hearthnet"


def layer_table() -> dict[str, int]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    table: dict[str, int] = {}
    for layer, modules in re.findall(r"^\| (\d+) \| [^|]+ \| (.+) \|$", text, re.M):
        for m in re.findall(r"`([a-z_.]+)`", modules):
            table[m] = int(layer)
    return table


def layer_of(module: str, table: dict[str, int]) -> tuple[str, int]:
    """(the table's prefix, its layer) for a module: the longest listed prefix."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in table:
            return prefix, table[prefix]
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def imports(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every hearthnet import, at any depth; `from a import b` is a.b when that is a module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "hearthnet"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "hearthnet":
            for a in node.names:
                full = f"{node.module}.{a.name}"
                found.append((node.lineno, full if full in known else node.module))
    return sorted(set(found))


def top_package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def violations() -> list[str]:
    table = layer_table()
    mods = modules()
    bad = []
    for mod, path in sorted(mods.items()):
        src_prefix, src_layer = layer_of(mod, table)
        for line, target in imports(path, set(mods)):
            dst_prefix, dst_layer = layer_of(target, table)
            if dst_layer < src_layer or dst_prefix == src_prefix or (top_package(mod) == top_package(target) and dst_layer <= src_layer):
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line}: {mod} (layer {src_layer}) imports {target} (layer {dst_layer})")
    return bad


def test_the_table_covers_the_package():
    table = layer_table()
    assert table["hearthnet.errors"] < table["hearthnet.events"] < table["hearthnet.transport"] < table["hearthnet.node"] < table["hearthnet.cli"]
    for mod in modules():
        layer_of(mod, table)


def test_every_import_looks_down_the_layers():
    bad = violations()
    assert not bad, "imports that break docs/architecture.md's layers:\n" + "\n".join(bad)


def test_the_checker_catches_an_upward_import(tmp_path):
    """The rule bites: an event-log module importing the node is a violation."""
    table = layer_table()
    assert layer_of("hearthnet.events.log", table)[1] < layer_of("hearthnet.node", table)[1]
    assert layer_of("hearthnet.provision.render", table)[1] < layer_of("hearthnet.transport.server", table)[1]
    assert layer_of("hearthnet.provision.actions.bootstrap", table)[1] > layer_of("hearthnet.transport", table)[1]
