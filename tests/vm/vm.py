"""Boots Debian's stock kernels under qemu for the kernel matrix (python3 standard library).

A guest is the stock kernel, a small initramfs (static busybox, the kernel's own 9p and
virtio modules, tests/vm/init.sh as /init) and the host's root shared read-only over
virtio-9p. Host-built binaries run in the guest at their host paths. Each guest runs
one shell script from a shared output folder and writes its results there.

By hand (as root), one kernel:
    python3 tests/vm/vm.py 6.1 -- build/execflow_exporter --config.check \\
        --config.file config/execflow.yaml
"""

import argparse
import lzma
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("EXECFLOW_VM_CACHE", "/var/cache/execflow-vm")

# Kernel -> the Debian suite whose linux-image-amd64 it is; "sid": its newest kernel.
SUITES = {"5.10": "bullseye", "6.1": "bookworm", "6.12": "bookworm-backports", "sid": "sid"}

# What a guest needs to reach the host's root; their dependencies come from the modules.
ROOT_MODULES = ["9p", "9pnet_virtio", "virtio_pci"]

# Under KVM a kernel prints its first line within a second or two; a KVM that cannot run
# this kernel (this machine's kvm-pvm hangs after "Probing EDD") prints nothing.
KVM_PROBE_SECONDS = 10
BOOTED = "execflow-vm: kernel"


def log(*args):
    print(*args, flush=True)


def fetch_kernel(version):
    """The unpacked Debian kernel folder for a matrix version ("6.1"), downloaded once."""
    suite = SUITES[version]
    out = subprocess.run([os.path.join(HERE, "fetch-kernel.sh"), suite, CACHE], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    return out


def kernel_files(kdir):
    """(vmlinuz path, modules folder) of an unpacked kernel: boot/vmlinuz-R and
    lib/modules/R before 7.x, usr/lib/modules/R/vmlinuz beside the modules from 7.x.
    The modules folder's name is the release."""
    boot = os.path.join(kdir, "boot")
    if os.path.isdir(boot):
        name = next(f for f in os.listdir(boot) if f.startswith("vmlinuz-"))
        return os.path.join(boot, name), os.path.join(kdir, "lib", "modules", name[len("vmlinuz-"):])
    mods = os.path.join(kdir, "usr", "lib", "modules")
    release = next(r for r in os.listdir(mods) if os.path.exists(os.path.join(mods, r, "vmlinuz")))
    return os.path.join(mods, release, "vmlinuz"), os.path.join(mods, release)


def _module_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    return lzma.decompress(data) if path.endswith(".xz") else data


def _module_depends(data):
    """The module names in a .ko's .modinfo "depends=" entry."""
    i = data.find(b"\0depends=")
    if i < 0:
        return []
    value = data[i + 9:data.index(b"\0", i + 9)].decode()
    return [d for d in value.split(",") if d]


def module_load_order(moddir, names):
    """[(file name, bytes)] of `names` and their dependencies, dependencies first.
    Modules built into the kernel are absent and skipped."""
    files = {}
    for root, _, fs in os.walk(os.path.join(moddir, "kernel")):
        for f in fs:
            base = f.split(".ko")[0]
            files[base.replace("-", "_")] = os.path.join(root, f)
    order, seen = [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen or name not in files:
            return
        seen.add(name)
        data = _module_bytes(files[name])
        for dep in _module_depends(data):
            visit(dep)
        order.append((name + ".ko", data))
    for n in names:
        visit(n)
    return order


def build_initramfs(kdir, path):
    """Writes a gzipped newc initramfs for the kernel in `kdir` to `path`."""
    _, moddir = kernel_files(kdir)
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory(prefix="execflow-initrd-") as root:
        for d in ("bin", "modules"):
            os.makedirs(os.path.join(root, d))
        shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
        shutil.copy(os.path.join(HERE, "init.sh"), os.path.join(root, "init"))
        os.chmod(os.path.join(root, "init"), 0o755)
        names = []
        for name, data in module_load_order(moddir, ROOT_MODULES):
            with open(os.path.join(root, "modules", name), "wb") as f:
                f.write(data)
            names.append(name)
        with open(os.path.join(root, "modules.list"), "w") as f:
            f.write("\n".join(names) + "\n")
        files = subprocess.run("find . -print0 | sort -z", shell=True, cwd=root, check=True,
                               stdout=subprocess.PIPE).stdout
        cpio = subprocess.run(["cpio", "--null", "-o", "-H", "newc", "--quiet"], cwd=root,
                              input=files, stdout=subprocess.PIPE, check=True).stdout
    import gzip
    with open(path, "wb") as f:
        f.write(gzip.compress(cpio, compresslevel=1))


class Accel:
    """KVM where it runs a stock kernel, else TCG; decided once, by the first boot."""

    def __init__(self, forced=None):
        self.mode = forced or ("kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg")
        self.decided = forced is not None or self.mode == "tcg"


def _qemu_argv(vmlinuz, initrd, out_dir, accel, cpus, memory_mb, extra_append):
    # A hung guest fails at once, with every CPU's stack on the console: a soft lockup
    # panics (and panic=-1 with -no-reboot ends qemu), loglevel=5 shows the traces.
    return ["qemu-system-x86_64", "-accel", accel, "-cpu", "max", "-smp", str(cpus), "-m", str(memory_mb),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", f"file:{os.path.join(out_dir, 'console.log')}",
            "-kernel", vmlinuz, "-initrd", initrd,
            "-append", f"console=ttyS0 panic=-1 oops=panic softlockup_panic=1 softlockup_all_cpu_backtrace=1 loglevel=5 {extra_append}".strip(),
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                       "multidevs=remap,id=hostroot",
            "-virtfs", f"local,path={out_dir},mount_tag=out,security_model=none,id=out",
            "-device", "virtio-rng-pci"]


def run_guest(kdir, script, out_dir, timeout, accel, cpus=2, memory_mb=1536, extra_append=""):
    """Boots the kernel in `kdir`, runs `script` (shell text) in the guest with the host's
    root as its root and `out_dir` at /tmp/out. Returns the script's exit code, or None
    when the guest did not finish within `timeout` seconds (it is then killed)."""
    vmlinuz, _ = kernel_files(kdir)
    os.makedirs(out_dir, exist_ok=True)
    for f in ("rc", "guest.log", "console.log"):
        with contextlib_suppress():
            os.unlink(os.path.join(out_dir, f))
    with open(os.path.join(out_dir, "run.sh"), "w") as f:
        f.write(script)
    initrd = os.path.join(out_dir, "initrd.gz")
    build_initramfs(kdir, initrd)
    try:
        while True:
            argv = _qemu_argv(vmlinuz, initrd, out_dir, accel.mode, cpus, memory_mb, extra_append)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            if not accel.decided and not _booted_within(proc, out_dir, KVM_PROBE_SECONDS):
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                why = (f"qemu exited: {proc.stdout.read().decode(errors='replace').strip()[-300:]}"
                       if proc.returncode is not None and proc.returncode > 0 else
                       f"no console output within {KVM_PROBE_SECONDS}s")
                log(f"vm: KVM cannot boot {vmlinuz} ({why}); "
                    "using TCG (software emulation) from now on")
                accel.mode, accel.decided = "tcg", True
                continue
            accel.decided = True
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                return None
            if proc.returncode != 0:
                log(f"vm: qemu exited with {proc.returncode}: {out.decode(errors='replace')[-2000:]}")
            break
    finally:
        os.unlink(initrd)
    rc_path = os.path.join(out_dir, "rc")
    if not os.path.exists(rc_path):
        return None
    with open(rc_path) as f:
        return int(f.read().strip() or 1)


def _booted_within(proc, out_dir, seconds):
    console = os.path.join(out_dir, "console.log")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with open(console, "rb") as f:
                if BOOTED.encode() in f.read():
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.5)
    return False


class contextlib_suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} missing)"


def main():
    p = argparse.ArgumentParser(description="Run one command in a Debian stock kernel guest.")
    p.add_argument("kernel", choices=sorted(SUITES))
    p.add_argument("--accel", choices=["kvm", "tcg"])
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--out", help="output folder (default: a new temporary folder)")
    argv = sys.argv[1:]
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    out = a.out or tempfile.mkdtemp(prefix=f"execflow-vm-{a.kernel}-")
    script = f"cd {shlex.quote(os.getcwd())}\n{shlex.join(cmd) if cmd else 'uname -a'}\n"
    t0 = time.monotonic()
    rc = run_guest(fetch_kernel(a.kernel), script, out, a.timeout, Accel(a.accel))
    log(tail(os.path.join(out, "guest.log")))
    log(f"vm: {a.kernel}: rc={rc} in {time.monotonic() - t0:.0f}s; output in {out}")
    return 1 if rc is None else rc


if __name__ == "__main__":
    sys.exit(main())
