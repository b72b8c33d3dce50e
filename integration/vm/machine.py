"""Real QEMU virtual machines for the provisioning tests, on a LAN of their own.

Everything runs inside a network namespace the test creates (`Lab`): a bridge for the mesh
LAN with one tap device per VM, and QEMU itself, so each VM's management port
(`hostfwd=tcp:127.0.0.1:PORT-:22` on QEMU's user-mode network, `restrict=on`: the guest
reaches nothing through it) is on the namespace's loopback. The controller's commands
(ssh, ansible-playbook, testinfra) run in the namespace too (`Lab.cmd`). The namespace has
no link to this machine's network: nothing a guest sends can leave it.

Software emulation only (`-accel tcg -cpu max`): KVM guests hang here, and the default CPU
model lacks AVX2, which the portable llama.cpp build needs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from image import LAN_PREFIX, MAX_VMS, Image


@dataclass
class VM:
    name: str
    index: int
    memory: str
    ssh_port: int
    overlay: Path
    console: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def lan_address(self) -> str:
        return f"{LAN_PREFIX}.{10 + self.index}"


@dataclass
class Lab:
    """A network namespace with a bridge, and the VMs on it; `close()` removes all of it."""

    image: Image
    workdir: Path
    ns: str = field(default_factory=lambda: f"hnvm{os.getpid()}")
    vms: dict[str, VM] = field(default_factory=dict)

    @property
    def control_dir(self) -> Path:
        """SSH connection sharing for this lab only. Every lab's VMs are 127.0.0.1:2201… in their
        own namespace, so ssh's shared sockets (ansible's default ~/.ansible/cp, keyed by user, host
        and port) would carry one lab's commands to another lab's VM. Short: a socket path has 108 bytes."""
        return Path(f"/tmp/hncp-{self.ns}")

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.control_dir, ignore_errors=True)
        self.control_dir.mkdir(mode=0o700)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        self._ip("netns", "add", self.ns)
        self.sh("ip link set lo up && ip link add br0 type bridge && ip link set br0 up")

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def cmd(self, argv: list[str]) -> list[str]:
        """`argv` as it runs inside the namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def sh(self, script: str, timeout: float = 60) -> str:
        p = subprocess.run(self.cmd(["sh", "-ec", script]), capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"in {self.ns}: {script}: {p.stderr.strip()}")
        return p.stdout

    def start(self, name: str, *, memory: str = "1536M", cpus: int = 1) -> VM:
        index = len(self.vms) + 1
        assert index <= MAX_VMS, "the image has network files for MAX_VMS machines"
        vm = VM(name, index, memory, 2200 + index, self.workdir / f"{name}.qcow2", self.workdir / f"{name}.console.log")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(self.image.disk), str(vm.overlay)], check=True)
        tap = f"tap{index}"
        self.sh(f"ip tuntap add dev {tap} mode tap && ip link set {tap} master br0 && ip link set {tap} up")
        append = f"root=/dev/vda rw console=ttyS0 systemd.hostname={name} systemd.show_status=false"
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", str(cpus), "-m", memory, "-nodefaults", "-display", "none",
                "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd), "-append", append,
                "-drive", f"file={vm.overlay},if=virtio,format=qcow2,cache=unsafe",
                "-netdev", f"user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:{vm.ssh_port}-:22",
                "-device", f"virtio-net-pci,netdev=mgmt,mac=52:54:00:00:00:{index:02x}",
                "-netdev", f"tap,id=lan,ifname={tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=lan,mac=52:54:00:01:00:{index:02x}",
                "-serial", f"file:{vm.console}", "-device", "virtio-rng-pci"]
        vm.proc = subprocess.Popen(self.cmd(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.workdir / f"{name}.qemu.log", "wb"),
                                   start_new_session=True)
        self.vms[name] = vm
        return vm

    def ssh_argv(self, vm: VM) -> list[str]:
        return ["ssh", "-i", str(self.image.key), "-p", str(vm.ssh_port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "root@127.0.0.1"]

    def ssh(self, vm: VM, command: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(self.cmd([*self.ssh_argv(vm), command]), capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{vm.name}: {command}: rc={p.returncode}: {p.stderr.strip()[-500:]}")
        return p

    def wait_ssh(self, vm: VM, timeout: float = 600) -> float:
        """Seconds until the VM answers on SSH."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if vm.proc is not None and vm.proc.poll() is not None:
                raise RuntimeError(f"{vm.name}: QEMU exited ({vm.proc.returncode}); console:\n{self.console_tail(vm)}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self.ssh(vm, "true", timeout=30, check=False).returncode == 0:
                    return time.monotonic() - t0
            time.sleep(2)
        raise RuntimeError(f"{vm.name}: no SSH after {timeout:.0f}s; console:\n{self.console_tail(vm)}")

    def console_tail(self, vm: VM, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(vm.console.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def close(self) -> None:
        for vm in self.vms.values():
            if vm.proc is not None and vm.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(vm.proc.pid, signal.SIGTERM)
                try:
                    vm.proc.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(vm.proc.pid, signal.SIGKILL)
                    vm.proc.wait(10)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        for vm in self.vms.values():
            with contextlib.suppress(FileNotFoundError):
                vm.overlay.unlink()
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Run in a guest: try a TCP connection to each address:port, print which ones answered.
_PROBE = """
import json, socket, sys
got = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        got[target] = "connected"
    except OSError as exc:
        got[target] = type(exc).__name__
try:
    socket.getaddrinfo("deb.debian.org", 443)
    got["dns"] = "resolved"
except OSError as exc:
    got["dns"] = type(exc).__name__
print(json.dumps(got))
"""


def reach_out(lab: Lab, vm: VM) -> tuple[dict[str, str], int]:
    """From inside `vm`, try to reach this machine (every address it has, and QEMU's user-mode
    host alias 10.0.2.2) on a port this machine really listens on, the LAN's gateway address,
    and DNS. Returns what the guest saw and how many connections this machine's listener accepted.
    Nothing is sent to any address outside this machine."""
    import json
    import socket

    addrs = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout.split()
    mine = [a.split("/")[0] for i, a in enumerate(addrs) if addrs[i - 1] == "inet" and not a.startswith("127.")]
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        targets = [f"{a}:{port}" for a in [*mine, "10.0.2.2"]] + [f"{LAN_PREFIX}.1:22", "10.0.2.3:53"]
        p = lab.ssh(vm, "python3 - " + " ".join(targets) + " <<'EOF'\n" + _PROBE + "\nEOF", timeout=120)
        accepted = 0
        while True:
            try:
                listener.accept()[0].close()
                accepted += 1
            except BlockingIOError:
                break
    return json.loads(p.stdout), accepted


def have_tools() -> str | None:
    """Why VM tests cannot run here, or None."""
    for tool in ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "ssh", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "VM tests need root (network namespaces, tap devices, mmdebstrap)"
    return None
