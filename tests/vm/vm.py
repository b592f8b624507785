"""Boots Debian's stock kernels under qemu for the kernel matrix (python3 standard library).

A guest is the stock kernel, a small initramfs (static busybox, the kernel's own 9p and
virtio modules, tests/vm/init.sh as /init) and a root shared read-only over virtio-9p:
for x86-64 kernels the host's own root, so host-built binaries run in the guest at their
host paths; for arm64 kernels (qemu-system-aarch64, always emulated) the arm64 Debian
root of scripts/arm64-sysroot.sh, with the repository (and its cross build) shared at
its host path too. Each guest runs one shell script from a shared output folder and
writes its results there.

By hand (as root), one kernel:
    python3 tests/vm/vm.py 6.1 -- build/execflow_exporter --config.check \\
        --config.file config/execflow.yaml
    python3 tests/vm/vm.py arm64-6.12 -- build-arm64/execflow_exporter --version
(an arm64 guest sees the current folder at its own path).
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

# Kernel -> (the Debian suite whose linux-image-ARCH it is, ARCH); "sid": its newest kernel.
SUITES = {"5.10": ("bullseye", "amd64"), "6.1": ("bookworm", "amd64"),
          "6.12": ("bookworm-backports", "amd64"), "sid": ("sid", "amd64"),
          "arm64-5.10": ("bullseye", "arm64"), "arm64-6.12": ("trixie", "arm64"),
          "arm64-sid": ("sid", "arm64")}
# How qemu runs each architecture: its binary, machine and serial console.
QEMU = {"amd64": (["qemu-system-x86_64", "-cpu", "max"], "ttyS0"),
        # pauth-impdef: pointer authentication (which Debian's arm64 kernels use in every
        # function) with qemu's quick algorithm instead of the architected QARMA, which
        # dominates the time of an emulated arm64 kernel.
        "arm64": (["qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on"], "ttyAMA0")}

# What a guest needs to reach the host's root; their dependencies come from the modules.
ROOT_MODULES = ["9p", "9pnet_virtio", "virtio_pci"]

# Under KVM a kernel prints its first line within a second or two; a KVM that cannot run
# this kernel (this machine's kvm-pvm hangs after "Probing EDD") prints nothing.
KVM_PROBE_SECONDS = 10
# A guest that has not reached its /init by then hangs (a boot takes 2 to 15 s under TCG).
BOOT_SECONDS = 120
BOOTED = "execflow-vm: kernel"


def log(*args):
    print(*args, flush=True)


def arch_of(version):
    return SUITES[version][1]


def guest_root(arch, build=None):
    """The root folder an `arch` guest boots with: the host's own for amd64; for arm64,
    the arm64 Debian root the cross build in `build` was made against (its CMakeCache's
    EXECFLOW_ARM64_SYSROOT: its libraries are the ones the build links), else the one
    scripts/arm64-sysroot.sh makes for this machine's release."""
    if arch == "amd64":
        return "/"
    try:
        with open(os.path.join(build or "", "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("EXECFLOW_ARM64_SYSROOT:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return subprocess.run([os.path.join(REPO, "scripts", "arm64-sysroot.sh")], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()


def fetch_kernel(version):
    """The unpacked Debian kernel folder for a matrix version ("6.1"), downloaded once."""
    suite, arch = SUITES[version]
    out = subprocess.run([os.path.join(HERE, "fetch-kernel.sh"), suite, CACHE], check=True,
                         env={**os.environ, "EXECFLOW_KERNEL_ARCH": arch},
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    return out


def kernel_files(kdir):
    """(vmlinuz path, modules folder) of an unpacked kernel: boot/vmlinuz-R and
    lib/modules/R (usr/lib/modules/R from trixie) before 7.x, usr/lib/modules/R/vmlinuz beside the modules from 7.x.
    The modules folder's name is the release."""
    boot = os.path.join(kdir, "boot")
    if os.path.isdir(boot):
        name = next(f for f in os.listdir(boot) if f.startswith("vmlinuz-"))
        release = name[len("vmlinuz-"):]
        # trixie's packages put the modules under usr/lib, older ones under lib
        mods = next(m for m in (os.path.join(kdir, "lib", "modules", release),
                                os.path.join(kdir, "usr", "lib", "modules", release)) if os.path.isdir(m))
        return os.path.join(boot, name), mods
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


def build_initramfs(kdir, path, guest_root="/"):
    """Writes a gzipped newc initramfs for the kernel in `kdir` to `path`, with the static
    busybox of the guest's root folder (busybox-static: the host's, or the arm64 one)."""
    _, moddir = kernel_files(kdir)
    busybox = os.path.join(guest_root, "bin/busybox")
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


def _qemu_argv(arch, vmlinuz, initrd, out_dir, accel, cpus, memory_mb, extra_append, root, shares):
    # A hung guest fails at once, with every CPU's stack on the console: a soft lockup
    # panics (and panic=-1 with -no-reboot ends qemu), loglevel=5 shows the traces.
    qemu, console = QEMU[arch]
    # Folders shared at their host path inside the guest's root (read-only).
    share_args, mounts = [], []
    for i, path in enumerate(shares):
        share_args += ["-virtfs", f"local,path={path},mount_tag=share{i},security_model=none,readonly=on,"
                                  f"multidevs=remap,id=share{i}"]
        mounts.append(f"share{i}:{path}")
    if mounts:
        extra_append = f"execflow.shares={','.join(mounts)} {extra_append}"
    return qemu + ["-accel", accel, "-smp", str(cpus), "-m", str(memory_mb),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", f"file:{os.path.join(out_dir, 'console.log')}",
            "-kernel", vmlinuz, "-initrd", initrd,
            "-append", f"console={console} panic=-1 oops=panic softlockup_panic=1 softlockup_all_cpu_backtrace=1 loglevel=5 {extra_append}".strip(),
            "-virtfs", f"local,path={root},mount_tag=hostroot,security_model=none,readonly=on,"
                       "multidevs=remap,id=hostroot",
            "-virtfs", f"local,path={out_dir},mount_tag=out,security_model=none,id=out",
            "-device", "virtio-rng-pci"] + share_args


def run_guest(kdir, script, out_dir, timeout, accel, cpus=2, memory_mb=1536, extra_append="",
              arch="amd64", root="/", shares=(), one_tcg_thread=False, boot_seconds=BOOT_SECONDS):
    """Boots the kernel in `kdir` (an `arch` kernel), runs `script` (shell text) in the guest
    with `root` (default: the host's) as its root, `out_dir` at /tmp/out and each folder
    of `shares` at its own path. Returns the script's exit code, or None when the guest
    did not finish within `timeout` seconds (it is then killed). An arm64 guest always
    runs under TCG: KVM runs only the host's own architecture. `one_tcg_thread`: under
    TCG, one host thread runs every vCPU (slower; the kernel's live code patching is exact
    then: see tests/vm/guest.py, emulated())."""
    vmlinuz, _ = kernel_files(kdir)
    for path in shares:  # the mount points, in the read-only root
        os.makedirs(os.path.join(root, path.lstrip("/")), exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    for f in ("rc", "guest.log", "console.log"):
        with contextlib_suppress():
            os.unlink(os.path.join(out_dir, f))
    with open(os.path.join(out_dir, "run.sh"), "w") as f:
        f.write(script)
    initrd = os.path.join(out_dir, "initrd.gz")
    build_initramfs(kdir, initrd, root)
    native = arch == "amd64"
    # Emulated kernels seldom die or hang at boot under qemu's multi-threaded TCG: an int3
    # from the kernel's early text patching (CI: sid's 7.2 once, at 2.5 s, in
    # sched_clock_cpu), or no console output after 1.1 s for 13 minutes (sid's 7.2 here,
    # its soft-lockup watchdog silent too). Such a boot is tried once more.
    boot_retries = 1
    try:
        while True:
            mode = accel.mode if native else "tcg"
            argv = _qemu_argv(arch, vmlinuz, initrd, out_dir,
                              "tcg,thread=single" if mode == "tcg" and one_tcg_thread else mode,
                              cpus, memory_mb, extra_append, root, shares)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            if native and not accel.decided and not _booted_within(proc, out_dir, KVM_PROBE_SECONDS):
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
            accel.decided = accel.decided or native
            if not _booted_within(proc, out_dir, boot_seconds) and proc.poll() is None:
                proc.kill()  # a boot that hangs is tried again below, as one that dies
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                return None
            if proc.returncode != 0:
                log(f"vm: qemu exited with {proc.returncode}: {out.decode(errors='replace')[-2000:]}")
            if not _reached_init(out_dir) and boot_retries > 0:
                # The kernel died before our /init ran: nothing of execflow ran yet.
                boot_retries -= 1
                log(f"vm: {vmlinuz} died or hung while booting, before /init (console below); booting again\n"
                    f"{tail(os.path.join(out_dir, 'console.log'), 12)}")
                continue
            break
    finally:
        os.unlink(initrd)
    rc_path = os.path.join(out_dir, "rc")
    if not os.path.exists(rc_path):
        return None
    with open(rc_path) as f:
        return int(f.read().strip() or 1)


def _reached_init(out_dir):
    """Whether the guest's /init (tests/vm/init.sh) started, per its console line."""
    try:
        with open(os.path.join(out_dir, "console.log"), "rb") as f:
            return BOOTED.encode() in f.read()
    except FileNotFoundError:
        return False


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
    arch = arch_of(a.kernel)
    rc = run_guest(fetch_kernel(a.kernel), script, out, a.timeout, Accel(a.accel), arch=arch,
                   root=guest_root(arch, os.path.join(REPO, "build-arm64")), shares=() if arch == "amd64" else (os.getcwd(),))
    log(tail(os.path.join(out, "guest.log")))
    log(f"vm: {a.kernel}: rc={rc} in {time.monotonic() - t0:.0f}s; output in {out}")
    return 1 if rc is None else rc


if __name__ == "__main__":
    sys.exit(main())
