"""The VM image the Ansible tests provision: Debian bookworm with systemd, SSH and python3-venv.

Built with mmdebstrap into a directory, written into an ext4 file with `mkfs.ext4 -d`
(no loop mount), converted to qcow2, and booted with the image's own cloud kernel and
initrd via -kernel/-initrd. Cached outside the clone under
`${XDG_CACHE_HOME:-~/.cache}/hearthnet/vm/<recipe hash>/`: a change to the recipe below
builds a new image; a half-built one is never used (the folder is renamed into place last).

Inside, two NICs are told apart by MAC address (`network_files`): 52:54:00:00:00:nn is
management (QEMU's user-mode network, 10.0.2.15, no gateway), 52:54:00:01:00:nn the mesh
LAN with address 10.77.0.(10+nn) and the only default route, so one image serves every VM.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("systemd-sysv", "udev", "dbus", "openssh-server", "python3", "python3-venv", "linux-image-cloud-amd64", "initramfs-tools",
            "iproute2", "acl", "sudo", "procps", "zstd",
            "libnss-myhostname",  # the VM's own name resolves (sudo looks it up on every call)
            "nftables")  # installed, not enabled: the village test turns a strict ruleset on for the anchor
SIZE = "8G"  # sparse: the anchor's venv with torch needs room, the file holds only what is written

MAX_VMS = 16
LAN_PREFIX = "10.77.0"
LAN_GATEWAY = f"{LAN_PREFIX}.1"  # nobody answers there: it only makes the LAN NIC hold the default route


def network_files() -> dict[str, str]:
    """systemd-networkd files for VM n (1..MAX_VMS), matched by MAC: management 52:54:00:00:00:nn
    (QEMU's user-mode network, 10.0.2.15, no gateway) and LAN 52:54:00:01:00:nn (LAN_PREFIX.(10+n),
    the only default route)."""
    files = {}
    for n in range(1, MAX_VMS + 1):
        files[f"10-mgmt-{n}.network"] = (f"[Match]\nMACAddress=52:54:00:00:00:{n:02x}\n\n[Network]\nAddress=10.0.2.15/24\n"
                                          "LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
        files[f"20-lan-{n}.network"] = (f"[Match]\nMACAddress=52:54:00:01:00:{n:02x}\n\n[Link]\nMulticast=yes\n\n[Network]\n"
                                         f"Address={LAN_PREFIX}.{10 + n}/24\nGateway={LAN_GATEWAY}\nLinkLocalAddressing=ipv6\nIPv6AcceptRA=no\n")
    return files


FSTAB = "/dev/vda / ext4 rw,discard,errors=remount-ro 0 1\n"


@dataclass(frozen=True)
class Image:
    dir: Path
    disk: Path  # qcow2, the backing file of every VM's overlay
    kernel: Path
    initrd: Path
    key: Path  # SSH private key (root@ the VMs)


def recipe() -> dict[str, object]:
    return {"suite": SUITE, "mirror": MIRROR, "packages": sorted(PACKAGES), "size": SIZE, "net": network_files(), "fstab": FSTAB, "v": 3}


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hearthnet" / "vm"


def _image(d: Path) -> Image:
    return Image(d, d / "base.qcow2", d / "vmlinuz", d / "initrd.img", d / "id_ed25519")


def cached() -> Image | None:
    d = cache_root() / recipe_hash()
    return _image(d) if (d / "ok").is_file() else None


def _run(cmd: list[str], log: Path, timeout: float) -> None:
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if p.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}); last lines of {log}:\n" + "\n".join(tail))


def build(say=print) -> Image:
    """The cached image, built first when missing (mmdebstrap: a few minutes, network to Debian's mirror)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / recipe_hash()
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; a second waits and reuses
        if (final / "ok").is_file():
            return _image(final)
        for stale in root.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            log = work / "build.log"
            tree = work / "tree"
            say(f"vm image: mmdebstrap {SUITE} ({len(PACKAGES)} packages) -> {final}")
            _run(["mmdebstrap", "--mode=root", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(tree), MIRROR], log, 1800)
            _customize(tree, work)
            kernels = sorted((tree / "boot").glob("vmlinuz-*"))
            initrds = sorted((tree / "boot").glob("initrd.img-*"))
            if not kernels or not initrds:
                raise RuntimeError(f"no kernel or initrd in {tree}/boot")
            shutil.copyfile(kernels[-1], work / "vmlinuz")
            shutil.copyfile(initrds[-1], work / "initrd.img")
            raw = work / "root.ext4"
            _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), str(raw), SIZE], log, 1200)
            _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "base.qcow2")], log, 1200)
            raw.unlink()
            shutil.rmtree(tree)
            (work / "recipe.json").write_text(json.dumps(recipe(), indent=2, sort_keys=True))
            (work / "ok").write_text("ok\n")
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(final)
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return _image(final)


def _customize(tree: Path, work: Path) -> None:
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hearthnet-vm-tests", "-f", str(key)], check=True)
    ssh = tree / "root" / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text((work / "id_ed25519.pub").read_text())
    (ssh / "authorized_keys").chmod(0o600)
    (tree / "etc" / "fstab").write_text(FSTAB)
    (tree / "etc" / "hostname").write_text("hearthnet-vm\n")
    # A box's own name must resolve without DNS, as an installed Debian's /etc/hosts makes it: sudo
    # looks it up on every call, and with no answer each call waited 12 s for the lab's silent
    # resolver. The name comes at boot (systemd.hostname=), so nss-myhostname answers for it. The lab
    # has no DNS server: with no nameserver line glibc asks 127.0.0.1, which refuses at once.
    (tree / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    nss = tree / "etc" / "nsswitch.conf"
    nss.write_text("".join("hosts:          files myhostname dns\n" if line.startswith("hosts:") else line
                           for line in nss.read_text().splitlines(keepends=True)))
    (tree / "etc" / "resolv.conf").unlink(missing_ok=True)
    (tree / "etc" / "resolv.conf").write_text("# no DNS in the lab\n")
    for name, text in network_files().items():
        (tree / "etc" / "systemd" / "network" / name).write_text(text)
    # Fast, quiet boots: no waiting for a network that has no DHCP, no host keys made at every boot.
    (tree / "etc" / "ssh" / "sshd_config.d").mkdir(parents=True, exist_ok=True)
    (tree / "etc" / "ssh" / "sshd_config.d" / "hearthnet-vm.conf").write_text("PermitRootLogin prohibit-password\nUseDNS no\nPasswordAuthentication no\n")
    subprocess.run(["chroot", str(tree), "ssh-keygen", "-A"], check=True, capture_output=True)
    for unit in ("systemd-networkd.service", "ssh.service"):
        subprocess.run(["systemctl", f"--root={tree}", "enable", unit], check=True, capture_output=True)
    for unit in ("systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"):
        subprocess.run(["systemctl", f"--root={tree}", "mask", unit], check=True, capture_output=True)
    (tree / "etc" / "apt" / "sources.list").write_text("")  # the VMs have no internet: apt never tries
    for f in (tree / "etc" / "apt" / "sources.list.d").glob("*"):
        f.unlink()


if __name__ == "__main__":
    img = build()
    print(img)
