"""The controller's side of the hearthnet_bundle module: with `src` (the bundle on the
controller), one task asks the box what it lacks of its part, packs exactly those files into one
archive, sends it and has the module place and verify them.

Three tasks did this before (ask, pack, ansible.builtin.copy, place). copy's own stat of the
destination and its checksum of the sent archive on the box are module runs and hashing that the
placement repeats anyway (it checks every file against SHA256SUMS); on a small box each costs
seconds. Without `src` the module runs as it is (inspect, installed, or placed from an archive
already on the box).
"""

from __future__ import annotations

import os
import tarfile
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # a remote temporary directory is made only when there is something to send

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        src = args.pop("src", None)
        if src is None or args.get("state", "placed") != "placed":
            result.update(self._execute_module(module_name="hearthnet_bundle", module_args=args, task_vars=task_vars))
            return result
        if not os.path.isdir(src):
            raise AnsibleActionFail(f"the bundle directory {src} does not exist on the controller")
        held = self._execute_module(module_name="hearthnet_bundle", module_args={**args, "state": "inspect"}, task_vars=task_vars)
        if held.get("failed"):
            result.update(held)
            return result
        if held["current"]:  # installed from exactly this part: nothing hashed, nothing sent
            result.update(changed=False, current=True, missing=[], placed=[])
            return result
        missing = held["missing"]
        for rel in missing:
            if not os.path.isfile(os.path.join(src, rel)):
                raise AnsibleActionFail(f"{rel} is in this box's part of the bundle but not in {src}")
        place = {k: v for k, v in args.items() if k not in ("marker", "wanted")}
        local = None
        try:
            if missing and not self._task.check_mode:
                fd, local = tempfile.mkstemp(prefix="hearthnet-bundle-", suffix=".tar", dir=C.DEFAULT_LOCAL_TMP)
                os.close(fd)
                with tarfile.open(local, "w") as tar:
                    for rel in missing:
                        tar.add(os.path.join(src, rel), arcname=rel, recursive=False)
                if self._connection._shell.tmpdir is None:
                    self._make_tmp_path()
                remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "hearthnet-bundle.tar")
                self._transfer_file(local, remote)
                self._fixup_perms2((self._connection._shell.tmpdir, remote))
                place["archive"] = remote
            placed = self._execute_module(module_name="hearthnet_bundle", module_args={**place, "state": "placed", "files": missing},
                                          task_vars=task_vars)
        finally:
            if local is not None:
                os.unlink(local)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(placed)
        result.update(current=False, missing=missing)
        return result
