"""How the VM tests read ansible-playbook's output (no VM needed): the files the install role
placed per host, from the yaml result format ansible.cfg sets, which wraps a long message over
lines. The village's count of files sent twice rests on this."""

from __future__ import annotations

from playbook import Run

YAML_OUTPUT = """\
TASK [hearthnet_install : Bundle - files placed] *******************************
ok: [anchor] =>
    msg: 'bundle placed on anchor: corpora/hearthnet_docs/0000-architecture.md corpora/hearthnet_docs/0001-cli.md
        corpora.json models/smollm2-135m-site.gguf tools/uv wheels/annotated_types-0.8.0-py3-none-any.whl
        wheels/zeroconf-0.154.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl wheels.json'
ok: [spark] =>
    msg: 'bundle placed on spark: corpora.json tools/uv'

TASK [hearthnet_install : Node identity (made once, kept after; the one call also says the node id)] ***
changed: [anchor]
"""


def test_placed_files_are_read_per_host_across_wrapped_lines():
    got = Run(rc=0, output=YAML_OUTPUT, seconds=1.0).placed()
    assert got == {
        "anchor": ["corpora/hearthnet_docs/0000-architecture.md", "corpora/hearthnet_docs/0001-cli.md", "corpora.json",
                   "models/smollm2-135m-site.gguf", "tools/uv", "wheels/annotated_types-0.8.0-py3-none-any.whl",
                   "wheels/zeroconf-0.154.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", "wheels.json"],
        "spark": ["corpora.json", "tools/uv"],
    }


def test_the_json_result_format_reads_the_same():
    out = 'ok: [spark] => {"msg": "bundle placed on spark: corpora.json tools/uv"}\nok: [anchor] => {"changed": false}\n'
    assert Run(rc=0, output=out, seconds=1.0).placed() == {"spark": ["corpora.json", "tools/uv"]}
