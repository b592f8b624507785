#!/bin/busybox sh
# PID 1 of a kernel-matrix guest (tests/vm/vm.py packs it into the initramfs as /init).
# Loads the guest kernel's 9p/virtio modules, mounts the guest's root (the host's, or
# the arm64 root of scripts/arm64-sysroot.sh) read-only over virtio-9p with tmpfs on the writable places, mounts bpffs, tracefs and debugfs,
# brings loopback up, runs /tmp/out/run.sh from the shared output folder inside the
# host root (chroot), records its exit code and powers off.
/bin/busybox mkdir -p /proc /sys /dev /host /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "execflow-vm: $*" >/dev/console; }
say "kernel $(uname -r) up"
for m in $(cat /modules.list); do
  insmod "/modules/$m" || say "insmod $m failed"
done
opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts,ro,cache=loose" hostroot /host || { say "mount host root failed"; poweroff -f; }
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
mount -t tmpfs -o mode=1777 tmpfs /host/var/tmp
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm /host/tmp/out
mount -t devpts devpts /host/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t 9p -o "$opts" out /host/tmp/out || { say "mount output folder failed"; poweroff -f; }
# execflow.shares=TAG:PATH,...: more host folders, read-only at their host path (an
# arm64 guest's root is not the host's: the repository and its cross build).
for arg in $(cat /proc/cmdline); do
  case $arg in execflow.shares=*)
    for share in $(echo "${arg#execflow.shares=}" | tr , ' '); do
      mount -t 9p -o "$opts,ro" "${share%%:*}" "/host${share#*:}" || say "mount $share failed"
    done ;;
  esac
done
mount -t bpf bpf /host/sys/fs/bpf
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
mount -t tracefs tracefs /host/sys/kernel/tracing
mount -t debugfs debugfs /host/sys/kernel/debug
ip link set lo up
say "running /tmp/out/run.sh"
chroot /host /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  /bin/sh /tmp/out/run.sh >/host/tmp/out/guest.log 2>&1
echo $? >/host/tmp/out/rc
sync
say "done rc=$(cat /host/tmp/out/rc)"
umount /host/tmp/out
poweroff -f
