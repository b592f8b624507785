#!/usr/bin/env python3
"""A guest whose boot hangs is ended and booted once more, then reported as not finished,
in seconds rather than at the guest's time-out (tests/vm/vm.py, run_guest). The hang: the
initramfs's first program is `busybox sleep`, so /init never says the kernel is up."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402
sys.path.insert(0, os.path.join(vm.REPO, "tests", "e2e"))
import e2e_lib as lib  # noqa: E402


def main():
    if os.geteuid() != 0:
        lib.skip_or_fail("boots a guest kernel from the kernel cache: run as root")
    for tool in ("busybox", "cpio", vm.QEMU["amd64"][0][0]):
        lib.need_tool(tool)
    said = []
    vm.log = lambda text: (said.append(text), print(text, flush=True))
    with tempfile.TemporaryDirectory(prefix="execflow-boot-retry-") as out:
        t0 = time.monotonic()
        # The guest's own limit is far beyond CTest's: only the boot limit can end it.
        rc = vm.run_guest(vm.fetch_kernel("6.12"), "echo never\n", out, 100000, vm.Accel("tcg"),
                          extra_append="rdinit=/bin/busybox -- sleep 100000", boot_seconds=10)
    print(f"boot_retry_test: rc {rc} after {time.monotonic() - t0:.0f} s")
    fails = []
    if rc is not None:
        fails.append(f"a guest that never reached /init returned {rc}, want None (not finished)")
    retries = [t for t in said if "hung while booting" in t]
    if len(retries) != 1:
        fails.append(f"{len(retries)} boots again, want 1")
    for f in fails:
        print("FAIL", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
