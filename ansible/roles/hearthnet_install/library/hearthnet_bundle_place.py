#!/usr/bin/python
"""Move a bundle's newly unpacked files into place, drop the files its SHA256SUMS no longer lists,
then check the whole bundle against it.

One module run instead of one task per step: under emulation, or on a small box, each task
costs seconds of Python start-up on the box. Each file is moved by rename, so a run killed
here leaves every file either old or whole, never half; the next run sends only what is
still missing. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: hearthnet_bundle_place
short_description: Place a HearthNet bundle's unpacked files by rename and verify the bundle
description:
  - Moves each listed file from the staging directory into the bundle root (by rename),
    moves the staged manifest into place as SHA256SUMS, removes the staging leftovers and every
    file SHA256SUMS does not name (an earlier bundle's wheels), then checks every file it names
    (strict; like sha256sum --check --strict).
options:
  root: {description: The bundle's directory on the box., type: path, required: true}
  staging: {description: Where the archive was unpacked (inside root)., type: path, required: true}
  files: {description: Paths relative to root that were unpacked into staging., type: list, elements: str, default: []}
  manifest: {description: The staged manifest's name inside root., type: str, default: .SHA256SUMS.incoming}
author: HearthNet
"""

RETURN = r"""
placed: {description: The files moved into place by this run., type: list, returned: always}
removed: {description: Files SHA256SUMS does not name, removed by this run., type: list, returned: success}
verified: {description: How many files SHA256SUMS names, all of them checked., type: int, returned: success}
"""

LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
STAGING_PREFIX = ".incoming"  # every staging name starts so; anything left by a killed run is removed


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "staging": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "str", "default": []},
            "manifest": {"type": "str", "default": ".SHA256SUMS.incoming"},
        },
        supports_check_mode=True,
    )
    root, staging, files = module.params["root"], module.params["staging"], module.params["files"]
    incoming = os.path.join(root, module.params["manifest"])
    changed = bool(files) or os.path.exists(incoming)
    if module.check_mode:
        module.exit_json(changed=changed, placed=[])
    moves = []
    for f in files:  # every file checked before any moves: a bad list changes nothing
        dest = os.path.normpath(os.path.join(root, f))
        if os.path.commonpath([root, dest]) != root or f.startswith(STAGING_PREFIX):
            module.fail_json(msg=f"bundle file {f!r} would land outside {root}", placed=[])
        if not os.path.isfile(os.path.join(staging, f)):
            module.fail_json(msg=f"{f} is not in the unpacked archive {staging}", placed=[])
        moves.append((os.path.join(staging, f), dest))
    for src, dest in moves:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(src, dest)
    if os.path.exists(incoming):
        os.replace(incoming, os.path.join(root, "SHA256SUMS"))
    for name in os.listdir(root):
        if name.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    try:
        with open(os.path.join(root, "SHA256SUMS"), encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        module.fail_json(msg=f"{root}/SHA256SUMS: {exc.strerror}", placed=files)
    listed = {}
    for n, line in enumerate(lines, 1):
        m = LINE.match(line)
        if not m:
            module.fail_json(msg=f"{root}/SHA256SUMS line {n} is not '<sha256>  <path>'", placed=files)
        listed[os.path.normpath(m[2])] = m[1]
    # The box holds its part of the bundle and nothing else: pip's --find-links and the state
    # record see exactly the wheels SHA256SUMS names, also after a newer bundle replaced them.
    removed = []
    for parent, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(parent, name), root)
            if rel not in listed and rel != "SHA256SUMS" and not rel.startswith(STAGING_PREFIX):
                os.unlink(os.path.join(root, rel))
                removed.append(rel)
    bad = []
    for rel, digest in listed.items():
        try:
            if sha256(os.path.join(root, rel)) != digest:
                bad.append(f"{rel}: FAILED")
        except OSError as exc:
            bad.append(f"{rel}: {exc.strerror}")
    if bad:
        module.fail_json(msg=f"the bundle on the box does not match its SHA256SUMS: {'; '.join(bad[:10])}", placed=files, failed_files=bad)
    module.exit_json(changed=changed or bool(removed), placed=files, removed=sorted(removed), verified=len(listed))


if __name__ == "__main__":
    main()
