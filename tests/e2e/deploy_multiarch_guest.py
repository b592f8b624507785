"""The arm64 guest's half of tests/e2e/deploy_multiarch.sh (python3 of the arm64 sysroot).

Runs the image's ENTRYPOINT and CMD chrooted into the image's root filesystem (mounted by
the guest script), with one more listen address, [::1]:9742 (the image's civetweb, Debian
13's, listens on IPv6), waits for /readyz, makes N execs under UID from outside the
chroot, stops the exporter with SIGTERM, and writes what it saw to OUT for the host to
check: metrics.before, metrics.after, metrics.ipv6 (a scrape over IPv6), root, exe,
exporter.rc; failure (one line) when a step fails. The sysroot's busybox wget crashes (static glibc) and it has no curl: urllib it is.

usage: deploy_multiarch_guest.py OUT ROOTFS UID N '["/entrypoint", "cmd", ...]'
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

URL = "http://127.0.0.1:9741"
URL6 = "http://[::1]:9742"
READY_WITHIN_S = 600  # loading and verifying the BPF programs under TCG
EXITS_WITHIN_S = 60


def main():
    out, rootfs, uid, n, argv = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])

    def fail(msg):
        with open(os.path.join(out, "failure"), "w") as f:
            f.write(msg + "\n")
        print("FAIL:", msg, flush=True)
        sys.exit(1)

    def get(path, url=URL):
        with urllib.request.urlopen(url + path, timeout=60) as r:
            return r.status, r.read()

    def scrape(name, url=URL):
        try:
            status, body = get("/metrics", url)
        except OSError as e:
            fail(f"GET {url}/metrics: {e}")
        if status != 200:
            fail(f"GET {url}/metrics: status {status}")
        with open(os.path.join(out, name), "wb") as f:
            f.write(body)
        return body.decode()

    def execs(text):  # only to know when to stop waiting; the host checks the exact count
        want = f'uid="{uid}"'
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("execflow_execs_total{") and want in line)

    with open(os.path.join(out, "exporter.log"), "wb") as log:
        proc = subprocess.Popen(["chroot", rootfs] + argv + ["--web.listen-address=[::1]:9742"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        last = "no answer"
        while True:
            if proc.poll() is not None:
                fail(f"the exporter exited with {proc.returncode} before /readyz answered 200")
            try:
                if get("/readyz")[0] == 200:
                    break
            except urllib.error.HTTPError as e:
                last = f"status {e.code}"
            except OSError as e:
                last = str(e)
            if time.monotonic() > deadline:
                fail(f"/readyz did not answer 200 within {READY_WITHIN_S} s (last: {last})")
            time.sleep(0.5)
        for link in ("root", "exe"):
            with open(os.path.join(out, link), "w") as f:
                f.write(os.readlink(f"/proc/{proc.pid}/{link}") + "\n")

        scrape("metrics.ipv6", URL6)
        before = execs(scrape("metrics.before"))
        for _ in range(n):
            r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/bin/true"])
            if r.returncode != 0:
                fail(f"setpriv --reuid={uid} /bin/true exited {r.returncode}")
        for _ in range(20):  # counters are read from kernel maps at scrape time
            if execs(scrape("metrics.after")) - before >= n:
                break
            time.sleep(0.2)

        proc.terminate()
        try:
            rc = proc.wait(timeout=EXITS_WITHIN_S)
        except subprocess.TimeoutExpired:
            fail(f"the exporter did not exit within {EXITS_WITHIN_S} s of SIGTERM")
        with open(os.path.join(out, "exporter.rc"), "w") as f:
            f.write(f"{rc}\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
