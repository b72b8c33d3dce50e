"""`hearthnet file get --out DIR` names the file after its label's last part only: a label never chooses a path."""

from __future__ import annotations

import pytest

from hearthnet.cli.commands_file import _target

CID = "blake3:" + "ab" * 32


@pytest.mark.parametrize("label, name", [
    ("notes.txt", "notes.txt"),
    ("../../etc/passwd", "passwd"),
    ("/etc/shadow", "shadow"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("..", "abababababababab"),
    (".bashrc", "abababababababab"),
    ("", "abababababababab"),
    (None, "abababababababab"),
    ("dir/", "abababababababab"),
])
def test_labels_never_leave_the_output_directory(tmp_path, label, name):
    got = _target(tmp_path, label, CID)
    assert got == tmp_path / name and got.resolve().parent == tmp_path.resolve()


def test_an_explicit_file_path_is_used_as_given(tmp_path):
    assert _target(tmp_path / "x.bin", "../../whatever", CID) == tmp_path / "x.bin"
