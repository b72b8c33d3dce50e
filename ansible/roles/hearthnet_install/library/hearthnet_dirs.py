#!/usr/bin/python
"""HearthNet's directories on a box, each with its owner and mode, in one module run.

ansible.builtin.file takes one path per task run, and under emulation, or on a small box, each
run costs seconds of Python start-up on the box: four directories were a tenth of a first
converge. Owner, group and mode go through AnsibleModule's own helpers, so --check and --diff
report exactly what ansible.builtin.file would.
"""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: hearthnet_dirs
short_description: Directories with owner, group and mode, in one run
description:
  - Makes each directory of I(dirs) that is missing (its parents as well, root-owned 0755), then
    sets its owner, group and mode when they differ. Supports check mode and diff mode.
options:
  dirs:
    description: "Each {path, owner, group, mode}; group defaults to owner."
    type: list
    elements: dict
    required: true
author: HearthNet
"""

RETURN = r"""
made: {description: The directories this run made., type: list}
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"dirs": {"type": "list", "elements": "dict", "required": True}}, supports_check_mode=True)
    changed, made, diffs = False, [], []
    for spec in module.params["dirs"]:
        path = spec.get("path")
        if not path or not os.path.isabs(path):
            module.fail_json(msg=f"hearthnet_dirs: every directory needs an absolute path, got {path!r}")
        path = os.path.normpath(path)
        diff = {"before": {"path": path}, "after": {"path": path}}
        if not os.path.isdir(path):
            if os.path.lexists(path):
                module.fail_json(msg=f"{path} exists and is not a directory")
            diff["before"]["state"], diff["after"]["state"] = "absent", "directory"
            changed = True
            made.append(path)
            if module.check_mode:
                diffs.append(diff)
                continue  # nothing to read its owner or mode from
            os.makedirs(path, mode=0o755)
        attrs = {"path": path, "owner": spec.get("owner"), "group": spec.get("group") or spec.get("owner"),
                 "mode": str(spec["mode"]) if spec.get("mode") is not None else None,
                 "secontext": None, "attributes": None}
        changed = module.set_fs_attributes_if_different(attrs, changed, diff)
        if diff["before"] != diff["after"]:
            diffs.append(diff)
    module.exit_json(changed=changed, made=made, diff=diffs)


if __name__ == "__main__":
    main()
