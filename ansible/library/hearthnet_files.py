#!/usr/bin/python
"""HearthNet's directories and small files on a box, each with its owner and mode, in one module run.

ansible.builtin.file and ansible.builtin.copy take one path per run (copy two: a stat, then the
copy), and on a small box, or under emulation, each run costs seconds of Python start-up: the
install role's four directories and the render role's site copy, settings and model index were
a fifth of a first converge. Owner, group and mode go through AnsibleModule's own helpers, so
--check and --diff report what file and copy would. Each file is written to a temporary file
beside it and renamed into place: whole or not at all.
"""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: hearthnet_files
short_description: Directories, small files (by content) and absent paths, in one run
description:
  - Makes each directory of I(dirs) that is missing (its parents too, 0755), writes each file of
    I(files) whose content differs (by rename), removes each path of I(absent), then sets owner,
    group and mode where they differ. Supports check mode and diff mode.
options:
  dirs:
    description: "Each {path, owner, group, mode}; group defaults to owner."
    type: list
    elements: dict
    default: []
  files:
    description: "Each {path, content, owner, group, mode}: a text file with exactly this content."
    type: list
    elements: dict
    default: []
  absent:
    description: Files that must not exist.
    type: list
    elements: path
    default: []
author: HearthNet
"""

RETURN = r"""
made: {description: The directories this run made., type: list}
written: {description: The files this run wrote., type: list}
removed: {description: The files this run removed., type: list}
"""


def _path(module: AnsibleModule, spec: dict) -> str:
    path = spec.get("path")
    if not path or not os.path.isabs(path):
        module.fail_json(msg=f"hearthnet_files: every path must be absolute, got {path!r}")
    return os.path.normpath(path)


def _attrs(path: str, spec: dict) -> dict:
    mode = spec.get("mode")
    return {"path": path, "owner": spec.get("owner"), "group": spec.get("group") or spec.get("owner"),
            "mode": str(mode) if mode is not None else None, "secontext": None, "attributes": None}


def _read(module: AnsibleModule, path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dirs": {"type": "list", "elements": "dict", "default": []},
            "files": {"type": "list", "elements": "dict", "default": []},
            "absent": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    check = module.check_mode
    changed, made, written, removed, diffs = False, [], [], [], []
    for spec in module.params["dirs"]:
        path = _path(module, spec)
        diff = {"before": {"path": path}, "after": {"path": path}}
        if not os.path.isdir(path):
            if os.path.lexists(path):
                module.fail_json(msg=f"{path} exists and is not a directory")
            diff["before"]["state"], diff["after"]["state"] = "absent", "directory"
            changed = True
            made.append(path)
            if not check:
                os.makedirs(path, mode=0o755)
        if os.path.isdir(path):  # in --check a directory still to be made has no owner or mode to read
            changed = module.set_fs_attributes_if_different(_attrs(path, spec), changed, diff)
        if diff["before"] != diff["after"]:
            diffs.append(diff)
    for spec in module.params["files"]:
        path, content = _path(module, spec), spec.get("content")
        if not isinstance(content, str):
            module.fail_json(msg=f"hearthnet_files: {path} needs its content (text)")
        before = _read(module, path)
        diff = {"before_header": path, "after_header": path, "before": before or "", "after": content}
        if before != content:
            changed = True
            written.append(path)
            if not check:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        fh.write(content)
                    changed = module.set_fs_attributes_if_different(_attrs(tmp, spec), changed)
                    os.replace(tmp, path)
                except BaseException:
                    os.unlink(tmp)
                    raise
            diffs.append(diff)
        else:
            attrs = {"before": {"path": path}, "after": {"path": path}}
            changed = module.set_fs_attributes_if_different(_attrs(path, spec), changed, attrs)
            if attrs["before"] != attrs["after"]:
                diffs.append(attrs)
    for path in module.params["absent"]:
        path = _path(module, {"path": path})
        if os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                module.fail_json(msg=f"{path} is a directory; hearthnet_files removes files only")
            changed = True
            removed.append(path)
            diffs.append({"before": {"path": path, "state": "file"}, "after": {"path": path, "state": "absent"}})
            if not check:
                os.unlink(path)
    module.exit_json(changed=changed, made=made, written=written, removed=removed, diff=diffs)


if __name__ == "__main__":
    main()
