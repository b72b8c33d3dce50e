#!/usr/bin/python
"""This box's part of a HearthNet bundle: what it lacks (state=inspect), placing what was sent
(state=placed), and the venv installed from it (state=installed).

One module run per step instead of a task per file operation: under emulation, or on a small
box, each task costs seconds of Python start-up on the box. Each file is moved into place by
rename, so a run killed anywhere leaves every file either old or whole, never half; the next
run sends only what is still missing. Nothing here touches the network.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: hearthnet_bundle
short_description: Inspect and place this box's part of a HearthNet bundle
description:
  - state=inspect reads the install marker; when it equals I(wanted) the box installed from exactly
    this part of the bundle and nothing is hashed (C(current)). Otherwise it lists the files of
    I(manifest) that are missing or differ on the box (C(missing)). It never changes anything.
  - state=placed unpacks the listed files from I(archive) into a fresh staging directory, moves each
    into place by rename, writes I(manifest) as SHA256SUMS, removes the archive, staging leftovers
    (also a killed run's) and every file SHA256SUMS does not name (an earlier bundle's wheels), then
    checks every file it names (like sha256sum --check --strict).
  - state=installed makes the venv with the bundle's uv when it has none, installs I(requirement)
    from the bundle's wheels only (no index, no network, bytecode compiled), then writes I(marker)
    as I(wanted), atomically. When the marker already equals I(wanted) and the venv exists it does
    nothing. A failed install leaves the old marker: the next run installs again.
options:
  root: {description: The bundle's directory on the box., type: path, required: true}
  src:
    description:
      - The bundle's directory on the controller (placed). The role's action plugin of the same name
        then inspects, packs the missing files into one archive, sends it and places them in one task.
        The module itself never reads it.
    type: path
  manifest: {description: "This box's part of SHA256SUMS: lines '<sha256>  <path>'.", type: list, elements: str, required: true}
  state: {description: What to do., type: str, choices: [inspect, placed, installed], default: placed}
  marker: {description: The install marker (inspect, installed)., type: path}
  wanted: {description: The marker's content when this part is installed (inspect, installed)., type: dict}
  uv: {description: The bundle's uv (installed)., type: path}
  python: {description: The Python the venv is made from (installed)., type: path}
  venv: {description: The virtual environment (installed)., type: path}
  requirement: {description: "What to install, e.g. hearthnet[embed,llm]==0.1.0 (installed).", type: str}
  archive:
    description:
      - A tar holding the files (placed). Named C(hearthnet-bundle.tar) (the action plugin's), it is
        removed once unpacked, and so is any of that name a killed run left beside its directory.
    type: path
  files: {description: Paths relative to root that the archive holds (placed)., type: list, elements: str, default: []}
author: HearthNet
"""

RETURN = r"""
current: {description: The marker equals wanted (inspect)., type: bool, returned: inspect}
missing: {description: Files of the manifest missing or different here (inspect)., type: list, returned: inspect}
placed: {description: The files moved into place by this run., type: list, returned: placed}
removed: {description: Files SHA256SUMS does not name, removed by this run., type: list, returned: placed}
verified: {description: How many files SHA256SUMS names, all of them checked., type: int, returned: placed}
venv_created: {description: This run made the venv., type: bool, returned: installed}
"""

LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
STAGING_PREFIX = ".incoming"  # staging dirs and the sent archive: anything so named is removed by the next placement
SENT = "hearthnet-bundle.tar"  # the action plugin's archive, in the task's own remote temporary directory
SUMS = "SHA256SUMS"


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse(module: AnsibleModule, lines: list[str], where: str) -> dict[str, str]:
    listed = {}
    for n, line in enumerate(lines, 1):
        m = LINE.match(line)
        if not m:
            module.fail_json(msg=f"{where} line {n} is not '<sha256>  <path>'", placed=[])
        listed[os.path.normpath(m[2])] = m[1]
    return listed


def inside(module: AnsibleModule, root: str, rel: str) -> str:
    dest = os.path.normpath(os.path.join(root, rel))
    if os.path.commonpath([root, dest]) != root or rel.startswith(STAGING_PREFIX) or rel == SUMS:
        module.fail_json(msg=f"bundle file {rel!r} would land outside {root}", placed=[])
    return dest


def differs(path: str, digest: str) -> bool:
    try:
        return sha256(path) != digest
    except OSError:
        return True


def marked(module: AnsibleModule) -> bool:
    """The install marker says this very part of the bundle, with these extras, is installed."""
    marker, wanted = module.params["marker"], module.params["wanted"]
    if not marker or wanted is None:
        return False
    try:
        with open(marker, encoding="utf-8") as fh:
            return json.load(fh) == wanted
    except (OSError, ValueError):
        return False


def inspect(module: AnsibleModule, root: str, listed: dict[str, str]) -> None:
    if marked(module):
        module.exit_json(changed=False, current=True, missing=[])
    missing = [rel for rel, digest in listed.items() if differs(os.path.join(root, rel), digest)]
    module.exit_json(changed=False, current=False, missing=missing)


def place(module: AnsibleModule, root: str, listed: dict[str, str]) -> None:
    files, archive = module.params["files"], module.params["archive"]
    wanted_sums = "".join(f"{digest}  {rel}\n" for rel, digest in listed.items())
    try:
        with open(os.path.join(root, SUMS), encoding="utf-8") as fh:
            sums_changed = fh.read() != wanted_sums
    except OSError:
        sums_changed = True
    if module.check_mode:
        module.exit_json(changed=bool(files) or sums_changed, placed=[])
    dests = {f: inside(module, root, f) for f in files}  # every name checked before anything moves
    if files:
        if not archive or not os.path.isfile(archive):
            module.fail_json(msg=f"the archive {archive} was not sent", placed=[])
        with tarfile.open(archive) as tar:
            absent = sorted(set(files) - {m.name for m in tar.getmembers() if m.isfile()})
        if absent:
            module.fail_json(msg=f"{', '.join(absent)} not in the archive {archive}", placed=[])
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX + ".", dir=root)
    if files:
        with tarfile.open(archive) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            for f in files:  # regular files only, owned by whoever places them, executable if they were
                out = os.path.join(staging, f)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with tar.extractfile(members[f]) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.chmod(out, 0o755 if members[f].mode & 0o100 else 0o644)
        remove_sent(archive)
    for f, dest in dests.items():
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(os.path.join(staging, f), dest)
    tmp = os.path.join(staging, SUMS)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(wanted_sums)
    os.replace(tmp, os.path.join(root, SUMS))
    for name in os.listdir(root):
        if name.startswith(STAGING_PREFIX):
            path = os.path.join(root, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
    # The box holds its part of the bundle and nothing else: the installer's --find-links and the
    # state record see exactly the wheels SHA256SUMS names, also after a newer bundle replaced them.
    removed = []
    for parent, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(parent, name), root)
            if rel not in listed and rel != SUMS:
                os.unlink(os.path.join(root, rel))
                removed.append(rel)
    bad = [f"{rel}: FAILED" for rel, digest in listed.items() if differs(os.path.join(root, rel), digest)]
    if bad:
        module.fail_json(msg=f"the bundle on the box does not match its SHA256SUMS: {'; '.join(bad[:10])}", placed=files, failed_files=bad)
    module.exit_json(changed=bool(files) or sums_changed or bool(removed), placed=files, removed=sorted(removed), verified=len(listed))


def remove_sent(archive: str) -> None:
    """The sent archive once unpacked, and those killed runs left. Ansible gives each task its own
    temporary directory beside the others' and removes it when the task ends; a run killed while
    the archive was on its way never does, and the archive (torch alone is hundreds of MiB) would
    stay until /tmp is emptied at boot."""
    if os.path.basename(archive) != SENT:
        return
    for path in glob.glob(os.path.join(os.path.dirname(os.path.dirname(archive)), "*", SENT)):
        try:
            os.unlink(path)
        except OSError:
            pass  # another user's, or gone already


def install(module: AnsibleModule, root: str) -> None:
    p = module.params
    for name in ("uv", "python", "venv", "requirement", "marker", "wanted"):
        if p[name] is None:
            module.fail_json(msg=f"state=installed needs {name}")
    python = os.path.join(p["venv"], "bin", "python")
    has_venv = os.path.exists(python)
    if has_venv and marked(module):
        module.exit_json(changed=False, venv_created=False)
    if module.check_mode:
        module.exit_json(changed=True, venv_created=not has_venv)
    # The bundle's uv, told never to look anywhere but the bundle: no config files, no cache, no
    # index, no Python downloads.
    env = {"UV_PYTHON_DOWNLOADS": "never"}
    if not has_venv:
        run(module, [p["uv"], "venv", "--no-config", "--offline", "--no-cache", "--no-python-downloads", "--quiet", "--python", p["python"], p["venv"]], env, "making the venv")
    run(module, [p["uv"], "pip", "install", "--no-config", "--offline", "--no-cache", "--quiet", "--compile-bytecode", "--python", python,
                 "--no-index", "--find-links", os.path.join(root, "wheels"), p["requirement"]], env, f"installing {p['requirement']}")
    fd, tmp = tempfile.mkstemp(prefix=".installed.", dir=os.path.dirname(p["marker"]))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(p["wanted"], indent=4, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, p["marker"])
    module.exit_json(changed=True, venv_created=not has_venv)


def run(module: AnsibleModule, argv: list[str], env: dict[str, str], what: str) -> None:
    rc, out, err = module.run_command(argv, environ_update=env)
    if rc != 0:
        tail = (err or out).strip().splitlines()[-15:]
        module.fail_json(msg=f"{what} failed (exit {rc}): " + " | ".join(tail), rc=rc, stdout=out, stderr=err)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "src": {"type": "path"},  # the controller's: read by the action plugin
            "manifest": {"type": "list", "elements": "str", "required": True},
            "state": {"type": "str", "choices": ["inspect", "placed", "installed"], "default": "placed"},
            "marker": {"type": "path"},
            "wanted": {"type": "dict"},
            "uv": {"type": "path"},
            "python": {"type": "path"},
            "venv": {"type": "path"},
            "requirement": {"type": "str"},
            "archive": {"type": "path"},
            "files": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    root = os.path.normpath(module.params["root"])
    listed = parse(module, module.params["manifest"], "the manifest")
    for rel in listed:
        inside(module, root, rel)
    state = module.params["state"]
    if state == "installed":
        install(module, root)
    (inspect if state == "inspect" else place)(module, root, listed)


if __name__ == "__main__":
    main()
