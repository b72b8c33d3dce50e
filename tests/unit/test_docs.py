"""Docs that must stay true: a change that forgets them fails here."""

import re
from pathlib import Path

import hearthnet.errors
import hearthnet.events
from hearthnet import config
from hearthnet.cli import app, load
from hearthnet.errors import ERRORS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_error_table_matches_errors_module():
    text = (DOCS / "contract.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \| (\d) \| (.+) \|$", text, re.M)
    documented = {code: (int(http), int(exit_), meaning) for code, http, exit_, meaning in rows}
    assert documented == {c: (s.http_status, s.exit_code, s.meaning) for c, s in ERRORS.items()}


def test_every_config_key_is_documented_in_its_section():
    text = (DOCS / "configuration.md").read_text()
    sections = dict(re.findall(r"^### `\[(\w+)\]`\n(.*?)(?=^### |\Z)", text, re.M | re.S))
    assert set(sections) == set(config.SECTIONS)
    for name, model in config.SECTIONS.items():
        for key in model.model_fields:
            assert f"| `{key}` |" in sections[name], f"[{name}] {key} is not documented"


def test_every_cli_command_is_documented():
    import typer.main

    text = (DOCS / "cli.md").read_text()

    def walk(cmd, prefix):
        for name, sub in getattr(cmd, "commands", {}).items():
            if getattr(sub, "commands", None):
                yield from walk(sub, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}"

    load([])  # every command (a run loads only the one it names)
    names = list(walk(typer.main.get_command(app), ""))
    assert "member add" in names
    for name in names:
        assert f"`hearthnet {name}" in text, f"hearthnet {name} is not in docs/cli.md"


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert len(blocks) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert blocks[1].strip() in ci
    assert "pytest" in blocks[1] and "hearthnet" in blocks[0]


def test_public_api_is_pinned():
    assert sorted(hearthnet.errors.__all__) == ["ERRORS", "ErrorSpec", "HearthNetError", "validation_message", "validation_path"]
    assert set(hearthnet.events.__all__) == {
        "EVENT_TYPES", "MEMBERSHIP_TYPES", "AppendOutcome", "Event", "EventLog", "EventType", "VerifyReport", "event_hash",
    }


def test_unknown_error_code_is_a_programming_error():
    import pytest

    with pytest.raises(ValueError):
        hearthnet.errors.HearthNetError("nope", "x")


def test_contract_lists_every_signing_domain():
    """One table in docs/contract.md §1, every SIGN_DOMAIN_* constant in it."""
    import hearthnet.constants as C

    text = (ROOT / "docs" / "contract.md").read_text()
    table = set(re.findall(r"^  \| [^|]+ \| `(hearthnet/[a-z-]+/v\d+)` \|$", text, re.M))
    domains = {v.decode() for k, v in vars(C).items() if k.startswith("SIGN_DOMAIN_")}
    assert len(domains) == 6 and table == domains


def test_an_error_from_the_wire_keeps_a_known_code_and_says_what_was_being_done():
    from_wire = hearthnet.errors.HearthNetError.from_wire
    e = from_wire({"code": "not_found", "message": "no such blob"}, context="over the mesh")
    assert (e.code, e.message) == ("not_found", "over the mesh: no such blob")
    assert from_wire({"code": "made_up", "message": "x"}).code == "internal"  # outside the closed set
    e = from_wire("not a dict", "the read failed")
    assert (e.code, e.message) == ("internal", "the read failed")
