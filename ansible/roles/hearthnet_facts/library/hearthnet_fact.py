#!/usr/bin/python
"""HearthNet's facts.d fact, installed and read in one module run.

The fact is an executable in facts.d, so that `setup` (and any later run) reads it; installing
it with `template` and reading it back with `setup` took four module runs (the directory, the
template's stat and copy, setup), and on a small box, or under emulation, each costs seconds of
Python start-up. A new script runs from a temporary file first and is installed only when it
printed its JSON; in --check it is never installed, and preflight sees the box's facts all the same.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: hearthnet_fact
short_description: Install a facts.d fact script and read it, in one run
description:
  - When I(content) differs from I(path), runs it from a temporary file and, when it printed
    JSON, moves it to I(path) (root-owned, 0755; its directory made 0755 when missing); otherwise runs I(path); and returns its JSON output as ansible_local.<name>,
    where <name> is the file's name without .fact. Supports check mode and diff mode.
options:
  path: {description: The fact's file in facts.d., type: path, required: true}
  content: {description: The script., type: str, required: true}
author: HearthNet
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "path", "required": True}, "content": {"type": "str", "required": True}},
                           supports_check_mode=True)
    path, content = os.path.normpath(module.params["path"]), module.params["content"]
    name = os.path.basename(path).removesuffix(".fact")
    try:
        with open(path, encoding="utf-8") as fh:
            before = fh.read()
    except FileNotFoundError:
        before = None
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}")
    changed = before != content
    tmp = None
    if changed:  # the new script runs first; it is installed only when it printed its JSON
        where = os.path.dirname(path)
        if not module.check_mode:
            os.makedirs(where, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=None if module.check_mode else where)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.chmod(tmp, 0o755)
    try:
        rc, out, err = module.run_command([tmp or path])
        if rc != 0:
            module.fail_json(msg=f"the fact {path} failed (exit {rc}): {err.strip()[-500:]}", changed=False)
        try:
            fact = json.loads(out)
        except ValueError:
            module.fail_json(msg=f"the fact {path} did not print JSON: {out[:200]!r}", changed=False)
        if tmp is not None and not module.check_mode:
            os.replace(tmp, path)
            tmp = None
    finally:
        if tmp is not None:
            os.unlink(tmp)
    if not module.check_mode:
        for setter, value in ((module.set_mode_if_different, "0755"), (module.set_owner_if_different, "root"), (module.set_group_if_different, "root")):
            changed = setter(path, value, changed)
    diff = {"before_header": path, "after_header": path, "before": before or "", "after": content}
    module.exit_json(changed=changed, ansible_facts={"ansible_local": {name: fact}}, diff=diff if changed else {})


if __name__ == "__main__":
    main()
